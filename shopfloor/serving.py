"""The serving layer: the marts as Parquet files that BI reads without touching the warehouse.

A DuckDB file takes one writer process *or* readers, never both: a BI tool holding the
warehouse open stops the hourly run, and the run locks BI out. So BI never opens the
warehouse. At the end of every successful run (and with `shopfloor publish`) the marts
are published under ``<data_dir>/serving/``:

* ``marts/<mart>/_shopfloor_version=<id>/`` -- the mart as one published version
  wrote it, as Parquet. Marts with an ``hour_at`` column grow with history and are
  split by UTC day (``day=YYYY-MM-DD/``): a day whose rows did not change is
  hard-linked from the previous version instead of written again, so publishing costs
  what changed. A version's files never change once they are in place.
* ``CURRENT`` -- one line per kept version, ``<id> <switch time>``, replaced in one
  rename: the switch time is taken once the version's files are all in place.
* ``versions/<id>.json`` -- what each version holds (columns, day checksums).
* ``bi.duckdb`` -- a small DuckDB catalog of views (``marts.<mart>``); BI tools open it
  read-only. A view reads one version's files, by their own paths: a publish during a
  query never changes a file the query reads. DuckDB lists a query's files when it
  binds the query and reads ``CURRENT`` when it runs it; the view takes the newest
  version switched to before the query *started*, whose files were in place before the
  listing, and every mart in one query takes the same version. Version ids count
  down, so the file DuckDB opens to bind a view belongs to the newest version, never
  to one being removed. The catalog is rewritten (to a new file, renamed over the
  old) only when the marts, their columns or the folder's path change.

Never published: the ``raw`` and staging schemas, the ``ml`` tables, and any column
derived from technicians (``EXCLUDED_COLUMNS``). A version is removed once
``KEEP_VERSIONS`` newer ones exist and it was replaced more than ``RETAIN_SECONDS`` ago,
longer than any BI query runs.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

SCHEMA = "marts"
EXCLUDED_COLUMNS = frozenset({"technician_key"})  # a pseudonym, still a person's
PARTITION_COLUMN = "hour_at"
KEEP_VERSIONS = 2
RETAIN_SECONDS = 15 * 60
CATALOG = "bi.duckdb"
VIEW_FORMAT = 4  # bumped when view_sql changes: existing catalogs are rewritten
VERSION_KEY = "_shopfloor_version"  # the folder level naming a version; never a mart column
_TOP = 9_999_999_999
_DAY_US = 86_400_000_000
_EPOCH = date(1970, 1, 1)  # version ids count down from here: the newest sorts first


@dataclass
class PublishResult:
    version: str
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
    shutil.rmtree(root / "staging", ignore_errors=True)  # what a crashed publish left
    for folder in ("marts", "versions", "staging"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    published = _pointer(root)
    previous = published[0][0] if published else None
    before_all = _manifest(root, previous) if previous else {}
    version = _next_version(root)
    staging = root / "staging" / version
    marts: dict[str, dict[str, object]] = {}
    written = linked = 0
    for mart, typed in mart_columns(con).items():
        columns = [c for c, _ in typed]
        types = [t for _, t in typed]
        # a day file may be reused only if its columns and their types are the same
        before = before_all.get(mart, {})
        if before.get("types") != types:
            before = {}
        out = staging / mart
        if PARTITION_COLUMN in columns:
            old = root / "marts" / mart / f"{VERSION_KEY}={previous}" if before else None
            w, lnk, days = _publish_by_day(con, mart, columns, out, old, before)
            written, linked = written + w, linked + lnk
            marts[mart] = {"columns": columns, "types": types, "days": days}
        else:
            _copy(con, f"select {_select(columns)} from {SCHEMA}.{mart}", out)
            marts[mart] = {"columns": columns, "types": types}
    record = {"published_at": datetime.now(UTC).isoformat(), "marts": marts}
    _write_atomically(root / "versions" / f"{version}.json", json.dumps(record, indent=1))
    for mart in marts:  # complete files only ever appear under marts/
        (root / "marts" / mart).mkdir(exist_ok=True)
        os.replace(staging / mart, root / "marts" / mart / f"{VERSION_KEY}={version}")
    staging.rmdir()
    # queries that start from now on read the new version: its files are all in place
    entries = [(version, int(time.time() * 1e6)), *published]
    kept = _retained(entries)
    _write_atomically(root / "CURRENT", "".join(f"{v} {us}\n" for v, us in kept))
    rewritten = _write_catalog(root, marts)  # its views read CURRENT: written after it
    _prune(root, {v for v, _ in kept})
    return PublishResult(
        version=version,
        marts=len(marts),
        days_written=written,
        days_linked=linked,
        seconds=round(time.perf_counter() - started, 2),
        catalog_rewritten=rewritten,
    )


def _pointer(root: Path) -> list[tuple[str, int]]:
    """CURRENT's entries, newest first: (version id, switch time in microseconds)."""
    try:
        lines = (root / "CURRENT").read_text().splitlines()
        entries = [(v, int(us)) for v, us in (line.split() for line in lines if line.strip())]
    except (FileNotFoundError, ValueError):
        return []
    return sorted(entries, key=lambda e: e[1], reverse=True)


def newest_version(root: Path) -> str | None:
    """The id of the last version published, or None before the first publish."""
    entries = _pointer(root)
    return entries[0][0] if entries else None


def current_version(root: Path) -> str | None:
    """The id of the version a query starting now reads, or None before the first publish."""
    now_us = time.time() * 1e6
    entries = _pointer(root)
    return next((v for v, us in entries if us <= now_us), newest_version(root))


def version_number(version: str) -> int:
    """The publish count a version id stands for (1 for the first publish)."""
    return _TOP - int(version)


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


def _day_number(column: str = PARTITION_COLUMN) -> str:
    """Days since 1970-01-01 UTC: cheap to group and filter on (no text per row)."""
    return f'epoch_us("{column}") // {_DAY_US}'


def day_sql(column: str = PARTITION_COLUMN) -> str:
    """The UTC day of a timestamptz column as YYYY-MM-DD: the partition of its row."""
    return f"strftime(make_timestamp({_day_number(column)} * {_DAY_US}), '%Y-%m-%d')"


def in_days_sql(days: list[str], column: str = PARTITION_COLUMN) -> str:
    """A condition: the row's UTC day is one of `days` (YYYY-MM-DD)."""
    numbers = ", ".join(str((date.fromisoformat(d) - _EPOCH).days) for d in days)
    return f"{_day_number(column)} in ({numbers})"


def _publish_by_day(
    con: duckdb.DuckDBPyConnection,
    mart: str,
    columns: list[str],
    out: Path,
    previous_dir: Path | None,
    before: dict[str, object],
) -> tuple[int, int, dict[str, str]]:
    """Write the days whose rows changed; hard-link the others from the previous version."""
    day = day_sql()
    checksums = day_checksums(con, mart, columns)
    same_columns = before.get("columns") == columns and previous_dir is not None
    old_days: dict[str, str] = before.get("days", {}) if same_columns else {}  # type: ignore[assignment]
    changed = sorted(d for d, h in checksums.items() if old_days.get(d) != h)
    out.mkdir(parents=True)
    for d in sorted(set(checksums) - set(changed)):
        assert previous_dir is not None
        src = previous_dir / f"day={d}"
        (out / f"day={d}").mkdir()
        for file in src.iterdir():
            os.link(file, out / f"day={d}" / file.name)
    if changed:
        con.execute(
            f"copy (select {_select(columns)}, {day} as day from {SCHEMA}.{mart}"
            f" where {in_days_sql(changed)}) to '{out}'"
            " (format parquet, partition_by (day), overwrite_or_ignore)"
        )
    if not checksums:  # no rows yet: one empty file keeps the view's columns
        _copy(con, f"select {_select(columns)} from {SCHEMA}.{mart} limit 0", out / "day=none")
    return len(changed), len(checksums) - len(changed), checksums


def day_checksums(con: duckdb.DuckDBPyConnection, mart: str, columns: list[str]) -> dict[str, str]:
    """Per UTC day of the mart: row count and a hash of every row (a changed day differs)."""
    return {
        d: str(h)
        for d, h in con.execute(
            f"select strftime(make_timestamp(day * {_DAY_US}), '%Y-%m-%d'), checksum from"
            f" (select {_day_number()} as day, count(*) || ':' || sum(hash({_select(columns)}))"
            f" as checksum from {SCHEMA}.{mart} group by day)"
        ).fetchall()
    }


def _copy(con: duckdb.DuckDBPyConnection, query: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy ({query}) to '{folder / 'data.parquet'}' (format parquet)")


def _manifest(root: Path, version: str) -> dict[str, dict[str, object]]:
    try:
        loaded = json.loads((root / "versions" / f"{version}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    marts = loaded.get("marts") if isinstance(loaded, dict) else None
    return marts if isinstance(marts, dict) else {}


def _next_version(root: Path) -> str:
    """One below every id in use: a record or a folder (of a publish that crashed, too)."""
    ids = [p.stem for p in (root / "versions").glob("*.json")]
    ids += [
        v.name.removeprefix(f"{VERSION_KEY}=") for v in (root / "marts").glob(f"*/{VERSION_KEY}=*")
    ]
    newest = min((int(v) for v in ids if v.isdigit()), default=_TOP)
    return f"{newest - 1:010d}"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _glob(root: Path, mart: str, columns: list[str]) -> str:
    depth = "*/*/*.parquet" if PARTITION_COLUMN in columns else "*/*.parquet"
    return str(root / "marts" / mart / depth)


def view_sql(root: Path, mart: str, columns: list[str]) -> str:
    # the version is chosen when the query runs (DuckDB then skips the other versions'
    # files): the newest one published before the query started, the same for every
    # mart the query reads
    pointer = (
        f"select version from read_csv('{root / 'CURRENT'}', delim = ' ', header = false,"
        " auto_detect = false, columns = {'version': 'varchar', 'switch_us': 'bigint'})"
        " order by switch_us <= epoch_us(get_current_timestamp()) desc, switch_us desc limit 1"
    )
    return (
        f"create or replace view {SCHEMA}.{mart} as select {_select(columns)}"
        f" from read_parquet('{_glob(root, mart, columns)}', hive_partitioning = true,"
        f" hive_types = {{'{VERSION_KEY}': varchar}}, hive_types_autocast = false)"
        f" where {VERSION_KEY} = ({pointer})"
    )


def _write_catalog(root: Path, marts: dict[str, dict[str, object]]) -> bool:
    """Rewrite the catalog when the marts, their columns or the folder's place changed."""
    catalog, recorded = root / CATALOG, root / (CATALOG + ".json")
    shape = {
        "root": str(root),
        "views": VIEW_FORMAT,
        "marts": {m: v["columns"] for m, v in marts.items()},
    }
    if catalog.exists() and recorded.exists() and json.loads(recorded.read_text()) == shape:
        return False
    tmp = root / (CATALOG + ".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute(f"create schema {SCHEMA}")
        for mart, columns in marts.items():
            con.execute(view_sql(root, mart, list(columns["columns"])))  # type: ignore[call-overload]
    os.replace(tmp, catalog)
    recorded.write_text(json.dumps(shape))
    return True


def _retained(entries: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The versions a query may still be reading: the newest ones, and any replaced less
    than RETAIN_SECONDS ago (newest first, as given)."""
    now_us = time.time() * 1e6
    kept = entries[:KEEP_VERSIONS]
    for (_, replaced_us), old in itertools.pairwise(entries):
        if old not in kept and now_us - replaced_us < RETAIN_SECONDS * 1e6:
            kept.append(old)
    return kept


def _prune(root: Path, keep: set[str]) -> None:
    """Remove the versions not kept, and leftovers of other layouts."""
    for folder in (root / "marts").glob(f"*/{VERSION_KEY}=*"):
        if folder.name.removeprefix(f"{VERSION_KEY}=") not in keep:
            shutil.rmtree(folder, ignore_errors=True)
    for record in (root / "versions").glob("*.json"):
        if record.stem not in keep:
            record.unlink(missing_ok=True)
    for mart in (root / "marts").iterdir():
        if mart.is_dir() and not any(mart.iterdir()):
            mart.rmdir()
    for leftover in (root / "versions").iterdir():  # a folder per version, an older layout
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    if (root / "current").is_symlink():
        (root / "current").unlink()
