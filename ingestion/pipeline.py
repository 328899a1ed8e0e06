"""Run the landing-area ingestion: one dlt pipeline into DuckDB (or a DuckLake lakehouse).

A run: finish any load a crashed run left pending, read which file versions the
warehouse already holds, list the landing area, parse only new or changed files,
load them (a run with nothing new loads no package), then append one row to the run
log (`raw.ingest_runs`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dlt
import duckdb
from dlt.common.pipeline import LoadInfo

from ingestion.exports import PLANT_TIMEZONE
from ingestion.listing import KnownFiles, ListingPolicy
from ingestion.outcomes import FileOutcome
from ingestion.sources import landing_source

PIPELINE_NAME = "shopfloor_landing"
DATASET = "raw"

# Settings that must hold wherever shopfloor is started from (not only next to .dlt/).
_DLT_DEFAULTS = {
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "LOAD__WORKERS": "1",
    # loaded packages would otherwise keep a second copy of every reading on disk
    "LOAD__DELETE_COMPLETED_JOBS": "true",
    # a first run declares telemetry_readings with an empty Arrow table, to which dlt adds
    # `_dlt_load_id` dictionary-encoded; when the readings' own file must be rewritten
    # (its columns in another order) both are buffered together: merge the two string
    # types losslessly instead of failing the load
    "DATA_WRITER__ARROW_CONCAT_PROMOTE_OPTIONS": "default",
}


@dataclass(frozen=True)
class Reprocess:
    """Which quarantined files a run reads again, as if they were new."""

    paths: frozenset[str] = frozenset()
    reason: str = ""
    every: bool = False

    def wants(self, relative_path: str, reason: str | None) -> bool:
        return (
            self.every
            or relative_path in self.paths
            or bool(self.reason and self.reason.casefold() in (reason or "").casefold())
        )


@dataclass
class IngestConfig:
    landing: str
    data_dir: str = "data"
    warehouse: str = ""  # DuckDB file; default <data_dir>/warehouse.duckdb
    # set: a dlt destination to load into instead of the DuckDB file (the lakehouse's)
    destination: Any = None
    destination_name: str = ""  # where it loads, for messages (no secret)
    quarantine: str = ""  # default <data_dir>/quarantine
    workers: int = 2
    pseudonym_key: str = ""  # empty: SHOPFLOOR_PSEUDONYM_KEY, else the key file
    policy: ListingPolicy = field(default_factory=ListingPolicy)  # the CLI's: from settings
    plant_timezone: str = PLANT_TIMEZONE  # the maintenance export's local times
    # quarantined files to read again (`shopfloor reprocess`): their newest outcome is
    # quarantined and their path is listed, or their reason contains this text, or all
    reprocess: Reprocess | None = None

    def __post_init__(self) -> None:
        self.warehouse = self.warehouse or str(Path(self.data_dir) / "warehouse.duckdb")
        self.quarantine = self.quarantine or str(Path(self.data_dir) / "quarantine")
        if "://" not in self.landing:
            self.landing = str(Path(self.landing).resolve())


@dataclass
class IngestSummary:
    load_id: str | None
    started_at: datetime
    ended_at: datetime
    status: str  # succeeded | failed
    files_listed: int = 0
    files_new: int = 0
    files_loaded: int = 0
    files_partial: int = 0
    files_quarantined: int = 0
    files_duplicate: int = 0
    files_skipped: int = 0  # not telemetry files (links, FIFOs, other extensions), or gone
    files_waiting: int = 0  # possibly still being written: taken at a later run
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    bytes_read: int = 0
    error: str | None = None
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per dlt step
    finished_pending: bool = False  # loaded a package a crashed run had left

    @property
    def loaded_anything(self) -> bool:
        """Whether the run changed the raw tables (beyond its own run-log row)."""
        return self.load_id is not None or self.finished_pending

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


def redact(error: str | None, limit: int = 300) -> str | None:
    """An error text fit to leave `raw`: quoted input (a line of an export may name a
    person) replaced, one line, bounded. The full text stays in raw.ingest_runs."""
    if error is None:
        return None
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", error.splitlines()[0] if error else "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pseudonym_key(data_dir: str) -> bytes:
    """SHOPFLOOR_PSEUDONYM_KEY, else a random key kept (0600) under the data folder."""
    if key := os.environ.get("SHOPFLOOR_PSEUDONYM_KEY"):
        return key.encode()
    path = Path(data_dir) / ".secrets" / "pseudonym_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def make_pipeline(cfg: IngestConfig) -> dlt.Pipeline:
    for key, value in _DLT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if cfg.destination is not None:
        destination: Any = cfg.destination
    else:
        Path(cfg.warehouse).parent.mkdir(parents=True, exist_ok=True)
        # raw tables carry their own order (source_file, source_line): DuckDB may
        # insert in any order, which makes the load of a run's readings faster
        destination = dlt.destinations.duckdb(
            credentials={
                "database": cfg.warehouse,
                "global_config": {
                    "preserve_insertion_order": False,
                    # a bounded buffer pool keeps peak memory flat however big the batch
                    "memory_limit": os.environ.get("SHOPFLOOR_DUCKDB_MEMORY", "512MB"),
                    # the raw strings (file path, content hash, load id) repeat per file
                    # and end up dictionary-compressed anyway; FSST only made inserts and
                    # checkpoints slower (measurements: bench/README.md, docs/design.md)
                    "disabled_compression_methods": "fsst",
                },
            }
        )
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=destination,
        dataset_name=DATASET,
        pipelines_dir=str(Path(cfg.data_dir) / ".dlt"),
    )


def finish_pending(pipeline: dlt.Pipeline) -> None:
    """Normalize and load what a killed run left.

    A run killed after normalizing a package but before dlt removed its extracted copy
    leaves the package in both places, and normalizing it again fails on the half-removed
    copy: that copy is dropped (the normalized one holds everything).
    """
    normalized = set(pipeline.list_normalized_load_packages())
    for load_id in set(pipeline.list_extracted_load_packages()) & normalized:
        shutil.rmtree(Path(pipeline.working_dir) / "normalize" / "extracted" / load_id)
    pipeline.normalize()
    pipeline.load()


def known_files(pipeline: dlt.Pipeline, reprocess: Reprocess | None = None) -> KnownFiles:
    """File versions already in the warehouse (empty on the first run).

    Without local state (a new machine, a deleted data folder) dlt takes the schema and
    state from the destination first, so a lost cache never re-ingests history. A file
    whose newest outcome is quarantined and that `reprocess` wants is left out: the run
    reads it again and records a new outcome beside the old one (its history of reasons).
    """
    known = KnownFiles()
    if pipeline.default_schema_name is None:
        pipeline.sync_destination()
    if (
        pipeline.default_schema_name is None
        or "landing_files" not in pipeline.default_schema.tables
    ):
        return known  # the first run
    rows = pipeline.dataset()(
        "select size_bytes, modified_at, content_sha256, relative_path,"
        " status = 'quarantined' and file_hour_at is null as untrusted_name,"
        " status, reason"
        " from landing_files order by ingested_at"
    ).fetchall()
    newest: dict[tuple[str, int, str], tuple[str, str | None]] = {}
    for size, modified, digest, rel, untrusted_name, status, reason in rows:
        key = KnownFiles.key(rel, size, modified)
        known.versions.add(key)
        newest[key] = (status, reason)
        # content never read, or quarantined for its name: not a reason to call a file a copy
        if digest and not untrusted_name:
            known.hashes.setdefault(digest, rel)
    if reprocess is not None:
        again = {
            key
            for key, (status, reason) in newest.items()
            if status == "quarantined" and reprocess.wants(key[0], reason)
        }
        paths = {key[0] for key in again}
        return KnownFiles(
            versions=known.versions - again,
            hashes={d: rel for d, rel in known.hashes.items() if rel not in paths},
        )
    return known


def extract_and_load(
    pipeline: dlt.Pipeline, source: Any, timings: dict[str, float]
) -> LoadInfo | None:
    """Extract the source; normalize and load its package only when it holds something.

    A run with no new file and no changed export extracts an empty package: loading it
    would still open the destination several times (on a lake each open attaches the
    catalog) to record a load with no rows, so it is dropped and the warehouse is left
    as it was; the run log row still records the run.
    """
    started = time.perf_counter()
    load_id = pipeline.extract(source).loads_ids[-1]
    timings["extract"] = round(time.perf_counter() - started, 3)
    package = pipeline.get_load_package_info(load_id)
    if not package.jobs["new_jobs"] and not package.schema_update:
        pipeline.abort_packages()  # the only pending package: finish_pending ran first
        return None
    for step in ("normalize", "load"):
        started = time.perf_counter()
        info = getattr(pipeline, step)()
        timings[step] = round(time.perf_counter() - started, 3)
    return cast(LoadInfo, info)


@contextmanager
def _warehouse_held_open(cfg: IngestConfig) -> Iterator[None]:
    """Keep the DuckDB warehouse open for the whole run.

    dlt opens and closes its DuckDB connection about ten times per run. Each time the
    last connection to a file closes, DuckDB checkpoints and closes the database, and
    the next open reads its metadata again, a cost that grows with history
    (bench/README.md). While this process
    holds one connection, dlt's `duckdb.connect` gets the database that is already open
    (same file, same connect configuration) and its closes are cheap.
    """
    if cfg.destination is not None:
        yield
        return
    Path(cfg.warehouse).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(cfg.warehouse)
    try:
        yield
    finally:
        con.close()


def run_ingest(
    cfg: IngestConfig,
    on_file: Callable[[FileOutcome], None] | None = None,
    on_listed: Callable[[int, int, int], None] | None = None,
) -> IngestSummary:
    """One ingestion run; never raises for bad input (see IngestSummary.status)."""
    with _warehouse_held_open(cfg):
        return _run_ingest(cfg, on_file, on_listed)


def _run_ingest(
    cfg: IngestConfig,
    on_file: Callable[[FileOutcome], None] | None,
    on_listed: Callable[[int, int, int], None] | None,
) -> IngestSummary:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    pipeline = make_pipeline(cfg)
    outcomes: list[FileOutcome] = []
    listed = {"n": 0, "waiting": 0}

    def listed_files(n_listed: int, n_new: int, n_waiting: int) -> None:
        listed["n"], listed["waiting"] = n_listed, n_waiting
        if on_listed:
            on_listed(n_listed, n_new, n_waiting)

    def record(outcome: FileOutcome) -> None:
        outcomes.append(outcome)
        if on_file:
            on_file(outcome)

    staging = Path(cfg.data_dir) / ".dlt" / "staging"
    timings: dict[str, float] = {}
    info: LoadInfo | None = None
    error: str | None = None
    finished_pending = False
    try:
        if finished_pending := pipeline.has_pending_data:  # a crashed run's package first
            finish_pending(pipeline)
        pipeline.run()  # no data: state and schema restored from the destination if newer
        known = known_files(pipeline, cfg.reprocess)
        source = landing_source(
            cfg.landing,
            known=known,
            quarantine_url=cfg.quarantine,
            pseudonym_key=cfg.pseudonym_key.encode() or pseudonym_key(cfg.data_dir),
            on_file=record,
            workers=cfg.workers,
            on_listed=listed_files,
            staging_dir=str(staging),
            policy=cfg.policy,
            plant_timezone=cfg.plant_timezone,
            # a lake's Parquet stores decimals far smaller than doubles; DuckDB's own
            # file compresses doubles well (docs/decisions/0007-lakehouse-ducklake.md)
            decimal_values=cfg.destination is not None,
        )
        info = extract_and_load(pipeline, source, timings)
        shutil.rmtree(staging, ignore_errors=True)  # dlt copied the files into its package
    except Exception as exc:  # the run itself failed: report, log, exit non-zero
        error = f"{type(exc).__name__}: {exc}"
    counts = Counter(o.status for o in outcomes)
    summary = IngestSummary(
        load_id=info.loads_ids[-1] if info and info.loads_ids else None,
        started_at=started,
        ended_at=datetime.now(UTC),
        status="failed" if error else "succeeded",
        files_listed=listed["n"],
        files_new=len(outcomes),
        files_loaded=counts["loaded"],
        files_partial=counts["partial"],
        files_quarantined=counts["quarantined"],
        files_duplicate=counts["duplicate"],
        files_skipped=counts["skipped"],
        files_waiting=listed["waiting"],
        rows_read=sum(o.rows_read for o in outcomes),
        rows_loaded=sum(o.rows_loaded for o in outcomes),
        rows_rejected=sum(o.rows_rejected for o in outcomes),
        bytes_read=sum(o.size_bytes or 0 for o in outcomes),
        error=error,
        timings=timings,
        finished_pending=finished_pending,
        quarantined=[
            {"file": o.relative_path, "reason": o.reason}
            for o in outcomes
            if o.status == "quarantined"
        ],
    )
    if error:  # nothing this run read is known to be committed: claim none of it
        summary.files_loaded = summary.files_partial = 0
        summary.rows_loaded = summary.rows_rejected = 0
    summary.ended_at = datetime.now(UTC)
    row = {
        k: v
        for k, v in asdict(summary).items()
        if k not in ("quarantined", "timings", "finished_pending")
    }
    row["duration_s"] = round(time.perf_counter() - t0, 3)
    try:
        pipeline.run(
            [row],
            table_name="ingest_runs",
            write_disposition="append",
            columns={"error": {"data_type": "text"}, "load_id": {"data_type": "text"}},
        )
    except Exception as exc:  # the run log must never hide the run's own outcome
        if not error:
            summary.status, summary.error = "failed", f"run log: {exc}"
    return summary
