"""Parse one telemetry file (docs/machine-files.md) into typed Arrow readings.

The fast path is one Arrow CSV read with the schema taken from the file's own
header row (no type sniffing, no Python per row). Slow paths run only for the
files that need them: a file that is not valid UTF-8 (latin-1 export, binary
garbage line) and a file with non-numeric sensor values.

Every data line of a file ends up either as a reading or as a reject, so
``rows_read == rows_loaded + rows_rejected`` holds for every file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

FIXED_COLUMNS = ("timestamp", "status")
# Sensor columns are stored as s_<name>: whatever a file calls its sensors (machine_id,
# reading_at, order, select, hour_at...), no name can meet a column the pipeline or dbt
# adds, or a SQL keyword.
SENSOR_PREFIX = "s_"
MAX_SENSOR_COLUMNS = 512  # a file with more is quarantined before it reaches memory
MAX_NAME_LENGTH = 63  # PostgreSQL's identifier limit: the marts are served there too
REQUIRED_KEYS = ("machine_id", "model", "firmware", "start_time", "sample_interval_s")
STATUSES = ("RUN", "IDLE", "SETUP", "ALARM", "MAINT")
HEADER_SCAN_BYTES = 64 * 1024
_COLUMN_NAME = re.compile(r"^[a-z](?:[a-z0-9]|_(?!_))*$")  # no "__": dlt folds it to "_"
_NUMBER = r"^-?[0-9]+(,[0-9]+)?$"


class QuarantineError(ValueError):
    """The file as a whole cannot be read; it goes to quarantine with this reason."""


@dataclass
class Header:
    keys: dict[str, str]
    columns: list[str]
    lines: int  # header block + header row
    notes: list[str] = field(default_factory=list)  # quirks read past, kept as the reason

    @property
    def sensors(self) -> list[str]:
        return self.columns[len(FIXED_COLUMNS) :]


@dataclass
class ParsedTelemetry:
    header: Header
    encoding: str
    readings: pa.Table
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    truncated: bool = False

    @property
    def rows_loaded(self) -> int:
        return self.readings.num_rows

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode_header(data: bytes) -> tuple[str, str]:
    """(encoding, header text). UTF-8 unless the header itself is not valid UTF-8."""
    head = data[:HEADER_SCAN_BYTES]
    block = 0  # header block and header row: the part that must be text
    for line in head.split(b"\n"):
        block += len(line) + 1
        if not line.startswith(b"#"):
            break
    if b"\x00" in head[:block]:
        raise QuarantineError("binary file: NUL bytes in the header")
    cut = head.rfind(b"\n")
    head = head[: cut + 1] if cut >= 0 else head
    try:
        return "utf-8", head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # the header block alone decides: a binary garbage row further down is a row problem
        block_end = 0
        for line in head.split(b"\n"):
            block_end += len(line) + 1
            if not line.startswith(b"#"):
                break
        if exc.start >= block_end:
            return "utf-8", head[: exc.start].decode("utf-8", errors="replace")
        return "latin-1", head.decode("latin-1")


def parse_header(data: bytes) -> tuple[Header, str]:
    if not data:
        raise QuarantineError("empty file")
    encoding, text = _decode_header(data)  # refuses binary files first
    if b"\r" in data[:HEADER_SCAN_BYTES] and b"\n" not in data[:HEADER_SCAN_BYTES]:
        raise QuarantineError("lines end in CR only (old Mac export): expected LF or CRLF")
    keys: dict[str, str] = {}
    notes: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        key, sep, value = lines[i][1:].partition(":")
        if sep:
            if key.strip() in keys and keys[key.strip()] != value.strip():
                notes.append(f"header key {key.strip()!r} given twice: the last value is used")
            keys[key.strip()] = value.strip()
        i += 1
    if i == 0:
        raise QuarantineError("no header block: the file does not start with '# key: value' lines")
    missing = [k for k in REQUIRED_KEYS if k not in keys]
    if missing:
        raise QuarantineError(f"header block lacks {', '.join(missing)}")
    if i >= len(lines) or not lines[i].strip():
        raise QuarantineError("no header row after the header block")
    columns = lines[i].rstrip("\r").split(";")
    if len(columns) < 3:
        raise QuarantineError(
            f"header row has {len(columns)} ';'-separated column(s): wrong delimiter?"
        )
    if tuple(columns[:2]) != FIXED_COLUMNS:
        raise QuarantineError(f"header row must start with timestamp;status, got {columns[:2]}")
    if len(columns) - len(FIXED_COLUMNS) > MAX_SENSOR_COLUMNS:
        raise QuarantineError(
            f"{len(columns) - len(FIXED_COLUMNS)} sensor columns: a file may have at most "
            f"{MAX_SENSOR_COLUMNS}"
        )
    bad = [c for c in columns if not _COLUMN_NAME.match(c) or len(c) > MAX_NAME_LENGTH]
    if bad:
        raise QuarantineError(
            f"invalid column name(s) in header row: {', '.join(repr(c[:40]) for c in bad[:3])}"
            f" (lowercase letters, digits and single '_', at most {MAX_NAME_LENGTH} characters)"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise QuarantineError(f"repeated column name(s) in header row: {', '.join(repeated[:3])}")
    written = keys["sample_interval_s"]
    # ASCII digits only: Python's int() also reads other scripts' digits ('３６００')
    interval = int(written) if written.isascii() and written.isdigit() else 0
    if not 1 <= interval <= 3600:
        raise QuarantineError(f"sample_interval_s {written!r} not in 1..3600")
    zone = keys.get("timezone", "")
    if zone and not _known_zone(zone):
        notes.append(
            f"header timezone {zone!r} is not an IANA name: times are read from their offsets"
        )
    return Header(keys, columns, i + 1, notes), encoding


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


def _repair_utf8_lines(body: bytes) -> tuple[bytes, set[int]]:
    """Replace lines that are not valid UTF-8 by an escaped, single-field version.

    Returns the repaired body and the 0-based indices of the lines replaced; those
    rows are then rejected by the column-count check like any other bad row.
    """
    lines = body.split(b"\n")
    bad: set[int] = set()
    for k, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.add(k)
            lines[k] = (
                line.decode("utf-8", errors="backslashreplace").replace(";", r"\x3b").encode()
            )
    return b"\n".join(lines), bad


def parse_telemetry(data: bytes) -> ParsedTelemetry:
    """Parse a telemetry file; raise QuarantineError when the file cannot be read at all."""
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark: harmless, dropped
        data = data[3:]
    header, encoding = parse_header(data)
    # split off header block and header row
    pos = 0
    for _ in range(header.lines):
        pos = data.index(b"\n", pos) + 1
    body = data[pos:]
    first_line = header.lines + 1
    rejects: list[dict[str, Any]] = []

    truncated = bool(body) and not body.endswith(b"\n")
    if truncated:  # upload cut mid-line: the tail is not a complete row
        cut = body.rfind(b"\n") + 1
        tail, body = body[cut:], body[:cut]
        rejects.append(
            {
                "line_number": first_line + body.count(b"\n"),
                "raw_line": tail.decode(encoding, errors="backslashreplace"),
                "reason": "truncated: file ends mid-line (incomplete upload)",
            }
        )
    n_lines = body.count(b"\n")
    undecodable: set[int] = set()
    if encoding == "latin-1":
        body = body.decode("latin-1").encode("utf-8")
    else:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            body, undecodable = _repair_utf8_lines(body)

    skipped: dict[int, str] = {}

    def on_invalid(row: pcsv.InvalidRow) -> str:
        line = first_line + row.number - 1
        reason = (
            "binary garbage: line is not valid UTF-8"
            if (row.number - 1) in undecodable
            else f"wrong column count: {row.actual_columns} fields, expected {row.expected_columns}"
        )
        skipped[line] = row.text or ""
        rejects.append({"line_number": line, "raw_line": row.text or "", "reason": reason})
        return "skip"

    names = header.columns
    read_options = pcsv.ReadOptions(column_names=names, use_threads=False, block_size=8 << 20)
    parse_options = pcsv.ParseOptions(
        delimiter=";", quote_char=False, invalid_row_handler=on_invalid, ignore_empty_lines=False
    )
    typed = {c: pa.string() for c in FIXED_COLUMNS} | {c: pa.float64() for c in header.sensors}
    if not body:  # no complete row (an hour file cut inside its only row, or header only)
        empty = pa.table({c: pa.array([], t) for c, t in typed.items()})
        table, _ = _finish(empty, np.empty(0, dtype=np.int64), header)
        return ParsedTelemetry(
            header=header,
            encoding=encoding,
            readings=table,
            rejects=rejects,
            rows_read=len(rejects),
            truncated=truncated,
        )
    try:
        table = pcsv.read_csv(
            pa.py_buffer(body),
            read_options=read_options,
            parse_options=parse_options,
            # only an empty field is a missing reading: Arrow's defaults would also take
            # "NaN", "NULL", "#N/A" and "n/a" as missing, silently
            convert_options=pcsv.ConvertOptions(
                column_types=typed, decimal_point=",", null_values=[""]
            ),
        )
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc):
            raise
        # slow path: some sensor value is not a number; read text, reject those rows
        skipped.clear()
        del rejects[1 if truncated else 0 :]
        table = pcsv.read_csv(
            pa.py_buffer(body),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
        table = _convert_numeric(table, header.sensors)
    lines = np.array(
        [n for n in range(first_line, first_line + n_lines) if n not in skipped], dtype=np.int64
    )
    table, row_rejects = _finish(table, lines, header)
    if row_rejects:
        raw_lines = body.split(b"\n")
        rejects.extend(
            {
                "line_number": line,
                "reason": reason,
                "raw_line": raw_lines[line - first_line].decode("utf-8", errors="backslashreplace"),
            }
            for line, reason in row_rejects
        )
    rejects.sort(key=lambda r: r["line_number"])
    return ParsedTelemetry(
        header=header,
        encoding=encoding,
        readings=table,
        rejects=rejects,
        rows_read=n_lines + (1 if truncated else 0),
        truncated=truncated,
    )


def _convert_numeric(table: pa.Table, sensors: list[str]) -> pa.Table:
    """Cast text sensor columns to float; a non-numeric cell becomes a '__bad__' marker row."""
    bad_any = pa.array(np.zeros(table.num_rows, dtype=bool))
    reasons = pa.nulls(table.num_rows, pa.string())
    for name in sensors:
        col = table[name]
        ok = pc.or_(pc.equal(col, ""), pc.match_substring_regex(col, _NUMBER))
        bad = pc.invert(pc.fill_null(ok, True))
        reason = pc.binary_join_element_wise(f"non-numeric value in {name}: '", col, "'", "")
        reasons = pc.if_else(pc.and_(bad, pc.is_null(reasons)), reason, reasons)
        bad_any = pc.or_(bad_any, bad)
        cleaned = pc.if_else(bad, None, pc.replace_substring(col, ",", "."))
        cleaned = pc.if_else(pc.equal(cleaned, ""), None, cleaned)
        table = table.set_column(
            table.schema.get_field_index(name), name, pc.cast(cleaned, pa.float64())
        )
    return table.append_column("__bad__", reasons)


def _repeated(times: pa.ChunkedArray | pa.Array) -> pa.Array:
    """True for a reading whose time an earlier line of the file already has (a re-sent
    row, or a clock set back): of one machine's readings at one instant the first line is
    kept (docs/machine-files.md)."""
    values = pc.fill_null(pc.cast(times, pa.int64()), np.iinfo(np.int64).min)
    array = values.to_numpy()
    repeated = np.ones(len(array), dtype=bool)
    repeated[np.unique(array, return_index=True)[1]] = False
    repeated[array == np.iinfo(np.int64).min] = False  # no time: another check's reason
    return pa.array(repeated)


def _all_finite(columns: list[pa.ChunkedArray]) -> bool:
    """True when every non-empty value is a finite number (an empty cell is NULL: fine)."""
    chunks = [chunk for column in columns for chunk in column.chunks]
    if not chunks:
        return True
    values = pa.concat_arrays(chunks)
    as_numbers = values.to_numpy(zero_copy_only=False)  # NULL -> NaN
    return int((~np.isfinite(as_numbers)).sum()) == values.null_count


def _any_failed(masks: list[Any], marked: pa.ChunkedArray | None) -> bool:
    """Whether some row fails a check (a NULL check result counts as failed) or was
    marked bad while its values were read."""
    failed = masks[0]
    for mask in masks[1:]:
        failed = pc.or_kleene(failed, mask)  # true if any is true, else NULL if any is
    if marked is not None:
        failed = pc.or_kleene(failed, pc.is_valid(marked))
    return bool(pc.any(pc.fill_null(failed, True)).as_py())


def _finish(
    table: pa.Table, lines: np.ndarray, header: Header
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Timestamps to UTC, row checks, lineage; returns readings and (line, reason) rejects."""
    ts = table["timestamp"]
    reading_at = pc.strptime(ts, format="%Y-%m-%dT%H:%M:%S%z", unit="s", error_is_null=True)
    local_text = pc.utf8_slice_codeunits(ts, 0, 19)
    local = pc.strptime(local_text, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    offset_min = pc.divide(
        pc.cast(
            pc.subtract(pc.cast(local, pa.int64()), pc.cast(reading_at, pa.int64())), pa.int32()
        ),
        60,
    )
    checks = [
        (pc.equal(pc.utf8_length(ts), 0), "empty line"),
        (pc.is_null(reading_at), "timestamp is not ISO 8601 with a UTC offset"),
        # strptime rolls 2026-02-30 over to 2 March: a time that formats back differently
        # does not exist
        (
            pc.not_equal(pc.strftime(local, format="%Y-%m-%dT%H:%M:%S"), local_text),
            "impossible calendar time",
        ),
        (pc.greater(pc.abs(offset_min), 14 * 60), "UTC offset beyond ±14:00"),
        (pc.invert(pc.is_in(table["status"], pa.array(STATUSES))), "unknown status"),
        (
            _repeated(reading_at),
            "repeated timestamp: an earlier line of the file has the same time (kept)",
        ),
    ]
    # "NaN", "inf" or a 400-digit number parse as floats; the usual case, every sensor
    # finite, is one NumPy check of all of them
    if not _all_finite([table[name] for name in header.sensors]):
        for name in header.sensors:
            infinite = pc.fill_null(pc.invert(pc.is_finite(table[name])), False)  # empty: fine
            checks.append((infinite, f"non-numeric value in {name}: not a finite number"))
    marked = table["__bad__"] if "__bad__" in table.column_names else None
    table = table.drop_columns(["__bad__"]) if marked is not None else table
    rejects: list[tuple[int, str]] = []
    if _any_failed([mask for mask, _ in checks], marked):  # the reasons only when needed
        reason = pa.nulls(table.num_rows, pa.string())
        for mask, text in checks:
            failed = pc.and_(pc.fill_null(mask, True), pc.is_null(reason))
            reason = pc.if_else(failed, text, reason)
        if marked is not None:
            reason = pc.coalesce(reason, marked)
        bad = pc.is_valid(reason)
        mask = bad.to_numpy(zero_copy_only=False)
        rejects = [(int(lines[k]), str(reason[int(k)])) for k in np.flatnonzero(mask)]
        keep = pc.invert(bad)
        table, reading_at, lines = table.filter(keep), reading_at.filter(keep), lines[~mask]
        offset_min = offset_min.filter(keep)
    n = table.num_rows
    out = pa.table(
        {
            "machine_id": pa.repeat(pa.scalar(header.keys["machine_id"]), n),
            "reading_at": pc.cast(reading_at, pa.timestamp("us", tz="UTC")),
            "utc_offset_min": pc.cast(offset_min, pa.int16()),
            "status": table["status"],
            **{SENSOR_PREFIX + name: table[name] for name in header.sensors},
            "source_line": pa.array(lines, pa.int32()),
        }
    )
    return out, rejects
