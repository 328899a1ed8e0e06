"""The lakehouse setting end to end on a real S3 API (moto's server on 127.0.0.1): every
table of the hourly run in a DuckLake on S3, incremental and idempotent as on disk, safe to
kill -9, and readable by an engine that is not DuckDB."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import s3fs

from shopfloor.core.settings import resolve
from shopfloor.core.warehouse import connect
from shopfloor.serving.snapshot import open_catalog
from tests.cli import build_models
from tests.ducklake_files import read_table
from tests.fleets import SHAPES, Fleets
from tests.landing import HandMachine, hours_between, utc, write_hours, write_registry
from tests.pg import postgres_server
from tests.s3 import s3_server
from tests.test_run import last_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a fleet of its own, five runs on S3

SHAPE = SHAPES["lake"]
MACHINES, HOURS = SHAPE.machines, SHAPE.hours
LAKE = "s3://plant/lake"


class Plant:
    def __init__(self, root: Path, endpoint: str) -> None:
        self.root, self.endpoint = root, endpoint
        self.landing, self.data = root / "landing", root / "data"
        self.settings = resolve({"data_dir": str(self.data), "lakehouse": LAKE})

    def simulate(self, hours: int) -> None:
        SHAPE.extend(self.root, hours)

    def command(self) -> list[str]:
        return ["shopfloor", "run", "--data-dir", str(self.data), "--landing", str(self.landing)]

    def env(self) -> dict[str, str]:
        # the lake comes from the environment here, the data folder from a flag
        return {
            **os.environ,
            "COLUMNS": "160",
            "SHOPFLOOR_PSEUDONYM_KEY": "k",
            "SHOPFLOOR_LAKEHOUSE": LAKE,
        }

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(), capture_output=True, text=True, env=self.env())

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env()
        )

    def one(self, sql: str, params: list[Any] | None = None) -> Any:
        with connect(self.settings, read_only=True) as con:
            row = con.execute(sql, params or []).fetchone()
        assert row is not None
        return row[0] if len(row) == 1 else row

    def served(self, sql: str) -> Any:
        """What a BI session reading the serving layer's catalog on S3 gets."""
        with open_catalog(f"{LAKE}/serving/bi.duckdb") as con:
            con.execute("use marts")
            row = con.execute(sql).fetchone()
        assert row is not None
        return row[0] if len(row) == 1 else row

    def objects(self, prefix: str, suffix: str = ".parquet") -> list[str]:
        fs = s3fs.S3FileSystem()
        fs.invalidate_cache()
        return [p for p in fs.find(f"plant/lake/{prefix}") if p.endswith(suffix)]


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory, fleets: Fleets) -> Iterator[Plant]:
    with pytest.MonkeyPatch.context() as mp, s3_server(mp, "plant") as endpoint:
        yield Plant(fleets.copy("lake", tmp_path_factory.mktemp("lakeplant")), endpoint)


CHECKSUM = (
    "select count(*), sum(hash(machine_id, hour_at, completeness)) from marts.fct_machine_hours"
)


def state(plant: Plant) -> tuple[Any, ...]:
    """What a run that finds nothing new must leave as it was."""
    return plant.one(
        "select (select count(*) from raw.telemetry_readings),"
        " (select count(*) from raw.landing_files),"
        f" ({CHECKSUM.replace('count(*), sum', 'count(*) + sum')}),"
        " (select count(*) from ml.machine_hour_scores)"
    )


def duplicates(plant: Plant) -> tuple[int, ...]:
    """Rows beyond the first per key: readings, file versions, machine-hours, scores."""
    return plant.one(
        "select"
        " (select count(*) - count(distinct (source_file_sha256, source_line))"
        "  from raw.telemetry_readings),"
        " (select count(*) - count(distinct (relative_path, size_bytes, modified_at))"
        "  from raw.landing_files),"
        " (select count(*) - count(distinct (machine_id, hour_at)) from marts.fct_machine_hours),"
        " (select count(*) - count(distinct (machine_id, hour_at, model_version))"
        "  from ml.machine_hour_scores)"
    )


def reconciles(plant: Plant) -> None:
    """Every file in the landing area is accounted for once, with exactly its rows."""
    on_disk = {
        str(p.relative_to(plant.landing)) for p in (plant.landing / "telemetry").rglob("*.txt")
    }
    with connect(plant.settings, read_only=True) as con:
        files = con.sql(
            "select relative_path, status, rows_read, rows_loaded, rows_rejected"
            " from raw.landing_files"
        ).fetchall()
        readings = dict(
            con.sql(
                "select source_file, count(*) from raw.telemetry_readings group by 1"
            ).fetchall()
        )
        rejects = dict(
            con.sql("select source_file, count(*) from raw.telemetry_rejects group by 1").fetchall()
        )
    assert {f[0] for f in files} == on_disk
    assert len(files) == len(on_disk)
    for path, status, read, loaded, rejected in files:
        assert read == loaded + rejected, path
        assert readings.get(path, 0) == loaded, (path, status)
        assert rejects.get(path, 0) == rejected, (path, status)


def kill_when(plant: Plant, reached: Callable[[subprocess.Popen[str]], bool]) -> None:
    """Start a run and kill -9 it once `reached` says so."""
    run = plant.start()
    deadline = time.monotonic() + 300
    while not reached(run):
        assert run.poll() is None, "the run ended before the point it was to be killed at"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL


def test_runs_on_s3_killed_in_ingest_and_in_build(plant: Plant) -> None:
    first = plant.run()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    run1 = last_run(plant.data)
    assert run1["trained"] and run1["tests_failed"] == 0 and run1["tests_passed"] > 50
    # the tables are Parquet files on S3, the model versions too; the data folder holds
    # neither a warehouse nor a model
    for prefix in ("raw/telemetry_readings", "raw/landing_files", "marts/", "ml/"):
        assert plant.objects(prefix), prefix
    assert plant.objects(f"models/{run1['model_version']}/", "model.skops")
    assert plant.objects("models/", "LATEST")
    assert not (plant.data / "warehouse.duckdb").exists()
    assert not list(plant.data.rglob("*.skops"))
    # the serving layer is on S3 too, and a BI session reads it there
    assert not (plant.data / "serving").exists()
    assert plant.served("select count(*) from fct_machine_hours") == plant.one(
        "select count(*) from marts.fct_machine_hours"
    )
    assert plant.one(
        "select (select count(*) from ml.machine_hour_scores)"
        " = (select count(*) from marts.fct_machine_hour_features),"
        " (select count(*) from marts.fct_machine_risk where risk is not null)"
    ) == (True, MACHINES)

    # one more hour; the run is killed -9 once dlt's load package is ready or loading,
    # and the next run finishes that load: the new hour arrives once, nothing else does
    newest, readings = plant.one(
        "select (select max(hour_at) from marts.fct_machine_hours),"
        " (select count(*) from raw.telemetry_readings)"
    )
    plant.simulate(HOURS + 1)
    packages = plant.data / ".dlt" / "shopfloor_landing" / "load" / "normalized"
    kill_when(plant, lambda _run: any(packages.glob("*")))
    second = plant.run()
    assert second.returncode == 0, second.stdout[-4000:]
    assert "did not finish" in second.stdout
    run2 = last_run(plant.data)
    assert not run2["trained"] and run2["tests_failed"] == 0
    new_hour, added, in_new_files = plant.one(
        "select (select max(hour_at) from marts.fct_machine_hours),"
        f" (select count(*) - {readings} from raw.telemetry_readings),"
        " (select sum(rows_loaded) from raw.landing_files where file_hour_at > ?)",
        [newest],
    )
    assert new_hour > newest and added == in_new_files > 0
    assert plant.one(
        "select (select count(*) from ml.machine_hour_scores where hour_at = $1)"
        " = (select count(*) from marts.fct_machine_hour_features where hour_at = $1)",
        [new_hour],
    )
    reconciles(plant)
    assert duplicates(plant) == (0, 0, 0, 0)
    # the new version: its new day written, the unchanged days copied from the last one
    assert plant.served("select count(*), max(hour_at) from fct_machine_hours") == (
        plant.one("select count(*) from marts.fct_machine_hours"),
        new_hour,
    )
    assert plant.objects("serving/", "CURRENT") and plant.objects("serving/", "bi.duckdb")

    # nothing new; the run is killed -9 in the middle of its dbt build: the next run
    # resumes, and nothing has changed
    before = state(plant)
    building_since: list[float] = []

    def two_seconds_into_build(run: subprocess.Popen[str]) -> bool:
        if not building_since and stage_of(plant.data, run) == "build":
            building_since.append(time.monotonic())
        return bool(building_since) and time.monotonic() - building_since[0] > 2

    kill_when(plant, two_seconds_into_build)
    # and the data folder loses its caches: the lake's catalog comes back from its copy on
    # S3 (as the last finished run left it), dlt's state from the lake
    assert plant.objects("catalog/", "lake_catalog.sqlite")
    for cache in plant.data.glob("lake_catalog.sqlite*"):
        cache.unlink()
    shutil.rmtree(plant.data / ".dlt")
    third = plant.run()
    assert third.returncode == 0, third.stdout[-4000:]
    run3 = last_run(plant.data)
    assert run3["files_new"] == 0 and run3["hours_scored"] == 0 and run3["tests_failed"] == 0
    assert state(plant) == before
    reconciles(plant)
    assert duplicates(plant) == (0, 0, 0, 0)
    another_engine_reads_the_lake(plant)


def stage_of(data: Path, run: subprocess.Popen[str]) -> str | None:
    try:
        current = json.loads((data / ".shopfloor-run.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return current.get("stage") if current.get("pid") == run.pid else None


def another_engine_reads_the_lake(plant: Plant) -> None:
    """pyarrow, reading the catalog and the Parquet files itself, sees what DuckDB sees."""
    catalog = plant.data / "lake_catalog.sqlite"
    fs = s3fs.S3FileSystem()
    hours = read_table(catalog, "marts", "fct_machine_hours", fs)
    assert hours.num_rows == plant.one("select count(*) from marts.fct_machine_hours")
    assert {"machine_id", "hour_at", "completeness"} <= set(hours.column_names)
    readings = read_table(catalog, "raw", "telemetry_readings", fs)
    assert readings.num_rows == plant.one("select count(*) from raw.telemetry_readings")
    machines = set(readings.column("machine_id").to_pylist())
    assert len(machines) == MACHINES
    # a sensor column a newer firmware added exists, null in the files written before it
    sensors = {c for c in readings.column_names if c.startswith("s_")}
    assert sensors and sensors == {
        c
        for (c,) in (
            (r,)
            for r in plant.one(
                "select list(column_name) from information_schema.columns"
                " where table_schema = 'raw' and table_name = 'telemetry_readings'"
                " and column_name like 's\\_%' escape '\\'"
            )
        )
    }


def test_a_postgres_catalog_leaves_only_caches_on_local_disk(tmp_path: Path) -> None:
    """The lake's catalog in PostgreSQL and its files in a folder (another machine's disk,
    in production object storage): the data folder holds caches only. Deleted, the next
    ingest takes dlt's state from the lake and loads nothing twice."""
    landing, data = tmp_path / "landing", tmp_path / "data"
    press = HandMachine("PRESS-7", "HP-200", {"ram_force_kn": 850.0, "oil_temp_c": 48.0})
    lathe = HandMachine("LATHE_02", "TL-9", {"spindle_rpm": 2400.0}, sample_interval_s=900)
    hours = hours_between(utc(2026, 5, 4), utc(2026, 5, 5, 12))
    files = write_hours(landing, press, hours) + write_hours(landing, lathe, hours)
    write_registry(landing, [press, lathe])
    with postgres_server() as url:
        env = {
            **os.environ,
            "SHOPFLOOR_PSEUDONYM_KEY": "k",
            "SHOPFLOOR_LAKEHOUSE": str(tmp_path / "lake"),
            "SHOPFLOOR_LAKE_CATALOG": url,
        }
        ingest = ["shopfloor", "ingest", "--data-dir", str(data), "--landing", str(landing)]
        first = subprocess.run(ingest, capture_output=True, text=True, env=env)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
        shutil.rmtree(data)
        # a firmware update adds a sensor: the lake's existing readings table gains it
        press.firmware, press.sensors["oil_level_pct"] = "7.2", 80.0
        later = hours_between(utc(2026, 5, 5, 12), utc(2026, 5, 5, 18))
        files += write_hours(landing, press, later)
        again = subprocess.run(ingest, capture_output=True, text=True, env=env)
        assert again.returncode == 0, again.stdout[-3000:]
        build_models(data, env=env)
        settings = resolve(
            {"data_dir": str(data), "lakehouse": str(tmp_path / "lake"), "lake_catalog": url}
        )
        with connect(settings, read_only=True) as con:
            loaded = con.sql(
                "select count(*), count(*) filter (status = 'loaded') from raw.landing_files"
            ).fetchone()
            hours_built = con.sql(
                "select count(*) from marts.fct_machine_hours where machine_id = 'PRESS-7'"
            ).fetchone()
            new_sensor = con.sql(
                "select count(s_oil_level_pct), count(*) filter (hour_at < ?)"
                " from (select *, date_trunc('hour', reading_at) as hour_at"
                " from raw.telemetry_readings where machine_id = 'PRESS-7')",
                params=[later[0]],
            ).fetchone()
            sensor_hours = con.sql(
                "select count(distinct hour_at) from marts.fct_machine_hour_sensors"
                " where sensor = 'oil_level_pct'"
            ).fetchone()
    assert loaded == (files, files)  # each file once, though the second ingest had no state
    assert hours_built == (len(hours) + len(later),)
    # the new column is null in the rows loaded before it existed, filled after
    assert new_sensor == (len(later), len(hours))
    assert sensor_hours == (len(later),)
    assert not list(data.rglob("*.sqlite")) and not list(data.rglob("*.duckdb"))
