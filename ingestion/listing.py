"""List the landing area's telemetry files and decide, before reading a byte, what each is.

A path is one of:
    new       a file version the warehouse does not hold yet, with a name that says
              which machine and hour it covers: it is read and parsed
    problem   a .txt file whose name or hour cannot be trusted (no machine folder, an
              impossible or implausible hour, a name that disagrees with its folders,
              too big): it is quarantined with that reason, never parsed
    skipped   not a telemetry file (symbolic link, FIFO or device, another extension):
              recorded once with the reason, never read
    waiting   possibly still being written: taken at a later run, once its
              modification time is older than the settle interval or a later hour of
              the same machine has arrived
"""

from __future__ import annotations

import mimetypes
import os
import pathlib
import posixpath
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fsspec
from dlt.sources.filesystem import FileItem, FileItemDict

TELEMETRY_DIR = "telemetry"
TELEMETRY_SUFFIX = ".txt"
# telemetry/<machine>/<yyyy>/<mm>/<dd>/<machine>_<yyyymmddThh>.txt, or "... (1).txt" for a
# copy a file server made of a re-sent file
_PATH = re.compile(
    r"^telemetry/(?P<machine>[A-Za-z0-9][A-Za-z0-9._-]{0,63})"
    r"/(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})"
    r"/(?P=machine)_(?P<hour>\d{8}T\d{2})(?: \(\d{1,3}\))?\.txt$"
)


@dataclass(frozen=True)
class ListingPolicy:
    """What the listing accepts; defaults suit an hourly plant (docs/machine-files.md)."""

    settle_s: float = 60.0  # a file modified more recently may still be being written
    max_future_hours: float = 2.0  # clocks and time zones differ; a later hour is wrong
    max_past_days: float = 3650.0  # an older hour is a wrong clock or a wrong name
    max_file_bytes: int = 64 * 2**20  # an hour at 1 Hz is about 1 MB


@dataclass(frozen=True)
class KnownFiles:
    """What earlier runs recorded, read from the warehouse's landing_files table."""

    # (relative path, size, mtime iso): a file is new or changed when its key is not here
    versions: set[tuple[str, int, str]] = field(default_factory=set)
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 -> first relative path

    @staticmethod
    def key(relative_path: str, size: int, modified: datetime) -> tuple[str, int, str]:
        return (relative_path, int(size), modified.astimezone(UTC).isoformat())


@dataclass(frozen=True)
class SkippedPath:
    relative_path: str
    size: int
    modified_at: datetime
    reason: str


@dataclass
class Listing:
    listed: int = 0
    new: list[FileItemDict] = field(default_factory=list)  # oldest delivery first
    problems: dict[str, str] = field(default_factory=dict)  # relative path -> reason
    skipped: list[SkippedPath] = field(default_factory=list)
    waiting: int = 0


def file_hour(relative_path: str) -> datetime | None:
    """The UTC hour a telemetry path names, or None if its name does not follow the contract."""
    match = _PATH.match(relative_path)
    if not match:
        return None
    try:
        return datetime.strptime(match["hour"], "%Y%m%dT%H").replace(tzinfo=UTC)
    except ValueError:
        return None


def path_problem(relative_path: str, size: int, policy: ListingPolicy, now: datetime) -> str | None:
    """Why a telemetry .txt file cannot be trusted, from its path and size alone."""
    match = _PATH.match(relative_path)
    if not match:
        return (
            "file name does not follow telemetry/<machine>/<yyyy>/<mm>/<dd>/"
            "<machine>_<yyyymmddThh>.txt"
        )
    hour = file_hour(relative_path)
    if hour is None:
        return f"impossible hour in the file name: {match['hour']}"
    if (match["year"], match["month"], match["day"]) != (
        f"{hour:%Y}",
        f"{hour:%m}",
        f"{hour:%d}",
    ):
        folders = f"{match['year']}/{match['month']}/{match['day']}"
        return f"date folders {folders} differ from the hour in the name"
    ahead_h = (hour - now).total_seconds() / 3600  # differences: no date can overflow
    if ahead_h > policy.max_future_hours:
        ahead = policy.max_future_hours
        return f"hour {hour:%Y-%m-%d %H}:00 UTC is more than {ahead:g} h in the future"
    if -ahead_h / 24 > policy.max_past_days:
        return f"hour {hour:%Y-%m-%d %H}:00 UTC is older than {policy.max_past_days:g} days"
    if size > policy.max_file_bytes:
        most = policy.max_file_bytes
        return f"{size:,} bytes: more than the {most:,} an hour file may have"
    return None


def _skip_reason(rel: str, info: dict[str, Any]) -> str | None:
    if info.get("islink"):
        return "symbolic link: not followed"
    if info.get("type") != "file":
        return f"not a regular file ({info.get('type', 'unknown')})"
    if not rel.endswith(TELEMETRY_SUFFIX):
        extension = posixpath.splitext(rel)[1] or "none"
        return f"extension {extension}: telemetry files end in {TELEMETRY_SUFFIX}"
    return None


def list_telemetry(
    fs: fsspec.AbstractFileSystem,
    landing_url: str,
    known: KnownFiles,
    policy: ListingPolicy | None = None,
    now: datetime | None = None,
) -> Listing:
    """One fsspec `find` of the telemetry folder, judged against what the warehouse holds.

    Only the new files become dlt file items (dlt's `filesystem` resource builds one
    for every listed file, a cost that grows with history).
    """
    policy = policy or ListingPolicy()
    now = now or datetime.now(UTC)
    is_local = "file" in fs.protocol
    root = fsspec.core.strip_protocol(landing_url).rstrip("/")
    found = fs.find(f"{root}/{TELEMETRY_DIR}", detail=True)
    out = Listing()
    candidates: list[tuple[str, str, int, datetime]] = []
    newest_hour: dict[str, datetime] = {}
    for path, info in found.items():
        rel = posixpath.relpath(path, root)  # fsspec paths are POSIX, local ones too
        modified = modified_at(info) or now
        size = int(info.get("size") or 0)
        # only a trustworthy hour says a machine has moved on (a 2099 file must not)
        if (hour := file_hour(rel)) is not None and path_problem(rel, 0, policy, now) is None:
            machine = rel.split("/")[1]
            newest_hour[machine] = max(hour, newest_hour.get(machine, hour))
        if KnownFiles.key(rel, size, modified) in known.versions:
            out.listed += 1
            continue
        if reason := _skip_reason(rel, info):
            out.skipped.append(SkippedPath(rel, size, modified, reason))
            continue
        out.listed += 1
        candidates.append((path, rel, size, modified))
    real_root = os.path.realpath(root) if is_local else ""
    for path, rel, size, modified in candidates:
        if is_local and os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
            out.listed -= 1
            out.skipped.append(
                SkippedPath(
                    rel, size, modified, "outside the landing area: a symbolic link in its path"
                )
            )
            continue
        hour = file_hour(rel)
        newest = newest_hour.get(rel.split("/")[1])
        later_hour_arrived = hour is not None and newest is not None and newest > hour
        if (now - modified).total_seconds() < policy.settle_s and not later_hour_arrived:
            out.waiting += 1
            continue
        if problem := path_problem(rel, size, policy, now):
            out.problems[rel] = problem
        out.new.append(_file_item(fs, path, rel, size, modified))
    # oldest delivery first: of two identical files, the one that came first is kept
    out.new.sort(key=lambda f: (f["modification_date"], f["relative_path"]))
    return out


# where fsspec's listings put a file's modification time, by filesystem: S3 and ADLS,
# Azure Blob, GCS, local and SFTP, in-memory
_MTIME_KEYS = ("LastModified", "last_modified", "updated", "mtime", "created")


def modified_at(info: dict[str, Any]) -> datetime | None:
    """A listed file's modification time (UTC) from its fsspec listing entry, if it has one."""
    value = next((info[k] for k in _MTIME_KEYS if info.get(k) is not None), None)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _file_item(
    fs: fsspec.AbstractFileSystem, path: str, rel: str, size: int, modified: datetime
) -> FileItemDict:
    """The file as dlt's filesystem resources describe one (a `FileItemDict` reads it)."""
    mime_type, encoding = mimetypes.guess_type(posixpath.basename(rel), strict=False)
    # a local URL is percent-encoded: dlt unquotes it to open the file, and a '#', '?' or
    # '%' in a folder name must survive that
    url = pathlib.Path(path).as_uri() if "file" in fs.protocol else fs.unstrip_protocol(path)
    item = FileItem(
        file_name=posixpath.basename(rel),
        relative_path=rel,
        file_url=url,
        mime_type=mime_type or "text/plain",
        modification_date=modified,
        size_in_bytes=size,
    )
    if encoding:
        item["encoding"] = encoding
    return FileItemDict(item, fs)
