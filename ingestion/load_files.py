"""The readings' Parquet load files, written for dlt to import as they are."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import dlt
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.tables import arrow_type


class ReadingsWriter:
    """Streams a run's readings into as few Parquet load files as possible.

    Written here rather than by dlt's Arrow writer, for reasons measured on this
    data (bench/README.md): dlt writes doubles dictionary-encoded (slow for readings,
    which hardly repeat) and starts a new file at every change of schema, i.e.
    at every change of machine model, and DuckDB loads one big file much faster
    than many small ones. A new file starts only when a new sensor column
    appears. Columns follow the table schema's order, so dlt imports the file
    as it is.

    Rows are grouped by machine: each machine's files are buffered until
    `group_rows` readings, then written as one row group. Files arrive in
    delivery order (every machine's hour, then the next hour), and a machine
    reports only its model's sensors, so in delivery order every row group
    mixes all machines and no sensor column is ever all NULL in one; grouped,
    half the columns of a row group are NULL throughout, and DuckDB's
    checkpoint of the wide table (paid by every hourly run, in proportion to
    the whole table) gets cheaper (bench/README.md). Memory stays bounded: at
    most `max_buffered` readings wait, after which the biggest group is written.
    """

    def __init__(
        self,
        load_id: str,
        staging_dir: str,
        max_rows: int = 1_000_000,
        group_rows: int = 65_536,
        max_buffered: int = 393_216,
        known_columns: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.load_id = load_id
        self.staging_dir = Path(staging_dir)
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None
        self.rows = 0
        self.max_rows = max_rows
        self.group_rows = group_rows
        self.max_buffered = max_buffered
        self.groups: dict[str, list[pa.Table]] = {}
        self.group_sizes: Counter[str] = Counter()
        self.schema: pa.Schema | None = None  # the last file's
        # the readings table's columns as dlt knows them (its schema, in order)
        self.known_columns = known_columns or (
            lambda: (
                dlt.current.source_schema().tables.get("telemetry_readings", {}).get("columns", {})
            )
        )

    def add(self, tables: list[pa.Table]) -> Iterator[Any]:
        for table in tables:
            if not table.num_rows:
                continue
            machine = table["machine_id"][0].as_py()  # one file: one machine
            self.groups.setdefault(machine, []).append(table)
            self.group_sizes[machine] += table.num_rows
            if self.group_sizes[machine] >= self.group_rows:
                yield from self._write_group(machine)
            elif self.group_sizes.total() > self.max_buffered:
                yield from self._write_group(self.group_sizes.most_common(1)[0][0])

    def _write_group(self, machine: str) -> Iterator[Any]:
        # one contiguous chunk per column: Parquet writes a chunked column piece by piece,
        # and an hour file at a reading per few minutes is a chunk of a dozen rows
        tables = self.groups.pop(machine)
        chunk = pa.concat_tables(tables, promote_options="default").combine_chunks()
        del self.group_sizes[machine]
        chunk = chunk.append_column(
            "_dlt_load_id", pa.repeat(pa.scalar(self.load_id), chunk.num_rows)
        )
        if self.writer and (
            set(chunk.column_names) - set(self.writer.schema.names)  # a new sensor column
            or self.rows >= self.max_rows  # or big enough: DuckDB's memory stays bounded
        ):
            yield from self._close_file()
        if self.writer is None:
            # with the columns of every buffered file too: the groups of the other
            # machine models then fit in this file instead of starting new ones
            waiting = [t.schema for tables in self.groups.values() for t in tables]
            self._open(pa.unify_schemas([chunk.schema, *waiting]))
        assert self.writer is not None
        schema = self.writer.schema
        n = chunk.num_rows
        columns = [
            chunk[f.name].cast(f.type) if f.name in chunk.column_names else pa.nulls(n, f.type)
            for f in schema
        ]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=65_536)
        self.rows += n

    def _open(self, chunk_schema: pa.Schema) -> None:
        known_columns = self.known_columns()
        fields = {f.name: f for f in chunk_schema}
        ordered = [
            fields.get(name) or pa.field(name, arrow_type(col))
            for name, col in known_columns.items()
            if name in fields or col.get("data_type")
        ]
        # and every column this run's earlier files had (machine models differ)
        if self.schema is not None:
            ordered += [f for f in self.schema if f.name not in known_columns]
        names = {f.name for f in ordered}
        ordered += [f for name, f in fields.items() if name not in names]
        schema = pa.schema(ordered)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.staging_dir / f"readings_{self.load_id}_{uuid.uuid4().hex[:12]}.parquet"
        strings = [f.name for f in schema if pa.types.is_string(f.type)]
        # uncompressed: the file lives only until dlt has loaded it, compressing it
        # was half of the writer's time, and DuckDB loads both equally fast
        self.schema = schema
        self.writer = pq.ParquetWriter(
            self.path, schema, compression="none", use_dictionary=strings
        )

    def close(self) -> Iterator[Any]:
        for machine in sorted(self.groups):
            yield from self._write_group(machine)
        yield from self._close_file()

    def _close_file(self) -> Iterator[Any]:
        if self.writer is None or self.path is None:
            return
        schema = self.writer.schema
        self.writer.close()
        hints = dlt.mark.make_hints(
            table_name="telemetry_readings",
            write_disposition="append",
            columns=cast(Any, schema),  # dlt takes an Arrow schema as the column hints
        )
        yield dlt.mark.with_file_import(str(self.path), "parquet", self.rows, hints=hints)
        self.writer, self.path, self.rows = None, None, 0
