"""The serving layer: the marts as Parquet files that BI reads without touching the warehouse.

A DuckDB file takes one writer process *or* readers, never both: a BI tool holding the
warehouse open stops the hourly run, and the run locks BI out. So BI never opens the
warehouse. At the end of every successful run (and with `shopfloor publish`) the marts
are published under ``<data_dir>/serving/``:

* ``versions/<id>/<mart>/`` -- one published state of every mart, as Parquet. Marts
  with an ``hour_at`` column grow with history and are split by UTC day
  (``day=YYYY-MM-DD/``): a day whose rows did not change is hard-linked from the
  previous version instead of written again, so publishing costs what changed.
* ``current`` -- a symbolic link to the newest version, replaced atomically: a query
  reads one version, and the next query reads the newest one (no reconnect).
* ``bi.duckdb`` -- a small DuckDB catalog of views (``marts.<mart>``) over
  ``current``; BI tools open it read-only. It is rewritten (to a new file, renamed
  over the old) only when the marts, their columns or the folder's path change.

Never published: the ``raw`` and staging schemas, the ``ml`` tables, and any column
derived from technicians (``EXCLUDED_COLUMNS``). Older versions are removed once
``KEEP_VERSIONS`` newer ones exist (a reader that started a query on one keeps its
open files).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

SCHEMA = "marts"
EXCLUDED_COLUMNS = frozenset({"technician_key"})  # a pseudonym, still a person's
PARTITION_COLUMN = "hour_at"
KEEP_VERSIONS = 3
CATALOG = "bi.duckdb"
VIEW_FORMAT = 2  # bumped when view_sql changes: existing catalogs are rewritten


@dataclass
class PublishResult:
    version: str
    path: Path
    marts: int
    days_written: int  # day partitions written in this publish
    days_linked: int  # unchanged day partitions hard-linked from the previous version
    seconds: float = 0.0
    catalog_rewritten: bool = False


def serving_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "serving"


def publish(con: duckdb.DuckDBPyConnection, root: Path) -> PublishResult:
    """Publish every mart of the warehouse `con` to the serving folder `root`."""
    started = time.perf_counter()
    root = root.resolve()
    (root / "versions").mkdir(parents=True, exist_ok=True)
    previous_dir = _current(root)
    previous = _manifest(previous_dir) if previous_dir else {}
    version = _new_version_id(root)
    target = root / "versions" / version
    target.mkdir()
    manifest: dict[str, dict[str, object]] = {}
    written = linked = 0
    for mart, typed in mart_columns(con).items():
        columns = [c for c, _ in typed]
        types = [t for _, t in typed]
        # a day file may be reused only if its columns and their types are the same
        before = previous.get(mart, {})
        if before.get("types") != types:
            before = {}
        if PARTITION_COLUMN in columns:
            w, lnk, days = _publish_by_day(con, mart, columns, target, previous_dir, before)
            written, linked = written + w, linked + lnk
            manifest[mart] = {"columns": columns, "types": types, "days": days}
        else:
            _copy(con, f"select {_select(columns)} from {SCHEMA}.{mart}", target / mart)
            manifest[mart] = {"columns": columns, "types": types}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    _point_current(root, target)
    rewritten = _write_catalog(root, manifest)
    _prune(root)
    return PublishResult(
        version=version,
        path=target,
        marts=len(manifest),
        days_written=written,
        days_linked=linked,
        seconds=round(time.perf_counter() - started, 2),
        catalog_rewritten=rewritten,
    )


def mart_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Per mart, its published columns and their DuckDB types, in table order."""
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = ? order by table_name, ordinal_position",
        [SCHEMA],
    ).fetchall()
    marts: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        if column not in EXCLUDED_COLUMNS:
            marts.setdefault(table, []).append((column, kind))
    return marts


def _select(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def day_sql(column: str = PARTITION_COLUMN) -> str:
    """The UTC day of a timestamptz column as YYYY-MM-DD: the partition of its row."""
    return f"strftime(timezone('UTC', \"{column}\"), '%Y-%m-%d')"


def _publish_by_day(
    con: duckdb.DuckDBPyConnection,
    mart: str,
    columns: list[str],
    target: Path,
    previous_dir: Path | None,
    before: dict[str, object],
) -> tuple[int, int, dict[str, str]]:
    """Write the days whose rows changed; hard-link the others from the previous version."""
    day = day_sql()
    checksums = day_checksums(con, mart, columns)
    same_columns = before.get("columns") == columns and previous_dir is not None
    old_days: dict[str, str] = before.get("days", {}) if same_columns else {}  # type: ignore[assignment]
    changed = sorted(d for d, h in checksums.items() if old_days.get(d) != h)
    out = target / mart
    out.mkdir(parents=True)
    for d in sorted(set(checksums) - set(changed)):
        assert previous_dir is not None
        src = previous_dir / mart / f"day={d}"
        (out / f"day={d}").mkdir()
        for file in src.iterdir():
            os.link(file, out / f"day={d}" / file.name)
    if changed:
        listed = ", ".join(f"'{d}'" for d in changed)
        con.execute(
            f"copy (select {_select(columns)}, {day} as day from {SCHEMA}.{mart}"
            f" where {day} in ({listed})) to '{out}'"
            " (format parquet, partition_by (day), overwrite_or_ignore)"
        )
    if not checksums:  # no rows yet: one empty file keeps the view's columns
        _copy(con, f"select {_select(columns)} from {SCHEMA}.{mart} limit 0", out / "empty")
    return len(changed), len(checksums) - len(changed), checksums


def day_checksums(con: duckdb.DuckDBPyConnection, mart: str, columns: list[str]) -> dict[str, str]:
    """Per UTC day of the mart: row count and a hash of every row (a changed day differs)."""
    day = day_sql()
    return {
        d: str(h)
        for d, h in con.execute(
            f"select {day} as day, count(*) || ':' || sum(hash({_select(columns)}))"
            f" from {SCHEMA}.{mart} group by day"
        ).fetchall()
    }


def _copy(con: duckdb.DuckDBPyConnection, query: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy ({query}) to '{folder / 'data.parquet'}' (format parquet)")


def _current(root: Path) -> Path | None:
    link = root / "current"
    return link.resolve() if link.exists() else None


def _manifest(version_dir: Path) -> dict[str, dict[str, object]]:
    try:
        loaded = json.loads((version_dir / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _new_version_id(root: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    n = 0
    while (root / "versions" / f"{stamp}-{n}").exists():
        n += 1
    return f"{stamp}-{n}"


def _point_current(root: Path, target: Path) -> None:
    """Swap the `current` link in one rename: a reader sees the old or the new version."""
    tmp, link = root / "current.tmp", root / "current"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("versions") / target.name)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # a copy of the folder that followed the link: a folder now
    os.replace(tmp, link)


def view_sql(root: Path, mart: str, columns: list[str]) -> str:
    files = root / "current" / mart / "**" / "*.parquet"
    return (
        f"create or replace view {SCHEMA}.{mart} as select {_select(columns)}"
        # every file of a version has the mart's columns (a change of columns rewrites
        # every day), so no file is opened to bind a query: a query opens each file once
        f" from read_parquet('{files}', hive_partitioning = false)"
    )


def _write_catalog(root: Path, manifest: dict[str, dict[str, object]]) -> bool:
    """Rewrite the catalog when the marts, their columns or the folder's place changed."""
    catalog, recorded = root / CATALOG, root / (CATALOG + ".json")
    shape = {
        "root": str(root),
        "views": VIEW_FORMAT,
        "marts": {m: v["columns"] for m, v in manifest.items()},
    }
    if catalog.exists() and recorded.exists() and json.loads(recorded.read_text()) == shape:
        return False
    tmp = root / (CATALOG + ".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute(f"create schema {SCHEMA}")
        for mart, columns in manifest.items():
            con.execute(view_sql(root, mart, list(columns["columns"])))  # type: ignore[call-overload]
    os.replace(tmp, catalog)
    recorded.write_text(json.dumps(shape))
    return True


def _prune(root: Path) -> None:
    current = _current(root)
    versions = sorted((root / "versions").iterdir(), key=lambda p: p.name)
    for old in versions[:-KEEP_VERSIONS]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
