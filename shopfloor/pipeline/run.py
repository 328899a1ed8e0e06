"""`shopfloor run`: the plant's hourly pipeline, safe to schedule.

ingest -> dbt build -> train (only when no model exists) -> score -> dbt build of the risk
mart. One run at a time per data folder: an OS file lock (released by the kernel when a
run dies, so a crashed run never leaves a lock that blocks the next one) plus a state
file that tells the next run a previous one crashed and in which stage. Every stage is
idempotent (dlt finishes pending load packages, dbt rebuilds, scoring skips scored
hours), so a run after a crash resumes by simply running again.

Each run appends one JSON line to ``<data>/runs.jsonl`` (read by `shopfloor status`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from shopfloor.core.errors import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    PipelineBusyError,
    SettingsError,
    WarehouseBusyError,
)
from shopfloor.core.settings import Settings

if TYPE_CHECKING:
    import duckdb

    from ingestion.pipeline import IngestConfig, IngestSummary
    from ml.model import TrainConfig
    from shopfloor.serving.snapshot import PublishResult


@dataclass
class RunSummary:
    started_at: str
    ended_at: str = ""
    status: str = "running"  # succeeded | failed | busy (another process held the warehouse)
    failed_stage: str | None = None
    error: str | None = None
    resumed_after_crash: dict[str, Any] | None = None
    stages_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(
        default_factory=dict
    )  # the process's peak after each stage
    files_new: int = 0
    files_loaded: int = 0
    files_partial: int = 0
    files_quarantined: int = 0
    files_duplicate: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0  # data or unit tests that failed or could not run (error)
    models_built: int = 0
    models_failed: int = 0  # models (and hooks, seeds, snapshots) that ended in an error
    nodes_skipped: int = 0  # left out because something upstream failed
    model_version: str | None = None
    trained: bool = False
    scoring_skipped: str | None = None  # why no model scored this run (a young plant)
    hours_scored: int = 0
    published_version: str | None = None  # the serving layer's version this run published
    # stages with nothing to do: no new rows, scores or dbt project since the last build
    unchanged: list[str] = field(default_factory=list)
    machines_at_risk: list[str] = field(default_factory=list)
    silent_machines: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.status == "busy":
            return EXIT_BUSY
        return EXIT_OK if self.status == "succeeded" else EXIT_FAILED


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@contextmanager
def pipeline_lock(data_dir: str, wait_s: float = 0.0) -> Iterator[dict[str, Any] | None]:
    """Hold the data folder's run lock; yield the crashed previous run's state, if any."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data / ".shopfloor-run.lock"))
    state_path = data / ".shopfloor-run.json"
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        holder = _read_json(state_path) or {}
        raise PipelineBusyError(
            f"another shopfloor run is in progress on {data} "
            f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"started {holder.get('started_at', '?')}, stage {holder.get('stage', '?')})"
        ) from None
    try:
        previous = _read_json(state_path)
        crashed = previous if previous and previous.get("status") == "running" else None
        yield crashed
    finally:
        lock.release()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _write_state(data_dir: str, **state: Any) -> None:
    path = Path(data_dir) / ".shopfloor-run.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


@dataclass
class RunContext:
    """What every stage of a run gets: the settings, the summary it fills in, options."""

    settings: Settings
    summary: RunSummary
    train_if_missing: bool = True
    ingest: Callable[[IngestConfig], IngestSummary] | None = None  # the CLI's, with progress
    on_step: Callable[[str], None] = lambda _text: None  # a long step starts
    dbt_lines: bool = False  # dbt's line per node on the console (else errors only)
    built: dict[str, str] = field(default_factory=dict)  # the last build's record (build_state)
    inputs: str | None = None  # this run's build inputs' fingerprint (build_state)
    loaded_anything: bool = True  # the ingest changed the raw tables
    scores_changed: bool = True  # the score stage wrote scores or trained a model

    @property
    def data_dir(self) -> str:
        return self.settings.data_dir


def run_pipeline(
    settings: Settings,
    *,
    wait_s: float = 0.0,
    train_if_missing: bool = True,
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[str], None] | None = None,
    ingest: Callable[[IngestConfig], IngestSummary] | None = None,
    dbt_lines: bool = False,
) -> RunSummary:
    """Run every stage once under the lock. Raises PipelineBusyError when another run holds
    it, WarehouseBusyError when another process holds the warehouse for longer than wait_s.
    dbt prints only its errors unless `dbt_lines` (its full log is in dbt_log_path)."""
    deadline = time.monotonic() + wait_s
    summary = RunSummary(started_at=_now())
    ctx = RunContext(settings, summary, train_if_missing, ingest, dbt_lines=dbt_lines)
    if on_step:
        ctx.on_step = on_step
    data_dir = settings.data_dir
    started = time.perf_counter()
    _preload_model_libraries()
    summary.stages_s["startup"] = round(time.perf_counter() - started, 2)
    with pipeline_lock(data_dir, wait_s) as crashed:
        wait_for_warehouse(settings, deadline)
        summary.resumed_after_crash = crashed
        state = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": summary.started_at,
            "status": "running",
        }
        stage = "ingest"
        try:
            for stage, step in _STAGES.items():
                _write_state(data_dir, **{**state, "stage": stage})
                if on_stage:
                    on_stage(stage)
                started = time.perf_counter()
                step(ctx)
                summary.stages_s[stage] = round(time.perf_counter() - started, 2)
                summary.peak_rss_mb[stage] = _peak_rss_mb()
                if summary.status == "failed":
                    break
            else:
                summary.status = "succeeded"
        except Exception as exc:  # a stage's unexpected error fails the run, not the process
            summary.status = "failed"
            summary.failed_stage = stage
            summary.error = redact(f"{type(exc).__name__}: {exc}")
        if summary.status == "failed" and (holder := lock_holder(summary.error or "")):
            # a process opened the warehouse while the run was between stages
            summary.status = "busy"
            summary.error = busy_message(settings, holder)
        summary.ended_at = _now()
        _write_state(data_dir, **{**state, "stage": stage, "status": summary.status})
        with (Path(data_dir) / "runs.jsonl").open("a") as log:
            log.write(json.dumps(asdict(summary)) + "\n")
    return summary


_HELD_IN = re.compile(r"Conflicting lock is held in (.+? \(PID \d+\))")


def lock_holder(error: str) -> str | None:
    """The process DuckDB names as holding the file, from its lock error (or None)."""
    if "Could not set lock on file" not in error:
        return None
    found = _HELD_IN.search(error)
    return found.group(1) if found else "another process"


def busy_message(settings: Settings, holder: str) -> str:
    return (
        f"the warehouse {settings.warehouse} is held by {holder}: BI tools and notebooks "
        f"read the serving layer ({Path(settings.serving_dir) / 'bi.duckdb'}), never the "
        "warehouse; run again when it is closed"
    )


def connect_when_free(
    settings: Settings, deadline: float, poll_s: float = 1.0
) -> duckdb.DuckDBPyConnection:
    """A writer connection to the warehouse once no other process holds it, up to the
    deadline (a run that released the run lock may still be closing its connection)."""
    import duckdb

    from shopfloor.core.warehouse import connect, lake_of

    if lake_of(settings) is not None:  # a lake's catalog takes many sessions at once
        return connect(settings)
    while True:
        try:
            return duckdb.connect(settings.warehouse)
        except duckdb.IOException as exc:
            holder = lock_holder(str(exc))
            if holder is None:
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(busy_message(settings, holder)) from None
            time.sleep(poll_s)


def wait_for_warehouse(settings: Settings, deadline: float) -> None:
    """Wait until no other process holds the warehouse file, up to the deadline (a lake
    has no such file: its catalog takes many sessions at once)."""
    if not settings.lakehouse and Path(settings.warehouse).exists():
        connect_when_free(settings, deadline).close()


def redact(error: str | None) -> str | None:
    from ingestion.pipeline import redact as redact_text

    return redact_text(error)


def _preload_model_libraries() -> None:
    """Import skops (and with it scikit-learn) before dbt and dlt are imported.

    skops builds its list of trusted types at import time, looking up the module of
    every scipy ufunc by scanning all loaded modules: the more modules are loaded, the
    longer it takes (bench/README.md, hourly pipeline).
    """
    import skops.io  # noqa: F401


def _fail(summary: RunSummary, stage: str, error: str) -> None:
    summary.status = "failed"
    summary.failed_stage = stage
    summary.error = error


def _ingest(ctx: RunContext) -> None:
    from ingestion.pipeline import run_ingest
    from shopfloor.pipeline import build_state

    summary = ctx.summary
    # taken away while the raw tables may change; put back by a stage that finds it true
    ctx.built = build_state.take(ctx.settings)
    result = (ctx.ingest or run_ingest)(ingest_config(ctx.settings))
    ctx.loaded_anything = result.loaded_anything
    summary.files_new = result.files_new
    summary.files_loaded = result.files_loaded
    summary.files_partial = result.files_partial
    summary.files_quarantined = result.files_quarantined
    summary.files_duplicate = result.files_duplicate
    summary.rows_loaded = result.rows_loaded
    summary.rows_rejected = result.rows_rejected
    if result.status != "succeeded":
        # runs.jsonl and cron logs get the redacted text; raw.ingest_runs keeps it whole
        _fail(summary, "ingest", redact(result.error) or "ingestion failed")


def ingest_config(settings: Settings) -> IngestConfig:
    """The ingestion's configuration from the run's settings (one warehouse for all stages)."""
    from ingestion.listing import ListingPolicy
    from ingestion.pipeline import IngestConfig
    from shopfloor.core.warehouse import dlt_destination, lake_of, location

    lake = lake_of(settings)
    return IngestConfig(
        landing=settings.landing,
        data_dir=settings.data_dir,
        warehouse=settings.warehouse,
        destination=dlt_destination(settings) if lake else None,
        destination_name=location(settings),
        # on the lakehouse, quarantined files are kept next to the tables
        quarantine=lake.data_url + "quarantine" if lake else "",
        # a key given as a setting (flag, environment, shopfloor.toml); else the key file
        pseudonym_key=""
        if settings.sources["pseudonym_key"] == "default"
        else settings.pseudonym_key,
        plant_timezone=settings.plant_timezone,
        policy=ListingPolicy(
            settle_s=settings.settle_seconds,
            max_future_hours=settings.max_future_hours,
            max_past_days=settings.max_past_days,
            max_file_bytes=int(settings.max_file_mb * 2**20),
        ),
    )


def train_config(settings: Settings) -> TrainConfig:
    """The training's alert policy from the run's settings."""
    from ml.model import TrainConfig
    from ml.policy import AlertPolicy

    lead = settings.planning_lead_hours
    if lead <= 0:
        raise SettingsError("setting planning_lead_hours must be more than 0 hours")
    return TrainConfig(
        policy=AlertPolicy(
            planning_lead_hours=lead,
            unplanned_failure=settings.cost_failure,
            preventive_visit=settings.cost_visit,
            early_alert=settings.cost_early_alert,
        )
    )


def _dbt(
    ctx: RunContext, args: list[str], batched: bool = False, env: dict[str, str] | None = None
) -> bool:
    from shopfloor.pipeline.batches import build

    summary = ctx.summary
    quiet = [] if ctx.dbt_lines else ["--quiet"]
    result = build(ctx.settings, [*quiet, *args], batched=batched, on_step=ctx.on_step, env=env)
    for node in getattr(result.result, "results", None) or []:
        status = str(getattr(node.status, "value", node.status)).lower()
        kind = node.node.resource_type
        is_test = str(getattr(kind, "value", kind)) in ("test", "unit_test")
        if status == "skipped":
            summary.nodes_skipped += 1
        elif is_test and status == "pass":
            summary.tests_passed += 1
        elif is_test and status == "warn":
            summary.tests_warned += 1
        elif is_test and status in ("fail", "error"):
            summary.tests_failed += 1
        elif status == "success":
            summary.models_built += 1
        elif status == "error":
            summary.models_failed += 1
    if result.exception is not None and summary.models_failed == 0:
        summary.models_failed += 1  # dbt stopped before any node ran (e.g. a parse error)
    return bool(result.success)


def _dbt_log(ctx: RunContext) -> str:
    from shopfloor.pipeline.dbt import dbt_log_path

    return f"see {dbt_log_path(ctx.settings) / 'dbt.log'}"


# the marts that serve the scores (the risk per machine, how the lists turned out) and
# everything downstream of them: built by the risk stage, after the score stage
RISK_MARTS = ("fct_machine_risk+", "fct_model_monitoring+")


def _build(ctx: RunContext) -> None:
    # unit tests check the SQL logic on fixed inputs, not the data: they run in CI and
    # with `shopfloor build`; dbt recommends leaving them out of production builds.
    # The checks that would read every reading ever loaded check what was loaded since
    # the last run that passed them (macro checked_since), so a run costs the same on
    # a year of history as on a day; `shopfloor build` checks everything
    from shopfloor.pipeline import build_state

    ctx.inputs = build_state.fingerprint(ctx.settings)
    if ctx.inputs and not ctx.loaded_anything and ctx.built.get("build") == ctx.inputs:
        ctx.on_step("nothing new since the last build: the marts are up to date")
        ctx.summary.unchanged.append("build")
        build_state.keep(ctx.settings, {"build": ctx.inputs})
        return
    passed = [r for r in read_runs(ctx.data_dir, last=50) if r.get("status") == "succeeded"]
    env = {"SHOPFLOOR_TEST_SINCE": passed[-1]["started_at"]} if passed else {}
    # the marts that serve the scores are the risk stage's, built once the scores are in
    if not _dbt(
        ctx,
        ["--exclude-resource-type", "unit_test", "--exclude", *RISK_MARTS],
        batched=True,
        env=env,
    ):
        _fail(ctx.summary, "build", f"dbt build failed (errors or failing tests): {_dbt_log(ctx)}")
        return
    ctx.inputs = build_state.fingerprint(ctx.settings)  # a first build creates the warehouse
    if ctx.inputs:
        build_state.keep(ctx.settings, {"build": ctx.inputs})


def _score(ctx: RunContext) -> None:
    from ml.model import latest_version, load, readiness, train
    from ml.score import score
    from shopfloor.core.warehouse import connect

    summary = ctx.summary
    models = ctx.settings.models_dir
    with connect(ctx.settings) as con:
        if latest_version(models) is None:
            # a young plant has no failures yet: its hourly run still succeeds, and
            # the first run with enough history trains by itself
            if not (ready := readiness(con)).ready:
                summary.scoring_skipped = f"no model yet: {ready.describe()}"
                ctx.scores_changed = False
                return
            if not ctx.train_if_missing:
                _fail(summary, "score", f"no model in {models} (run `shopfloor train`)")
                return
            ctx.on_step("training the first model: fit, calibrate, evaluate against baselines")
            # the machine-grouped evaluation (more fits) is left to `shopfloor train`
            config = replace(train_config(ctx.settings), grouped_folds=0)
            train(con, models, config, on_step=ctx.on_step)
            summary.trained = True
        model, metadata = load(models)
        ctx.on_step(f"scoring new machine-hours with model {metadata['version']}")
        result = score(con, model, metadata)
    summary.model_version = result.model_version
    summary.hours_scored = result.hours_scored
    ctx.scores_changed = summary.trained or result.hours_scored > 0 or result.drift_measured > 0


def _publish(ctx: RunContext) -> None:
    from shopfloor.core.warehouse import connect, save_catalog
    from shopfloor.serving.snapshot import current_version

    unchanged = {"build", "risk"} <= set(ctx.summary.unchanged)
    if unchanged and current_version(ctx.settings.serving_dir) is not None:
        ctx.summary.unchanged.append("publish")  # the marts the serving layer holds
    else:
        ctx.on_step(f"publishing the marts to the serving layer {ctx.settings.serving_dir}")
        with connect(ctx.settings) as con:
            ctx.summary.published_version = publish(con, ctx.settings, ctx.on_step).version
    if copy := save_catalog(ctx.settings):
        ctx.on_step(f"copied the lake's catalog to {copy}")


def publish(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    on_step: Callable[[str], None] = lambda _text: None,
) -> PublishResult:
    """Publish the marts to every serving target configured; what the Parquet one did."""
    from shopfloor.serving.snapshot import publish as publish_parquet

    result = publish_parquet(
        con, settings.serving_dir, relative=settings.bi_catalog_paths == "relative"
    )
    if settings.bi_postgres_url:
        from shopfloor.serving.postgres import publish_postgres

        on_step(f"publishing the marts to PostgreSQL as role {settings.bi_role}'s marts")
        publish_postgres(
            con,
            settings.bi_postgres_url,
            manifest=Path(settings.data_dir) / "dbt_target" / "manifest.json",
            role=settings.bi_role,
            role_password=settings.bi_role_password,
        )
    return result


def _risk(ctx: RunContext) -> None:
    from shopfloor.core.warehouse import connect
    from shopfloor.pipeline import build_state
    from shopfloor.serving import marts

    summary = ctx.summary
    model = summary.model_version or "no model"
    if "build" in summary.unchanged and not ctx.scores_changed and ctx.built.get("risk") == model:
        summary.unchanged.append("risk")
    # the marts that serve the scores: the risk per machine, and how the lists turned out;
    # the build stage already wrote dbt's artifacts (manifest.json) for this project
    elif not _dbt(ctx, ["--select", *RISK_MARTS, "--no-write-json"]):
        _fail(
            summary,
            "risk",
            f"dbt build of fct_machine_risk and fct_model_monitoring failed: {_dbt_log(ctx)}",
        )
        return
    if ctx.inputs:
        build_state.keep(ctx.settings, {"build": ctx.inputs, "risk": model})
    # not read_only: in this process dbt's DuckDB instance may still be cached, and a
    # connection with a different configuration to the same file is refused
    with connect(ctx.settings) as con:
        summary.machines_at_risk = marts.machines_on_alert(con)
        summary.silent_machines = [m for m, _ in marts.silent_machines(con)]


def read_runs(data_dir: str, last: int = 5) -> list[dict[str, Any]]:
    path = Path(data_dir) / "runs.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()[-last:]
    return [json.loads(line) for line in lines if line.strip()]


# the stages in the order a run takes them (their seconds are in the run log, by name)
_STAGES: dict[str, Callable[[RunContext], None]] = {
    "ingest": _ingest,
    "build": _build,
    "score": _score,
    "risk": _risk,
    "publish": _publish,
}
STAGES = ("startup", *_STAGES)  # startup: imports before the first stage
