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

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
import fsspec
import pyarrow as pa
from dlt.common.data_types import TDataType
from dlt.common.schema import TColumnSchema

from ingestion.exports import ExportRows, parse_maintenance_log, parse_registry
from ingestion.listing import (
    KnownFiles,
    ListingPolicy,
    list_telemetry,
)
from ingestion.load_files import ReadingsWriter
from ingestion.outcomes import FileOutcome, dlt_columns, outcome_of, skipped
from ingestion.parsing import prefetch
from ingestion.telemetry import sha256

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
FILE_COLUMNS = dlt_columns(FileOutcome)
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


@dlt.source(name="landing")
def landing_source(
    landing_url: str,
    known: KnownFiles | None = None,
    quarantine_url: str | None = None,
    pseudonym_key: bytes = b"",
    on_file: Callable[[FileOutcome], None] | None = None,
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
        try:
            load_id = dlt.current.load_package_state()["load_id"]
        except Exception:  # iterated without a pipeline (a test, a notebook): no package
            load_id = "no_load_package"
        writer = ReadingsWriter(load_id, staging_dir)
        readings: list[pa.Table] = []
        rejects: list[dict[str, Any]] = []
        files = [skipped(path, ingested_at) for path in listing.skipped]
        for outcome in files:
            if on_file:
                on_file(outcome)
        for result in prefetch(listing, policy, workers):
            parsed = outcome_of(result, seen_hashes, ingested_at, quarantine_url)
            files.append(parsed.outcome)
            rejects.extend(parsed.rejects)
            if parsed.readings is not None:
                readings.append(parsed.readings)
            if on_file:
                on_file(parsed.outcome)
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


def _flush(
    writer: ReadingsWriter,
    readings: list[pa.Table],
    rejects: list[dict[str, Any]],
    files: list[FileOutcome],
) -> Iterator[Any]:
    """Hand a chunk to dlt: readings to the Parquet stream, rejects and outcomes as rows."""
    if readings:
        yield from writer.add(readings)
    if rejects:
        yield _table(list(rejects), "telemetry_rejects")
    if files:
        yield _table([f.row() for f in files], "landing_files")
    readings.clear()
    rejects.clear()
    files.clear()
