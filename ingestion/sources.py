"""dlt source for the plant's landing area (docs/machine-files.md).

Tables (all in the `raw` dataset):
    telemetry_readings  one row per reading, wide: one column per sensor, as the
                        files declare them (new sensors add columns)
    telemetry_rejects   bad rows of otherwise good files, with raw line and reason
    landing_files       one row per file version seen: loaded, partial,
                        quarantined or duplicate, with row counts that reconcile
    maintenance_log     snapshots of the maintenance export, personal data
                        pseudonymised before it is written anywhere
    machine_registry, sensor_ratings   the registry, replaced when it changes

Deduplication: a file whose content hash was already ingested is recorded as
`duplicate` and not parsed again. Raw tables are append-only and can hold a
row twice only after a crash inside dlt's load step; staging deduplicates on
(source_file_sha256, source_line), which is unique per reading.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.common.libs.pyarrow import py_arrow_to_table_schema_columns
from dlt.common.schema.typing import TColumnSchema, TDataType
from dlt.sources.filesystem import FileItemDict

from ingestion.exports import ExportRows, parse_maintenance_log, parse_registry
from ingestion.listing import (
    KnownFiles,
    Listing,
    ListingPolicy,
    SkippedPath,
    file_hour,
    list_telemetry,
)
from ingestion.telemetry import ParsedTelemetry, QuarantineError, parse_telemetry, sha256

MAINTENANCE_PATH = "maintenance/maintenance_log.csv"


def _columns(**types: TDataType) -> dict[str, TColumnSchema]:
    return {name: {"data_type": t, "nullable": True} for name, t in types.items()}


# Every raw table's columns are declared up front: dlt creates a column (or a table) only
# for data it has seen, and staging must build on a clean fleet (no rejects, no
# duplicates), on only quarantined files, or on an empty landing area.
READING_COLUMNS = _columns(
    machine_id="text",
    reading_at="timestamp",
    utc_offset_min="bigint",
    status="text",
    source_line="bigint",
    source_file="text",
    source_file_sha256="text",
    ingested_at="timestamp",
)
REJECT_COLUMNS = _columns(
    line_number="bigint",
    raw_line="text",
    reason="text",
    source_file="text",
    source_file_sha256="text",
    machine_id="text",
    ingested_at="timestamp",
)
FILE_COLUMNS = _columns(
    file_url="text",
    relative_path="text",
    machine_id="text",
    size_bytes="bigint",
    modified_at="timestamp",
    content_sha256="text",
    status="text",
    reason="text",
    rows_read="bigint",
    rows_loaded="bigint",
    rows_rejected="bigint",
    encoding="text",
    model="text",
    firmware="text",
    sample_interval_s="bigint",
    sensor_columns="text",
    first_reading_at="timestamp",
    last_reading_at="timestamp",
    file_hour_at="timestamp",  # the UTC hour its name says; NULL when the name says none
    duplicate_of="text",
    quarantine_path="text",
    ingested_at="timestamp",
)
MAINTENANCE_COLUMNS = _columns(
    work_order="text",
    machine_id="text",
    reported_at="timestamp",
    started_at="timestamp",
    ended_at="timestamp",
    maintenance_type="text",
    component="text",
    failure_mode="text",
    technician_key="text",
    has_notes="bool",
    source_line="bigint",
    source_file_sha256="text",
    ingested_at="timestamp",
)
EXPORT_REJECT_COLUMNS = _columns(
    source_file="text",
    line_number="bigint",  # NULL: the whole export was rejected
    reason="text",  # never quotes a personal field of the export
    source_file_sha256="text",
    ingested_at="timestamp",
)
REGISTRY_COLUMNS = {
    "machine_registry": _columns(
        machine_id="text",
        model="text",
        line="text",
        installed_on="date",
        retired_on="date",  # optional in the file: a machine still in service has none
        rated_power_kw="double",
    ),
    "sensor_ratings": _columns(
        model="text", sensor="text", unit="text", rated_min="double", rated_max="double"
    ),
}


_TABLE_COLUMNS = {
    "telemetry_readings": READING_COLUMNS,
    "telemetry_rejects": REJECT_COLUMNS,
    "landing_files": FILE_COLUMNS,
    "export_rejects": EXPORT_REJECT_COLUMNS,
}


def _table(item: Any, name: str) -> Any:
    return dlt.mark.with_hints(
        item,
        dlt.mark.make_hints(
            table_name=name, write_disposition="append", columns=_TABLE_COLUMNS[name]
        ),
        create_table_variant=True,
    )


@dataclass
class _FileResult:
    item: FileItemDict
    data_sha: str
    parsed: ParsedTelemetry | None
    error: str | None
    size: int
    data: bytes | None  # kept only for quarantine
    vanished: bool = False  # deleted between listing and reading
    trusted_path: bool = True  # its name says which machine-hour it covers


def _read_and_parse(item: FileItemDict, problem: str | None, policy: ListingPolicy) -> _FileResult:
    """Read one file and parse it, unless its path already condemned it."""
    size = int(item["size_in_bytes"])
    trusted = problem is None or problem.startswith(f"{size:,} bytes")  # only too big
    if size > policy.max_file_bytes:  # never read into memory; stays in the landing area
        return _FileResult(item, "", None, problem, size, None, trusted_path=trusted)
    try:
        data = item.read_bytes()
    except FileNotFoundError:
        return _FileResult(item, "", None, None, size, None, vanished=True)
    digest = sha256(data)
    if problem:
        return _FileResult(item, digest, None, problem, len(data), data, trusted_path=trusted)
    try:
        parsed = parse_telemetry(data)
    except QuarantineError as exc:
        return _FileResult(item, digest, None, str(exc), len(data), data)
    except Exception as exc:  # a file the parser did not foresee: quarantine, go on
        reason = f"unreadable: {type(exc).__name__}: {exc}"
        return _FileResult(item, digest, None, reason, len(data), data)
    interval = int(parsed.header.keys["sample_interval_s"])
    most = 2 * -(-3600 // interval) + 10  # twice an hour's rows, and a little slack
    if parsed.rows_read > most:
        reason = (
            f"{parsed.rows_read:,} rows: more than the {most:,} one machine-hour may have "
            f"at sample_interval_s {interval}"
        )
        return _FileResult(item, digest, None, reason, len(data), data)
    return _FileResult(item, digest, parsed, None, len(data), None)


def _machine_from_path(relative_path: str) -> str | None:
    parts = relative_path.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "telemetry" else None


@dlt.source(name="landing")
def landing_source(
    landing_url: str,
    known: KnownFiles | None = None,
    quarantine_url: str | None = None,
    pseudonym_key: bytes = b"",
    on_file: Callable[[dict[str, Any]], None] | None = None,
    on_listed: Callable[[int, int, int], None] | None = None,
    workers: int = 2,
    chunk_files: int = 64,
    staging_dir: str = "data/.dlt/staging",
    policy: ListingPolicy | None = None,
) -> Sequence[Any]:
    """The landing area's telemetry files, maintenance export and registry."""
    known = known or KnownFiles()
    policy = policy or ListingPolicy()
    # one fsspec filesystem for everything the source reads: credentials and endpoints
    # come from fsspec's usual configuration (environment, ~/.aws, fsspec config)
    landing_fs, _ = fsspec.core.url_to_fs(landing_url)

    @dlt.resource(name="telemetry")
    def telemetry() -> Iterator[Any]:
        """Parse new or changed files; record every file's outcome."""
        ingested_at = datetime.now(UTC)
        listing = list_telemetry(landing_fs, landing_url, known, policy, ingested_at)
        if on_listed:
            on_listed(listing.listed, len(listing.new) + len(listing.skipped), listing.waiting)
        seen_hashes = dict(known.hashes)
        load_id = dlt.current.load_package_state()["load_id"]
        writer = _ReadingsWriter(load_id, staging_dir)
        readings: list[pa.Table] = []
        rejects: list[dict[str, Any]] = []
        files = [_skipped(path, ingested_at) for path in listing.skipped]
        for outcome in files:
            if on_file:
                on_file(outcome)
        for result in _prefetch(listing, policy, workers):
            outcome, parsed_readings, parsed_rejects = _outcome(
                result, seen_hashes, ingested_at, quarantine_url
            )
            files.append(outcome)
            rejects.extend(parsed_rejects)
            if parsed_readings is not None:
                readings.append(parsed_readings)
            if on_file:
                on_file(outcome)
            if len(files) >= chunk_files:  # bounded memory: hand over one chunk at a time
                yield from _flush(writer, readings, rejects, files)
        yield from _flush(writer, readings, rejects, files)
        yield from writer.close()

    def changed(path: str) -> bytes | None:
        """The file's bytes if it exists and differs from the last version this resource
        loaded or rejected whole (an export rejected whole is not read again until it changes)."""
        fs, root = fsspec.core.url_to_fs(landing_url)
        full = f"{root.rstrip('/')}/{path}"
        try:
            data: bytes = fs.cat_file(full)
        except FileNotFoundError:
            return None
        state = dlt.current.resource_state()
        digest = sha256(data)
        return None if digest in (state.get("sha256"), state.get("rejected_sha256")) else data

    def export_rejects(path: str, data: bytes, parsed: ExportRows) -> Iterator[Any]:
        """The export's rejected lines (or the whole file), then its state."""
        digest = sha256(data)
        now = datetime.now(UTC)
        if parsed.rejects:
            rows = [
                r | {"source_file": path, "source_file_sha256": digest, "ingested_at": now}
                for r in parsed.rejects
            ]
            yield _table(rows, "export_rejects")
        key = "rejected_sha256" if parsed.rejected_whole else "sha256"
        dlt.current.resource_state()[key] = digest

    @dlt.resource(name="maintenance_log", write_disposition="append", columns=MAINTENANCE_COLUMNS)
    def maintenance_log() -> Iterator[Any]:
        """A snapshot of the work-order export, each time its content changes."""
        if (data := changed(MAINTENANCE_PATH)) is None:
            yield dlt.mark.materialize_table_schema()  # appends nothing
            return
        table, parsed = parse_maintenance_log(data, pseudonym_key)
        if not parsed.rejected_whole:
            n = table.num_rows
            table = table.append_column("source_file_sha256", pa.repeat(pa.scalar(sha256(data)), n))
            table = table.append_column(
                "ingested_at",
                pa.repeat(pa.scalar(datetime.now(UTC), pa.timestamp("us", "UTC")), n),
            )
            yield table
        yield from export_rejects(MAINTENANCE_PATH, data, parsed)

    def registry(name: str, path: str) -> Any:
        @dlt.resource(name=name, write_disposition="replace", columns=REGISTRY_COLUMNS[name])
        def read() -> Iterator[Any]:
            data = changed(path)
            parsed = parse_registry(data, name) if data is not None else None
            if parsed is None or parsed[1].rejected_whole:
                # an empty table until the file first arrives (once loaded, an unchanged
                # file keeps its table: with `replace`, materializing would empty it)
                if "sha256" not in dlt.current.resource_state():
                    yield dlt.mark.materialize_table_schema()
            else:
                yield parsed[0]
            if data is not None and parsed is not None:
                yield from export_rejects(path, data, parsed[1])

        return read

    def declared(table: str) -> Any:
        """Creates `table` with its declared columns even when no run has had such rows."""

        @dlt.resource(
            name=f"{table}_declared",
            table_name=table,
            write_disposition="append",
            columns=_TABLE_COLUMNS[table],
        )
        def materialize() -> Iterator[Any]:
            yield dlt.mark.materialize_table_schema()

        return materialize

    return (
        *(declared(table) for table in _TABLE_COLUMNS),
        telemetry,
        maintenance_log,
        registry("machine_registry", "registry/machines.csv"),
        registry("sensor_ratings", "registry/sensor_ratings.csv"),
    )


def _outcome(
    result: _FileResult,
    seen_hashes: dict[str, str],
    ingested_at: datetime,
    quarantine_url: str | None,
) -> tuple[dict[str, Any], pa.Table | None, list[dict[str, Any]]]:
    """A file's outcome row, and its readings and rejects when it was parsed."""
    item = result.item
    readings_out: pa.Table | None = None
    rejects_out: list[dict[str, Any]] = []
    rel = item["relative_path"]
    outcome: dict[str, Any] = {
        "file_url": item["file_url"],
        "relative_path": rel,
        # a path that does not say which machine-hour it is names none
        "machine_id": _machine_from_path(rel) if result.trusted_path else None,
        "file_hour_at": file_hour(rel) if result.trusted_path else None,
        "size_bytes": result.size,
        "modified_at": item["modification_date"],
        "content_sha256": result.data_sha or None,  # None: never read
        "status": None,
        "reason": None,
        "rows_read": 0,
        "rows_loaded": 0,
        "rows_rejected": 0,
        "encoding": None,
        "model": None,
        "firmware": None,
        "sample_interval_s": None,
        "sensor_columns": None,
        "first_reading_at": None,
        "last_reading_at": None,
        "duplicate_of": None,
        "quarantine_path": None,
        "ingested_at": ingested_at,
    }
    parsed = result.parsed
    if result.vanished:
        outcome |= {"status": "skipped", "reason": "deleted between listing and reading"}
    elif result.size and result.data_sha and result.data_sha in seen_hashes:  # empty: a failure
        outcome |= {
            "status": "duplicate",
            "duplicate_of": seen_hashes[result.data_sha],
            "reason": "same content as a file already ingested",
        }
    elif parsed is None:
        outcome |= {"status": "quarantined", "reason": result.error}
        outcome["quarantine_path"] = _quarantine(quarantine_url, rel, result)
        if result.data_sha and result.trusted_path:
            # a file quarantined for its name or hour may come back corrected under a
            # proper name: its content must not then count as a copy
            seen_hashes[result.data_sha] = rel
    else:
        seen_hashes[result.data_sha] = rel
        header = parsed.header
        machine = header.keys["machine_id"]
        path_machine = outcome["machine_id"]
        if path_machine and path_machine != machine:
            outcome |= {
                "status": "quarantined",
                "reason": f"header machine_id {machine} differs from folder {path_machine}",
            }
            outcome["quarantine_path"] = _quarantine(quarantine_url, rel, result)
        else:
            readings = parsed.readings
            n = readings.num_rows
            for name, value, type_ in (
                ("source_file", rel, pa.string()),
                ("source_file_sha256", result.data_sha, pa.string()),
                ("ingested_at", ingested_at, pa.timestamp("us", tz="UTC")),
            ):
                readings = readings.append_column(name, pa.repeat(pa.scalar(value, type_), n))
            if n:
                readings_out = readings
            rejects_out = [
                {
                    **r,
                    "source_file": rel,
                    "source_file_sha256": result.data_sha,
                    "machine_id": machine,
                    "ingested_at": ingested_at,
                }
                for r in parsed.rejects
            ]
            times = readings["reading_at"]
            outcome |= {
                "status": "partial" if parsed.truncated else "loaded",
                "reason": "truncated upload: last line incomplete" if parsed.truncated else None,
                "machine_id": machine,
                "rows_read": parsed.rows_read,
                "rows_loaded": n,
                "rows_rejected": parsed.rows_rejected,
                "encoding": parsed.encoding,
                "model": header.keys.get("model"),
                "firmware": header.keys.get("firmware"),
                "sample_interval_s": int(header.keys["sample_interval_s"]),
                "sensor_columns": json.dumps(header.sensors),
                "first_reading_at": pc.min(times).as_py() if n else None,
                "last_reading_at": pc.max(times).as_py() if n else None,
            }
    return outcome, readings_out, rejects_out


def _skipped(path: SkippedPath, ingested_at: datetime) -> dict[str, Any]:
    """The outcome of a path that is not a telemetry file: recorded, never read."""
    return dict.fromkeys(FILE_COLUMNS) | {
        "file_url": None,
        "relative_path": path.relative_path,
        "machine_id": None,
        "size_bytes": path.size,
        "modified_at": path.modified_at,
        "status": "skipped",
        "reason": path.reason,
        "rows_read": 0,
        "rows_loaded": 0,
        "rows_rejected": 0,
        "ingested_at": ingested_at,
    }


def _flush(
    writer: _ReadingsWriter,
    readings: list[pa.Table],
    rejects: list[dict[str, Any]],
    files: list[dict[str, Any]],
) -> Iterator[Any]:
    """Hand a chunk to dlt: readings to the Parquet stream, rejects and outcomes as rows."""
    if readings:
        yield from writer.add(readings)
    if rejects:
        yield _table(list(rejects), "telemetry_rejects")
    if files:
        yield _table(list(files), "landing_files")
    readings.clear()
    rejects.clear()
    files.clear()


def _prefetch(listing: Listing, policy: ListingPolicy, workers: int) -> Iterator[_FileResult]:
    """Read and parse in worker threads, in order, a bounded number of files ahead,
    so that parsing overlaps with writing and memory does not grow with the batch."""
    ahead = 16 * max(1, workers)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending: deque[Future[_FileResult]] = deque()
        for item in listing.new:
            problem = listing.problems.get(item["relative_path"])
            pending.append(pool.submit(_read_and_parse, item, problem, policy))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _ReadingsWriter:
    """Streams a run's readings into as few Parquet load files as possible.

    Written here rather than by dlt's Arrow writer, for reasons measured on this
    data: dlt writes doubles dictionary-encoded (six times slower for readings,
    which hardly repeat) and starts a new file at every change of schema, i.e.
    at every change of machine model, and DuckDB loads one big file much faster
    than many small ones. A new file starts only when a new sensor column
    appears. Columns follow the table schema's order, so dlt imports the file
    as it is.

    Rows are grouped by machine: each machine's files are buffered until
    `group_rows` readings, then written as one row group. Files arrive in
    delivery order (every machine's hour, then the next hour), and a machine
    reports only its model's sensors, so in delivery order every row group
    mixes all machines and no sensor column is ever all NULL in one; grouped,
    half the columns of a row group are NULL throughout, and DuckDB's
    checkpoint of the wide table (paid by every hourly run, in proportion to
    the whole table) gets cheaper: one new hour on 7 days of history took
    4.1-4.5 s instead of 6.6-7.0 s (bench/README.md). Memory stays bounded: at
    most `max_buffered` readings wait, after which the biggest group is written.
    """

    def __init__(
        self,
        load_id: str,
        staging_dir: str,
        max_rows: int = 1_000_000,
        group_rows: int = 65_536,
        max_buffered: int = 393_216,
        known_columns: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.load_id = load_id
        self.staging_dir = Path(staging_dir)
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None
        self.rows = 0
        self.max_rows = max_rows
        self.group_rows = group_rows
        self.max_buffered = max_buffered
        self.groups: dict[str, list[pa.Table]] = {}
        self.group_sizes: Counter[str] = Counter()
        self.schema: pa.Schema | None = None  # the last file's
        # the readings table's columns as dlt knows them (its schema, in order)
        self.known_columns = known_columns or (
            lambda: (
                dlt.current.source_schema().tables.get("telemetry_readings", {}).get("columns", {})
            )
        )

    def add(self, tables: list[pa.Table]) -> Iterator[Any]:
        for table in tables:
            if not table.num_rows:
                continue
            machine = table["machine_id"][0].as_py()  # one file: one machine
            self.groups.setdefault(machine, []).append(table)
            self.group_sizes[machine] += table.num_rows
            if self.group_sizes[machine] >= self.group_rows:
                yield from self._write_group(machine)
            elif self.group_sizes.total() > self.max_buffered:
                yield from self._write_group(self.group_sizes.most_common(1)[0][0])

    def _write_group(self, machine: str) -> Iterator[Any]:
        chunk = pa.concat_tables(self.groups.pop(machine), promote_options="default")
        del self.group_sizes[machine]
        chunk = chunk.append_column(
            "_dlt_load_id", pa.repeat(pa.scalar(self.load_id), chunk.num_rows)
        )
        if self.writer and (
            set(chunk.column_names) - set(self.writer.schema.names)  # a new sensor column
            or self.rows >= self.max_rows  # or big enough: DuckDB's memory stays bounded
        ):
            yield from self._close_file()
        if self.writer is None:
            # with the columns of every buffered file too: the groups of the other
            # machine models then fit in this file instead of starting new ones
            waiting = [t.schema for tables in self.groups.values() for t in tables]
            self._open(pa.unify_schemas([chunk.schema, *waiting]))
        assert self.writer is not None
        schema = self.writer.schema
        n = chunk.num_rows
        columns = [
            chunk[f.name].cast(f.type) if f.name in chunk.column_names else pa.nulls(n, f.type)
            for f in schema
        ]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=65_536)
        self.rows += n

    def _open(self, chunk_schema: pa.Schema) -> None:
        known_columns = self.known_columns()
        fields = {f.name: f for f in chunk_schema}
        ordered = [
            fields.get(name) or pa.field(name, _arrow_type(col))
            for name, col in known_columns.items()
            if name in fields or col.get("data_type")
        ]
        # and every column this run's earlier files had (machine models differ)
        if self.schema is not None:
            ordered += [f for f in self.schema if f.name not in known_columns]
        names = {f.name for f in ordered}
        ordered += [f for name, f in fields.items() if name not in names]
        schema = pa.schema(ordered)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.staging_dir / f"readings_{self.load_id}_{uuid.uuid4().hex[:12]}.parquet"
        strings = [f.name for f in schema if pa.types.is_string(f.type)]
        # uncompressed: the file lives only until dlt has loaded it, compressing it
        # was half of the writer's time, and DuckDB loads both equally fast
        self.schema = schema
        self.writer = pq.ParquetWriter(
            self.path, schema, compression="none", use_dictionary=strings
        )

    def close(self) -> Iterator[Any]:
        for machine in sorted(self.groups):
            yield from self._write_group(machine)
        yield from self._close_file()

    def _close_file(self) -> Iterator[Any]:
        if self.writer is None or self.path is None:
            return
        schema = self.writer.schema
        self.writer.close()
        hints = dlt.mark.make_hints(
            table_name="telemetry_readings",
            write_disposition="append",
            columns=py_arrow_to_table_schema_columns(schema),
        )
        yield dlt.mark.with_file_import(str(self.path), "parquet", self.rows, hints=hints)
        self.writer, self.path, self.rows = None, None, 0


def _arrow_type(column: Mapping[str, Any]) -> pa.DataType:
    """Arrow type of a column the readings table already has (sensors are doubles)."""
    return {
        "double": pa.float64(),
        "text": pa.string(),
        "bigint": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }.get(column.get("data_type", "double"), pa.float64())


def _quarantine(quarantine_url: str | None, rel: str, result: _FileResult) -> str | None:
    """Keep the original bytes and the reason beside them."""
    if quarantine_url is None or (result.data is None and not result.data_sha):
        return None  # never read (too big): it stays where it is in the landing area
    data = result.data if result.data is not None else result.item.read_bytes()
    fs, root = fsspec.core.url_to_fs(quarantine_url)
    target = f"{root.rstrip('/')}/{result.data_sha[:12]}/{rel}"
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(target, data)
    reason = {"file": rel, "sha256": result.data_sha, "reason": result.error}
    fs.pipe_file(target + ".reason.json", json.dumps(reason, indent=2).encode())
    return target
