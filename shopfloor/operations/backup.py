"""Back up what exists nowhere else, and restore it.

Most of a data folder can be rebuilt: the marts, the serving layer and dbt's target
from the raw tables, the raw tables from the landing area -- as long as the plant's
file server keeps every file. What cannot be rebuilt is backed up:

* ``warehouse.duckdb`` -- the raw readings as loaded (the only copy once the file
  server prunes old files), the maintenance history (the only copy if the export is
  ever pruned), the ingest log and the model scores;
* ``models/`` -- every trained model version (a model trained again on other data is
  another model);
* ``secrets/pseudonym_key`` -- the key behind every technician pseudonym (without it
  new keys no longer join history). A key given in the environment is not in the
  data folder: the backup records that the operator keeps it;
* ``quarantine/`` -- the originals of the files that were refused;
* ``runs.jsonl`` -- the run log.

A backup is consistent: it waits for a run in progress to finish (the run lock), then,
holding the lock and a DuckDB connection that keeps every other writer out, checkpoints
the warehouse and copies the files to a staging folder next to it. Only that copy
holds the lock (a run starting meanwhile waits with ``--wait``); checksums and the
upload to the destination (a folder or any fsspec URL, e.g. ``s3://bucket/backups``)
happen after it is released. ``manifest.json`` is written last: a backup without one
is incomplete and ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import fsspec

from shopfloor.core.errors import BackupError
from shopfloor.core.settings import Settings
from shopfloor.pipeline import build_state
from shopfloor.pipeline.run import connect_when_free, pipeline_lock

MANIFEST = "manifest.json"
BACKUP_LOG = "backups.jsonl"
FORMAT = 1


@dataclass(frozen=True)
class BackupResult:
    location: str
    files: int
    bytes: int
    locked_seconds: float  # how long runs were kept waiting
    seconds: float
    key_in_backup: bool


@dataclass(frozen=True)
class RestoreResult:
    location: str
    created_at: str
    files: int
    bytes: int
    seconds: float
    key_in_backup: bool


def backed_up(settings: Settings) -> dict[str, Path]:
    """Name in a backup -> path in the data folder (files and folders)."""
    data = settings.data
    return {
        "warehouse.duckdb": Path(settings.warehouse),
        "models": Path(settings.values["models_dir"]),
        "secrets/pseudonym_key": settings.pseudonym_key_file,
        "quarantine": data / "quarantine",
        "runs.jsonl": data / "runs.jsonl",
    }


def _key_from_environment(settings: Settings) -> bool:
    return settings.sources.get("pseudonym_key") != "default"


def take(
    settings: Settings,
    destination: str,
    wait_s: float = 900.0,
    on_step: Callable[[str], None] = lambda _text: None,
) -> BackupResult:
    """Take a consistent backup of the data folder to `destination` (folder or URL)."""
    started = time.perf_counter()
    warehouse = Path(settings.warehouse)
    if not warehouse.exists():
        raise BackupError(f"no warehouse at {warehouse}: nothing to back up")
    backup_id = datetime.now(UTC).strftime("shopfloor-%Y%m%dT%H%M%SZ")
    staging = settings.data / ".backup" / backup_id
    shutil.rmtree(staging.parent, ignore_errors=True)  # what an interrupted backup left
    on_step("waiting for a run in progress to finish")
    deadline = time.monotonic() + wait_s
    with pipeline_lock(str(settings.data), wait_s):
        locked = time.perf_counter()
        on_step("copying the warehouse")
        # a writer connection: no other process writes the file while it is copied
        with connect_when_free(settings, deadline, poll_s=0.5) as con:
            con.execute("checkpoint")
            counts = _counts(con)
            for name, path in backed_up(settings).items():
                if name == "secrets/pseudonym_key" and _key_from_environment(settings):
                    continue
                _copy(path, staging / name)
        locked_s = time.perf_counter() - locked
    on_step("checksumming")
    files: dict[str, dict[str, Any]] = {
        str(p.relative_to(staging)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(staging)
    }
    manifest = {
        "format": FORMAT,
        "id": backup_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "data_dir": str(settings.data.resolve()),
        "pseudonym_key": "environment" if _key_from_environment(settings) else "in backup",
        "counts": counts,
        "files": files,
    }
    fs, root = fsspec.core.url_to_fs(destination)
    target = f"{root.rstrip('/')}/{backup_id}"
    on_step(f"writing {len(files)} files to {destination}")
    for name in files:
        fs.makedirs(f"{target}/{Path(name).parent}".rstrip("/."), exist_ok=True)
        fs.put_file(str(staging / name), f"{target}/{name}")
    with fs.open(f"{target}/{MANIFEST}", "w") as out:  # last: the backup is complete
        out.write(json.dumps(manifest, indent=1))
    shutil.rmtree(staging.parent, ignore_errors=True)
    result = BackupResult(
        location=f"{destination.rstrip('/')}/{backup_id}",
        files=len(files),
        bytes=sum(f["bytes"] for f in files.values()),
        locked_seconds=round(locked_s, 2),
        seconds=round(time.perf_counter() - started, 2),
        key_in_backup=not _key_from_environment(settings),
    )
    _log(settings, "backup", result.location, result.bytes, result.seconds)
    return result


def restore(
    settings: Settings,
    source: str,
    force: bool = False,
    wait_s: float = 900.0,
    on_step: Callable[[str], None] = lambda _text: None,
) -> RestoreResult:
    """Restore the backup at `source` (one backup, or a folder of them: the newest)."""
    started = time.perf_counter()
    fs, location = _find(source)
    manifest = json.loads(fs.cat_file(f"{location}/{MANIFEST}"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: backup format {manifest.get('format')} is not {FORMAT}")
    items = backed_up(settings)
    present = [str(p) for name, p in items.items() if p.exists() and name != "quarantine"]
    if present and not force:
        raise BackupError(
            f"{settings.data} already holds {', '.join(present)}: restore into an empty data "
            "folder, or pass --force to replace them"
        )
    staging = settings.data / ".restore"
    shutil.rmtree(staging, ignore_errors=True)
    on_step(f"reading {len(manifest['files'])} files from {source}")
    for name, expected in manifest["files"].items():
        local = staging / name
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(f"{location}/{name}", str(local))
        if local.stat().st_size != expected["bytes"] or _sha256(local) != expected["sha256"]:
            shutil.rmtree(staging, ignore_errors=True)
            raise BackupError(f"{source}: {name} does not match its checksum; nothing restored")
    with pipeline_lock(str(settings.data), wait_s):
        on_step("putting the files in place")
        for name, path in items.items():
            if (staging / name).exists():
                _remove(path)
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, path)
        # dlt's local state may be newer than the restored warehouse; without it, dlt
        # takes its state from the warehouse, which matches the restored tables
        shutil.rmtree(settings.data / ".dlt", ignore_errors=True)
        build_state.forget(settings)  # the next run builds the restored tables' marts
    shutil.rmtree(staging, ignore_errors=True)
    result = RestoreResult(
        location=location,
        created_at=manifest["created_at"],
        files=len(manifest["files"]),
        bytes=sum(f["bytes"] for f in manifest["files"].values()),
        seconds=round(time.perf_counter() - started, 2),
        key_in_backup=manifest["pseudonym_key"] == "in backup",
    )
    _log(settings, "restore", location, result.bytes, result.seconds)
    return result


def _log(settings: Settings, kind: str, location: str, size: int, seconds: float) -> None:
    """One line per backup and restore in DATA_DIR/backups.jsonl (read by `capacity`)."""
    record = {
        "kind": kind,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "location": location,
        "bytes": size,
        "seconds": seconds,
    }
    with (settings.data / BACKUP_LOG).open("a") as log:
        log.write(json.dumps(record) + "\n")


def read_log(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / BACKUP_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _find(source: str) -> tuple[Any, str]:
    """The filesystem and path of the backup `source` names (the newest complete one
    when it is a folder of backups)."""
    fs, path = fsspec.core.url_to_fs(source)
    path = path.rstrip("/")
    if fs.exists(f"{path}/{MANIFEST}"):
        return fs, path
    complete = sorted(
        entry.rstrip("/")
        for entry in (fs.ls(path, detail=False) if fs.isdir(path) else [])
        if fs.exists(f"{entry.rstrip('/')}/{MANIFEST}")
    )
    if not complete:
        raise BackupError(f"no complete backup at {source} (a backup folder has {MANIFEST})")
    return fs, complete[-1]


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What the warehouse holds, to compare after a restore."""
    tables = {
        f"{s}.{t}"
        for s, t in con.sql(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    counts: dict[str, Any] = {}
    for table in ("raw.telemetry_readings", "raw.landing_files", "raw.maintenance_log"):
        if table in tables:
            row = con.sql(f"select count(*) from {table}").fetchone()
            counts[table] = row[0] if row else 0
    return counts


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
