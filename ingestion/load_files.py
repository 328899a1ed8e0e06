"""The readings' Parquet load files, written for dlt to import as they are."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion.tables import VARIANT_SUFFIX, arrow_type
from ingestion.telemetry import SENSOR_PREFIX

# a lake's sensor values: decimals with nine places below ±1e9 (docs/decisions/0007)
EXACT_DECIMAL = pa.decimal128(18, 9)
_NANO = pa.scalar(Decimal("1e-9"), pa.decimal128(1, 9))


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

    With `decimal_values` (a lake), sensor values are written as DECIMAL(18, 9) where
    that holds them exactly (function exact_decimals).
    """

    def __init__(
        self,
        load_id: str,
        staging_dir: str,
        max_rows: int = 1_000_000,
        group_rows: int = 65_536,
        max_buffered: int = 393_216,
        known_columns: Callable[[], Mapping[str, Any]] | None = None,
        decimal_values: bool = False,
    ) -> None:
        self.decimal_values = decimal_values
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
            if self.decimal_values:
                table = exact_decimals(table)
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
        # a column the table has keeps its type (a lake made before its sensors were
        # decimals keeps doubles: the exact decimals convert back to the same doubles)
        ordered = [
            pa.field(name, arrow_type(col)) if col.get("data_type") else fields[name]
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


def exact_decimals(table: pa.Table) -> pa.Table:
    """Sensor doubles as DECIMAL(18, 9) where that holds them exactly; a value it cannot
    hold (beyond ±1e9, or finer than 1e-9) goes to `<column>__v_double`, as dlt names a
    variant column, and the decimal is NULL there: nothing is rounded. Sensors write a
    few decimals (their resolution), which a decimal stores as a small integer that
    Parquet's delta encoding packs tightly, where a double's 64 bits hardly compress."""
    for name in table.column_names:
        column = table[name]
        if not (name.startswith(SENSOR_PREFIX) and pa.types.is_floating(column.type)):
            continue
        fits = pc.less(pc.abs(column), 1e9)
        # the nearest multiple of 1e-9 (a cast alone truncates: 55.05709 is stored as
        # 55.0570899999…), as an integer count of 1e-9, then scaled
        nanos = pc.cast(pc.round(pc.multiply(pc.if_else(fits, column, None), 1e9)), pa.int64())
        scaled = pc.multiply(pc.cast(nanos, pa.decimal128(19, 0)), _NANO)
        decimals = pc.cast(scaled, EXACT_DECIMAL, safe=False)
        # exact: read back as SQL engines convert a decimal (n / 1e9, DuckDB's cast), the
        # same double
        back = pc.divide(pc.cast(nanos, pa.float64(), safe=False), 1e9)
        exact = pc.fill_null(pc.equal(back, column), False)
        index = table.schema.get_field_index(name)
        lost = pc.and_(pc.invert(exact), pc.is_valid(column))
        if not pc.any(lost).as_py():
            table = table.set_column(index, name, decimals)
            continue
        table = table.set_column(index, name, pc.if_else(exact, decimals, None))
        table = table.append_column(
            name + VARIANT_SUFFIX, pc.if_else(lost, column, pa.scalar(None, pa.float64()))
        )
    return table
