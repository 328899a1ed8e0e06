"""BI reads the serving layer while the hourly pipeline runs: neither blocks the other.

A real reader process holds one connection on each serving target -- the DuckDB catalog
(read-only) and a real PostgreSQL server (as the BI role) -- and queries both in a loop
for the whole of two hourly runs; a process holding the warehouse file makes a run exit
75 with one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from simulator.fleet import TECHNICIANS
from tests.fleets import SHAPES, Fleets
from tests.pg import postgres_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a fleet of its own, `shopfloor run`s

SHAPE = SHAPES["serving"]
MACHINES, HOURS = SHAPE.machines, SHAPE.hours

READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import duckdb

    import psycopg

    catalog, pg_url, out, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    query = (
        "select (select max(hour_at) from marts.fct_machine_hours),"
        " (select max(hour_at) from marts.fct_machine_hour_features),"
        " (select count(*) from marts.fct_machine_hours)"
    )
    # one connection per target for the whole test
    targets = {
        "duckdb": duckdb.connect(catalog, read_only=True),
        "postgres": psycopg.connect(pg_url, autocommit=True),
    }
    answers, failures = {name: [] for name in targets}, []
    while not stop.exists():
        for name, con in targets.items():
            try:
                row = con.execute(query).fetchone()
                answers[name].append([v.isoformat() if hasattr(v, "isoformat") else v
                                      for v in row])
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
        time.sleep(0.05)
    out.write_text(json.dumps({"answers": answers, "failures": failures}))
    """
)


def simulate_hours(root: Path, hours: int) -> None:
    SHAPE.extend(root, hours)


def shopfloor_run(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    folders = ["--data-dir", str(root / "data"), "--landing", str(root / "landing")]
    return subprocess.run(
        ["shopfloor", "run", *folders, *extra],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "COLUMNS": "200",
            "SHOPFLOOR_PSEUDONYM_KEY": "k",
            "SHOPFLOOR_BI_POSTGRES_URL": (root / "pg_url").read_text(),
        },
    )


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory, postgres: str, fleets: Fleets) -> Path:
    root = fleets.copy("serving", tmp_path_factory.mktemp("serving"))
    (root / "pg_url").write_text(postgres)
    first = shopfloor_run(root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    return root


def bi_url(admin_url: str) -> str:
    return admin_url.replace("postgres@", "shopfloor_bi@", 1)


def test_a_reader_during_two_runs_never_fails_and_sees_the_new_hours(
    plant: Path, postgres: str, tmp_path: Path
) -> None:
    catalog = plant / "data" / "serving" / "bi.duckdb"
    out, stop = tmp_path / "reader.json", tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(catalog), bi_url(postgres), str(out), str(stop)]
    )
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
    with duckdb.connect(str(plant / "data" / "warehouse.duckdb"), read_only=True) as con:
        newest = con.sql("select max(hour_at) from marts.fct_machine_hours").fetchone()
    assert newest is not None
    for target, answers in result["answers"].items():
        assert len(answers) > 20, f"the {target} reader did not query during the runs"
        # one query, one published state: the two marts agree on their latest hour
        assert all(hours == features for hours, features, _ in answers), target
        seen = {datetime.fromisoformat(hours) for hours, *_ in answers}
        # the new hours, without reconnecting
        assert max(seen) == newest[0] and len(seen) >= 3, (target, seen)
        assert datetime.fromisoformat(answers[-1][0]) == newest[0], target


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
        # status reads the serving layer, not the warehouse
        status = subprocess.run(
            ["shopfloor", "status", "--data-dir", str(plant / "data")],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75, result.stdout[-3000:] + result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert f"(PID {holder.pid})" in lines[0] and "bi.duckdb" in lines[0]
    assert status.returncode == 0 and "published to the serving layer" in status.stdout
    # and once it is closed, the next run goes ahead
    again = shopfloor_run(plant)
    assert again.returncode == 0, again.stdout[-3000:]


def test_postgres_gets_the_marts_for_a_read_only_role_with_docs_and_keys(
    plant: Path, postgres: str
) -> None:
    import psycopg

    with duckdb.connect(str(plant / "data" / "warehouse.duckdb"), read_only=True) as con:
        marts = {
            t: con.sql(f"select count(*) from marts.{t}").fetchone()[0]  # type: ignore[index]
            for (t,) in con.sql(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
    with psycopg.connect(bi_url(postgres), autocommit=True) as bi:
        for mart, rows in marts.items():
            assert bi.execute(f"select count(*) from marts.{mart}").fetchone() == (rows,), mart
        for forbidden in (
            "select * from shopfloor_publish.days",
            "insert into marts.dim_machines (machine_id) values ('x')",
            "create table marts.mine (x int)",
            "create table public.mine (x int)",
            "delete from marts.fct_machine_hours",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(forbidden)
        comment = bi.execute(
            "select obj_description('marts.fct_machine_hours'::regclass),"
            " col_description('marts.fct_machine_hours'::regclass, 2)"
        ).fetchone()
        keys = bi.execute(
            "select conrelid::regclass::text, contype from pg_constraint"
            " where connamespace = 'marts'::regnamespace"
        ).fetchall()
        kind = bi.execute(
            "select data_type from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'fct_machine_hours'"
            " and column_name = 'hour_at'"
        ).fetchone()
        technician = bi.execute(
            "select count(*) from information_schema.columns"
            " where table_schema = 'marts' and column_name like '%technician%'"
        ).fetchone()
        texts = [
            value
            for table, column in bi.execute(
                "select table_name, column_name from information_schema.columns"
                " where table_schema = 'marts' and data_type = 'text'"
            ).fetchall()
            for (value,) in bi.execute(f'select distinct "{column}" from marts.{table}').fetchall()
        ]
    # publishing again with nothing new rewrites no day of the growing marts
    from shopfloor.serving.postgres import publish_postgres

    with duckdb.connect(str(plant / "data" / "warehouse.duckdb")) as con:
        again = publish_postgres(
            con, postgres, manifest=plant / "data" / "dbt_target" / "manifest.json"
        )
    growing = sum(rows for mart, rows in marts.items() if mart.startswith("fct_machine_hour"))
    assert again.days_written == 0 and again.rows_copied < growing / 10, again
    assert comment is not None and all(comment), comment
    assert ("marts.fct_machine_hours", "p") in keys and ("marts.fct_machine_hours", "f") in keys
    assert ("marts.dim_machines", "p") in keys
    assert kind == ("timestamp with time zone",) and technician == (0,)
    names = {part for name in TECHNICIANS for part in name.split()}
    assert texts and not [t for t in texts if t and any(n in t for n in names)]


def test_a_copied_data_folder_publishes_and_reads_its_own_files(
    plant: Path, tmp_path: Path
) -> None:
    """The catalog's views hold absolute paths: a copy's next publish points them at the copy.
    A day the copy's last version lost (removed by hand) is written again, not left out."""
    copy = tmp_path / "data"
    shutil.copytree(plant / "data", copy)
    from shopfloor.serving.snapshot import VERSION_KEY, newest_version

    version = f"{VERSION_KEY}={newest_version(copy / 'serving')}"
    days = sorted((copy / "serving" / "marts" / "fct_machine_hours" / version).glob("day=*"))
    shutil.rmtree(days[-1])
    result = subprocess.run(
        ["shopfloor", "publish", "--data-dir", str(copy)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with duckdb.connect(str(copy / "serving" / "bi.duckdb"), read_only=True) as con:
        sqls = [
            q
            for (q,) in con.sql(
                "select sql from duckdb_views() where schema_name = 'marts'"
            ).fetchall()
        ]
        rows = con.sql("select count(*) from marts.fct_machine_hours").fetchone()
    with duckdb.connect(str(copy / "warehouse.duckdb"), read_only=True) as con:
        expected = con.sql("select count(*) from marts.fct_machine_hours").fetchone()
    assert sqls and all(str(copy) in q for q in sqls)
    assert rows is not None and rows[0] > 0 and rows == expected


def test_publish_works_for_the_owner_a_dba_hands_out(plant: Path, postgres: str) -> None:
    """The database's owner is a role with CREATEROLE and no superuser (what a DBA hands
    out): it publishes, creates the read-only role, and that role reads the marts only."""
    import psycopg

    from shopfloor.serving.postgres import publish_postgres

    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute("create role plant_owner login createrole")
        admin.execute("create database plant_bi owner plant_owner")
    owner = postgres.replace("postgres@", "plant_owner@", 1).rsplit("/", 1)[0] + "/plant_bi"
    with duckdb.connect(str(plant / "data" / "warehouse.duckdb"), read_only=True) as con:
        machines = con.sql("select count(*) from marts.dim_machines").fetchone()
        for _ in range(2):  # creating the role, then finding it as it should be
            publish_postgres(
                con,
                owner,
                manifest=plant / "data" / "dbt_target" / "manifest.json",
                role="plant_reader",
                role_password="reader-secret",
            )
    reader = owner.replace("plant_owner@", "plant_reader@", 1)
    with psycopg.connect(reader, autocommit=True) as bi:
        assert bi.execute("select count(*) from marts.dim_machines").fetchone() == machines
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bi.execute("delete from marts.dim_machines")
