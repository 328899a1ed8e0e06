"""Malformed and hostile inputs (tests/hostile.py), all in one landing area at once.

One `shopfloor run` and one more: both exit 0; every bad input has an outcome and a
reason; the good files' rows arrive intact; counts reconcile for every file; no name
or note of the maintenance export is found outside `raw` (tables, CLI output, run
log); nothing outside the landing area is read; the second run changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion.exports import parse_maintenance_log, parse_registry, pseudonymise
from ingestion.listing import KnownFiles, ListingPolicy, list_telemetry
from tests.hostile import CANARY, GOOD, NOTES, TECHNICIANS, Case, write_corpus

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEY = "hostile-key"
GOOD_HOUR = datetime(2026, 5, 4, 10, tzinfo=UTC)


def run(data: Path, landing: Path) -> subprocess.CompletedProcess[str]:
    # the corpus's files were delivered long ago, but for the one still being written:
    # it must stay unsettled for both runs, however slow the machine
    env = {
        **os.environ,
        "COLUMNS": "200",
        "SHOPFLOOR_PSEUDONYM_KEY": KEY,
        "SHOPFLOOR_SETTLE_SECONDS": "3600",
    }
    return subprocess.run(
        ["shopfloor", "run", "--data-dir", str(data), "--landing", str(landing)],
        capture_output=True,
        text=True,
        env=env,
    )


def rows(data: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile")
    landing, data, outside = root / "landing", root / "data", root / "outside"
    cases = write_corpus(landing, outside)
    first = run(data, landing)
    second = run(data, landing)
    runs = [json.loads(line) for line in (data / "runs.jsonl").read_text().splitlines()]
    return {"cases": cases, "data": data, "first": first, "second": second, "runs": runs}


def test_the_corpus_is_big_and_varied(corpus: dict[str, Any]) -> None:
    cases: list[Case] = corpus["cases"]
    assert len(cases) >= 60
    assert len({c.kind for c in cases}) >= 8


def test_both_runs_succeed(corpus: dict[str, Any]) -> None:
    for result in (corpus["first"], corpus["second"]):
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
        assert "Traceback" not in result.stdout + result.stderr
    first, second = corpus["runs"]
    assert first["status"] == second["status"] == "succeeded"
    assert first["models_failed"] == first["tests_failed"] == 0


def test_the_next_run_is_a_no_op(corpus: dict[str, Any]) -> None:
    second = corpus["runs"][1]
    assert (second["files_new"], second["rows_loaded"], second["rows_rejected"]) == (0, 0, 0)
    data = corpus["data"]
    assert rows(data, "select count(*) from raw.ingest_runs where files_new > 0") == [(1,)]


def test_every_telemetry_input_has_its_outcome_and_reason(corpus: dict[str, Any]) -> None:
    data = corpus["data"]
    files = {
        path: (status, reason, superseded)
        for path, status, reason, superseded in rows(
            data,
            "select file_path, file_status, status_reason, is_superseded"
            " from stg_landing__landing_files",
        )
    }
    rejects = Counter(
        (path, reason)
        for path, reason in rows(
            data, "select source_file, reject_reason from stg_landing__telemetry_rejects"
        )
    )
    wrong = []
    for case in corpus["cases"]:
        if case.path is None or not case.path.startswith("telemetry/"):
            continue
        status, reason, superseded = files.get(case.path, (None, None, None))
        if case.expect == "waiting":
            ok = status is None
        elif case.expect == "absent":  # never listed, or listed as a path leaving the area
            ok = status is None or (status == "skipped" and "outside" in reason)
        elif case.expect == "rejects":
            reasons = [r for (p, r) in rejects if p == case.path]
            ok = status == "loaded" and any(case.reason in r for r in reasons)
        elif case.expect == "superseded":
            ok = status == "loaded" and bool(superseded)
        else:
            ok = status == case.expect and case.reason in (reason or "")
        if not ok:
            wrong.append((case.name, case.expect, status, reason))
    assert wrong == []


def test_rejected_rows_name_their_reason(corpus: dict[str, Any]) -> None:
    data = corpus["data"]
    reasons = {
        reason
        for (reason,) in rows(
            data, "select distinct reject_reason from stg_landing__telemetry_rejects"
        )
    }
    for piece in ("impossible calendar time", "UTC offset beyond", "not a finite number"):
        assert any(piece in r for r in reasons), (piece, reasons)


def test_every_export_line_has_its_outcome(corpus: dict[str, Any]) -> None:
    data = corpus["data"]
    rejects = {
        (path, line): reason
        for path, line, reason in rows(
            data, "select source_file, source_line, reject_reason from stg_landing__export_rejects"
        )
    }
    loaded = {wo for (wo,) in rows(data, "select work_order_id from marts.fct_maintenance_events")}
    wrong = []
    for case in corpus["cases"]:
        if case.expect != "export_reject":
            continue
        reason = rejects.get((case.path, case.line), "")
        if case.reason not in reason or not reason:
            wrong.append((case.name, case.line, reason))
    assert wrong == []
    assert {"OS-1", "OS-5", "OS-10", "OS-12", "OS-14"} <= loaded
    assert not loaded & {"OS-2", "OS-3", "OS-4", "OS-7", "OS-8", "OS-9", "OS-11"}
    # the later line of a work order listed twice wins
    assert rows(
        data,
        "select repair_minutes from marts.fct_maintenance_events where work_order_id = 'OS-12'",
    ) == [(150,)]
    # a latin-1 line hashes its technician as the UTF-8 lines do
    keys = {k for (k,) in rows(data, "select technician_key from marts.fct_maintenance_events")}
    assert pseudonymise(TECHNICIANS[1], KEY.encode()) in keys
    # the registry's first line of a machine counts; broken lines never reach the marts
    assert rows(data, "select machine_model from marts.dim_machines where machine_id = 'HX-1'") == [
        (GOOD.model,)
    ]
    assert rows(
        data, "select count(*) from marts.dim_machines where machine_id in ('HX-5', 'HX-6', 'HX 8')"
    ) == [(0,)]


def test_good_files_arrive_intact_and_every_file_reconciles(corpus: dict[str, Any]) -> None:
    data = corpus["data"]
    assert rows(
        data,
        "select count(*), sum(rows_loaded)::int from stg_landing__landing_files"
        " where machine_id = 'HX-1' and file_status = 'loaded'",
    ) == [(4, 24)]
    assert rows(
        data,
        "select count(*) from stg_landing__landing_files"
        " where rows_read != rows_loaded + rows_rejected",
    ) == [(0,)]
    # every sensor name the plant chose came through under its own name
    sensors = {
        s for (s,) in rows(data, "select distinct sensor from marts.fct_machine_hour_sensors")
    }
    assert {
        "machine_id",
        "reading_at",
        "source_line",
        "hour_at",
        "order",
        "select",
        "s_rpm",
    } <= sensors
    assert rows(
        data,
        "select value_max from marts.fct_machine_hour_sensors where sensor = 'source_line'",
    ) == [(3.5,)]


def test_nothing_outside_the_landing_area_is_read(corpus: dict[str, Any]) -> None:
    data = corpus["data"]
    found = rows(
        data,
        "select count(*) from marts.fct_machine_hour_sensors"
        f" where abs(value_max - {CANARY}) < 1e-6 or abs(value_min - {CANARY}) < 1e-6",
    )
    assert found == [(0,)]
    assert rows(data, "select count(*) from raw.telemetry_readings where machine_id = 'HX-7'") == [
        (0,)
    ]


def test_no_name_or_note_leaves_raw(corpus: dict[str, Any]) -> None:
    data = corpus["data"]
    secrets = [*TECHNICIANS, "Joana", NOTES[:20], "99999-0000"]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        columns = con.sql(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where table_schema != 'raw' and data_type = 'VARCHAR'"
        ).fetchall()
        leaks = [
            (schema, table, column, secret)
            for schema, table, column in columns
            for secret in secrets
            if con.execute(
                f'select count(*) from "{schema}"."{table}" where contains("{column}", ?)',
                [secret],
            ).fetchone()
            != (0,)
        ]
    assert leaks == []
    logs = corpus["first"].stdout + corpus["second"].stdout + json.dumps(corpus["runs"])
    assert not [s for s in secrets if s in logs]


def test_file_level_export_problems_keep_the_previous_snapshot() -> None:
    """An export that cannot be read at all is rejected whole; its previous rows stay."""
    key = b"k"
    header = (
        b"work_order;machine_id;reported_at;started_at;ended_at;maintenance_type;"
        b"component;failure_mode;technician;notes\n"
    )
    for data, reason in [
        (b"", "empty export"),
        (b"\n\n", "empty export"),
        (header.replace(b";technician", b""), "lacks column(s) technician"),
        (b"\x00\xff\xfe garbage", "lacks column"),
    ]:
        table, parsed = parse_maintenance_log(data, key, "America/Sao_Paulo")
        assert parsed.rejected_whole and reason in parsed.rejects[0]["reason"], (data, parsed)
        assert table.num_rows == 0
    for name, data in [
        ("machine_registry", b"machine_id,line\nM1,A\n"),
        ("sensor_ratings", b""),
    ]:
        _, parsed = parse_registry(data, name)
        assert parsed.rejected_whole


def test_a_file_deleted_after_listing_is_recorded_not_fatal(tmp_path: Path) -> None:
    from ingestion.parsing import read_and_parse

    landing = tmp_path / "landing"
    path = landing / "telemetry/HX-1/2026/05/04/HX-1_20260504T00.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"# x\n")
    os.utime(path, (0, 0))
    import fsspec

    fs = fsspec.filesystem("file")
    listing = list_telemetry(fs, str(landing), KnownFiles(), ListingPolicy())
    assert [i["relative_path"] for i in listing.new] == [str(path.relative_to(landing))]
    path.unlink()
    result = read_and_parse(listing.new[0], None, ListingPolicy())
    assert result.vanished and result.parsed is None


def test_a_complete_upload_replaces_the_truncated_one(tmp_path: Path) -> None:
    """A file read while still being written, then complete (from a firmware that dropped
    a sensor): its hour counts once, and only the sensors of the file that counts."""
    from tests.landing import HandMachine, render, telemetry_rel, write_registry

    machine = HandMachine("HX-1", "PRENSA-9", {"pressao_bar": 180.0, "temperatura_c": 55.0}, 60)
    later = HandMachine("HX-1", "PRENSA-9", {"pressao_bar": 180.0}, 60)
    landing, data = tmp_path / "landing", tmp_path / "data"
    write_registry(landing, [machine])
    path = landing / telemetry_rel("HX-1", GOOD_HOUR)
    path.parent.mkdir(parents=True)
    first_version = render(machine, GOOD_HOUR)
    half = first_version[: len(first_version) // 2]  # an upload cut half way, mid-line
    path.write_bytes(half)
    os.utime(path, (GOOD_HOUR.timestamp() + 3700,) * 2)
    assert run(data, landing).returncode == 0
    first = half.count(b"\n") - 9  # complete rows after the header block and row
    assert rows(data, "select readings_received from marts.fct_machine_hours") == [(first,)]
    assert rows(data, "select count(*) from marts.fct_machine_hour_sensors") == [(2,)]
    path.write_bytes(render(later, GOOD_HOUR))
    os.utime(path, (GOOD_HOUR.timestamp() + 7300,) * 2)
    assert run(data, landing).returncode == 0
    assert rows(
        data, "select readings_received, has_superseded_file from marts.fct_machine_hours"
    ) == [(60, True)]
    assert rows(data, "select sensor, readings from marts.fct_machine_hour_sensors") == [
        ("pressao_bar", 60)
    ]
    assert rows(data, "select count(*) from raw.telemetry_readings") == [(first + 60,)]


def test_versions_of_one_hour_and_a_corrected_name(tmp_path: Path) -> None:
    """A cut re-send never replaces a complete hour, nor does a re-export whose rows were
    all rejected (incremental equals a full refresh); a file quarantined for its name
    loads once it is put under the right name."""
    from tests.landing import HandMachine, render, telemetry_rel, write_registry
    from tests.test_outside_data import marts_differ_from_full_refresh

    machine = HandMachine("HX-1", "PRENSA-9", {"pressao_bar": 180.0}, 60)
    landing, data = tmp_path / "landing", tmp_path / "data"
    write_registry(landing, [machine])
    hour2 = GOOD_HOUR.replace(hour=11)
    complete = render(machine, GOOD_HOUR)
    path = landing / telemetry_rel("HX-1", GOOD_HOUR)
    path.parent.mkdir(parents=True)
    path.write_bytes(complete)
    os.utime(path, (GOOD_HOUR.timestamp() + 3700,) * 2)
    misnamed = landing / "telemetry/HX-1/2026/05/09" / path.name.replace("T10", "T11")
    misnamed.parent.mkdir(parents=True)
    misnamed.write_bytes(render(machine, hour2))
    os.utime(misnamed, (GOOD_HOUR.timestamp() + 7300,) * 2)
    assert run(data, landing).returncode == 0
    cut = len(complete) // 2
    cut -= complete[cut - 1 : cut] == b"\n"  # mid-line
    path.write_bytes(complete[:cut])  # re-sent, and cut
    os.utime(path, (GOOD_HOUR.timestamp() + 9000,) * 2)
    right = landing / telemetry_rel("HX-1", hour2)
    misnamed.rename(right)  # the operator fixes the folder
    other = landing / telemetry_rel("HX-1", GOOD_HOUR.replace(hour=12)).replace(".txt", " (1).txt")
    assert run(data, landing).returncode == 0
    hours = dict(rows(data, "select hour(hour_at), readings_received from marts.fct_machine_hours"))
    assert hours[10] == 60, "the complete version keeps the hour"
    assert hours[11] == 60, "the corrected file loads, it is no copy of the quarantined one"
    # a third run: the hour-12 file with readings, then a later one with none
    twelve = landing / telemetry_rel("HX-1", GOOD_HOUR.replace(hour=12))
    twelve.write_bytes(render(machine, GOOD_HOUR.replace(hour=12)))
    os.utime(twelve, (GOOD_HOUR.timestamp() + 3 * 3600 + 100,) * 2)
    assert run(data, landing).returncode == 0
    rejected = render(machine, GOOD_HOUR.replace(hour=12)).replace(b";RUN;", b";run;")
    other.write_bytes(rejected)  # every row rejected (unknown status)
    os.utime(other, (GOOD_HOUR.timestamp() + 4 * 3600,) * 2)
    assert run(data, landing).returncode == 0
    assert rows(
        data,
        "select readings_received, rejected_rows, has_superseded_file"
        " from marts.fct_machine_hours where hour(hour_at) = 12",
    ) == [(60, 0, True)]
    differ = marts_differ_from_full_refresh(data, tmp_path)
    assert all(n == 0 for n in differ.values()), {k: n for k, n in differ.items() if n}


def test_export_edge_cases() -> None:
    from ingestion.exports import parse_maintenance_log, parse_registry

    header = (
        b"work_order;machine_id;reported_at;started_at;ended_at;maintenance_type;"
        b"component;failure_mode;technician;notes\n"
    )
    good = b";HX-1;04/05/2026 08:00;04/05/2026 08:30;04/05/2026 10:00;preventive;all;;Ana;"
    lines = [b"OS-1" + good + b'"a quote never closed']
    lines += [b"OS-%d" % k + good + b"ok" for k in range(2, 9)]
    table, parsed = parse_maintenance_log(
        header + b"\n".join(lines) + b"\n", b"k", "America/Sao_Paulo"
    )
    assert table["work_order"].to_pylist() == [f"OS-{k}" for k in range(2, 9)]
    assert [r["line_number"] for r in parsed.rejects] == [2]
    # every line of a registry rejected: the export is rejected whole, the old one stays
    _, registry = parse_registry(
        b"machine_id,model,installed_on\nM1,X,04/05/2026\n", "machine_registry"
    )
    assert registry.rejected_whole


def test_untrustworthy_hours_do_not_release_a_growing_file(tmp_path: Path) -> None:
    import fsspec

    landing = tmp_path / "landing"
    growing = landing / "telemetry/HX-1/2026/05/04/HX-1_20260504T10.txt"
    future = landing / "telemetry/HX-1/2099/12/31/HX-1_20991231T23.txt"
    for path in (growing, future):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"# x\n")  # modified just now
    os.utime(future, (0, 0))  # delivered long ago: settled, and quarantined for its hour
    listing = list_telemetry(fsspec.filesystem("file"), str(landing), KnownFiles())
    assert listing.waiting == 1  # the file of 2026 may still be being written
    assert [i["relative_path"] for i in listing.new] == [str(future.relative_to(landing))]


def test_files_never_read_are_not_copies_of_each_other(tmp_path: Path) -> None:
    """Two files too big to read share no content hash: both are quarantined, in this run
    and against the next one's (an empty hash once made the second a "duplicate")."""
    from ingestion.pipeline import IngestConfig, run_ingest
    from tests.landing import HandMachine, render, telemetry_rel, write_registry

    machine = HandMachine("HX-1", "PRENSA-9", {"pressao_bar": 180.0}, 60)
    landing, data = tmp_path / "landing", tmp_path / "data"
    write_registry(landing, [machine])
    policy = ListingPolicy(max_file_bytes=100)
    for hour in (10, 11, 12):
        path = landing / telemetry_rel("HX-1", GOOD_HOUR.replace(hour=hour))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render(machine, GOOD_HOUR.replace(hour=hour)))
        os.utime(path, (GOOD_HOUR.timestamp() + 3600 * (hour - 8),) * 2)
        if hour == 11:  # the third arrives for the next run
            os.environ["SHOPFLOOR_PSEUDONYM_KEY"] = KEY
            cfg = IngestConfig(landing=str(landing), data_dir=str(data), policy=policy)
            assert run_ingest(cfg).status == "succeeded"
    assert run_ingest(cfg).status == "succeeded"
    assert rows(data, "select status, count(*) from raw.landing_files group by 1") == [
        ("quarantined", 3)
    ]
