"""Publish the marts to PostgreSQL, for BI tools whose first-class driver is Postgres.

One transaction per publish: readers see the marts of one run or of the next, never a
mix. Marts that grow with history (an ``hour_at`` column) are published by UTC day:
only the days whose rows changed since the last publish are deleted and copied again
(their checksums are kept in the ``shopfloor_publish`` schema, which BI cannot read).

From dbt's manifest (one source of truth): primary keys from the ``unique`` and
``unique_combination`` tests, foreign keys from ``relationships`` tests (deferred to
commit, so a whole mart can be replaced inside the transaction), and every model and
column description as ``COMMENT ON`` (Metabase shows them).

The BI role (default ``shopfloor_bi``) is created or checked each time: it may log in,
use the ``marts`` schema and select its tables, and nothing else.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql

from shopfloor.serving.snapshot import (
    PARTITION_COLUMN,
    SCHEMA,
    day_checksums,
    in_days_sql,
    mart_columns,
)

BOOKKEEPING = "shopfloor_publish"
PG_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric",
    "UBIGINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "VARCHAR": "text",
}


@dataclass
class PgPublishResult:
    marts: int
    days_written: int
    rows_copied: int
    seconds: float


@dataclass(frozen=True)
class _Link:
    """The two ends of a publish and the folder the rows pass through."""

    con: duckdb.DuckDBPyConnection
    pg: psycopg.Connection[Any]
    tmp: Path


@dataclass(frozen=True)
class DbtDocs:
    """What dbt's manifest says about the marts: descriptions and keys."""

    descriptions: dict[str, tuple[str, dict[str, str]]]  # mart -> (model, {column: text})
    primary_keys: dict[str, list[str]]
    foreign_keys: dict[str, list[tuple[str, str, str]]]  # mart -> (column, to mart, field)

    @classmethod
    def load(cls, manifest: Path) -> DbtDocs:
        if not manifest.exists():
            return cls({}, {}, {})
        nodes = json.loads(manifest.read_text())["nodes"]
        descriptions = {
            n["name"]: (
                n.get("description", ""),
                {c: v.get("description", "") for c, v in n.get("columns", {}).items()},
            )
            for n in nodes.values()
            if n["resource_type"] == "model" and n.get("schema") == SCHEMA
        }
        keys: dict[str, list[str]] = {}
        refs: dict[str, list[tuple[str, str, str]]] = {}
        for n in nodes.values():
            test = n.get("test_metadata") or {}
            model = (n.get("attached_node") or "").rsplit(".", 1)[-1]
            kwargs = test.get("kwargs", {})
            if test.get("name") == "unique":
                keys[model] = [kwargs["column_name"]]
            elif test.get("name") == "unique_combination":
                keys[model] = list(kwargs["columns"])
            elif test.get("name") == "relationships":
                target = kwargs["to"].split("'")[1]
                refs.setdefault(model, []).append((kwargs["column_name"], target, kwargs["field"]))
        return cls(descriptions, keys, refs)


def publish_postgres(
    con: duckdb.DuckDBPyConnection,
    url: str,
    *,
    manifest: Path,
    role: str = "shopfloor_bi",
    role_password: str = "",
) -> PgPublishResult:
    """Publish every mart of `con` to the Postgres database at `url`, in one transaction."""
    started = time.perf_counter()
    docs = DbtDocs.load(manifest)
    marts = mart_columns(con)
    written = copied = 0
    with psycopg.connect(url) as pg, tempfile.TemporaryDirectory() as tmp:
        _bookkeeping(pg)
        link = _Link(con, pg, Path(tmp))
        for mart, columns in marts.items():
            fresh = _ensure_table(pg, mart, columns, docs.primary_keys.get(mart, []))
            if PARTITION_COLUMN in dict(columns):
                w, c = _sync_days(link, mart, columns, fresh)
                written, copied = written + w, copied + c
            else:
                pg.execute(sql.SQL("delete from {}").format(_table(mart)))
                copied += _copy(link, mart, columns, "true")
        _foreign_keys(pg, docs, marts)
        _comments(pg, docs, marts)
        _bi_role(pg, role, role_password)
    return PgPublishResult(len(marts), written, copied, round(time.perf_counter() - started, 2))


def _table(mart: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(mart))


def _bookkeeping(pg: psycopg.Connection[Any]) -> None:
    pg.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(SCHEMA)))
    pg.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(BOOKKEEPING)))
    pg.execute(
        f"create table if not exists {BOOKKEEPING}.marts"
        " (mart text primary key, columns jsonb not null)"
    )
    pg.execute(
        f"create table if not exists {BOOKKEEPING}.days"
        " (mart text, day text, checksum text, primary key (mart, day))"
    )


def _ensure_table(
    pg: psycopg.Connection[Any], mart: str, columns: list[tuple[str, str]], key: list[str]
) -> bool:
    """Create the mart's table, or recreate it when its columns changed. True: new."""
    signature = json.dumps(columns)
    row = pg.execute(f"select columns::text from {BOOKKEEPING}.marts where mart = %s", [mart])
    found = row.fetchone()
    if found and json.loads(found[0]) == json.loads(signature):
        return False
    pg.execute(sql.SQL("drop table if exists {} cascade").format(_table(mart)))
    definitions = [
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(PG_TYPES.get(k, "text")))
        for c, k in columns
    ]
    if key and all(k in dict(columns) for k in key):
        definitions.append(
            sql.SQL("primary key ({})").format(sql.SQL(", ").join(map(sql.Identifier, key)))
        )
    pg.execute(
        sql.SQL("create table {} ({})").format(_table(mart), sql.SQL(", ").join(definitions))
    )
    pg.execute(f"delete from {BOOKKEEPING}.days where mart = %s", [mart])
    pg.execute(
        f"insert into {BOOKKEEPING}.marts values (%s, %s::jsonb)"
        " on conflict (mart) do update set columns = excluded.columns",
        [mart, signature],
    )
    return True


def _sync_days(
    link: _Link, mart: str, columns: list[tuple[str, str]], fresh: bool
) -> tuple[int, int]:
    """Replace the days whose rows changed since the last publish (all when `fresh`)."""
    con, pg = link.con, link.pg
    names = [c for c, _ in columns]
    now = day_checksums(con, mart, names)
    before = (
        {}
        if fresh
        else dict(
            pg.execute(f"select day, checksum from {BOOKKEEPING}.days where mart = %s", [mart])
        )
    )
    changed = sorted(d for d, h in now.items() if before.get(d) != h)
    gone = sorted(set(before) - set(now))
    for day in [*changed, *gone]:
        pg.execute(
            sql.SQL("delete from {} where {} >= %s::date and {} < %s::date + 1").format(
                _table(mart),
                sql.Identifier(PARTITION_COLUMN),
                sql.Identifier(PARTITION_COLUMN),
            ),
            [day, day],
        )
    pg.execute(
        f"delete from {BOOKKEEPING}.days where mart = %s and day = any(%s)", [mart, changed + gone]
    )
    rows = 0
    if changed:
        rows = _copy(link, mart, columns, in_days_sql(changed))
        with pg.cursor() as cur:
            cur.executemany(
                f"insert into {BOOKKEEPING}.days values (%s, %s, %s)",
                [(mart, d, now[d]) for d in changed],
            )
    return len(changed), rows


def _copy(link: _Link, mart: str, columns: list[tuple[str, str]], where: str) -> int:
    """Rows of the mart matching `where`, from DuckDB to Postgres through a CSV file."""
    names = [c for c, _ in columns]
    select = ", ".join(f'"{c}"' for c in names)
    path = link.tmp / f"{mart}.csv"
    link.con.execute(
        f"copy (select {select} from {SCHEMA}.{mart} where {where}) to '{path}'"
        " (format csv, header false, dateformat '%Y-%m-%d',"
        " timestampformat '%Y-%m-%d %H:%M:%S.%f%z')"
    )
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        _table(mart), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with link.pg.cursor() as cur:
        with cur.copy(statement) as copy, path.open("rb") as data:
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        return max(cur.rowcount, 0)  # known once the copy has ended


def _foreign_keys(
    pg: psycopg.Connection[Any], docs: DbtDocs, marts: dict[str, list[tuple[str, str]]]
) -> None:
    for mart, refs in docs.foreign_keys.items():
        for column, target, field in refs:
            if mart not in marts or target not in marts:
                continue
            name = f"fk_{mart}_{column}"[:63]
            exists = pg.execute(
                "select 1 from pg_constraint"
                " where conname = %s and connamespace = %s::regnamespace",
                [name, SCHEMA],
            ).fetchone()
            if not exists:
                pg.execute(
                    sql.SQL(
                        "alter table {} add constraint {} foreign key ({}) references {} ({})"
                        " deferrable initially deferred"
                    ).format(
                        _table(mart),
                        sql.Identifier(name),
                        sql.Identifier(column),
                        _table(target),
                        sql.Identifier(field),
                    )
                )


def _comments(
    pg: psycopg.Connection[Any], docs: DbtDocs, marts: dict[str, list[tuple[str, str]]]
) -> None:
    for mart, columns in marts.items():
        model, described = docs.descriptions.get(mart, ("", {}))
        pg.execute(
            sql.SQL("comment on table {} is {}").format(_table(mart), sql.Literal(model or None))
        )
        for column, _ in columns:
            pg.execute(
                sql.SQL("comment on column {}.{} is {}").format(
                    _table(mart),
                    sql.Identifier(column),
                    sql.Literal(described.get(column) or None),
                )
            )


def _bi_role(pg: psycopg.Connection[Any], role: str, password: str) -> None:
    """Create or check the read-only role: select on the marts, nothing more."""
    found = pg.execute(
        "select rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolcanlogin"
        " from pg_roles where rolname = %s",
        [role],
    ).fetchone()
    ident = sql.Identifier(role)
    if found is None:
        pg.execute(sql.SQL("create role {} login noinherit").format(ident))
    elif found[0]:
        raise ValueError(f"role {role} is a superuser: BI needs a role that can only read")
    else:
        # only what differs: the owner a DBA hands out (CREATEROLE, no superuser) may not
        # even name the superuser attribute
        wrong = [
            attribute
            for attribute, is_set in zip(
                ("nocreatedb", "nocreaterole", "noinherit", "login"),
                (found[1], found[2], found[3], not found[4]),
                strict=True,
            )
            if is_set
        ]
        if wrong:
            pg.execute(sql.SQL("alter role {} " + " ".join(wrong)).format(ident))
    if password:
        pg.execute(sql.SQL("alter role {} password {}").format(ident, sql.Literal(password)))
    schema = sql.Identifier(SCHEMA)
    pg.execute(sql.SQL("revoke all on schema {} from {}").format(schema, ident))
    pg.execute(sql.SQL("grant usage on schema {} to {}").format(schema, ident))
    pg.execute(sql.SQL("grant select on all tables in schema {} to {}").format(schema, ident))
    pg.execute(
        sql.SQL("revoke all on schema {} from {}").format(sql.Identifier(BOOKKEEPING), ident)
    )
    pg.execute(sql.SQL("revoke create on schema public from {}").format(ident))
