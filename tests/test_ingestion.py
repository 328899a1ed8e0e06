"""Ingestion against a simulated fleet and its ground-truth manifest: real dlt
pipelines into real DuckDB files in temporary folders."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.load_files import ReadingsWriter
from ingestion.pipeline import IngestConfig, IngestSummary, run_ingest
from simulator.defects import DefectRates
from simulator.fleet import TECHNICIANS, FleetConfig
from simulator.simulate import SimulationConfig, simulate
from tests.contract import parse

KEY = "test-pseudonym-key"


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPFLOOR_PSEUDONYM_KEY", KEY)


def make_fleet(
    out: Path,
    *,
    machines: int = 4,
    hours: int = 48,
    interval: int = 60,
    defects: str = "stress",
    seed: int = 11,
) -> Path:
    simulate(
        SimulationConfig(
            out=str(out),
            fleet=FleetConfig(machines=machines, hours=hours, seed=seed),
            sample_interval_s=interval,
            defects=DefectRates.profile(defects),
            workers=1,
        )
    )
    return out


def ingest(landing: Path, data: Path) -> IngestSummary:
    summary = run_ingest(IngestConfig(landing=str(landing), data_dir=str(data)))
    assert summary.status == "succeeded", summary.error
    return summary


def query(data: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def manifest(fleet: Path) -> list[dict[str, Any]]:
    lines = (fleet / "ground_truth/defects.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, IngestSummary]:
    os.environ["SHOPFLOOR_PSEUDONYM_KEY"] = KEY
    fleet = make_fleet(tmp_path_factory.mktemp("fleet"))
    data = tmp_path_factory.mktemp("data")
    return fleet, data, ingest(fleet / "landing", data)


def outcomes(data: Path) -> dict[str, dict[str, Any]]:
    cols = [
        "relative_path",
        "status",
        "reason",
        "rows_read",
        "rows_loaded",
        "rows_rejected",
        "encoding",
        "duplicate_of",
        "quarantine_path",
    ]
    rows = query(data, f"select {', '.join(cols)} from raw.landing_files")
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}


def test_every_file_has_exactly_one_outcome(loaded: tuple[Path, Path, IngestSummary]) -> None:
    fleet, data, summary = loaded
    on_disk = {
        str(p.relative_to(fleet / "landing")) for p in (fleet / "landing/telemetry").rglob("*.txt")
    }
    seen = outcomes(data)
    assert set(seen) == on_disk
    assert summary.files_new == len(on_disk)
    assert {o["status"] for o in seen.values()} <= {"loaded", "partial", "quarantined", "duplicate"}


def test_counts_reconcile_for_every_file(loaded: tuple[Path, Path, IngestSummary]) -> None:
    fleet, data, _ = loaded
    readings = dict(
        query(data, "select source_file, count(*) from raw.telemetry_readings group by 1")
    )
    rejects = dict(
        query(data, "select source_file, count(*) from raw.telemetry_rejects group by 1")
    )
    for rel, o in outcomes(data).items():
        assert o["rows_read"] == o["rows_loaded"] + o["rows_rejected"], rel
        assert readings.get(rel, 0) == o["rows_loaded"], rel
        assert rejects.get(rel, 0) == o["rows_rejected"], rel
        if o["status"] in ("loaded", "partial"):  # rows read = data lines in the file
            raw = (fleet / "landing" / rel).read_bytes()
            header_lines = 9
            assert o["rows_read"] == raw.count(b"\n") - header_lines + (
                0 if raw.endswith(b"\n") else 1
            ), rel


def test_defects_are_handled_as_the_manifest_says(
    loaded: tuple[Path, Path, IngestSummary],
) -> None:
    fleet, data, _ = loaded
    seen = outcomes(data)
    reject_rows = query(
        data, "select source_file, line_number, reason, raw_line from raw.telemetry_rejects"
    )
    seen_as = {rel: o["duplicate_of"] or rel for rel, o in seen.items()}  # a re-sent copy
    rejects = {(f, line): (reason, raw) for f, line, reason, raw in reject_rows}
    expected_rejects: set[tuple[str, int]] = set()
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in manifest(fleet):
        by_class[d["defect"]].append(d)
    assert set(by_class) >= {
        "truncated",
        "empty_file",
        "resend_other_name",
        "garbage_line",
        "wrong_column_count",
        "non_numeric",
        "sensor_dropout",
        "latin1_encoding",
        "firmware_new_column",
        "offset_change",
        "clock_drift",
        "missing_hour",
        "spike",
        "stuck_sensor",
    }
    for d in by_class["truncated"]:
        assert seen[seen_as[d["file"]]]["status"] == "partial"
        assert rejects[(seen_as[d["file"]], d["line"])][0].startswith("truncated")
        expected_rejects.add((seen_as[d["file"]], d["line"]))
    for d in by_class["empty_file"]:
        o = seen[d["file"]]
        assert (o["status"], o["reason"]) == ("quarantined", "empty file")
        assert Path(o["quarantine_path"]).exists()
        reason = json.loads(Path(o["quarantine_path"] + ".reason.json").read_text())
        assert reason["reason"] == "empty file"
    for d in by_class["resend_other_name"]:
        o = seen[d["file"]]
        original = seen[d["original"]]
        if (fleet / "landing" / d["original"]).stat().st_size:
            # the earlier delivery is kept (the original, unless it was re-sent later)
            kept, dup = (original, o) if original["status"] != "duplicate" else (o, original)
            assert dup["status"] == "duplicate" and dup["duplicate_of"] == kept["relative_path"]
            assert dup["rows_loaded"] == 0 and kept["rows_loaded"] > 0
    for kind, prefix in (
        ("garbage_line", "binary garbage"),
        ("wrong_column_count", "wrong column count"),
        ("non_numeric", "non-numeric value in"),
    ):
        for d in by_class[kind]:
            reason, raw = rejects[(seen_as[d["file"]], d["line"])]
            encoding = seen[seen_as[d["file"]]]["encoding"]
            if not (kind == "garbage_line" and encoding == "latin-1"):
                assert reason.startswith(prefix), (d, reason)
            if kind == "non_numeric":
                assert d["column"] in reason and d["value"] in raw
            expected_rejects.add((seen_as[d["file"]], d["line"]))
    assert set(rejects) == expected_rejects, "every reject is a defect the manifest lists"
    for d in by_class["latin1_encoding"]:
        assert seen[seen_as[d["file"]]]["encoding"] == "latin-1"
        assert seen[seen_as[d["file"]]]["status"] in ("loaded", "partial")
    for d in by_class["sensor_dropout"]:
        nulls = query(
            data,
            f"select count(*) from raw.telemetry_readings where source_file = "
            f"'{d['file']}' and source_line between {d['line_start']} and "
            f"{d['line_end']} and s_{d['column']} is null",
        )[0][0]
        assert nulls >= 1
    for d in by_class["offset_change"]:
        (offset,) = query(
            data,
            "select distinct utc_offset_min from raw.telemetry_readings "
            f"where source_file = '{d['file']}'",
        )
        assert offset == (d["offset_h"] * 60,)
    # whatever the clock did, a file's first reading is in the UTC hour its name says
    firsts = query(
        data, "select source_file, min(reading_at) from raw.telemetry_readings group by 1"
    )
    drifted = {seen_as[d["file"]] for d in by_class["clock_drift"]}
    for rel, first in firsts:
        hour = rel.rsplit("_", 1)[1][:11]
        if rel not in drifted:
            assert f"{first.astimezone(UTC):%Y%m%dT%H}" == hour, rel


def test_new_sensor_column_flows_in(loaded: tuple[Path, Path, IngestSummary]) -> None:
    fleet, data, _ = loaded
    for d in manifest(fleet):
        if d["defect"] == "firmware_new_column":
            col, machine, hour = d["column"], d["machine_id"], d["hour"]
            before, after = query(
                data,
                f"""
                select count(s_{col}) filter (where reading_at < '{hour}'),
                       count(s_{col}) filter (where reading_at >= '{hour}')
                from raw.telemetry_readings where machine_id = '{machine}'""",
            )[0]
            assert before == 0 and after > 0, (col, machine)


def test_personal_data_never_reaches_the_warehouse(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet", machines=3, hours=24 * 21, interval=3600)
    data = tmp_path / "data"
    ingest(fleet / "landing", data)
    log = (fleet / "landing/maintenance/maintenance_log.csv").read_text()
    assert any(name in log for name in TECHNICIANS)  # the export does name people
    columns = {
        c
        for (c,) in query(
            data,
            "select column_name from information_schema.columns "
            "where table_name = 'maintenance_log'",
        )
    }
    assert "technician_key" in columns and not {"technician", "notes"} & columns
    keys = [k for (k,) in query(data, "select technician_key from raw.maintenance_log")]
    assert keys and all(k.startswith("tech_") for k in keys)
    text_columns = query(
        data,
        "select table_schema, table_name, column_name from "
        "information_schema.columns where data_type = 'VARCHAR'",
    )
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        for schema, table, column in text_columns:
            if column.startswith("_dlt") or table.startswith("_dlt"):
                continue  # dlt's random ids and bookkeeping
            for name in TECHNICIANS:
                for part in name.split():  # first names and surnames, as whole words
                    hits = con.execute(
                        f'select count(*) from "{schema}"."{table}" '
                        f'where regexp_matches("{column}", ?)',
                        [rf"(?i)\b{part}\b"],
                    ).fetchone()
                    assert hits == (0,), (schema, table, column, part)


def test_second_run_is_a_no_op(loaded: tuple[Path, Path, IngestSummary]) -> None:
    fleet, data, first = loaded
    tables = (
        "telemetry_readings",
        "telemetry_rejects",
        "landing_files",
        "maintenance_log",
        "machine_registry",
    )
    before = {t: query(data, f"select count(*) from raw.{t}")[0][0] for t in tables}
    registry_load = query(data, "select distinct _dlt_load_id from raw.machine_registry")
    loads = query(data, "select count(*) from raw._dlt_loads")[0][0]
    again = ingest(fleet / "landing", data)
    after = {t: query(data, f"select count(*) from raw.{t}")[0][0] for t in tables}
    assert after == before
    assert (again.files_listed, again.files_new) == (first.files_listed, 0)
    runs = query(data, "select files_new, status from raw.ingest_runs order by started_at")
    assert runs[-1] == (0, "succeeded") and len(runs) >= 2
    # nothing was loaded but the run's own log row: no package, the registry not replaced
    assert again.load_id is None and not again.loaded_anything
    assert query(data, "select count(*) from raw._dlt_loads")[0][0] == loads + 1
    assert query(data, "select distinct _dlt_load_id from raw.machine_registry") == registry_load


def test_a_registry_is_replaced_when_it_changes_and_only_then(tmp_path: Path) -> None:
    from tests.landing import HandMachine, write_registry

    os.environ["SHOPFLOOR_PSEUDONYM_KEY"] = KEY
    landing, data = tmp_path / "landing", tmp_path / "data"
    presses = [HandMachine(f"PRESS-{k}", "HP-200", {"ram_force_kn": 850.0}) for k in (1, 2)]
    registry = "select machine_id, _dlt_load_id from raw.machine_registry order by 1"
    write_registry(landing, presses[:1])
    first = ingest(landing, data)
    assert [m for m, _ in query(data, registry)] == ["PRESS-1"]
    write_registry(landing, presses)  # a machine is added
    second = ingest(landing, data)
    assert second.load_id is not None
    assert query(data, registry) == [("PRESS-1", second.load_id), ("PRESS-2", second.load_id)]
    third = ingest(landing, data)  # unchanged: neither read nor emptied
    assert third.load_id is None and first.load_id != second.load_id
    assert query(data, registry) == [("PRESS-1", second.load_id), ("PRESS-2", second.load_id)]


def test_resent_files_add_no_rows(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet", machines=2, hours=6, defects="none")
    data = tmp_path / "data"
    ingest(fleet / "landing", data)
    rows = query(data, "select count(*) from raw.telemetry_readings")[0][0]
    files = sorted((fleet / "landing/telemetry").rglob("*.txt"))
    same_name, other = files[0], files[1]
    os.utime(same_name, (time.time(), time.time()))  # re-uploaded under the same name
    shutil.copy(other, other.with_name(other.stem + " (1).txt"))  # and under another
    second = ingest(fleet / "landing", data)
    assert (second.files_new, second.files_duplicate, second.rows_loaded) == (2, 2, 0)
    assert query(data, "select count(*) from raw.telemetry_readings")[0][0] == rows


def test_column_that_disappears_becomes_null(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet", machines=1, hours=3, defects="none")
    files = sorted((fleet / "landing/telemetry").rglob("*.txt"))
    held = tmp_path / "held"
    held.mkdir()
    last = files[-1]
    # the last hour comes without its last sensor column (a firmware that dropped it)
    text = last.read_text().splitlines()
    dropped = text[8].split(";")[-1]
    body = [";".join(line.split(";")[:-1]) if not line.startswith("#") else line for line in text]
    shutil.move(last, held / last.name)
    data = tmp_path / "data"
    ingest(fleet / "landing", data)
    last.write_text("\n".join(body) + "\n")
    delivered = time.time() - 600  # a finished upload (a file modified just now may be growing)
    os.utime(last, (delivered, delivered))
    ingest(fleet / "landing", data)
    counts = query(
        data,
        f"select count(*), count(s_{dropped}) from raw.telemetry_readings "
        f"where source_file like '%{last.name}'",
    )
    assert counts == [(60, 0)]


def _ingest_child(landing: Path, data: Path) -> subprocess.Popen[bytes]:
    code = (
        "import sys; from ingestion.pipeline import IngestConfig, run_ingest; "
        "s = run_ingest(IngestConfig(landing=sys.argv[1], data_dir=sys.argv[2])); "
        "sys.exit(0 if s.status == 'succeeded' else 1)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(landing), str(data)],
        env={**os.environ, "SHOPFLOOR_PSEUDONYM_KEY": KEY},
    )


KILL_POINTS = {
    # while files are parsed and the readings Parquet is being written
    "extract": ".dlt/staging/*.parquet",
    # while the package's jobs load into DuckDB
    "load": ".dlt/shopfloor_landing/load/normalized/*/started_jobs/*",
    # after the data load, while dlt completes the package
    "complete": ".dlt/shopfloor_landing/load/normalized/*/completed_jobs/telemetry_readings*",
}


@pytest.mark.parametrize("kill_at", list(KILL_POINTS))
def test_killed_ingest_loses_nothing_and_duplicates_nothing(tmp_path: Path, kill_at: str) -> None:
    fleet = make_fleet(tmp_path / "fleet", machines=4, hours=24, interval=2, defects="realistic")
    data = tmp_path / "data"
    child = _ingest_child(fleet / "landing", data)
    deadline = time.monotonic() + 120
    while not list(data.glob(KILL_POINTS[kill_at])):
        assert child.poll() is None, "the run ended before reaching the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    ingest(fleet / "landing", data)
    expected: dict[str, int] = {}
    for path in (fleet / "landing/telemetry").rglob("*.txt"):
        raw = path.read_bytes()
        if raw:
            expected[str(path.relative_to(fleet / "landing"))] = len(parse(raw).rows)
    # readings are unique on (file content, line); staging deduplicates on that key
    got = dict(
        query(
            data,
            """
        select source_file, count(distinct source_line)
        from raw.telemetry_readings group by source_file""",
        )
    )
    resends = {p for p in expected if p.endswith(" (1).txt")}
    for rel, n in expected.items():
        if rel not in resends:
            assert got.get(rel, 0) == n, rel
    assert not resends & set(got), "re-sent copies add no readings"
    dupes = query(
        data,
        """
        select count(*) from (select source_file_sha256, source_line, count(distinct
        _dlt_load_id) as loads from raw.telemetry_readings group by 1, 2) where loads > 1""",
    )
    assert dupes == [(0,)], "a reading came from two different loads"
    total, distinct = query(
        data,
        """select count(*), count(distinct (source_file_sha256,
        source_line)) from raw.telemetry_readings""",
    )[0]
    assert total == distinct, "no reading twice, even in raw, at these kill points"


def test_cli_ingest_reports_and_exits_zero_with_quarantined_files(
    loaded: tuple[Path, Path, IngestSummary], tmp_path: Path
) -> None:
    fleet, _, _ = loaded
    result = subprocess.run(
        ["shopfloor", "ingest", "--landing", str(fleet / "landing"), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    assert "quarantined" in result.stdout and "empty file" in result.stdout
    # the run itself fails (a warehouse file that is not a database): exit 1, one line
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "warehouse.duckdb").write_bytes(b"not a database")
    failed = subprocess.run(
        ["shopfloor", "ingest", "--landing", str(fleet / "landing"), "--data-dir", str(broken)],
        capture_output=True,
        text=True,
        env={**os.environ, "SHOPFLOOR_PSEUDONYM_KEY": "k"},
    )
    assert failed.returncode == 1 and "not a valid DuckDB database" in failed.stdout
    # a landing URL no filesystem serves is a misconfiguration: exit 2 before any work
    unknown = subprocess.run(
        ["shopfloor", "ingest", "--landing", "s3-nowhere://b", "--data-dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 2 and "s3-nowhere" in unknown.stdout


HEADER = (
    "# shopfloor machine export v1\n# machine_id: M001\n# model: CNC-M200\n# firmware: 3.2.1\n"
    "# start_time: 2026-03-02T08:00:00-03:00\n# sample_interval_s: 1\n"
)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"timestamp;status;a_c\n", "no header block"),
        (HEADER.encode(), "no header row"),
        ((HEADER + "timestamp,status,a_c\n").encode(), "wrong delimiter"),
        ((HEADER + "timestamp;status;a_c;a_c\n").encode(), "repeated column name.*: a_c"),
        (
            HEADER.replace("# model: CNC-M200\n", "").encode() + b"timestamp;status;a_c\n",
            "lacks model",
        ),
        (b"# shopfloor\x00\x01\n# machine_id: M1\n", "binary file"),
    ],
)
def test_unreadable_files_get_a_clear_reason(data: bytes, reason: str) -> None:
    from ingestion.telemetry import QuarantineError, parse_telemetry

    with pytest.raises(QuarantineError, match=reason):
        parse_telemetry(data)


@pytest.mark.parametrize("max_buffered", [100, 7])
def test_readings_are_written_grouped_by_machine_in_bounded_memory(
    tmp_path: Path, max_buffered: int
) -> None:
    """The load file holds each machine's readings in row groups of their own (so a
    sensor column the machine's model lacks is NULL throughout one), loses and adds
    no row, and never buffers more than max_buffered readings."""
    writer = ReadingsWriter(
        "load1", str(tmp_path), group_rows=6, max_buffered=max_buffered, known_columns=dict
    )

    def hour_file(machine: str, hour: int, *sensors: str) -> pa.Table:
        # one file: 3 readings of one machine; machine models report different sensors
        return pa.table(
            {
                "machine_id": [machine] * 3,
                "source_line": [hour * 10 + k for k in range(3)],
                **{sensor: [float(hour)] * 3 for sensor in sensors},
            }
        )

    sensors = {"M1": "temp_c", "M2": "pressure_bar", "M3": "temp_c"}
    imports = []
    buffered = []
    for hour in range(4):  # delivery order: every machine's hour, then the next hour
        for machine, sensor in sensors.items():
            imports += list(writer.add([hour_file(machine, hour, sensor)]))
            buffered.append(writer.group_sizes.total())
    # a firmware update adds a sensor column
    imports += list(writer.add([hour_file("M1", 4, "temp_c", "vibration_mm_s")]))
    imports += list(writer.close())

    assert max(buffered) <= max_buffered
    files = sorted(tmp_path.glob("readings_load1_*.parquet"), key=lambda p: p.stat().st_mtime)
    # the other machine models' columns were buffered when the first file opened, so
    # only the new sensor column starts a second file
    assert len(imports) == len(files) == 2
    assert "pressure_bar" in pq.read_schema(files[0]).names
    assert "vibration_mm_s" in pq.read_schema(files[1]).names
    groups = []
    rows = []
    for path in files:
        parquet = pq.ParquetFile(path)
        for k in range(parquet.num_row_groups):
            group = parquet.read_row_group(k)
            groups.append((set(group["machine_id"].to_pylist()), group.num_rows))
            rows += zip(
                group["machine_id"].to_pylist(), group["source_line"].to_pylist(), strict=True
            )
    assert all(len(machines) == 1 for machines, _ in groups), groups
    if max_buffered == 100:  # two files of a machine make one row group
        assert [n for _, n in groups] == [6] * 6 + [3]
    expected = [(m, h * 10 + k) for h in range(4) for m in sensors for k in range(3)]
    expected += [("M1", 40 + k) for k in range(3)]
    assert sorted(rows) == sorted(expected)


def test_the_source_iterated_without_a_pipeline(tmp_path: Path) -> None:
    """As dlt's verified sources are tested: the resources iterated directly, no pipeline
    and no destination. A hand-made plant (a press at one reading per 10 minutes) and one
    unreadable file, in a landing folder whose name URL syntax would misread: an outcome
    row per file, the readings in the Parquet load file, and the counts reconcile."""
    from ingestion.listing import ListingPolicy
    from ingestion.sources import landing_source
    from tests.landing import HandMachine, hours_between, utc, write_hours, write_registry

    landing = tmp_path / "plant #2 ?100%25"
    press = HandMachine("PRESS-7", "HP-200", {"ram_force_kn": 850.0}, sample_interval_s=600)
    written = write_hours(landing, press, hours_between(utc(2026, 5, 4), utc(2026, 5, 4, 3)))
    bad = landing / "telemetry/PRESS-7/2026/05/04/PRESS-7_20260504T05.txt"
    bad.write_text("not a machine export\n")
    write_registry(landing, [press])
    source = landing_source(
        str(landing), staging_dir=str(tmp_path / "staging"), policy=ListingPolicy(settle_s=0)
    )
    outcomes = [row for row in source.resources["telemetry"] if row is not None]
    assert written == 3 and len(outcomes) == 4
    by_status: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in outcomes:
        by_status[row["status"]].append(row)
        assert row["rows_read"] == row["rows_loaded"] + row["rows_rejected"]
    assert len(by_status["loaded"]) == 3 and {r["rows_loaded"] for r in by_status["loaded"]} == {6}
    (quarantined,) = by_status["quarantined"]
    assert quarantined["relative_path"].endswith("T05.txt") and quarantined["reason"]
    readings = pq.read_table(list((tmp_path / "staging").glob("readings_*.parquet")))
    assert readings.num_rows == 18
    assert set(readings.column("source_file").to_pylist()) == {
        r["relative_path"] for r in by_status["loaded"]
    }
    (registry,) = list(source.resources["machine_registry"])
    assert registry.column("machine_id").to_pylist() == ["PRESS-7"]


def test_a_first_delivery_of_only_quarantined_files_does_not_block_later_ones(
    tmp_path: Path,
) -> None:
    """A plant whose first delivery is one empty file (quarantined): the readings table
    is still created as every later load writes it, and the good files that follow are
    loaded, every reading of them."""
    from tests.landing import HandMachine, hours_between, telemetry_rel, utc, write_hours

    landing, data = tmp_path / "landing", tmp_path / "data"
    machine = HandMachine("PRENSA-1", "HIDRAULICA-40T", {"pressao_oleo_bar": 180.0}, 600)
    empty = landing / telemetry_rel(machine.machine_id, utc(2026, 5, 4, 0))
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    delivered = utc(2026, 5, 4, 1).timestamp()  # a finished upload
    os.utime(empty, (delivered, delivered))
    first = ingest(landing, data)
    assert first.status == "succeeded" and first.files_quarantined == 1
    assert first.rows_loaded == 0

    write_hours(landing, machine, hours_between(utc(2026, 5, 4, 1), utc(2026, 5, 4, 6)))
    second = ingest(landing, data)
    assert second.status == "succeeded", second.error
    assert second.files_loaded == 5 and second.rows_loaded == 5 * 6
    assert query(data, "select count(*) from raw.telemetry_readings") == [(30,)]


def test_the_maintenance_log_is_read_in_the_plants_time_zone(tmp_path: Path) -> None:
    """The export's local times are read in the setting plant_timezone; a plant that
    corrects the setting gets the unchanged export read again in the new zone."""
    from datetime import timedelta

    from tests.landing import utc, write_maintenance

    landing, data = tmp_path / "landing", tmp_path / "data"
    failed = utc(2026, 5, 4, 14)  # written as 11:00 plant time (UTC-3)
    write_maintenance(
        landing, [("OS-1", "PRENSA-1", failed, failed + timedelta(hours=2), "corrective")]
    )

    def started_at(zone: str) -> list[tuple[Any, ...]]:
        summary = run_ingest(
            IngestConfig(landing=str(landing), data_dir=str(data), plant_timezone=zone)
        )
        assert summary.status == "succeeded", summary.error
        return query(
            data,
            "select started_at from raw.maintenance_log"
            " where ingested_at = (select max(ingested_at) from raw.maintenance_log)",
        )

    assert started_at("America/Sao_Paulo") == [(failed,)]
    # Lisbon in May is UTC+1: 11:00 there is 10:00 UTC
    assert started_at("Europe/Lisbon") == [(utc(2026, 5, 4, 10),)]
    snapshots = query(data, "select count(distinct ingested_at) from raw.maintenance_log")
    assert snapshots == [(2,)]


def test_repeated_timestamps_and_header_quirks_are_recorded_with_a_reason(
    tmp_path: Path,
) -> None:
    """Hand-made files: a controller that re-sent two rows keeps one reading per time
    (the first line) and rejects the repeats; a repeated header key, an unknown time
    zone name and readings outside the file's hour are kept but named in the file's
    reason; a sample interval in other digits than ASCII is quarantined."""
    from tests.landing import HandMachine, render, telemetry_rel, utc

    landing, data = tmp_path / "landing", tmp_path / "data"
    machine = HandMachine("PRENSA-1", "HIDRAULICA-40T", {"pressao_oleo_bar": 180.0}, 600)

    def write(hour: int, edit: Any) -> str:
        at = utc(2026, 5, 4, hour)
        lines = render(machine, at).decode().splitlines()
        head = [line for line in lines if line.startswith("#")] + [lines[len(lines) - 7]]
        path = landing / telemetry_rel(machine.machine_id, at)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(edit(head[:-1], head[-1:], lines[-6:])) + "\n")
        delivered = utc(2026, 5, 4, hour + 2).timestamp()  # a finished upload
        os.utime(path, (delivered, delivered))
        return path.relative_to(landing).as_posix()

    resent = write(1, lambda keys, row, body: keys + row + body + body[1:3])
    quirky = write(
        2,
        lambda keys, row, body: (
            [k.replace("America/Sao_Paulo", "Brasilia/Time") for k in keys]
            + ["# model: HIDRAULICA-40T-B"]
            + row
            + body[:-1]
            + [body[-1].replace("T23:50", "T23:59").replace("03T", "04T")]
        ),  # an hour later
    )
    digits = write(
        3,
        lambda keys, row, body: (
            [k.replace("sample_interval_s: 600", "sample_interval_s: ６００") for k in keys]
            + row
            + body
        ),
    )
    ingest(landing, data)
    files = dict(
        (path, (status, reason, loaded, rejected))
        for path, status, reason, loaded, rejected in query(
            data,
            "select relative_path, status, reason, rows_loaded, rows_rejected"
            " from raw.landing_files",
        )
    )
    assert files[resent][0] == "loaded" and files[resent][2:] == (6, 2), files[resent]
    repeats = query(data, "select reason from raw.telemetry_rejects")
    assert [r[0].startswith("repeated timestamp") for r in repeats] == [True, True]
    status, reason, *_ = files[quirky]
    assert status == "loaded", files[quirky]
    assert "'model' given twice" in reason and "'Brasilia/Time' is not an IANA name" in reason
    assert "1 reading(s) outside the file's hour" in reason
    assert files[digits][0] == "quarantined" and "sample_interval_s" in files[digits][1]


def test_quarantined_files_are_read_again_on_request_keeping_their_history(
    tmp_path: Path,
) -> None:
    """An archive older than max_past_days is quarantined; after the plant raises the
    setting, `shopfloor reprocess --reason` loads it, every reading, and raw keeps both
    outcomes; the staged file shows the newest."""
    from tests.landing import HandMachine, hours_between, utc, write_hours

    landing, data = tmp_path / "landing", tmp_path / "data"
    machine = HandMachine("PRENSA-1", "HIDRAULICA-40T", {"pressao_oleo_bar": 180.0}, 600)
    write_hours(landing, machine, hours_between(utc(2024, 5, 4, 0), utc(2024, 5, 4, 3)))
    env = {**os.environ, "COLUMNS": "200", "SHOPFLOOR_PSEUDONYM_KEY": "k"}

    def shopfloor(*args: str, **extra: str) -> str:
        done = subprocess.run(
            ["shopfloor", *args, "--data-dir", str(data), "--landing", str(landing)],
            capture_output=True,
            text=True,
            env={**env, **extra},
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        return done.stdout

    shopfloor("ingest", SHOPFLOOR_MAX_PAST_DAYS="365")
    assert query(data, "select distinct status from raw.landing_files") == [("quarantined",)]
    again = shopfloor("ingest", SHOPFLOOR_MAX_PAST_DAYS="3650")
    assert "files listed / new" in again and query(
        data, "select count(*) from raw.telemetry_readings"
    ) == [(0,)], "a quarantined file is not read again by itself"

    out = shopfloor("reprocess", "--reason", "older than", SHOPFLOOR_MAX_PAST_DAYS="3650")
    assert "3 of 3 quarantined file(s) to read again" in out
    assert query(data, "select count(*) from raw.telemetry_readings") == [(18,)]
    history = query(
        data,
        "select relative_path, list(status order by ingested_at) from raw.landing_files"
        " group by all",
    )
    assert {tuple(statuses) for _, statuses in history} == {("quarantined", "loaded")}
    nothing = shopfloor("reprocess", "--all")
    assert "0 of 0 quarantined file(s)" in nothing


def test_a_first_delivery_at_full_fidelity_loads_whatever_order_dlt_takes(tmp_path: Path) -> None:
    """On a first run dlt declares the readings table with an empty Arrow table (its
    `_dlt_load_id` dictionary-encoded) and may have to rewrite the readings' own file;
    when it buffered the two together the load failed, depending on the order in which
    it took them (2 of 4 fresh loads of this fleet failed). Three fresh loads, each whole."""
    os.environ["SHOPFLOOR_PSEUDONYM_KEY"] = KEY
    fleet = make_fleet(tmp_path / "fleet", hours=30, interval=1, defects="realistic", seed=7)
    loaded = {ingest(fleet / "landing", tmp_path / f"data{k}").rows_loaded for k in range(3)}
    assert len(loaded) == 1 and loaded.pop() > 400_000
