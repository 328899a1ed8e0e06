"""A strict, slow, pure-Python reader of the machine-file contract (docs/machine-files.md).

Tests use it as an independent reference: it shares no code with the simulator
or the ingestion, so a bug in either shows up as a disagreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

HEADER_KEYS = (
    "machine_id",
    "model",
    "firmware",
    "plant",
    "timezone",
    "start_time",
    "sample_interval_s",
)
STATUSES = {"RUN", "IDLE", "SETUP", "ALARM", "MAINT"}
NUMBER = re.compile(r"^-?\d+(,\d+)?$")
GARBAGE = re.compile("[\x00\x80-\x9f]")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@dataclass
class ParsedFile:
    header: dict[str, str]
    columns: list[str]
    rows: list[list[str]]  # fields of every well-formed data row
    row_lines: list[int]  # 1-based line of each row
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what)
    ends_with_newline: bool = True
    encoding: str = "utf-8"

    @property
    def sensors(self) -> list[str]:
        return self.columns[2:]

    def utc(self, row: int) -> datetime:
        return datetime.fromisoformat(self.rows[row][0])


def parse(data: bytes) -> ParsedFile:
    """Parse one telemetry file; raise ValueError if it is not a telemetry file at all."""
    if not data:
        raise ValueError("empty file")
    encoding = "utf-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # a latin-1 file, or a UTF-8 file with a binary garbage line: decide by the header
        head = data.split(b"\n", 9)[:9]
        try:
            b"\n".join(head).decode("utf-8")
        except UnicodeDecodeError:
            encoding = "latin-1"
    lines = data.split(b"\n")
    ends = data.endswith(b"\n")
    if ends:
        lines = lines[:-1]
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].startswith(b"#"):
        text = lines[i].decode(encoding)
        if ":" in text:
            key, _, value = text[1:].partition(":")
            header[key.strip()] = value.strip()
        i += 1
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing or i >= len(lines):
        raise ValueError(f"no header: missing {missing}")
    columns = lines[i].decode(encoding).split(";")
    if columns[:2] != ["timestamp", "status"]:
        raise ValueError(f"bad header row {columns[:3]}")
    parsed = ParsedFile(header, columns, [], [], ends_with_newline=ends, encoding=encoding)
    for n, raw in enumerate(lines[i + 1 :], start=i + 2):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            parsed.problems.append((n, "undecodable"))
            continue
        if GARBAGE.search(text):  # NUL or C1 control characters never occur in text
            parsed.problems.append((n, "undecodable"))
            continue
        fields = text.split(";")
        if not ends and n == len(lines):
            parsed.problems.append((n, "truncated"))
            continue
        if len(fields) != len(columns):
            parsed.problems.append((n, f"fields:{len(fields)}"))
            continue
        if not TIMESTAMP.match(fields[0]) or fields[1] not in STATUSES:
            parsed.problems.append((n, "bad timestamp or status"))
            continue
        for col, value in zip(columns[2:], fields[2:], strict=True):
            if value and not NUMBER.match(value):
                parsed.problems.append((n, f"non_numeric:{col}"))
        parsed.rows.append(fields)
        parsed.row_lines.append(n)
    return parsed


def number(value: str) -> float | None:
    return float(value.replace(",", ".")) if value else None
