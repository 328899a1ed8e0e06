"""`shopfloor run` end to end, as a scheduler runs it: real files, real DuckDB, real dbt,
a real model fit; then one more hour of files, backed up while it runs; the data folder
lost and restored; a run killed mid-way; concurrent runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from shopfloor.core.settings import resolve
from shopfloor.operations.capacity import measure
from tests.fleets import SHAPES, Fleets

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a fleet of its own, `shopfloor run`s

SHAPE = SHAPES["hourly"]
MACHINES, HOURS = SHAPE.machines, SHAPE.hours


def simulate_hours(root: Path, hours: int) -> None:
    SHAPE.extend(root, hours)


def run_cmd(data: Path, landing: Path, *extra: str) -> list[str]:
    return ["shopfloor", "run", "--data-dir", str(data), "--landing", str(landing), *extra]


def shopfloor_run(data: Path, landing: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "SHOPFLOOR_PSEUDONYM_KEY": "k"}
    return subprocess.run(run_cmd(data, landing, *extra), capture_output=True, text=True, env=env)


def one(data: Path, sql: str, params: list[Any] | None = None) -> Any:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def duplicates(data: Path) -> dict[str, int]:
    """Rows beyond the first per key, in raw, marts and scores: all must be 0."""
    return {
        "raw readings": one(
            data,
            "select count(*) - count(distinct (source_file_sha256, source_line))"
            " from raw.telemetry_readings",
        ),
        "machine hours": one(
            data,
            "select count(*) - count(distinct (machine_id, hour_at)) from marts.fct_machine_hours",
        ),
        "scores": one(
            data,
            "select count(*) - count(distinct (machine_id, hour_at, model_version))"
            " from ml.machine_hour_scores",
        ),
    }


TECHNICIAN_KEYS = (
    "select count(distinct technician_key), sum(distinct hash(technician_key))"
    " from marts.fct_maintenance_events"
)
HOURS_CHECKSUM = (
    "select count(*), sum(hash(machine_id, hour_at, completeness)) from marts.fct_machine_hours"
)


def last_run(data: Path) -> dict[str, Any]:
    lines = (data / "runs.jsonl").read_text().splitlines()
    return json.loads(lines[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory, fleets: Fleets) -> tuple[Path, Path]:
    # a young plant first: two days, no failure yet
    root = fleets.copy("hourly", tmp_path_factory.mktemp("plant"), hours=48)
    return root / "landing", root / "data"


def test_a_plant_run_hour_after_hour(plant: tuple[Path, Path]) -> None:
    landing, data = plant
    young = shopfloor_run(data, landing)
    assert young.returncode == 0, young.stdout[-4000:] + young.stderr[-2000:]
    assert "no model yet" in young.stdout and not last_run(data)["trained"]
    # the plant grows: the first run with enough history trains by itself
    simulate_hours(landing.parent, HOURS)
    first = shopfloor_run(data, landing)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert "succeeded" in first.stdout and "trained in this run" in first.stdout
    run1 = last_run(data)
    assert run1["trained"] and run1["tests_failed"] == 0 and run1["tests_passed"] > 50
    hours = one(data, "select count(*) from marts.fct_machine_hour_features")
    assert one(data, "select count(*) from ml.machine_hour_scores") == hours
    assert (
        one(data, "select count(*) from marts.fct_machine_risk where risk is not null") == MACHINES
    )

    # the machines write one more hour; a backup asked for during the run waits for it
    newest = one(data, "select max(hour_at) from marts.fct_machine_hours")
    readings = one(data, "select count(*) from raw.telemetry_readings")
    simulate_hours(landing.parent, HOURS + 1)
    env = {**os.environ, "COLUMNS": "160", "SHOPFLOOR_PSEUDONYM_KEY": "k"}
    second = subprocess.Popen(run_cmd(data, landing), stdout=subprocess.PIPE, text=True, env=env)
    _wait_for_stage(data, {"ingest", "build", "score", "risk"}, second)
    backups = data.parent / "backups"
    backup = subprocess.run(
        ["shopfloor", "backup", str(backups), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=env,
    )
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-4000:]
    assert backup.returncode == 0 and "Backed up" in backup.stdout, backup.stdout + backup.stderr
    run2 = last_run(data)
    assert not run2["trained"] and 1 <= run2["files_new"] <= MACHINES + 2
    new_hour = one(data, "select max(hour_at) from marts.fct_machine_hours")
    assert new_hour > newest
    new_rows = one(
        data, "select count(*) from raw.telemetry_readings where reading_at >= ?", [new_hour]
    )
    assert one(data, "select count(*) from raw.telemetry_readings") - readings >= new_rows > 0
    scored_new = one(
        data,
        "select count(distinct machine_id) from ml.machine_hour_scores where hour_at = ?",
        [new_hour],
    )
    assert scored_new >= 1
    assert run2["hours_scored"] >= scored_new
    assert duplicates(data) == {"raw readings": 0, "machine hours": 0, "scores": 0}

    # the data folder is lost; the backup taken during that run brings back all of it
    before = one(data, HOURS_CHECKSUM)
    scores_before = one(data, "select count(*) from ml.machine_hour_scores")
    readings = one(data, "select count(*) from raw.telemetry_readings")
    technicians = one(data, TECHNICIAN_KEYS)
    assert technicians[0] > 0
    shutil.rmtree(data)
    restored = subprocess.run(
        ["shopfloor", "restore", str(backups), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert restored.returncode == 0 and "Restored" in restored.stdout, restored.stdout
    assert one(data, HOURS_CHECKSUM) == before
    assert one(data, "select count(*) from raw.telemetry_readings") == readings

    # nothing new, and the run is killed -9 in the middle of its dbt build: the next run
    # says so, resumes, and nothing has changed (the restored folder holds everything)
    killed = subprocess.Popen(run_cmd(data, landing), stdout=subprocess.DEVNULL, env=env)
    _wait_for_stage(data, {"build"}, killed)
    time.sleep(2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    third = shopfloor_run(data, landing)
    assert third.returncode == 0, third.stdout[-4000:]
    assert "did not finish" in third.stdout
    run3 = last_run(data)
    assert run3["files_new"] == 0 and run3["hours_scored"] == 0
    assert one(data, HOURS_CHECKSUM) == before
    assert one(data, "select count(*) from ml.machine_hour_scores") == scores_before
    assert one(data, "select count(*) from raw.telemetry_readings") == readings
    assert one(data, TECHNICIAN_KEYS) == technicians
    assert duplicates(data) == {"raw readings": 0, "machine hours": 0, "scores": 0}

    # the model trained two runs ago still gets its report, on the hours as they are now
    report = subprocess.run(
        ["shopfloor", "report", "--data-dir", str(data), "--model-version", run1["model_version"]],
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    assert (data / "reports" / run1["model_version"] / "report.md").exists()

    status = subprocess.run(
        ["shopfloor", "status", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert status.returncode == 0
    assert "Last runs" in status.stdout and "Current top risks" in status.stdout
    assert status.stdout.count("succeeded") >= 3

    # the next hour brings nothing: no dbt work, nothing published again, same marts
    serving = (data / "serving" / "CURRENT").read_text()
    idle = shopfloor_run(data, landing)
    assert idle.returncode == 0, idle.stdout[-4000:]
    assert "nothing new since the last build" in idle.stdout
    run4 = last_run(data)
    assert run4["unchanged"] == ["build", "risk", "publish"] and run4["tests_passed"] == 0
    assert (data / "serving" / "CURRENT").read_text() == serving
    assert one(data, HOURS_CHECKSUM) == before

    # an analytics engineer edits a model: the next run builds again
    repository, project = Path(__file__).parents[1], data.parent / "project"
    shutil.copytree(repository / "dbt_project", project / "dbt_project")
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(repository / name, project / name)
    model = project / "dbt_project/models/marts/fct_machine_hours.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    edited = subprocess.run(
        run_cmd(data, landing),
        capture_output=True,
        text=True,
        env=env | {"SHOPFLOOR_PROJECT_DIR": str(project)},
    )
    assert edited.returncode == 0, edited.stdout[-4000:]
    run5 = last_run(data)
    assert run5["unchanged"] == [] and run5["models_built"] > 0 and run5["tests_passed"] > 0
    assert one(data, HOURS_CHECKSUM) == before

    # the same plant's history goes on: runs side by side, then its capacity
    concurrent_runs(landing, data)
    capacity_measures_this_plant(landing, data)


def concurrent_runs(landing: Path, data: Path) -> None:
    simulate_hours(landing.parent, HOURS + 2)
    env = {**os.environ, "COLUMNS": "160", "SHOPFLOOR_PSEUDONYM_KEY": "k"}
    # while one runs, a second exits 75 with a clear message, and a third with --wait
    # queues behind it; both that one and the first succeed
    a = subprocess.Popen(run_cmd(data, landing), stdout=subprocess.PIPE, text=True, env=env)
    _wait_for_stage(data, {"ingest", "build", "score", "risk"}, a)
    b = subprocess.run(run_cmd(data, landing), capture_output=True, text=True, env=env)
    assert a.poll() is None, "the first run ended before the second was refused"
    c = subprocess.run(
        run_cmd(data, landing, "--wait", "600"), capture_output=True, text=True, env=env
    )
    out_a, _ = a.communicate(timeout=600)
    assert a.returncode == 0, out_a[-3000:]
    assert b.returncode == 75, b.stdout[-2000:]
    assert "another shopfloor run is in progress" in b.stdout
    assert c.returncode == 0, c.stdout[-3000:]
    assert last_run(data)["files_new"] == 0  # the waiting run found the first run's work done

    newest = one(data, "select max(hour_at) from marts.fct_machine_hours")
    assert (
        one(
            data,
            "select count(*) from ml.machine_hour_scores where hour_at = ?",
            [newest],
        )
        >= 1
    )
    assert duplicates(data) == {"raw readings": 0, "machine hours": 0, "scores": 0}


def capacity_measures_this_plant(landing: Path, data: Path) -> None:
    cli = subprocess.run(
        ["shopfloor", "capacity", "--data-dir", str(data), "--machines", "15"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-2000:]
    assert "15 machines, 5 y GB" in cli.stdout and "SLA headroom" in cli.stdout
    assert "last restore" in cli.stdout and "restore after 5 y" in cli.stdout  # restored above
    assert "Monthly cost" in cli.stdout and "Reference:" in cli.stdout
    # the figures name the rate of the files they come from; the rebuild at the plant's
    # real rate comes from the 1 Hz history benchmark, never from these files
    assert f"files at one reading every {SHAPE.sample_interval_s} s" in cli.stdout
    assert "Rebuild from the landing area at 1 Hz" in cli.stdout
    report = data / "reports" / "capacity"
    assert {"capacity.md", "storage.png", "run_time.png"} <= {p.name for p in report.iterdir()}

    measured = measure(resolve({"data_dir": str(data), "landing": str(landing)}))
    layers = {layer.name: layer.bytes for layer in measured.layers}
    landed = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    assert layers["machine files (landing)"] == pytest.approx(landed, rel=0.05)
    warehouse = (data / "warehouse.duckdb").stat().st_size
    in_warehouse = [v for k, v in layers.items() if k.startswith("warehouse")]
    assert sum(in_warehouse) == pytest.approx(warehouse, rel=0.05)
    assert layers["warehouse: raw"] > 0 and layers["warehouse: marts"] > 0
    assert measured.machines == MACHINES
    assert measured.machine_days == pytest.approx(
        one(data, "select count(*) from marts.fct_machine_hours") / 24, rel=0.05
    )
    readings = one(data, "select count(*) from raw.telemetry_readings")
    assert measured.rows["raw.telemetry_readings"] == readings
    assert measured.hourly_runs >= 2 and measured.peak_rss_mb and measured.peak_rss_mb > 100
    # a planned fleet scales what grows with machines, and only that
    now, planned = measured.bytes_at(MACHINES, 1), measured.bytes_at(15, 1)
    for layer in measured.layers:
        factor = 15 / MACHINES if layer.grows else 1.0
        assert planned[layer.name] == pytest.approx(now[layer.name] * factor), layer.name
    assert measured.run_seconds_at(15) > measured.run_seconds_at(MACHINES) > 0


def _wait_for_stage(data: Path, stages: set[str], proc: subprocess.Popen[Any]) -> None:
    state = data / ".shopfloor-run.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before reaching the stage"
        try:
            current = json.loads(state.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            current = {}
        if current.get("pid") == proc.pid and current.get("stage") in stages:
            return
        time.sleep(0.05)
    raise AssertionError(f"run never reached {stages}")
