"""BI reads the serving layer while the hourly pipeline runs: neither blocks the other.

A real reader process holds one read-only connection on the serving catalog and queries
it in a loop for the whole of two hourly runs; a process holding the warehouse file
makes a run exit 75 with one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from shopfloor.simulator.defects import DefectRates
from shopfloor.simulator.fleet import TECHNICIANS, FleetConfig
from shopfloor.simulator.simulate import SimulationConfig, simulate

MACHINES = 4
HOURS = 3 * 24

READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import duckdb

    catalog, out, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    con = duckdb.connect(catalog, read_only=True)  # one connection for the whole test
    answers, failures = [], []
    while not stop.exists():
        try:
            answers.append([str(v) for v in con.sql(
                "select (select max(hour_at) from marts.fct_machine_hours),"
                " (select max(hour_at) from marts.fct_machine_hour_features),"
                " (select count(*) from marts.fct_machine_hours)"
            ).fetchone()])
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)
    out.write_text(json.dumps({"answers": answers, "failures": failures}))
    """
)


def simulate_hours(root: Path, hours: int) -> None:
    simulate(
        SimulationConfig(
            out=str(root),
            fleet=FleetConfig(machines=MACHINES, hours=hours, seed=9, wear_scale=1.5),
            sample_interval_s=900,
            defects=DefectRates.profile("realistic"),
            workers=2,
            skip_existing=True,
        )
    )


def shopfloor_run(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    folders = ["--data-dir", str(root / "data"), "--landing", str(root / "landing")]
    return subprocess.run(
        ["shopfloor", "run", *folders, *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "SHOPFLOOR_PSEUDONYM_KEY": "k"},
    )


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serving")
    simulate_hours(root, HOURS)
    first = shopfloor_run(root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    return root


def test_a_reader_during_two_runs_never_fails_and_sees_the_new_hours(
    plant: Path, tmp_path: Path
) -> None:
    catalog = plant / "data" / "serving" / "bi.duckdb"
    out, stop = tmp_path / "reader.json", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(catalog), str(out), str(stop)])
    try:
        time.sleep(1.0)
        runs = []
        for extra_hours in (1, 2):
            simulate_hours(plant, HOURS + extra_hours)
            runs.append(shopfloor_run(plant))
        time.sleep(1.0)
    finally:
        stop.touch()
        reader.wait(timeout=120)
    for run in runs:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["failures"] == []
    answers = result["answers"]
    assert len(answers) > 20, "the reader did not query during the runs"
    # one query, one published version: the two marts agree on their latest hour
    assert all(hours == features for hours, features, _ in answers)
    with duckdb.connect(str(plant / "data" / "warehouse.duckdb"), read_only=True) as con:
        newest = con.sql("select max(hour_at) from marts.fct_machine_hours").fetchone()
    assert newest is not None
    seen = {hours for hours, *_ in answers}
    assert answers[-1][0] == str(newest[0]) and len(seen) >= 3  # the new hours, no reconnect


def test_the_serving_layer_holds_the_marts_only(plant: Path) -> None:
    serving = plant / "data" / "serving"
    with duckdb.connect(str(serving / "bi.duckdb"), read_only=True) as con:
        schemas = {s for (s,) in con.sql("select schema_name from duckdb_schemas()").fetchall()}
        views = con.sql(
            "select view_name from duckdb_views() where schema_name = 'marts'"
        ).fetchall()
        columns = con.sql(
            "select table_name, column_name, data_type from duckdb_columns()"
            " where schema_name = 'marts'"
        ).fetchall()
        texts = [
            value
            for table, column, kind in columns
            if kind == "VARCHAR"
            for (value,) in con.sql(f'select distinct "{column}" from marts.{table}').fetchall()
        ]
    assert schemas & {"raw", "ml", "staging", "intermediate"} == set()
    assert {"fct_machine_hours", "fct_maintenance_events", "fct_machine_risk"} <= {
        v for (v,) in views
    }
    assert not [c for _, c, _ in columns if "technician" in c]
    names = {part for name in TECHNICIANS for part in name.split()}
    assert not [t for t in texts if t and any(n in t for n in names)]
    # timestamps keep their time zone for BI
    assert ("fct_machine_hours", "hour_at", "TIMESTAMP WITH TIME ZONE") in columns


def test_a_process_holding_the_warehouse_makes_the_run_exit_75(plant: Path) -> None:
    warehouse = plant / "data" / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(warehouse)!r}, read_only=True)\n"
            "print('open', flush=True)\n"
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = shopfloor_run(plant, "--wait", "2")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75, result.stdout[-3000:] + result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert f"(PID {holder.pid})" in lines[0] and "bi.duckdb" in lines[0]
    # and once it is closed, the next run goes ahead
    again = shopfloor_run(plant)
    assert again.returncode == 0, again.stdout[-3000:]
