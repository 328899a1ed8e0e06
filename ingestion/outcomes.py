"""What happened to each telemetry file: one `FileOutcome` per file version seen, the row
of `raw.landing_files` whose counts reconcile with the readings and rejects loaded.

    loaded       parsed; its readings (and rejected rows) loaded
    partial      a truncated upload: the complete lines loaded, the last one rejected
    quarantined  unreadable, or its name or header cannot be trusted: copied aside with
                 the reason, nothing loaded
    duplicate    the same content as a file already ingested: not parsed again
    skipped      not a telemetry file, or deleted between listing and reading
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Union, get_args, get_origin, get_type_hints

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.listing import SkippedPath, file_hour
from ingestion.parsing import FileResult
from ingestion.quarantine import quarantine

_HOUR = pa.scalar(timedelta(hours=1), pa.duration("us"))


@dataclass(kw_only=True)
class FileOutcome:
    """One file version's row in raw.landing_files (the fields in the table's order)."""

    file_url: str | None = None
    relative_path: str
    machine_id: str | None = None
    size_bytes: int | None = None
    modified_at: datetime | None = None
    content_sha256: str | None = None  # None: never read
    status: str | None = None
    reason: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    encoding: str | None = None
    model: str | None = None
    firmware: str | None = None
    sample_interval_s: int | None = None
    sensor_columns: str | None = None  # the header's sensor names, as a JSON list
    first_reading_at: datetime | None = None
    last_reading_at: datetime | None = None
    file_hour_at: datetime | None = None  # the UTC hour its name says; None if it says none
    duplicate_of: str | None = None
    quarantine_path: str | None = None
    ingested_at: datetime

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ParsedFile:
    """A file's outcome, and what it adds to the readings and rejects tables."""

    outcome: FileOutcome
    readings: pa.Table | None = None
    rejects: list[dict[str, Any]] = field(default_factory=list)


_DLT_TYPES = {str: "text", int: "bigint", datetime: "timestamp"}


def dlt_columns(record: type) -> dict[str, Any]:
    """dlt column hints for a record dataclass: every column nullable, typed by its field."""
    hints = get_type_hints(record)
    columns: dict[str, Any] = {}
    for f in fields(record):
        hint = hints[f.name]
        if get_origin(hint) in (Union, types.UnionType):
            hint = next(a for a in get_args(hint) if a is not type(None))
        columns[f.name] = {"data_type": _DLT_TYPES[hint], "nullable": True}
    return columns


def skipped(path: SkippedPath, ingested_at: datetime) -> FileOutcome:
    """The outcome of a path that is not a telemetry file: recorded, never read."""
    return FileOutcome(
        relative_path=path.relative_path,
        ingested_at=ingested_at,
        status="skipped",
        reason=path.reason,
        size_bytes=path.size,
        modified_at=path.modified_at,
    )


def outcome_of(
    result: FileResult,
    seen_hashes: dict[str, str],
    ingested_at: datetime,
    quarantine_url: str | None,
) -> ParsedFile:
    """A read file's outcome, and its readings and rejects when it was parsed.

    `seen_hashes` (content hash -> first path) is updated: a later copy of the same
    content is a duplicate."""
    item = result.item
    rel = item["relative_path"]
    outcome = FileOutcome(
        relative_path=rel,
        ingested_at=ingested_at,
        file_url=item["file_url"],
        # a path that does not say which machine-hour it is names none
        machine_id=_machine_from_path(rel) if result.trusted_path else None,
        file_hour_at=file_hour(rel) if result.trusted_path else None,
        size_bytes=result.size,
        modified_at=item["modification_date"],
        content_sha256=result.data_sha or None,
    )
    if result.vanished:
        outcome.status, outcome.reason = "skipped", "deleted between listing and reading"
    elif result.size and result.data_sha and result.data_sha in seen_hashes:  # empty: a failure
        outcome.status, outcome.reason = "duplicate", "same content as a file already ingested"
        outcome.duplicate_of = seen_hashes[result.data_sha]
    elif result.parsed is None:
        _quarantine(outcome, result.error, quarantine_url, result)
        if result.data_sha and result.trusted_path:
            # a file quarantined for its name or hour may come back corrected under a
            # proper name: its content must not then count as a copy
            seen_hashes[result.data_sha] = rel
    else:
        seen_hashes[result.data_sha] = rel
        machine = result.parsed.header.keys["machine_id"]
        if outcome.machine_id and outcome.machine_id != machine:
            reason = f"header machine_id {machine} differs from folder {outcome.machine_id}"
            _quarantine(outcome, reason, quarantine_url, result)
        else:
            return _loaded(outcome, result, machine)
    return ParsedFile(outcome)


def _quarantine(
    outcome: FileOutcome, reason: str | None, quarantine_url: str | None, result: FileResult
) -> None:
    outcome.status, outcome.reason = "quarantined", reason
    outcome.quarantine_path = quarantine(quarantine_url, outcome.relative_path, result)


def _loaded(outcome: FileOutcome, result: FileResult, machine: str) -> ParsedFile:
    """A parsed file: its readings with their file's columns, its rejects, its counts."""
    parsed = result.parsed
    assert parsed is not None
    rel, n = outcome.relative_path, parsed.readings.num_rows
    readings = parsed.readings
    for name, value, type_ in (
        ("source_file", rel, pa.string()),
        ("source_file_sha256", result.data_sha, pa.string()),
        ("ingested_at", outcome.ingested_at, pa.timestamp("us", tz="UTC")),
    ):
        readings = readings.append_column(name, pa.repeat(pa.scalar(value, type_), n))
    rejects = [
        {
            **r,
            "source_file": rel,
            "source_file_sha256": result.data_sha,
            "machine_id": machine,
            "ingested_at": outcome.ingested_at,
        }
        for r in parsed.rejects
    ]
    header, times = parsed.header, readings["reading_at"]
    outcome.status = "partial" if parsed.truncated else "loaded"
    notes = ["truncated upload: last line incomplete"] if parsed.truncated else []
    notes += header.notes
    if n and outcome.file_hour_at is not None:
        hour = pa.scalar(outcome.file_hour_at, times.type)
        outside = pc.sum(
            pc.or_(pc.less(times, hour), pc.greater_equal(times, pc.add(hour, _HOUR)))
        ).as_py()
        if outside:
            notes.append(f"{outside} reading(s) outside the file's hour (machine clock off)")
    outcome.reason = "; ".join(notes) or None
    outcome.machine_id = machine
    outcome.rows_read, outcome.rows_loaded = parsed.rows_read, n
    outcome.rows_rejected = parsed.rows_rejected
    outcome.encoding = parsed.encoding
    outcome.model, outcome.firmware = header.keys.get("model"), header.keys.get("firmware")
    outcome.sample_interval_s = int(header.keys["sample_interval_s"])
    outcome.sensor_columns = json.dumps(header.sensors)
    outcome.first_reading_at = pc.min(times).as_py() if n else None
    outcome.last_reading_at = pc.max(times).as_py() if n else None
    return ParsedFile(outcome, readings if n else None, rejects)


def _machine_from_path(relative_path: str) -> str | None:
    parts = relative_path.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "telemetry" else None
