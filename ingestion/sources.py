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

from ingestion.export_resources import (
    REGISTRY_PATHS,
    maintenance_log,
    registry,
    registry_changed,
)
from ingestion.exports import PLANT_TIMEZONE
from ingestion.listing import KnownFiles, ListingPolicy, list_telemetry
from ingestion.load_files import ReadingsWriter
from ingestion.outcomes import FileOutcome, outcome_of, skipped
from ingestion.parsing import prefetch
from ingestion.tables import APPENDED_TABLES, declared_table, with_table_hints


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
    plant_timezone: str = PLANT_TIMEZONE,
    decimal_values: bool = False,
) -> Sequence[Any]:
    """The landing area's telemetry files, maintenance export and registry. With
    `decimal_values` (a lake), sensor values are stored as exact decimals
    (load_files.exact_decimals)."""
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
        writer = ReadingsWriter(load_id, staging_dir, decimal_values=decimal_values)
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

    return (
        *(declared_table(table) for table in APPENDED_TABLES),
        telemetry,
        maintenance_log(landing_url, pseudonym_key, plant_timezone),
        *(
            registry(landing_url, name)
            for name in REGISTRY_PATHS
            if registry_changed(landing_url, name)
        ),
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
        yield with_table_hints(list(rejects), "telemetry_rejects")
    if files:
        yield with_table_hints([f.row() for f in files], "landing_files")
    readings.clear()
    rejects.clear()
    files.clear()
