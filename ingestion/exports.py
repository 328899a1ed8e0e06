"""The plant's CSV exports (maintenance log, registry), judged row by row.

A bad row is rejected with its line and a reason and the rest of the export loads;
an export that cannot be read at all (empty, no header, a required column missing)
is rejected whole and the previous snapshot stays. A reason never quotes the
maintenance export's personal fields (technician, notes): only line numbers, column
names and the values of non-personal columns.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

# the export's times are plant local time: the setting plant_timezone (this is its default)
PLANT_TIMEZONE = "America/Sao_Paulo"
MAINTENANCE_TYPES = ("preventive", "corrective")
MAX_RECORD_LINES = 5  # a quoted note may run over a few lines; more is an unclosed quote
MACHINE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as in the telemetry folders
MAINTENANCE_COLUMNS = (
    "work_order",
    "machine_id",
    "reported_at",
    "started_at",
    "ended_at",
    "maintenance_type",
    "component",
    "failure_mode",
    "technician",
    "notes",
)


@dataclass
class ExportRows:
    """What an export gave: typed rows, and the lines (or the file) rejected."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)  # line_number, reason

    @property
    def rejected_whole(self) -> bool:
        return any(r["line_number"] is None for r in self.rejects)

    def reject(self, line: int | None, reason: str) -> None:
        self.rejects.append({"line_number": line, "reason": reason})


def _records(data: bytes, delimiter: str, required: Sequence[str], out: ExportRows) -> list[Any]:
    """(line number, {column: text}) per data row; rows of the wrong width are rejected."""
    if not data.strip():
        out.reject(None, "empty export: the previous snapshot is kept")
        return []
    # line by line: one latin-1 line (a spreadsheet's export) must not change how the
    # other lines' names decode, or their pseudonyms
    lines = []
    for raw in data.removeprefix(b"\xef\xbb\xbf").split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("latin-1"))
    physical = [line + "\n" for line in lines]
    try:
        header = [h.strip() for h in next(csv.reader(physical[:1], delimiter=delimiter))]
    except (StopIteration, csv.Error):
        header = []
    if not any(header):
        out.reject(None, "no header row: the previous snapshot is kept")
        return []
    missing = [c for c in required if c not in header]
    if missing:
        out.reject(None, f"export lacks column(s) {', '.join(missing)}: previous snapshot kept")
        return []
    records: list[tuple[int, dict[str, str]]] = []
    pos = 1  # index of the physical line the next record starts on
    while pos < len(physical):
        pos = _read_from(physical, pos, header, delimiter, records, out)
    return records


def _read_from(
    physical: list[str],
    pos: int,
    header: list[str],
    delimiter: str,
    records: list[tuple[int, dict[str, str]]],
    out: ExportRows,
) -> int:
    """Read records from physical line `pos` on; returns where to go on (the end, or the
    line after a record that an unclosed quote ran on for too many lines)."""
    reader = csv.reader(physical[pos:], delimiter=delimiter)
    consumed = 0
    while True:
        start = pos + consumed  # 0-based: the record's line number is start + 1
        try:
            fields = next(reader)
        except StopIteration:
            return len(physical)
        except csv.Error as exc:
            out.reject(start + 1, f"unreadable CSV row: {exc}")
            return start + 1
        span, consumed = reader.line_num - consumed, reader.line_num
        if span > MAX_RECORD_LINES:
            out.reject(start + 1, f"a quote opened on this line runs on for {span} lines")
            return start + 1  # the lines it swallowed are read again as records
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            out.reject(
                start + 1,
                f"{len(fields)} fields, expected {len(header)} (an unquoted '{delimiter}'?)",
            )
            continue
        records.append((start + 1, dict(zip(header, (f.strip() for f in fields), strict=True))))


def pseudonymise(name: str, key: bytes) -> str:
    """Keyed hash: stable per person, not reversible without the key."""
    digest = hmac.new(key, name.strip().casefold().encode(), hashlib.sha256).hexdigest()
    return f"tech_{digest[:16]}"


def parse_maintenance_log(data: bytes, key: bytes, timezone: str) -> tuple[pa.Table, ExportRows]:
    """The work-order export, typed, with UTC times; names hashed and notes dropped.

    Rejected: a row whose date is not a real `dd/mm/yyyy HH:MM`, whose type is not
    preventive/corrective, whose machine id is malformed, or that ends before it
    started. A work order listed twice keeps its last line (the export appends
    corrections); the earlier lines are rejected.
    """
    if not key:
        raise ValueError("a pseudonymisation key is required to read the maintenance log")
    out = ExportRows()
    zone = ZoneInfo(timezone)
    by_order: dict[str, dict[str, Any]] = {}
    for line, rec in _records(data, ";", MAINTENANCE_COLUMNS, out):
        row, reason = _work_order(rec, zone, key)
        if reason:
            out.reject(line, reason)
            continue
        assert row is not None
        if (earlier := by_order.get(row["work_order"])) is not None:
            out.reject(earlier["source_line"], f"work order listed again at line {line}")
        by_order[row["work_order"]] = row | {"source_line": line}
    out.rows = sorted(by_order.values(), key=lambda r: r["source_line"])
    return pa.Table.from_pylist(out.rows, schema=MAINTENANCE_SCHEMA), out


MAINTENANCE_SCHEMA = pa.schema(
    [
        ("work_order", pa.string()),
        ("machine_id", pa.string()),
        ("reported_at", pa.timestamp("us", "UTC")),
        ("started_at", pa.timestamp("us", "UTC")),
        ("ended_at", pa.timestamp("us", "UTC")),
        ("maintenance_type", pa.string()),
        ("component", pa.string()),
        ("failure_mode", pa.string()),
        ("technician_key", pa.string()),
        ("has_notes", pa.bool_()),
        ("source_line", pa.int64()),
    ]
)


def _work_order(
    rec: dict[str, str], zone: ZoneInfo, key: bytes
) -> tuple[dict[str, Any] | None, str | None]:
    if not rec["work_order"]:
        return None, "empty work_order"
    if not MACHINE_ID.match(rec["machine_id"]):
        return None, f"machine_id {rec['machine_id'][:40]!r} is not a machine id"
    if rec["maintenance_type"] not in MAINTENANCE_TYPES:
        kind = rec["maintenance_type"][:40]
        return None, f"maintenance_type {kind!r} is not preventive or corrective"
    times: dict[str, datetime | None] = {}
    for col in ("reported_at", "started_at", "ended_at"):
        text = rec[col]
        if not text and col == "ended_at":  # an open work order
            times[col] = None
            continue
        try:
            local = datetime.strptime(text, "%d/%m/%Y %H:%M")  # strict: 31/02 is refused
        except ValueError:
            return None, f"{col} {text[:40]!r} is not a date dd/mm/yyyy HH:MM"
        times[col] = local.replace(tzinfo=zone).astimezone(UTC)
    started, ended = times["started_at"], times["ended_at"]
    if ended is not None and started is not None and ended < started:
        return None, "ended_at is before started_at"
    return {
        "work_order": rec["work_order"],
        "machine_id": rec["machine_id"],
        **times,
        "maintenance_type": rec["maintenance_type"],
        "component": rec["component"] or None,
        "failure_mode": rec["failure_mode"] or None,
        "technician_key": pseudonymise(rec["technician"], key) if rec["technician"] else None,
        "has_notes": bool(rec["notes"]),
    }, None


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _number(text: str) -> float | None:
    return float(text) if text else None


def parse_registry(data: bytes, name: str) -> tuple[pa.Table, ExportRows]:
    """machines.csv or sensor_ratings.csv, typed; a duplicate key keeps its first line."""
    spec = REGISTRY[name]
    out = ExportRows()
    seen: dict[tuple[str, ...], int] = {}
    for line, rec in _records(data, ",", spec.required, out):
        key = tuple(rec[k] for k in spec.key)
        if not all(key):
            out.reject(line, f"empty {' or '.join(spec.key)}")
            continue
        if key in seen:
            out.reject(line, f"{'/'.join(key)[:60]} already given at line {seen[key]}")
            continue
        row: dict[str, Any] = {}
        for column, convert in spec.columns.items():
            try:
                row[column] = convert(rec.get(column, ""))
            except ValueError:
                row = {}
                out.reject(line, f"{column} {rec.get(column, '')[:40]!r} is not valid")
                break
        if row:
            seen[key] = line
            out.rows.append(row)
    if not out.rows and not out.rejected_whole:  # an empty registry would erase the machines
        out.reject(None, "no usable line: the previous snapshot is kept")
    return pa.Table.from_pylist(out.rows, schema=spec.schema), out


@dataclass(frozen=True)
class _RegistrySpec:
    required: tuple[str, ...]
    key: tuple[str, ...]
    columns: dict[str, Callable[[str], Any]]
    schema: pa.Schema


def _machine_id(text: str) -> str:
    if not MACHINE_ID.match(text):
        raise ValueError(text)
    return text


REGISTRY = {
    "machine_registry": _RegistrySpec(
        required=("machine_id", "model"),
        key=("machine_id",),
        columns={
            "machine_id": _machine_id,
            "model": str,
            "line": lambda t: t or None,
            "installed_on": _date,
            "retired_on": _date,
            "rated_power_kw": _number,
        },
        schema=pa.schema(
            [
                ("machine_id", pa.string()),
                ("model", pa.string()),
                ("line", pa.string()),
                ("installed_on", pa.date32()),
                ("retired_on", pa.date32()),
                ("rated_power_kw", pa.float64()),
            ]
        ),
    ),
    "sensor_ratings": _RegistrySpec(
        required=("model", "sensor"),
        key=("model", "sensor"),
        columns={
            "model": str,
            "sensor": str,
            "unit": lambda t: t or None,
            "rated_min": _number,
            "rated_max": _number,
        },
        schema=pa.schema(
            [
                ("model", pa.string()),
                ("sensor", pa.string()),
                ("unit", pa.string()),
                ("rated_min", pa.float64()),
                ("rated_max", pa.float64()),
            ]
        ),
    ),
}
