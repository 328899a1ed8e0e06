"""The raw tables' declared columns (dataset `raw`).

Every raw table's columns are declared up front: dlt creates a column (or a table) only
for data it has seen, and staging must build on a clean fleet (no rejects, no
duplicates), on only quarantined files, or on an empty landing area.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.data_types import TDataType
from dlt.common.schema import TColumnSchema

from ingestion.outcomes import FileOutcome, dlt_columns


def columns_of(**types: TDataType) -> dict[str, TColumnSchema]:
    return {name: {"data_type": t, "nullable": True} for name, t in types.items()}


# which file version a row came from, and when it was loaded
FILE_LINEAGE = columns_of(source_file="text", source_file_sha256="text", ingested_at="timestamp")
READING_COLUMNS = (
    columns_of(
        machine_id="text",
        reading_at="timestamp",
        utc_offset_min="bigint",
        status="text",
        source_line="bigint",
    )
    | FILE_LINEAGE
)
REJECT_COLUMNS = (
    columns_of(line_number="bigint", raw_line="text", reason="text", machine_id="text")
    | FILE_LINEAGE
)
FILE_COLUMNS = dlt_columns(FileOutcome)
# fmt: off
MAINTENANCE_COLUMNS = columns_of(  # grouped: the work order, its times, what was done
    work_order="text", machine_id="text",
    reported_at="timestamp", started_at="timestamp", ended_at="timestamp",
    maintenance_type="text", component="text", failure_mode="text",
    technician_key="text", has_notes="bool",  # personal fields: a keyed hash, a flag
    source_line="bigint", source_file_sha256="text", ingested_at="timestamp",
)
# fmt: on
EXPORT_REJECT_COLUMNS = (
    columns_of(
        line_number="bigint",  # NULL: the whole export was rejected
        reason="text",  # never quotes a personal field of the export
    )
    | FILE_LINEAGE
)
REGISTRY_COLUMNS = {
    "machine_registry": columns_of(
        machine_id="text",
        model="text",
        line="text",
        installed_on="date",
        retired_on="date",  # optional in the file: a machine still in service has none
        rated_power_kw="double",
    ),
    "sensor_ratings": columns_of(
        model="text", sensor="text", unit="text", rated_min="double", rated_max="double"
    ),
}


APPENDED_TABLES = {
    "telemetry_readings": READING_COLUMNS,
    "telemetry_rejects": REJECT_COLUMNS,
    "landing_files": FILE_COLUMNS,
    "export_rejects": EXPORT_REJECT_COLUMNS,
}


# the column beside a sensor's decimals that holds the values they cannot (ingestion's
# load_files.exact_decimals; dbt's staging puts them back together)
VARIANT_SUFFIX = "__v_double"


def arrow_type(column: Mapping[str, Any]) -> pa.DataType:
    """Arrow type of a declared or existing column (sensors are doubles, or decimals on a
    lake)."""
    if column.get("data_type") == "decimal":
        return pa.decimal128(column.get("precision") or 18, column.get("scale") or 9)
    return {
        "double": pa.float64(),
        "text": pa.string(),
        "bigint": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }.get(column.get("data_type", "double"), pa.float64())


# tables loaded as Arrow (Parquet files the ingestion writes): they carry no `_dlt_id`
ARROW_TABLES = {"telemetry_readings"}


def with_table_hints(item: Any, name: str) -> Any:
    """`item` (rows or an Arrow table) bound for the appended raw table `name`."""
    return dlt.mark.with_hints(
        item,
        dlt.mark.make_hints(
            table_name=name, write_disposition="append", columns=APPENDED_TABLES[name]
        ),
        create_table_variant=True,
    )


def declared_table(table: str) -> Any:
    """A resource that creates `table` with its declared columns even when no run has
    had such rows."""

    @dlt.resource(
        name=f"{table}_declared",
        table_name=table,
        write_disposition="append",
        columns=APPENDED_TABLES[table],
    )
    def materialize() -> Iterator[Any]:
        # once per warehouse: a run with nothing new then loads no job for it (on a
        # lakehouse every job is a catalog connection and object writes)
        state = dlt.current.resource_state()
        if state.get("declared"):
            return
        state["declared"] = True
        if table in ARROW_TABLES:
            # declared as Arrow, like its loads: a table dlt creates from rows has a
            # NOT NULL `_dlt_id` that no later Arrow load fills (a first delivery of
            # only quarantined files would block every later load)
            columns = APPENDED_TABLES[table]
            fields = [(name, arrow_type(col)) for name, col in columns.items()]
            yield pa.schema(fields).empty_table()
        else:
            yield dlt.mark.materialize_table_schema()

    return materialize
