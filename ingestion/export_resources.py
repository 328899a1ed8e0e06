"""dlt resources for the plant's CSV exports: the maintenance log (a snapshot each time
its content changes) and the registry (replaced when it changes).

An export is read again only when its bytes differ from the last version loaded or
rejected whole. The maintenance log keeps that hash in its resource's dlt state; a
registry keeps it in the source's state, because dlt empties the state of a `replace`
resource at every extract, and an unchanged registry is left out of the run altogether
(a `replace` resource that yields nothing truncates its table).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
import fsspec
import pyarrow as pa

from ingestion.exports import ExportRows, parse_maintenance_log, parse_registry
from ingestion.tables import MAINTENANCE_COLUMNS, REGISTRY_COLUMNS, with_table_hints
from ingestion.telemetry import sha256

MAINTENANCE_PATH = "maintenance/maintenance_log.csv"
REGISTRY_PATHS = {
    "machine_registry": "registry/machines.csv",
    "sensor_ratings": "registry/sensor_ratings.csv",
}


def _read(landing_url: str, path: str) -> bytes | None:
    fs, root = fsspec.core.url_to_fs(landing_url)
    try:
        data: bytes = fs.cat_file(f"{root.rstrip('/')}/{path}")
    except FileNotFoundError:
        return None
    return data


def _changed(landing_url: str, path: str, state: dict[str, Any], reading: str = "") -> bytes | None:
    """The file's bytes if it exists and differs from the last version loaded or rejected
    whole (`state` holds their hashes; an export rejected whole is not read again until it
    changes), or if it was read another way (`reading`: e.g. another plant time zone)."""
    if (data := _read(landing_url, path)) is None:
        return None
    digest = sha256(data)
    if state.get("reading", "") != reading:
        return data
    return None if digest in (state.get("sha256"), state.get("rejected_sha256")) else data


def _export_rejects(
    path: str, data: bytes, parsed: ExportRows, state: dict[str, Any]
) -> Iterator[Any]:
    """The export's rejected lines (or the whole file), then its hash in `state`."""
    digest = sha256(data)
    now = datetime.now(UTC)
    if parsed.rejects:
        rows = [
            r | {"source_file": path, "source_file_sha256": digest, "ingested_at": now}
            for r in parsed.rejects
        ]
        yield with_table_hints(rows, "export_rejects")
    key = "rejected_sha256" if parsed.rejected_whole else "sha256"
    state[key] = digest


def maintenance_log(landing_url: str, pseudonym_key: bytes, timezone: str) -> Any:
    @dlt.resource(name="maintenance_log", write_disposition="append", columns=MAINTENANCE_COLUMNS)
    def read() -> Iterator[Any]:
        """A snapshot of the work-order export, each time its content changes."""
        reading = f"timezone={timezone}"
        state = dlt.current.resource_state()
        if (data := _changed(landing_url, MAINTENANCE_PATH, state, reading)) is None:
            # the table before the first export arrives
            if not state.get("declared") and not state.get("sha256"):
                state["declared"] = True
                yield dlt.mark.materialize_table_schema()  # appends nothing
            return
        table, parsed = parse_maintenance_log(data, pseudonym_key, timezone)
        if not parsed.rejected_whole:
            n = table.num_rows
            table = table.append_column("source_file_sha256", pa.repeat(pa.scalar(sha256(data)), n))
            table = table.append_column(
                "ingested_at",
                pa.repeat(pa.scalar(datetime.now(UTC), pa.timestamp("us", "UTC")), n),
            )
            yield table
        yield from _export_rejects(MAINTENANCE_PATH, data, parsed, state)
        state["reading"] = reading

    return read


def _registry_state(name: str) -> dict[str, Any]:
    """The registry's hashes, kept in the source's state (written during an extract only:
    a change made outside one would reach the warehouse with the next run's package)."""
    state: dict[str, Any] = dlt.current.source_state().setdefault("registry", {})
    return state.setdefault(name, {})


def registry_changed(landing_url: str, name: str) -> bool:
    """Whether the registry file must be read this run: it changed since the last version
    loaded or rejected whole, or its table was never declared (needs an active pipeline)."""
    state = dlt.current.source_state().get("registry", {}).get(name, {})
    if _changed(landing_url, REGISTRY_PATHS[name], state) is not None:
        return True
    return not state.get("sha256") and not state.get("declared")


def registry(landing_url: str, name: str) -> Any:
    """The registry file, whole, replacing its table. Include it in a run only when
    `registry_changed`: a `replace` resource that yields nothing empties its table."""
    path = REGISTRY_PATHS[name]

    @dlt.resource(name=name, write_disposition="replace", columns=REGISTRY_COLUMNS[name])
    def read() -> Iterator[Any]:
        """The registry file, whole, when it changed."""
        state = _registry_state(name)
        data = _changed(landing_url, path, state)
        parsed = parse_registry(data, name) if data is not None else None
        if parsed is None or parsed[1].rejected_whole:
            # an empty table until the file first arrives
            if not state.get("sha256"):
                state["declared"] = True
                yield dlt.mark.materialize_table_schema()
        else:
            yield parsed[0]
        if data is not None and parsed is not None:
            yield from _export_rejects(path, data, parsed[1], state)

    return read
