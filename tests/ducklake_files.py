"""A second engine on the lakehouse: pyarrow reads a DuckLake table from its open catalog.

A DuckLake is SQL tables (here in SQLite) that list Parquet files per snapshot. This reader
follows the format's specification with nothing from DuckDB: the latest snapshot, the
table's live data files, their paths relative to the schema's and the table's. Rows deleted
by a later snapshot would be in delete files; it refuses a table that has any.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem


def data_files(catalog: Path, schema: str, table: str) -> list[str]:
    """The URLs of the Parquet files holding `schema.table` at the latest snapshot."""
    with sqlite3.connect(catalog) as con:
        (snapshot,) = con.execute("select max(snapshot_id) from ducklake_snapshot").fetchone()
        (data_path,) = con.execute(
            "select value from ducklake_metadata where key = 'data_path' and scope is null"
        ).fetchone()
        live = "{0}begin_snapshot <= :s and ({0}end_snapshot is null or {0}end_snapshot > :s)"
        found = con.execute(
            "select t.table_id, s.path, s.path_is_relative, t.path, t.path_is_relative"
            " from ducklake_table t join ducklake_schema s using (schema_id)"
            " where s.schema_name = :schema and t.table_name = :table"
            f" and {live.format('t.')} and {live.format('s.')}",
            {"schema": schema, "table": table, "s": snapshot},
        ).fetchone()
        assert found, f"{schema}.{table} is not in the lake"
        table_id, schema_path, schema_rel, table_path, table_rel = found
        deletes = con.execute(
            f"select count(*) from ducklake_delete_file where table_id = :t and {live.format('')}",
            {"t": table_id, "s": snapshot},
        ).fetchone()[0]
        assert deletes == 0, f"{schema}.{table} has delete files: this reader does not apply them"
        files = con.execute(
            "select path, path_is_relative from ducklake_data_file"
            f" where table_id = :t and {live.format('')}"
            " order by file_order, data_file_id",
            {"t": table_id, "s": snapshot},
        ).fetchall()
    base = (data_path + schema_path) if schema_rel else schema_path
    base = (base + table_path) if table_rel else table_path
    return [(base + path) if relative else path for path, relative in files]


def read_table(catalog: Path, schema: str, table: str, fs: AbstractFileSystem) -> pa.Table:
    """`schema.table` as one Arrow table (files written before a column existed: nulls)."""
    tables = []
    for url in data_files(catalog, schema, table):
        with fs.open(url.removeprefix("s3://"), "rb") as f:
            tables.append(pq.read_table(f))
    return pa.concat_tables(tables, promote_options="default")
