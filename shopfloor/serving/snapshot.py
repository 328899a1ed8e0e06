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

import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NotRequired, TypedDict

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


class PublishedMart(TypedDict):
    """A mart in a version's record (`versions/<id>.json`)."""

    columns: list[str]
    types: list[str]
    days: NotRequired[dict[str, str]]  # by-day marts: UTC day -> checksum of its rows


@dataclass
class PublishResult:
    version: str
    marts: int
    days_written: int  # day partitions written in this publish
    days_linked: int  # unchanged day partitions hard-linked from the previous version
    seconds: float = 0.0
    catalog_rewritten: bool = False


@dataclass(frozen=True)
class _Store:
    """The serving folder: a local folder (files staged, then renamed into place; unchanged
    days hard-linked) or an fsspec URL such as s3://… on a lakehouse (every object appears
    whole when written; unchanged days are copied by the store)."""

    fs: Any
    path: str  # the root in the filesystem's terms
    url: str  # the root as DuckDB names it in SQL

    @classmethod
    def at(cls, root: str | Path) -> _Store:
        import fsspec

        text = str(root) if "://" in str(root) else str(Path(root).resolve())
        fs, path = fsspec.core.url_to_fs(text)
        return cls(fs, path.rstrip("/"), text.rstrip("/"))

    @property
    def local(self) -> bool:
        return bool({"file", "local"} & set(_protocols(self.fs)))

    def p(self, *parts: str) -> str:
        return "/".join((self.path, *parts))

    def u(self, *parts: str) -> str:
        return "/".join((self.url, *parts))

    def read(self, *parts: str) -> str | None:
        try:
            return str(self.fs.cat_file(self.p(*parts)).decode())
        except FileNotFoundError:
            return None

    def write(self, text: str, *parts: str) -> None:
        """Replace a small file in one step: readers see the old text or the new."""
        if self.local:
            tmp = Path(self.p(*parts) + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.p(*parts))
        else:
            self.fs.pipe_file(self.p(*parts), text.encode())

    def names(self, pattern: str) -> list[str]:
        """What matches `pattern` under the root, relative to it."""
        self.fs.invalidate_cache()
        return [str(found)[len(self.path) + 1 :] for found in self.fs.glob(self.p(pattern))]

    def rm(self, *parts: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.p(*parts), recursive=True)

    def makedirs(self, *parts: str) -> None:
        if self.local:
            Path(self.p(*parts)).mkdir(parents=True, exist_ok=True)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def publish(
    con: duckdb.DuckDBPyConnection, root: str | Path, relative: bool = False
) -> PublishResult:
    """Publish every mart of the warehouse `con` to the serving folder `root` (a folder,
    or a URL the session `con` can write, such as the lakehouse's s3://…).

    `relative`: the catalog's views name their files relative to the serving folder, so
    that it can be moved or mounted elsewhere (a BI tool in a container); a reader then
    sets DuckDB's `file_search_path` to where it sees the folder (docs/operations.md)."""
    started = time.perf_counter()
    store = _Store.at(root)
    store.rm("staging")  # what a crashed publish left
    for folder in ("marts", "versions", "staging"):
        store.makedirs(folder)
    published = _pointer(store)
    previous = published[0][0] if published else None
    before_all = _manifest(store, previous) if previous else {}
    version = _next_version(store)
    # a local version is staged and renamed into place; on an object store each file
    # appears whole, and no query reads a version before CURRENT lists it
    staging = ("staging", version) if store.local else None
    marts: dict[str, PublishedMart] = {}
    written = linked = 0
    for mart, typed in mart_columns(con).items():
        columns = [c for c, _ in typed]
        types = [t for _, t in typed]
        # a day file may be reused only if its columns and their types are the same
        before = before_all.get(mart)
        if before is not None and before.get("types") != types:
            before = None
        out = (*staging, mart) if staging else ("marts", mart, f"{VERSION_KEY}={version}")
        if PARTITION_COLUMN in columns:
            old = ("marts", mart, f"{VERSION_KEY}={previous}") if before else None
            w, lnk, days = _publish_by_day(con, store, mart, columns, out, old, before)
            written, linked = written + w, linked + lnk
            marts[mart] = {"columns": columns, "types": types, "days": days}
        else:
            _copy(con, f"select {_select(columns)} from {SCHEMA}.{mart}", store, out)
            marts[mart] = {"columns": columns, "types": types}
    record = {"published_at": datetime.now(UTC).isoformat(), "marts": marts}
    store.write(json.dumps(record, indent=1), "versions", f"{version}.json")
    if staging:  # complete files only ever appear under marts/
        for mart in marts:
            store.makedirs("marts", mart)
            os.replace(store.p(*staging, mart), store.p("marts", mart, f"{VERSION_KEY}={version}"))
        os.rmdir(store.p(*staging))
    # queries that start from now on read the new version: its files are all in place
    entries = [(version, int(time.time() * 1e6)), *published]
    kept = _retained(entries)
    store.write("".join(f"{v} {us}\n" for v, us in kept), "CURRENT")
    # its views read CURRENT: written after it
    rewritten = _write_catalog(con, store, marts, relative and store.local)
    _prune(store, {v for v, _ in kept})
    return PublishResult(
        version=version,
        marts=len(marts),
        days_written=written,
        days_linked=linked,
        seconds=round(time.perf_counter() - started, 2),
        catalog_rewritten=rewritten,
    )


def _pointer(store: _Store) -> list[tuple[str, int]]:
    """CURRENT's entries, newest first: (version id, switch time in microseconds)."""
    try:
        lines = (store.read("CURRENT") or "").splitlines()
        entries = [(v, int(us)) for v, us in (line.split() for line in lines if line.strip())]
    except ValueError:
        return []
    return sorted(entries, key=lambda e: e[1], reverse=True)


def newest_version(root: str | Path) -> str | None:
    """The id of the last version published, or None before the first publish."""
    entries = _pointer(_Store.at(root))
    return entries[0][0] if entries else None


def current_version(root: str | Path) -> str | None:
    """The id of the version a query starting now reads, or None before the first publish."""
    now_us = time.time() * 1e6
    entries = _pointer(_Store.at(root))
    return next((v for v, us in entries if us <= now_us), entries[0][0] if entries else None)


def catalog_url(root: str | Path) -> str | None:
    """Where BI opens the catalog of views, or None before the first publish."""
    store = _Store.at(root)
    return store.u(CATALOG) if store.fs.exists(store.p(CATALOG)) else None


def open_catalog(url: str) -> duckdb.DuckDBPyConnection:
    """A read-only session on the catalog of views at `url`: a local file, or an object on
    S3 read with DuckDB's httpfs and the AWS chain's credentials (what a BI tool does).
    A local catalog's relative views find their files in its folder."""
    if "://" not in url:
        con = duckdb.connect(url, read_only=True)
        con.execute(f"set file_search_path = '{_quoted(str(Path(url).resolve().parent))}'")
        return con
    from shopfloor.core.warehouse import install_extensions, s3_secret_sql

    con = duckdb.connect()
    try:
        install_extensions(con, ["httpfs"])
        con.execute(s3_secret_sql(url))
        con.execute(f"attach '{url}' as serving (read_only)")
        con.execute("use serving")
    except Exception:
        con.close()
        raise
    return con


def _quoted(text: str) -> str:
    """`text` inside a SQL string literal."""
    return text.replace("'", "''")


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
    store: _Store,
    mart: str,
    columns: list[str],
    out: tuple[str, ...],
    previous: tuple[str, ...] | None,
    before: PublishedMart | None,
) -> tuple[int, int, dict[str, str]]:
    """Write the days whose rows changed; link (or copy) the others from the previous version."""
    day = day_sql()
    checksums = day_checksums(con, mart, columns)
    old_days: dict[str, str] = {}  # a day's checksum in the previous version
    if before is not None and previous is not None and before.get("columns") == columns:
        old_days = before.get("days", {})
    changed = {d for d, h in checksums.items() if old_days.get(d) != h}
    store.makedirs(*out)
    sources: list[str] = []
    if len(changed) < len(checksums):
        assert previous is not None
        wanted = {f"day={d}" for d in checksums.keys() - changed}
        sources = [
            name
            for name in store.names("/".join((*previous, "day=*", "*")))
            if name.split("/")[-2] in wanted
        ]
        # a day the previous version should hold but does not (its files were removed by
        # hand) is written again rather than left out
        present = {name.split("/")[-2] for name in sources}
        changed |= {w.removeprefix("day=") for w in wanted - present}
        targets = [store.p(*out, *name.split("/")[-2:]) for name in sources]
        if store.local:
            for name, target in zip(sources, targets, strict=True):
                Path(target).parent.mkdir(exist_ok=True)
                os.link(store.p(name), target)
        elif sources:  # one batch: the store copies the objects concurrently
            store.fs.copy([store.p(name) for name in sources], targets)
    if changed:
        con.execute(
            f"copy (select {_select(columns)}, {day} as day from {SCHEMA}.{mart}"
            f" where {in_days_sql(sorted(changed))}) to '{store.u(*out)}'"
            " (format parquet, partition_by (day), overwrite_or_ignore)"
        )
    if not checksums:  # no rows yet: one empty file keeps the view's columns
        query = f"select {_select(columns)} from {SCHEMA}.{mart} limit 0"
        _copy(con, query, store, (*out, "day=none"))
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


def _copy(
    con: duckdb.DuckDBPyConnection, query: str, store: _Store, folder: tuple[str, ...]
) -> None:
    store.makedirs(*folder)
    con.execute(f"copy ({query}) to '{store.u(*folder, 'data.parquet')}' (format parquet)")


def _manifest(store: _Store, version: str) -> dict[str, PublishedMart]:
    try:
        loaded = json.loads(store.read("versions", f"{version}.json") or "{}")
    except json.JSONDecodeError:
        return {}
    marts = loaded.get("marts") if isinstance(loaded, dict) else None
    return marts if isinstance(marts, dict) else {}


def _version_of(name: str) -> str:
    """The version id in a path: a record `versions/<id>.json` or a folder `…/<key>=<id>`."""
    last = name.rstrip("/").rsplit("/", 1)[-1]
    return last.removeprefix(f"{VERSION_KEY}=").removesuffix(".json")


def _next_version(store: _Store) -> str:
    """One below every id in use: a record or a folder (of a publish that crashed, too)."""
    ids = [_version_of(n) for n in store.names("versions/*.json")]
    ids += [_version_of(n) for n in store.names(f"marts/*/{VERSION_KEY}=*")]
    newest = min((int(v) for v in ids if v.isdigit()), default=_TOP)
    return f"{newest - 1:010d}"


def _glob(root: str, mart: str, columns: list[str]) -> str:
    depth = "*/*/*.parquet" if PARTITION_COLUMN in columns else "*/*.parquet"
    return f"{root}/marts/{mart}/{depth}"


def view_sql(root: str | Path, mart: str, columns: list[str], catalog: str = "") -> str:
    # the version is chosen when the query runs (DuckDB then skips the other versions'
    # files): the newest one published before the query started, the same for every
    # mart the query reads. Root "." names the files relative to the serving folder.
    url = "." if str(root) == "." else _Store.at(root).url
    pointer = (
        f"select version from read_csv('{url}/CURRENT', delim = ' ', header = false,"
        " auto_detect = false, columns = {'version': 'varchar', 'switch_us': 'bigint'})"
        " order by switch_us <= epoch_us(get_current_timestamp()) desc, switch_us desc limit 1"
    )
    name = f"{catalog}.{SCHEMA}.{mart}" if catalog else f"{SCHEMA}.{mart}"
    return (
        f"create or replace view {name} as select {_select(columns)}"
        f" from read_parquet('{_glob(url, mart, columns)}', hive_partitioning = true,"
        f" hive_types = {{'{VERSION_KEY}': varchar}}, hive_types_autocast = false)"
        f" where {VERSION_KEY} = ({pointer})"
    )


def _write_catalog(
    con: duckdb.DuckDBPyConnection,
    store: _Store,
    marts: dict[str, PublishedMart],
    relative: bool = False,
) -> bool:
    """Rewrite the catalog when the marts, their columns or the folder's place changed.

    The views are made in the publishing session (which can read the store, with no
    secret stored in the catalog), in a new local file that then replaces the catalog.
    Relative views are bound with the folder as DuckDB's file_search_path."""
    root = "." if relative else store.url
    shape = {
        "root": root,
        "views": VIEW_FORMAT,
        "marts": {m: v["columns"] for m, v in marts.items()},
    }
    recorded = store.read(CATALOG + ".json")
    if recorded and json.loads(recorded) == shape and store.fs.exists(store.p(CATALOG)):
        return False
    with tempfile.TemporaryDirectory(prefix="shopfloor_catalog_") as tmp:
        local = store.p(CATALOG + ".tmp") if store.local else str(Path(tmp) / CATALOG)
        Path(local).unlink(missing_ok=True)
        con.execute(f"attach '{local}' as shopfloor_bi_catalog")
        found = con.sql("select current_setting('file_search_path')").fetchone()
        search_path = found[0] if found else ""
        try:
            if relative:
                con.execute(f"set file_search_path = '{_quoted(store.url)}'")
            con.execute(f"create schema shopfloor_bi_catalog.{SCHEMA}")
            for mart, columns in marts.items():
                con.execute(view_sql(root, mart, list(columns["columns"]), "shopfloor_bi_catalog"))
        finally:
            con.execute(
                f"set file_search_path = '{_quoted(search_path[0] if search_path else '')}'"
            )
            con.execute("detach shopfloor_bi_catalog")
        if store.local:
            os.replace(local, store.p(CATALOG))
        else:
            store.fs.put_file(local, store.p(CATALOG))
    store.write(json.dumps(shape), CATALOG + ".json")
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


def _prune(store: _Store, keep: set[str]) -> None:
    """Remove the versions not kept, and leftovers of other layouts."""
    for folder in store.names(f"marts/*/{VERSION_KEY}=*"):
        if _version_of(folder) not in keep:
            store.rm(folder)
    for record in store.names("versions/*.json"):
        if _version_of(record) not in keep:
            store.rm(record)
    if not store.local:
        return
    root = Path(store.path)
    for mart in (root / "marts").iterdir():
        if mart.is_dir() and not any(mart.iterdir()):
            mart.rmdir()
    for leftover in (root / "versions").iterdir():  # a folder per version, an older layout
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    if (root / "current").is_symlink():
        (root / "current").unlink()
