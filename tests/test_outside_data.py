"""`shopfloor run` on plants the simulator never writes.

A hand-made plant (tests/landing.py): machine ids, models and sensor names unlike the
simulator's, one reading per hour, hours with no file, a machine retired and one
installed mid-history, and a machine whose files for a past day arrive three runs
late. Then the simulator's own late deliveries, and a fleet with no defects at all.
After the late files arrive, every mart must equal a full-refresh build of the same
raw data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.models import MODELS
from simulator.simulate import SimulationConfig, simulate
from tests.landing import (
    HandMachine,
    hours_between,
    utc,
    write_hours,
    write_maintenance,
    write_registry,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAY0 = utc(2026, 5, 4)
PRENSA = HandMachine(
    "PRENSA-02",
    "HIDRAULICA-40T",
    {"pressao_oleo_bar": 180.0, "temperatura_oleo_c": 55.0},
    sample_interval_s=3600,  # one reading per hour
    skip_hours={DAY0 + timedelta(hours=h) for h in (10, 11, 12)},
)
TORNO = HandMachine(
    "TORNO_7",
    "ROMI-D800",
    {"rotacao_rpm": 1500.0, "corrente_motor_a": 12.0, "vibracao_mm_s": 2.5},
    sample_interval_s=900,
    retired_on=date(2026, 5, 6),  # sold: its files stop after day 2
)
FRESA = HandMachine(
    "FRESA-11",
    "ROMI-D800",
    {"rotacao_rpm": 1200.0, "corrente_motor_a": 10.0, "vibracao_mm_s": 2.0},
    sample_interval_s=900,
    installed_on=date(2026, 5, 5),  # one commissioning file the evening before
)
SOLDA = HandMachine(
    "SOLDA-3", "Solda MIG 400", {"corrente_solda_a": 250.0, "tensao_arco_v": 28.0}, 1800
)
HAND_FLEET = [PRENSA, TORNO, FRESA, SOLDA]
LATE_DAY = 1  # SOLDA-3's second day: withheld at run 2, delivered with run 5
RUNS = 5


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "SHOPFLOOR_PSEUDONYM_KEY": "k"}
    return subprocess.run(["shopfloor", *args], capture_output=True, text=True, env=env)


def shopfloor_run(data: Path, landing: Path) -> subprocess.CompletedProcess[str]:
    result = cli("run", "--data-dir", str(data), "--landing", str(landing))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    return result


def rows(data: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def last_run(data: Path) -> dict[str, Any]:
    return dict(json.loads((data / "runs.jsonl").read_text().splitlines()[-1]))


def marts_differ_from_full_refresh(data: Path, tmp: Path) -> dict[str, int]:
    """Build a copy of the warehouse from scratch; rows that differ, per mart."""
    copy = tmp / "full_refresh"
    copy.mkdir()
    shutil.copy(data / "warehouse.duckdb", copy / "warehouse.duckdb")
    built = cli("build", "--full-refresh", "--data-dir", str(copy))
    assert built.returncode == 0, built.stdout[-4000:]
    differ: dict[str, int] = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{data / 'warehouse.duckdb'}' as hourly (read_only)")
        con.execute(f"attach '{copy / 'warehouse.duckdb'}' as rebuilt (read_only)")
        tables = [
            (schema, name)
            for schema, name in con.sql(
                "select schema_name, table_name from duckdb_tables()"
                " where database_name = 'hourly'"
                " and schema_name in ('marts', 'main') order by 1, 2"
            ).fetchall()
        ]
        assert ("marts", "fct_machine_hours") in tables
        for schema, name in tables:
            differ[f"{schema}.{name}"] = _rows_that_differ(
                con, f"hourly.{schema}.{name}", f"rebuilt.{schema}.{name}"
            )
    return differ


def _rows_that_differ(con: duckdb.DuckDBPyConnection, a: str, b: str) -> int:
    """Rows of two tables that differ, doubles compared to 1e-9 relative: an incremental
    run aggregates in another order than a full build (last-bit differences)."""
    described = con.sql(f"describe {a}").fetchall()
    keys = ", ".join(col for col, kind, *_ in described if kind != "DOUBLE")
    left = con.sql(f"select * from {a} order by {keys}").df()
    right = con.sql(f"select * from {b} order by {keys}").df()
    if len(left) != len(right):
        return abs(len(left) - len(right)) or -1
    bad = np.zeros(len(left), dtype=bool)
    for col, kind, *_ in described:
        x, y = left[col], right[col]
        if kind == "DOUBLE":
            bad |= ~np.isclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-9, equal_nan=True)
        else:
            bad |= ~((x == y) | (x.isna() & y.isna())).to_numpy(bool)
    return int(bad.sum())


@pytest.fixture(scope="module")
def hand_plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """Five hourly runs, one day of files each; SOLDA-3's second day arrives with run 5."""
    root = tmp_path_factory.mktemp("hand")
    landing, data = root / "landing", root / "data"
    write_registry(landing, HAND_FLEET)
    write_maintenance(
        landing,
        [
            (
                "OS-1",
                "PRENSA-02",
                DAY0 + timedelta(hours=14),
                DAY0 + timedelta(hours=15),
                "preventive",
            )
        ],
    )
    outputs = []
    for k in range(RUNS):
        day = hours_between(DAY0 + timedelta(days=k), DAY0 + timedelta(days=k + 1))
        write_hours(landing, PRENSA, day)
        if k < 2:
            write_hours(landing, TORNO, day)
        if k == 0:
            write_hours(landing, FRESA, [DAY0 + timedelta(hours=20)])
        else:
            write_hours(landing, FRESA, [h for h in day if h.hour >= 6 or k > 1])
        if k != LATE_DAY:
            write_hours(landing, SOLDA, day)
        if k == RUNS - 1:
            late = DAY0 + timedelta(days=LATE_DAY)
            write_hours(landing, SOLDA, hours_between(late, late + timedelta(days=1)))
        outputs.append(shopfloor_run(data, landing).stdout)
        if k == RUNS - 2:
            missing = rows(
                data,
                "select count(*), max(completeness) from marts.fct_machine_hours"
                f" where machine_id = 'SOLDA-3' and hour_at::date = '{DAY0.date() + timedelta(1)}'"
                " and is_missing_hour",
            )
            assert missing == [(24, 0.0)], "a day with no file: 24 missing hours, completeness 0"
    return landing, data, outputs


def test_every_run_succeeds_and_a_young_plant_skips_scoring(
    hand_plant: tuple[Path, Path, list[str]],
) -> None:
    _, data, outputs = hand_plant
    assert "no model yet" in outputs[0] and "0 failure(s)" in outputs[0]
    summary = last_run(data)
    assert summary["status"] == "succeeded" and summary["scoring_skipped"]
    assert summary["models_failed"] == 0 and summary["tests_failed"] == 0
    # caught up, the retired machine is not silent: nothing to warn about
    assert summary["tests_warned"] == 0, outputs[-1][-3000:]
    assert summary["silent_machines"] == []
    # no failure and no model, yet every machine has a health score from its first days
    assert rows(data, "select count(*) from marts.fct_maintenance_events where is_failure") == [
        (0,)
    ]
    health = rows(
        data,
        "select machine_id, health_score, risk from marts.fct_machine_risk order by 1",
    )
    assert [m for m, *_ in health] == sorted(m.machine_id for m in HAND_FLEET)
    assert all(score is not None and score > 0 and risk is None for _, score, risk in health)


def test_late_day_reaches_every_mart_as_a_full_refresh_would(
    hand_plant: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    _, data, _ = hand_plant
    late = DAY0.date() + timedelta(days=LATE_DAY)
    assert rows(
        data,
        "select count(*), min(completeness), sum(readings_received)::int"
        " from marts.fct_machine_hours"
        f" where machine_id = 'SOLDA-3' and hour_at::date = '{late}' and not is_missing_hour",
    ) == [(24, 1.0, 48)]
    assert rows(
        data,
        "select count(distinct hour_at) from marts.fct_machine_hour_sensor_features"
        f" where machine_id = 'SOLDA-3' and hour_at::date = '{late}'",
    ) == [(24,)]
    differ = marts_differ_from_full_refresh(data, tmp_path)
    assert differ and all(n == 0 for n in differ.values()), {k: n for k, n in differ.items() if n}


def test_one_reading_per_hour_and_hours_with_no_file(
    hand_plant: tuple[Path, Path, list[str]],
) -> None:
    _, data, _ = hand_plant
    by_kind = dict(
        (missing, (n, completeness, expected))
        for missing, n, completeness, expected in rows(
            data,
            "select is_missing_hour, count(*), avg(completeness), max(readings_expected)"
            " from marts.fct_machine_hours where machine_id = 'PRENSA-02' group by 1",
        )
    )
    assert by_kind[True] == (3, 0.0, 0)
    assert by_kind[False] == (RUNS * 24 - 3, 1.0, 1)
    assert rows(
        data,
        "select hours_missing, files_received, round(completeness, 4)"
        " from marts.fct_data_quality"
        f" where machine_id = 'PRENSA-02' and data_date = '{DAY0.date()}'",
    ) == [(3, 21, round(21 / 24, 4))]
    # no data, no label: a missing hour is never a negative example
    assert rows(
        data,
        "select count(*) from marts.fct_machine_hour_features"
        " where is_missing_hour and will_fail_within_horizon is not null",
    ) == [(0,)]
    status = cli("status", "--data-dir", str(data))
    assert status.returncode == 0
    day_line = next(line for line in status.stdout.splitlines() if str(DAY0.date()) in line)
    cells = day_line.split()  # the table's columns are separated by spaces
    # date, expected, received, partial, quarantined, hours missing, rejected, completeness
    assert cells[5] == "3" and float(cells[7]) < 1.0, day_line


def test_machine_lifecycle_from_the_registry(hand_plant: tuple[Path, Path, list[str]]) -> None:
    _, data, _ = hand_plant
    retired = rows(
        data,
        "select max(hour_at), count(*) filter (where is_missing_hour)"
        " from marts.fct_machine_hours where machine_id = 'TORNO_7'",
    )
    assert retired == [(DAY0 + timedelta(hours=47), 0)], "no hours after retirement"
    assert rows(
        data,
        "select is_out_of_service, is_silent from marts.fct_machine_last_seen"
        " where machine_id = 'TORNO_7'",
    ) == [(True, False)]
    assert rows(
        data,
        "select retired_on, is_in_service from marts.dim_machines where machine_id = 'TORNO_7'",
    ) == [(TORNO.retired_on, False)]
    # installed on day 2: its commissioning file of day 1 stays, no missing hour before day 2
    fresa = rows(
        data,
        "select hour_at, is_missing_hour from marts.fct_machine_hours"
        f" where machine_id = 'FRESA-11' and hour_at < '{DAY0 + timedelta(days=1)}'",
    )
    assert fresa == [(DAY0 + timedelta(hours=20), False)]
    assert rows(
        data,
        "select count(*) from marts.fct_machine_hours where machine_id = 'FRESA-11'"
        " and is_missing_hour",
    ) == [(6,)], "silent after installation (day 2, 00:00-05:00): missing"


def test_models_and_sensors_come_from_the_plant(
    hand_plant: tuple[Path, Path, list[str]],
) -> None:
    _, data, _ = hand_plant
    assert {m for (m,) in rows(data, "select machine_model from marts.dim_machines")} == {
        m.model for m in HAND_FLEET
    }
    sensors = {
        s for (s,) in rows(data, "select distinct sensor from marts.fct_machine_hour_sensors")
    }
    assert sensors == {s for m in HAND_FLEET for s in m.sensors}


def test_no_dbt_test_names_the_simulators_fleet() -> None:
    """Fleet facts come from the registry: no list in the dbt project names the simulator's
    machine models, sensors or machine ids."""
    names = {m.name for m in MODELS} | {s.name for m in MODELS for s in m.sensors}
    project = Path(__file__).resolve().parents[1]
    found = []
    for path in [
        *(project / "dbt_project").rglob("*.yml"),
        *(project / "dbt_project").rglob("*.sql"),
    ]:
        text = path.read_text()
        found += [(path.name, n) for n in names if re.search(rf"\b{re.escape(n)}\b", text)]
        found += [(path.name, m) for m in re.findall(r"\bM0\d\d\b", text)]
    assert found == []


def test_simulated_late_deliveries_reach_the_marts(tmp_path: Path) -> None:
    """The simulator's uplink outages: files arrive days late, together, between runs."""
    root, data = tmp_path / "fleet", tmp_path / "data"

    def fleet(hours: int) -> None:
        simulate(
            SimulationConfig(
                out=str(root),
                fleet=FleetConfig(machines=3, hours=hours, seed=11),
                sample_interval_s=600,
                defects=DefectRates.profile("realistic"),
                late_share=0.4,
                skip_existing=True,
                workers=1,
            )
        )

    for hours in (48, 72, 96):
        fleet(hours)
        shopfloor_run(data, root / "landing")
    arrived = [
        json.loads(line)
        for line in (root / "ground_truth/defects.jsonl").read_text().splitlines()
        if '"late_delivery"' in line and "delivered_at" in line
    ]
    # files that arrived after the run that built their hour
    assert any(
        datetime.fromisoformat(d["delivered_at"]) > FleetConfig().start + timedelta(hours=48)
        and datetime.fromisoformat(d["hour"].replace("Z", "+00:00"))
        < FleetConfig().start + timedelta(hours=47)
        for d in arrived
    ), "the seed must produce a file that misses its run"
    differ = marts_differ_from_full_refresh(data, tmp_path)
    assert all(n == 0 for n in differ.values()), {k: n for k, n in differ.items() if n}


def test_a_clean_first_batch_builds(tmp_path: Path) -> None:
    """No defect at all: dlt creates no rejects table and no reason column by itself."""
    simulate(
        SimulationConfig(
            out=str(tmp_path / "fleet"),
            fleet=FleetConfig(machines=2, hours=6),
            sample_interval_s=60,
            defects=DefectRates.profile("none"),
            workers=1,
        )
    )
    result = shopfloor_run(tmp_path / "data", tmp_path / "fleet" / "landing")
    assert "succeeded" in result.stdout
    assert rows(tmp_path / "data", "select count(*) from marts.fct_machine_hours") == [(12,)]


def test_an_empty_landing_area_and_only_quarantined_files_build(tmp_path: Path) -> None:
    landing, data = tmp_path / "landing", tmp_path / "data"
    (landing / "telemetry").mkdir(parents=True)
    shopfloor_run(data, landing)
    bad = landing / "telemetry" / "X1" / "2026" / "05" / "04" / "X1_20260504T00.txt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a machine export\n")
    os.utime(bad, (DAY0.timestamp(), DAY0.timestamp()))
    shopfloor_run(data, landing)
    assert rows(data, "select status from raw.landing_files") == [("quarantined",)]
    assert rows(data, "select count(*) from marts.fct_machine_hour_sensors") == [(0,)]


def test_the_run_summary_counts_a_model_that_fails(tmp_path: Path) -> None:
    """A model error is counted as such, not hidden behind 'tests 38 / 0 / 0'."""
    project = tmp_path / "project"
    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "dbt_project", project / "dbt_project")
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(root / name, project / name)
    broken = project / "dbt_project" / "models" / "broken" / "broken_model.sql"
    broken.parent.mkdir()
    broken.write_text(
        "{{ config(materialized='table') }}\nselect error('deliberately broken') as reason\n"
    )
    landing = tmp_path / "landing"
    write_registry(landing, [PRENSA])
    write_hours(landing, PRENSA, hours_between(DAY0, DAY0 + timedelta(hours=3)))
    env = {**os.environ, "SHOPFLOOR_PSEUDONYM_KEY": "k", "SHOPFLOOR_PROJECT_DIR": str(project)}
    data = tmp_path / "data"
    result = subprocess.run(
        ["shopfloor", "run", "--data-dir", str(data), "--landing", str(landing)],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stdout[-3000:]
    summary = last_run(data)
    assert (summary["status"], summary["failed_stage"]) == ("failed", "build")
    assert summary["models_failed"] == 1 and summary["models_built"] > 10
    assert summary["tests_failed"] == 0 and summary["tests_passed"] > 10
    row = next(line for line in result.stdout.splitlines() if "models built" in line)
    assert re.search(r"\d+ / 1 / 0", row), row
