"""dbt build on a simulated fleet with every defect class: real DuckDB file, real
ingestion, real dbt (tests, contracts, unit tests) through the CLI's runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion.pipeline import IngestConfig, run_ingest
from tests.fleets import SHAPES, Fleets


def shopfloor(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as an operator runs it (dbt keeps DuckDB open)."""
    return subprocess.run(
        ["shopfloor", *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}
    )


def query(data: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def rebuild(data: Path, select: str, exclude: str) -> None:
    """`shopfloor build --full-refresh` of some nodes of the warehouse in `data`."""
    result = shopfloor(
        "build", "--data-dir", str(data), "--full-refresh", "--select", select, "--exclude", exclude
    )
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, fleets: Fleets) -> tuple[Path, Path]:
    os.environ["SHOPFLOOR_PSEUDONYM_KEY"] = "k"
    fleet = fleets.copy("stress", tmp_path_factory.mktemp("fleet"))
    data = tmp_path_factory.mktemp("data")
    assert (
        run_ingest(IngestConfig(landing=str(fleet / "landing"), data_dir=str(data))).status
        == "succeeded"
    )
    result = shopfloor("build", "--data-dir", str(data))
    assert result.returncode == 0, result.stdout[-3000:]
    return fleet, data


def test_build_passes_with_every_defect_class(built: tuple[Path, Path]) -> None:
    fleet, data = built
    classes = {
        json.loads(line)["defect"]
        for line in (fleet / "ground_truth/defects.jsonl").read_text().splitlines()
    }
    assert len(classes) >= 14
    tables = {
        t
        for (t,) in query(
            data, "select table_name from information_schema.tables where table_schema = 'marts'"
        )
    }
    assert {
        "fct_machine_hours",
        "fct_machine_hour_sensors",
        "fct_machine_hour_features",
        "fct_machine_hour_sensor_features",
        "fct_maintenance_events",
        "fct_data_quality",
        "dim_machines",
        "fct_machine_last_seen",
    } <= tables


def test_new_sensor_column_reaches_the_marts_without_sql(built: tuple[Path, Path]) -> None:
    fleet, data = built
    added = [
        json.loads(line)
        for line in (fleet / "ground_truth/defects.jsonl").read_text().splitlines()
        if '"firmware_new_column"' in line
    ]
    assert added, "the stress fleet updates a firmware"
    for d in added:
        for table in ("fct_machine_hour_sensors", "fct_machine_hour_sensor_features"):
            rows = query(
                data,
                f"select min(hour_at) from marts.{table} where machine_id = "
                f"'{d['machine_id']}' and sensor = '{d['column']}'",
            )
            assert rows[0][0] is not None, (table, d)
            assert rows[0][0].isoformat().replace("+00:00", "Z") >= d["hour"]


def test_missing_hours_are_rows_and_quality_reconciles(built: tuple[Path, Path]) -> None:
    fleet, data = built
    missing = {
        (d["machine_id"], d["hour"])
        for d in (
            json.loads(line)
            for line in (fleet / "ground_truth/defects.jsonl").read_text().splitlines()
        )
        if d["defect"] == "missing_hour"
    }
    flagged = {
        (m, h.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for m, h in query(
            data,
            "select machine_id, hour_at at time zone 'UTC' from marts.fct_machine_hours "
            "where is_missing_hour",
        )
    }
    assert missing and missing - flagged == set()


def test_incremental_run_adds_new_hours_only(built: tuple[Path, Path]) -> None:
    fleet, data = built
    before = query(data, "select count(*), max(hour_at) from marts.fct_machine_hours")[0]
    SHAPES["stress"].extend(fleet, hours=75)  # three more hours of files
    assert (
        run_ingest(IngestConfig(landing=str(fleet / "landing"), data_dir=str(data))).status
        == "succeeded"
    )
    assert shopfloor("build", "--data-dir", str(data)).returncode == 0
    after = query(data, "select count(*), max(hour_at) from marts.fct_machine_hours")[0]
    assert after[0] == before[0] + 3 * 3
    assert (after[1] - before[1]).total_seconds() == 3 * 3600


def test_full_build_with_no_readings_keeps_the_contracts(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    """No reading loaded yet (say every file was quarantined): the sensor marts build
    empty. sensor_groups then finds no group, and its untyped fallback once broke the
    contract (value_min/value_max INTEGER instead of DOUBLE)."""
    _, data = built
    shutil.copy2(data / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("delete from raw.telemetry_readings")
    rebuild(tmp_path, "fct_machine_hour_sensors+", "resource_type:unit_test")
    assert query(tmp_path, "select count(*) from marts.fct_machine_hour_sensors") == [(0,)]


def test_flag_rules_on_a_hand_made_machine_hour(built: tuple[Path, Path], tmp_path: Path) -> None:
    """One hour of one sensor on two machines, written into raw by hand.

    MT varies (no two consecutive lines equal outside its runs): only 5000 is a spike
    (robust z above 8), and above the rated maximum too. Ten identical consecutive values
    (lines 15-24) are a stuck run; ten more (lines 26-30 and 32-36) are not, because line
    31 is missing and a missing line ends a run: 10 stuck, 1 spike, 1 out of range (the
    same reading), 67 clean of 78.

    MC writes 0.1 steps and repeats its value on about half of its lines, as a sensor at
    its instrument's resolution does: its run of ten identical values is what such a
    sensor does by chance, so nothing is stuck."""
    _, data = built
    shutil.copy2(data / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    varied = dict(zip(range(10, 15), [98.0, 102.0, 99.0, 101.0, 100.5], strict=True))
    varied |= dict.fromkeys(range(15, 25), 100.0) | {25: 97.0}
    varied |= dict.fromkeys([*range(26, 31), *range(32, 37)], 101.5) | {37: 5000.0, 38: 99.0}
    varied |= {line: 98.0 + (line * 7 % 50) / 10 for line in range(39, 89)}
    coarse = {line: 20.0 + (line // 2 % 3) / 10 for line in range(10, 90)}
    coarse |= dict.fromkeys(range(40, 50), 20.4)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute(
            "insert into raw.sensor_ratings by name select 'TEST-1' as model, "
            "'spindle_speed_rpm' as sensor, 0.0 as rated_min, 3000.0 as rated_max, "
            "'test' as _dlt_load_id"
        )
        for machine, values in (("MT", varied), ("MC", coarse)):
            path = f"telemetry/{machine}/2026/03/02/{machine}_20260302T00.txt"
            con.execute(
                "insert into raw.machine_registry by name "
                "select ? as machine_id, 'TEST-1' as model, 'test' as _dlt_load_id",
                [machine],
            )
            con.execute(
                "insert into raw.landing_files by name select ? as relative_path, "
                "? as machine_id, 'loaded' as status, ? as content_sha256, "
                "'2026-03-02 00:00:00+00'::timestamptz as file_hour_at, "
                "'test' as _dlt_load_id, ? as _dlt_id",
                [path, machine, f"sha-{machine}", machine],
            )
            con.executemany(
                "insert into raw.telemetry_readings by name select ? as machine_id, "
                "'2026-03-02 00:00:00+00'::timestamptz + to_seconds(?) as reading_at, "
                "'RUN' as status, ? as source_line, ? as source_file, ? as "
                "source_file_sha256, ? as s_spindle_speed_rpm, 'test' as _dlt_load_id",
                [
                    [machine, line - 10, line, path, f"sha-{machine}", value]
                    for line, value in values.items()
                ],
            )
    rebuild(tmp_path, "fct_machine_hour_sensors", "resource_type:test resource_type:unit_test")
    assert query(
        tmp_path,
        "select machine_id, readings, clean_readings, spike_count, stuck_count, "
        "out_of_range_count from marts.fct_machine_hour_sensors "
        "where machine_id in ('MT', 'MC') order by machine_id",
    ) == [("MC", 80, 80, 0, 0, 0), ("MT", 78, 67, 1, 10, 1)]


def test_docs_site_is_one_file_with_lineage_to_exposures(built: tuple[Path, Path]) -> None:
    _, data = built
    result = shopfloor("docs", "--data-dir", str(data))
    assert result.returncode == 0 and "static_index.html" in result.stdout
    html = (data / "dbt_target/static_index.html").read_text()
    for name in (
        "exposure.shopfloor.maintenance_model",
        "exposure.shopfloor.plant_dashboard",
        "source.shopfloor.landing.telemetry_readings",
        "model.shopfloor.fct_machine_hours",
    ):
        assert name in html


def _upstream(manifest: dict[str, Any], node: str) -> set[str]:
    seen: set[str] = set()
    todo = [node]
    while todo:
        for parent in manifest["parent_map"].get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


@pytest.mark.browser
def test_docs_site_opens_in_a_browser_with_the_lineage(built: tuple[Path, Path]) -> None:
    """The single-file site in headless Chromium (installed by `make test`)."""
    import shutil

    _, data = built
    site = data / "dbt_target/static_index.html"
    if not site.exists():
        assert shopfloor("docs", "--data-dir", str(data)).returncode == 0
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is missing: `make test` installs it (apt-get install chromium)"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
    page = f"file://{site}#!/exposure/exposure.shopfloor.maintenance_model"
    dom = subprocess.run(
        [*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120
    ).stdout
    # the app rendered (not just the raw file): the exposure page with what it depends on
    assert "Preventive-maintenance model" in dom
    assert "fct_machine_hour_features" in dom and "fct_machine_hour_sensor_features" in dom
    shot = data / "lineage.png"
    subprocess.run(
        [
            *flags,
            f"--screenshot={shot}",
            "--window-size=1400,900",
            f"file://{site}#!/model/model.shopfloor.fct_machine_risk?g_v=1",
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # the graph the site draws: sources -> staging -> marts -> both exposures
    manifest = json.loads((data / "dbt_target/manifest.json").read_text())
    for exposure in ("maintenance_model", "plant_dashboard"):
        upstream = _upstream(manifest, f"exposure.shopfloor.{exposure}")
        assert "source.shopfloor.landing.telemetry_readings" in upstream
        assert "model.shopfloor.stg_landing__telemetry_readings" in upstream
        assert any(n.startswith("model.shopfloor.fct_") for n in upstream)
    risk_upstream = _upstream(manifest, "model.shopfloor.fct_machine_risk")
    assert "source.shopfloor.ml.machine_hour_scores" in risk_upstream
