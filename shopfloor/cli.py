"""The `shopfloor` command: thin wiring of the stages; each stage's logic lives in its folder."""

from __future__ import annotations

import collections
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopfloor.settings import Settings, SettingsError, resolve

if TYPE_CHECKING:
    import duckdb

    from ingestion.pipeline import IngestConfig, IngestSummary
    from shopfloor.run import RunSummary

app = typer.Typer(
    help=(
        "shopfloor: machine files -> dlt -> DuckDB warehouse -> dbt marts -> "
        "preventive-maintenance model.\n\n"
        "Paths default under ./data (SHOPFLOOR_DATA_DIR); flags override environment variables."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,  # entry() prints one line, or the traceback with --debug
)
console = Console()
EXIT_USAGE = 2  # a setting that cannot work (typer's own code for bad usage)

# one data-folder option for every command that reads or writes the warehouse; "\[" keeps
# rich from reading the hint as markup
DataDirOption = Annotated[
    str,
    typer.Option(help="Data folder (warehouse, quarantine, docs). \\[env: SHOPFLOOR_DATA_DIR]"),
]
LakehouseOption = Annotated[
    str,
    typer.Option(
        help="Keep every table in a DuckLake under this URL or folder (e.g. s3://plant/lake) "
        "instead of the DuckDB file. \\[env: SHOPFLOOR_LAKEHOUSE]"
    ),
]
LandingOption = Annotated[
    str, typer.Option(help="Landing area: folder or fsspec URL. \\[env: SHOPFLOOR_LANDING]")
]


def _settings(**flags: str | None) -> Settings:
    """The command's settings (flag > environment > shopfloor.toml > default), or exit 2."""
    try:
        return resolve(flags)
    except SettingsError as exc:
        _usage_error(str(exc))
        raise  # unreachable


def _embedded_only(settings: Settings, command: str) -> None:
    """Commands that work on the DuckDB file: one line instead of a traceback on a lake."""
    if settings.lakehouse:
        _usage_error(
            f"`shopfloor {command}` works on the DuckDB warehouse; the lakehouse "
            f"{settings.lakehouse} is kept by its object store and its catalog "
            "(docs/decisions/0007-lakehouse-ducklake.md)"
        )


def _usage_error(message: str) -> None:
    console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def _check_writable(settings: Settings, landing: bool = True) -> None:
    """The misconfigurations a scheduled run would otherwise hit every hour, one line each."""
    from pathlib import Path

    data = settings.data
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / ".shopfloor-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        _usage_error(f"data folder {data} is not writable ({exc.strerror})")
    if landing and "://" not in settings.landing:
        where = Path(settings.landing)
        if not where.is_dir():
            _usage_error(
                f"landing area {where} does not exist or is not a folder "
                "(--landing or SHOPFLOOR_LANDING)"
            )
        if not os.access(where, os.R_OK | os.X_OK):
            _usage_error(f"landing area {where} is not readable")
    from shopfloor.warehouse import exists, location

    warehouse, there = location(settings), exists(settings)
    if not there:  # a typo in the data folder would start a second warehouse
        console.print(
            f"new warehouse: {warehouse} (data folder {data}, settings: `shopfloor config`)",
            highlight=False,
            soft_wrap=True,
        )
    if (
        there
        and settings.sources["pseudonym_key"] == "default"
        and not settings.pseudonym_key_file.exists()
    ):
        _usage_error(
            f"warehouse {warehouse} exists but its pseudonymisation key "
            f"{settings.pseudonym_key_file} is missing: restore it or set "
            "SHOPFLOOR_PSEUDONYM_KEY (a new key would stop technician keys joining history)"
        )


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"shopfloor {version('shopfloor')}")
        raise typer.Exit()


_DEBUG = {"on": False}


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    """Machine files -> dlt -> DuckDB warehouse -> dbt marts -> maintenance model."""
    _DEBUG["on"] = debug


def entry() -> None:
    """The `shopfloor` command: an unexpected error is one line (exit 1) unless --debug."""
    try:
        code = app(standalone_mode=False)  # click returns the exit code instead of exiting
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if _DEBUG["on"] or "--debug" in sys.argv:
            raise
        console.print(
            f"[red]error:[/] {type(exc).__name__}: {exc} (--debug shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _parse_overrides(values: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values:
        name, sep, rate = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(rate)
        except ValueError:
            raise typer.BadParameter(f"expected NAME=RATE, got {item!r}") from None
    return out


@app.command()
def simulate(
    out: Annotated[
        str,
        typer.Option(help="Output root (folder or fsspec URL); writes landing/ and ground_truth/."),
    ] = "",
    machines: Annotated[int, typer.Option(min=1, max=500, help="Number of machines.")] = 10,
    days: Annotated[float, typer.Option(min=0, help="Days of history to simulate.")] = 1.0,
    hours: Annotated[
        int | None, typer.Option(min=1, help="Hours to simulate (overrides --days).")
    ] = None,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day, plant local time.")
    ] = datetime(2026, 3, 2),
    sample_interval: Annotated[
        int, typer.Option(min=1, max=3600, help="Seconds between readings (1 = full fidelity).")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 42,
    defects: Annotated[
        str, typer.Option(help="Defect profile: none, realistic or stress.")
    ] = "realistic",
    defect: Annotated[
        list[str] | None,
        typer.Option(help="Override one defect rate, NAME=RATE (repeatable), e.g. truncated=0.1."),
    ] = None,
    wear_scale: Annotated[
        float, typer.Option(min=0.1, help="How fast machines wear out (>1: more failures).")
    ] = 1.0,
    skip_existing: Annotated[
        bool, typer.Option(help="Only write files that do not exist yet (extend a landing area).")
    ] = False,
    late_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of machine-days on which the uplink goes down for 6-72 h: those "
            "files arrive late, together (after the simulated period: with a later "
            "--skip-existing run).",
        ),
    ] = 0.0,
    workers: Annotated[int, typer.Option(min=0, help="Worker processes (0: one per core).")] = 0,
) -> None:
    """Simulate a fleet of machines writing hourly files, with real-world defects.

    Writes the plant's landing area (telemetry, maintenance log, registry) and a
    ground-truth folder with every failure and injected defect, which the pipeline
    never reads. The file format is described in docs/machine-files.md.
    """
    from shopfloor.simulator.defects import DefectRates
    from shopfloor.simulator.fleet import PLANT_UTC_OFFSET_H, FleetConfig
    from shopfloor.simulator.simulate import SimulationConfig
    from shopfloor.simulator.simulate import simulate as run_simulation

    try:
        rates = DefectRates.profile(defects).with_overrides(_parse_overrides(defect or []))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    n_hours = hours if hours is not None else round(days * 24)
    if n_hours < 1:
        raise typer.BadParameter("simulate at least one hour (--days or --hours)")
    start_utc = start.replace(tzinfo=UTC) - timedelta(hours=PLANT_UTC_OFFSET_H)
    cfg = SimulationConfig(
        out=out or _settings().data_dir,
        fleet=FleetConfig(
            machines=machines, start=start_utc, hours=n_hours, seed=seed, wear_scale=wear_scale
        ),
        sample_interval_s=sample_interval,
        defects=rates,
        skip_existing=skip_existing,
        late_share=late_share,
        workers=workers,
    )
    console.print(
        f"Simulating [bold]{machines}[/] machines x [bold]{n_hours}[/] h at "
        f"{sample_interval} s/sample into [cyan]{cfg.out}[/]"
    )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[mb]:.0f} MB"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("machines", total=machines, mb=0.0)
        written = 0

        def done(result: object) -> None:
            nonlocal written
            written += getattr(result, "bytes", 0)
            progress.update(task, advance=1, mb=written / 1e6)

        result = run_simulation(cfg, on_machine_done=done)

    table = Table(title="Simulated fleet", show_header=False)
    table.add_row("telemetry files", f"{result.files:,}")
    table.add_row("size", f"{result.bytes / 1e6:,.1f} MB")
    table.add_row(
        "time", f"{result.seconds:.1f} s ({result.bytes / 1e6 / result.seconds:,.0f} MB/s)"
    )
    table.add_row("failures", str(result.failures))
    table.add_row("maintenance work orders", str(result.maintenance_events))
    table.add_row("injected defects", f"{result.defects:,}")
    console.print(table)
    manifest = f"{cfg.out.rstrip('/')}/ground_truth/defects.jsonl"
    if result.defects:
        import fsspec

        counts: collections.Counter[str] = collections.Counter()
        with fsspec.open(manifest, "rt") as fh:
            for line in fh:
                counts[json.loads(line)["defect"]] += 1
        console.print("Defects: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    console.print(
        f"Landing area: [cyan]{cfg.out.rstrip('/')}/landing[/]   "
        f"ground truth: [cyan]{cfg.out.rstrip('/')}/ground_truth[/]"
    )


@app.command()
def ingest(
    landing: LandingOption = "",
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    warehouse: Annotated[
        str,
        typer.Option(
            help="DuckDB file. \\[env: SHOPFLOOR_WAREHOUSE] \\[default: DATA_DIR/warehouse.duckdb]"
        ),
    ] = "",
    workers: Annotated[int, typer.Option(min=1, help="Parser threads.")] = 2,
) -> None:
    """Load new and changed machine files, the maintenance log and the registry.

    Incremental and idempotent: files already ingested are skipped, re-sent copies
    are recorded as duplicates, unreadable files are quarantined with their reason.
    Exits non-zero only when the run itself failed; bad files are reported, not fatal.
    """
    from dataclasses import replace

    from shopfloor.run import ingest_config

    settings = _settings(
        landing=landing, data_dir=data_dir, lakehouse=lakehouse, warehouse=warehouse
    )
    _check_writable(settings)
    cfg = replace(ingest_config(settings), workers=workers)
    summary = ingest_with_progress(cfg)
    if summary.status != "succeeded":
        raise typer.Exit(1)


def ingest_with_progress(cfg: IngestConfig) -> IngestSummary:
    """One ingestion run with live progress (files, MB, rows/s) and a summary table."""
    from rich.progress import TaskProgressColumn

    from ingestion.pipeline import redact, run_ingest

    console.print(
        f"Ingesting [cyan]{cfg.landing}[/] into [cyan]{cfg.destination_name or cfg.warehouse}[/]"
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[mb]:,.0f} MB"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("listing files", total=None, mb=0.0, rate=0.0)
        totals = {"bytes": 0, "rows": 0}
        started = datetime.now(UTC)

        def listed(n_listed: int, n_new: int, n_waiting: int) -> None:
            waiting = f", {n_waiting:,} still being written" if n_waiting else ""
            progress.update(
                task, total=n_new, description=f"{n_new:,} new of {n_listed:,} files{waiting}"
            )

        def done(outcome: dict[str, object]) -> None:
            totals["bytes"] += int(outcome["size_bytes"])  # type: ignore[call-overload]
            totals["rows"] += int(outcome["rows_loaded"])  # type: ignore[call-overload]
            elapsed = max((datetime.now(UTC) - started).total_seconds(), 1e-3)
            progress.update(
                task, advance=1, mb=totals["bytes"] / 1e6, rate=totals["rows"] / elapsed
            )

        summary = run_ingest(cfg, on_file=done, on_listed=listed)

    table = Table(title=f"Ingest run {summary.load_id or ''}", show_header=False)
    table.add_row("files listed / new", f"{summary.files_listed:,} / {summary.files_new:,}")
    table.add_row("loaded", f"{summary.files_loaded:,}")
    table.add_row("partial (truncated)", f"{summary.files_partial:,}")
    table.add_row("quarantined", f"{summary.files_quarantined:,}")
    table.add_row("duplicates skipped", f"{summary.files_duplicate:,}")
    table.add_row("not telemetry (skipped)", f"{summary.files_skipped:,}")
    table.add_row("still being written (next run)", f"{summary.files_waiting:,}")
    table.add_row(
        "rows read / loaded / rejected",
        f"{summary.rows_read:,} / {summary.rows_loaded:,} / {summary.rows_rejected:,}",
    )
    table.add_row("data", f"{summary.bytes_read / 1e6:,.1f} MB in {summary.seconds:.1f} s")
    table.add_row("status", summary.status)
    console.print(table)
    for q in summary.quarantined[:10]:
        console.print(f"[yellow]quarantined[/] {q['file']}: {q['reason']}")
    if len(summary.quarantined) > 10:
        console.print(f"... and {len(summary.quarantined) - 10} more (table raw.landing_files)")
    if summary.status == "succeeded" and summary.files_listed == 0:
        _warn_silent_landing(cfg)
    if summary.status != "succeeded":
        # the full text (it may quote an input line) stays in raw.ingest_runs.error
        console.print(f"[red]ingest failed:[/] {redact(summary.error)}")
    return summary


def _warn_silent_landing(cfg: IngestConfig) -> None:
    """A landing area with no telemetry at all: a typo, unless the plant is new."""
    import duckdb

    row = None
    try:
        if cfg.destination is None:  # the lakehouse's count would cost a catalog attach
            with duckdb.connect(cfg.warehouse, read_only=True) as con:
                row = con.sql("select count(*) from raw.landing_files").fetchone()
    except duckdb.Error:
        pass
    earlier = row[0] if row else 0
    if earlier:
        console.print(
            f"[yellow]warning:[/] landing area {cfg.landing} lists no telemetry file, but the "
            f"warehouse holds {earlier:,} from earlier runs: is SHOPFLOOR_LANDING right?",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(f"landing area {cfg.landing} holds no telemetry file yet", highlight=False)


@app.command()
def build(
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    select: Annotated[str | None, typer.Option(help="dbt node selection, e.g. marts.")] = None,
    exclude: Annotated[
        str | None, typer.Option(help="dbt nodes to leave out, e.g. test_type:data.")
    ] = None,
    full_refresh: Annotated[bool, typer.Option(help="Rebuild incremental models.")] = False,
) -> None:
    """Build and test the dbt warehouse (`dbt build`): staging, marts, tests, contracts."""
    from shopfloor.dbt import run_dbt

    args = ["build"] + (["--select", select] if select else [])
    args += ["--exclude", exclude] if exclude else []
    args += ["--full-refresh"] if full_refresh else []
    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    _check_writable(settings, landing=False)
    result = run_dbt(args, settings)
    if not result.success:
        console.print("[red]dbt build failed[/] (see the log above)")
        raise typer.Exit(1)


@app.command()
def docs(
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    serve: Annotated[
        bool, typer.Option(help="Serve the site on localhost after building.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8080,
) -> None:
    """Generate the dbt docs site as one static HTML file (lineage, models, columns)."""

    from shopfloor.dbt import run_dbt

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    result = run_dbt(["docs", "generate", "--static"], settings)
    if not result.success:
        console.print("[red]dbt docs generate failed[/]")
        raise typer.Exit(1)
    site = settings.data.resolve() / "dbt_target" / "static_index.html"
    console.print(f"Docs site: [cyan]{site}[/] (one file, opens offline)")
    if serve:
        import functools
        import http.server

        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=site.parent)
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
            console.print(f"Serving on http://127.0.0.1:{port}/static_index.html (Ctrl-C stops)")
            httpd.serve_forever()


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    from shopfloor.warehouse import connect, exists, location

    if not exists(settings):
        console.print(
            f"[red]No warehouse at {location(settings)}[/]: run `shopfloor ingest` and "
            "`shopfloor build`"
        )
        raise typer.Exit(1)
    # never read_only: after an in-process dbt run (demo) DuckDB refuses a second
    # connection to the same file with a different configuration
    return connect(settings)


@app.command()
def train(
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    seed: Annotated[int, typer.Option(help="Random seed (same data + seed = same model).")] = 42,
    planning_lead_hours: Annotated[
        str,
        typer.Option(
            help="Warning an alert must give to be fully useful (parts ordered, people "
            "scheduled). \\[env: SHOPFLOOR_PLANNING_LEAD_HOURS] \\[default: 8]"
        ),
    ] = "",
    cost_failure: Annotated[
        str, typer.Option(help="Cost of a breakdown. \\[env: SHOPFLOOR_COST_FAILURE]")
    ] = "",
    cost_visit: Annotated[
        str, typer.Option(help="Cost of a planned visit. \\[env: SHOPFLOOR_COST_VISIT]")
    ] = "",
    cost_early_alert: Annotated[
        str,
        typer.Option(
            help="Cost of a visit that finds no failure due. \\[env: SHOPFLOOR_COST_EARLY_ALERT]"
        ),
    ] = "",
    grouped_folds: Annotated[
        int, typer.Option(min=0, help="Machine-grouped evaluation folds (0: skip).")
    ] = 2,
) -> None:
    """Train, calibrate and evaluate the maintenance model on the feature marts; save a version.

    Train / validation / test are consecutive periods (60/20/20 % of the labelled hours);
    the alert threshold is the alert policy's choice on validation (planning lead time and
    costs: see `shopfloor config`); the test period is reported against two baselines
    (fixed-interval maintenance, best single-sensor rule), with the best any threshold
    could have done there.
    """
    from dataclasses import replace

    from ml.model import train as train_model
    from shopfloor.run import train_config

    settings = _settings(
        data_dir=data_dir,
        lakehouse=lakehouse,
        planning_lead_hours=planning_lead_hours,
        cost_failure=cost_failure,
        cost_visit=cost_visit,
        cost_early_alert=cost_early_alert,
    )
    try:
        cfg = replace(train_config(settings), seed=seed, grouped_folds=grouped_folds)
    except SettingsError as exc:
        _usage_error(str(exc))
    with _connect(settings) as con, console.status("training...") as status:
        try:
            result = train_model(
                con,
                Path(settings.models_dir),
                cfg,
                on_step=lambda message: status.update(f"training: {message}..."),
            )
        except ValueError as exc:
            console.print(f"[red]Cannot train:[/] {exc}")
            raise typer.Exit(1) from exc
    meta = result.metadata
    for warning in meta["warnings"]:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    _print_metrics(meta)
    grouped = meta["metrics"]["machine_grouped"]["pr_auc"]
    console.print(
        f"{len(meta['features'])} features, threshold {meta['threshold']:.3f} (policy: "
        f"{meta['policy']['planning_lead_hours']:g} h planning lead)"
        + (f"; machine-grouped split PR-AUC {grouped:.3f}" if grouped is not None else "")
        + f"\nSaved [cyan]{result.path}[/] (model.skops, metadata.json)"
    )


def _print_metrics(meta: dict[str, Any]) -> None:
    table = Table(
        title=f"model {meta['version']} -- test period {meta['periods']['test_start'][:10]}"
        f" .. {meta['periods']['test_end'][:10]}"
    )
    table.add_column("metric")
    for name in ("model", "fixed interval", "single sensor"):
        table.add_column(name, justify="right")
    metrics = meta["metrics"]
    lead = meta["policy"]["planning_lead_hours"]
    for label, key, fmt in (
        ("PR-AUC", "pr_auc", "{:.3f}"),
        ("F1 at threshold", "f1", "{:.3f}"),
        ("best F1 on test period", "best_f1", "{:.3f}"),
        ("precision", "precision", "{:.2f}"),
        ("recall", "recall", "{:.2f}"),
        ("visits / machine / week", "visits_per_machine_week", "{:.2f}"),
        (f"failures caught >= {lead:g} h ahead", "failures_caught", "{}"),
        ("failures in test period", "failures", "{}"),
        ("cost", "cost", "{:,.0f}"),
        ("lowest cost on test period", "best_cost", "{:,.0f}"),
    ):
        table.add_row(
            label,
            *(
                fmt.format(metrics[m][key]) if metrics[m][key] is not None else "n/a"
                for m in ("model", "fixed_interval", "single_sensor")
            ),
        )
    console.print(table)


def _load_model(settings: Settings, version: str | None) -> tuple[Any, dict[str, Any]]:
    """A model version (default: the latest) or a clear message and exit 1."""
    from pathlib import Path

    from ml.model import load

    try:
        return load(Path(settings.models_dir), version)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


@app.command()
def score(
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    model_version: Annotated[
        str | None, typer.Option(help="Model version to score with. \\[default: latest trained]")
    ] = None,
) -> None:
    """Score every machine-hour not yet scored by the model; write ml.machine_hour_scores.

    Idempotent per model version and hour. Run `shopfloor build --select fct_machine_risk`
    (or `shopfloor run`) afterwards to refresh the risk mart.
    """
    from ml.score import score as score_hours

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    model, meta = _load_model(settings, model_version)
    with _connect(settings) as con, console.status("scoring..."):
        try:
            result = score_hours(con, model, meta)
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
    console.print(
        f"model {result.model_version}: {result.hours_scored:,} machine-hours scored "
        f"({result.hours_already_scored:,} already scored), {result.machines} machines, "
        f"{result.alerts_now} alerting now"
    )


@app.command()
def report(
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    model_version: Annotated[
        str | None, typer.Option(help="Model version to report on. \\[default: latest trained]")
    ] = None,
) -> None:
    """Write the model's evaluation report (Markdown + PNG plots) under DATA_DIR/reports/VERSION."""
    from ml.report import write_report

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    _, meta = _load_model(settings, model_version)
    with _connect(settings) as con:
        try:
            path = write_report(con, meta, settings.data / "reports" / meta["version"])
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
    console.print(f"Report: [cyan]{path.resolve()}[/]")


@app.command()
def publish(data_dir: DataDirOption = "", lakehouse: LakehouseOption = "") -> None:
    """Publish the marts to the serving layer BI reads (`shopfloor run` does it every hour).

    Writes DATA_DIR/serving: the marts as Parquet (machine-hour marts by day, only the
    days that changed) and bi.duckdb, a catalog of views that BI tools open read-only.
    Connection settings: docs/operations.md.
    """
    from shopfloor.run import publish as publish_marts
    from shopfloor.serving import version_number

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    with _connect(settings) as con, console.status("publishing...") as status:
        result = publish_marts(con, settings, lambda text: status.update(text))
    target = " and to PostgreSQL" if settings.bi_postgres_url else ""
    console.print(
        f"Published the marts as publish #{version_number(result.version)}{target}"
        f" in {result.seconds} s "
        f"({result.days_written} day partitions written, {result.days_linked} unchanged)\n"
        f"BI catalog: [cyan]{Path(settings.serving_dir).resolve() / 'bi.duckdb'}[/]"
    )


@contextmanager
def _backup_errors(nothing_done: str) -> Iterator[None]:
    """A busy data folder exits 75, a backup that cannot be used exits 1: one line each."""
    from shopfloor.backup import BackupError
    from shopfloor.run import EXIT_BUSY, PipelineBusyError, WarehouseBusyError

    try:
        yield
    except (PipelineBusyError, WarehouseBusyError) as exc:
        console.print(f"[yellow]{exc}[/]; {nothing_done} (exit {EXIT_BUSY})")
        raise typer.Exit(EXIT_BUSY) from exc
    except BackupError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


@app.command()
def backup(
    destination: Annotated[
        str, typer.Argument(help="A folder, or an fsspec URL such as s3://bucket/backups.")
    ],
    data_dir: DataDirOption = "",
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a run in progress to finish.")
    ] = 900.0,
) -> None:
    """Back up what cannot be rebuilt: warehouse, model versions, pseudonymisation key,
    quarantined originals and the run log, as one consistent snapshot.

    Waits for a run in progress, then holds the run lock only while the files are copied
    locally; the upload to DESTINATION happens after. What is rebuilt instead, and the
    recovery point and time: docs/operations.md (Backup and restore).
    """
    from shopfloor.backup import take

    settings = _settings(data_dir=data_dir)
    _embedded_only(settings, "backup")
    with _backup_errors("no backup taken"), console.status("backing up...") as status:
        result = take(settings, destination, wait, lambda text: status.update(text))
    console.print(
        f"Backed up {result.files} files ({result.bytes / 1e6:,.1f} MB) to "
        f"[cyan]{result.location}[/] in {result.seconds} s "
        f"(runs held back {result.locked_seconds} s)",
        soft_wrap=True,
    )
    if not result.key_in_backup:
        console.print(
            "[yellow]The pseudonymisation key comes from SHOPFLOOR_PSEUDONYM_KEY and is not "
            "in the backup: keep it with the backup.[/]"
        )


@app.command()
def restore(
    source: Annotated[
        str, typer.Argument(help="A backup, or a folder/URL of backups (the newest is used).")
    ],
    data_dir: DataDirOption = "",
    force: Annotated[
        bool, typer.Option(help="Replace the warehouse, models and key already in DATA_DIR.")
    ] = False,
) -> None:
    """Restore a backup into the data folder; the next `shopfloor run` catches up.

    Checks every file against the backup's checksums before anything is replaced. The
    next run loads the landing files that arrived after the backup and republishes the
    serving layer.
    """
    from shopfloor.backup import restore as restore_backup

    settings = _settings(data_dir=data_dir)
    _embedded_only(settings, "restore")
    with _backup_errors("nothing restored"), console.status("restoring...") as status:
        result = restore_backup(settings, source, force, on_step=lambda text: status.update(text))
    console.print(
        f"Restored the backup of {result.created_at} ({result.files} files, "
        f"{result.bytes / 1e6:,.1f} MB) into {settings.data} in {result.seconds} s; "
        "next: `shopfloor run`",
        soft_wrap=True,
    )
    if not result.key_in_backup:
        console.print(
            "[yellow]This backup has no pseudonymisation key: set SHOPFLOOR_PSEUDONYM_KEY to "
            "the key the backed-up data folder used.[/]"
        )


@app.command()
def run(
    landing: LandingOption = "",
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for another run to finish (0: exit at once).")
    ] = 0.0,
    train_if_missing: Annotated[
        bool, typer.Option(help="Train a model first when none exists.")
    ] = True,
) -> None:
    """The hourly pipeline: ingest -> dbt build -> score (train first if no model) -> risk mart.

    Safe to schedule: one run at a time per data folder (a second run exits with code
    75, or waits with --wait); a run after a crash resumes where it stopped; with no
    new files nothing changes.

    Exit codes: 0 succeeded (quarantined files and warnings included), 1 a stage
    failed, 2 a setting cannot work, 75 another run is in progress.
    """
    from shopfloor.run import (
        EXIT_BUSY,
        PipelineBusyError,
        WarehouseBusyError,
        run_pipeline,
        train_config,
    )

    settings = _settings(landing=landing, data_dir=data_dir, lakehouse=lakehouse)
    _check_writable(settings)
    try:
        train_config(settings)  # a bad alert-policy setting fails now, not at training
    except SettingsError as exc:
        _usage_error(str(exc))
    try:
        summary = run_pipeline(
            settings,
            wait_s=wait,
            train_if_missing=train_if_missing,
            on_stage=lambda stage: console.rule(f"shopfloor run: {stage}"),
            on_step=lambda text: console.print(f"... {text}", highlight=False),
            ingest=ingest_with_progress,
        )
    except PipelineBusyError as exc:
        console.print(f"[yellow]{exc}[/]; not starting a second one (exit {EXIT_BUSY})")
        raise typer.Exit(EXIT_BUSY) from exc
    except WarehouseBusyError as exc:
        console.print(f"[yellow]{exc} (exit {EXIT_BUSY})[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BUSY) from exc
    _print_run_summary(summary)
    raise typer.Exit(summary.exit_code)


def _print_run_summary(s: RunSummary) -> None:
    crashed = s.resumed_after_crash
    if isinstance(crashed, dict):
        console.print(
            f"[yellow]The previous run (pid {crashed.get('pid')}, started "
            f"{crashed.get('started_at')}) did not finish (stopped in stage "
            f"{crashed.get('stage')}); this run resumed from it.[/]"
        )
    table = Table(title=f"shopfloor run {s.started_at} -> {s.ended_at}", show_header=False)
    table.add_row("status", s.status + (f" (stage {s.failed_stage})" if s.failed_stage else ""))
    table.add_row(
        "files new / loaded / partial / quarantined / duplicate",
        f"{s.files_new} / {s.files_loaded} / {s.files_partial} / "
        f"{s.files_quarantined} / {s.files_duplicate}",
    )
    table.add_row("rows loaded / rejected", f"{s.rows_loaded:,} / {s.rows_rejected:,}")
    table.add_row(
        "dbt models built / failed / skipped",
        f"{s.models_built} / {s.models_failed} / {s.nodes_skipped}",
    )
    table.add_row(
        "dbt tests passed / warned / failed",
        f"{s.tests_passed} / {s.tests_warned} / {s.tests_failed}",
    )
    table.add_row(
        "model",
        s.scoring_skipped or f"{s.model_version}" + (" (trained in this run)" if s.trained else ""),
    )
    table.add_row("machine-hours scored", f"{s.hours_scored:,}")
    table.add_row("machines at risk", ", ".join(s.machines_at_risk) or "none")
    table.add_row("silent machines", ", ".join(s.silent_machines) or "none")
    table.add_row("serving layer version", s.published_version or "not published")
    table.add_row("stage seconds", ", ".join(f"{k} {v}" for k, v in s.stages_s.items()))
    console.print(table)
    if s.error:
        console.print(f"[red]{s.error}[/]")


@app.command("config")
def show_config(
    landing: LandingOption = "",
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
) -> None:
    """The effective settings and where each comes from (flag, environment, shopfloor.toml,
    default); secrets masked."""
    settings = _settings(landing=landing, data_dir=data_dir, lakehouse=lakehouse)
    table = Table(title="shopfloor settings (flag > environment > shopfloor.toml > default)")
    for col in ("setting", "value", "from"):
        table.add_column(col, no_wrap=True)  # a path or a variable name cut in two is no help
    table.add_column("what")
    for row in settings.rows():
        table.add_row(*row)
    console.print(table)


@app.command()
def capacity(
    data_dir: DataDirOption = "",
    machines: Annotated[
        int, typer.Option(help="The planned fleet to project to (default: the current one x1.5).")
    ] = 0,
    sla_minutes: Annotated[
        float, typer.Option(help="The hourly run must finish this long after the files land.")
    ] = 15.0,
    prices: Annotated[
        str, typer.Option(help="A unit-price table (TOML) instead of shopfloor/prices.toml.")
    ] = "",
) -> None:
    """Storage per layer, rows and run cost per machine-day, projected to 1, 3 and 5 years.

    Measured on this data folder: the warehouse, the serving snapshot, the model versions,
    the quarantine and the run log. Writes DATA_DIR/reports/capacity/capacity.md with two
    charts.
    """
    from shopfloor.capacity import load_prices, measure, tables, write_report

    settings = _settings(data_dir=data_dir)
    _embedded_only(settings, "capacity")
    try:
        measured = measure(settings, sla_minutes=sla_minutes)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    if machines < 0 or sla_minutes <= 0:
        _usage_error("--machines must be positive and --sla-minutes above 0")
    planned = machines or max(1, round(measured.machines * 1.5))
    try:
        unit_prices = load_prices(Path(prices) if prices else None)
    except (OSError, ValueError) as exc:
        _usage_error(f"price table {prices}: {exc}")
    for title, header, rows in tables(measured, planned, unit_prices):
        table = Table(title=title, title_justify="left")
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if not measured.hourly_runs:
        console.print("[yellow]No hourly run in the run log yet: no run cost to project.[/]")
    path = write_report(measured, planned, settings.data / "reports" / "capacity", unit_prices)
    console.print(f"Report: [cyan]{path.resolve()}[/]")


@app.command()
def status(data_dir: DataDirOption = "", lakehouse: LakehouseOption = "") -> None:
    """Last runs, silent machines, data quality of the last days and the current top risks.

    Reads the serving layer (the marts as the last successful run published them), so it
    never holds the warehouse a run needs; the warehouse only when nothing is published.
    """
    from pathlib import Path

    import duckdb

    from shopfloor.run import read_runs

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    data = settings.data_dir
    runs = read_runs(data, last=5)
    table = Table(title="Last runs (runs.jsonl)")
    for col in ("started", "status", "files new", "quarantined", "rows", "tests p/w/f", "at risk"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            r["started_at"],
            r["status"] + (f" ({r['failed_stage']})" if r.get("failed_stage") else ""),
            str(r["files_new"]),
            str(r["files_quarantined"]),
            f"{r['rows_loaded']:,}",
            f"{r['tests_passed']}/{r['tests_warned']}/{r['tests_failed']}",
            str(len(r["machines_at_risk"])),
        )
    console.print(table if runs else "[yellow]No `shopfloor run` yet in this data folder.[/]")
    # the serving layer when there is one: reading it never holds the warehouse
    from shopfloor.warehouse import connect, exists, location

    catalog = Path(settings.serving_dir) / "bi.duckdb"
    if not catalog.exists() and not exists(settings):
        console.print(
            f"No warehouse yet at {location(settings)}: run `shopfloor run` (or ingest and build)."
        )
        raise typer.Exit(0)
    path = str(catalog) if catalog.exists() else location(settings)
    if catalog.exists():
        from shopfloor.serving import current_version, version_number

        current = current_version(Path(settings.serving_dir))
        shown = f"publish #{version_number(current)}" if current else "no version yet"
        console.print(f"Marts as published to the serving layer, {shown} ({catalog})")
    try:
        con = (
            duckdb.connect(path, read_only=True)
            if catalog.exists()
            else connect(settings, read_only=True)
        )
    except duckdb.Error as exc:
        console.print(
            f"[yellow]Warehouse {path} not readable now ({exc}); a run may be writing.[/]"
        )
        raise typer.Exit(0) from exc
    with con:
        tables = {
            t
            for (t,) in con.sql(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        if "fct_machine_last_seen" in tables:
            silent = con.sql(
                "select machine_id, hours_behind_fleet from marts.fct_machine_last_seen"
                " where is_silent order by 1"
            ).fetchall()
            console.print(
                "Silent machines: "
                + (", ".join(f"{m} ({h} h behind)" for m, h in silent) or "none")
            )
        if "fct_data_quality" in tables:
            dq = Table(title="Data quality, last 7 days")
            cols = [
                "data_date",
                "files_expected",
                "files_received",
                "files_partial",
                "files_quarantined",
                "hours_missing",
                "rows_rejected",
                "completeness",
            ]
            for col in cols:
                dq.add_column(col)
            for row in con.sql(
                "select data_date, sum(files_expected), sum(files_received), sum(files_partial),"
                " sum(files_quarantined), sum(hours_missing), sum(rows_rejected),"
                " round(avg(completeness), 3)"
                " from marts.fct_data_quality group by data_date order by data_date desc limit 7"
            ).fetchall():
                dq.add_row(*(str(v) for v in row))
            console.print(dq)
        if "fct_machine_risk" in tables:
            risk = Table(title="Current top risks (marts.fct_machine_risk)")
            for col in ("machine", "risk", "band", "action", "top reasons"):
                risk.add_column(col)
            for m, r, band, action, reasons in con.sql(
                "select machine_id, risk, risk_band, recommended_action, top_reasons"
                " from marts.fct_machine_risk order by risk desc nulls last limit 5"
            ).fetchall():
                risk.add_row(m, "n/a" if r is None else f"{r:.2f}", band, action, reasons or "")
            console.print(risk)


@app.command()
def demo(
    data_dir: DataDirOption = "",
    days: Annotated[int, typer.Option(min=7, help="Days of sample history.")] = 60,
) -> None:
    """Run shopfloor end to end on a built-in sample fleet (no server needed).

    Simulates 10 machines for 60 days (one reading every 5 minutes, realistic file
    defects, enough failures to train on), then runs the pipeline (`shopfloor run`:
    ingest, dbt build, train, score), builds the docs site and the model report, and
    prints where to look. A few minutes on a 2-core laptop.
    """
    from pathlib import Path

    data_dir = _settings(data_dir=data_dir).data_dir
    console.rule("1/4 simulate the plant's machines")
    simulate(
        out=data_dir,
        machines=10,
        days=days,
        hours=None,
        start=datetime(2026, 3, 2),
        sample_interval=300,
        seed=42,
        defects="realistic",
        defect=None,
        wear_scale=1.5,
        skip_existing=True,
        workers=0,
    )
    console.rule("2/4 the pipeline: ingest, build, train, score")
    try:
        run(
            landing=str(Path(data_dir) / "landing"),
            data_dir=data_dir,
            wait=0.0,
            train_if_missing=True,
        )
    except typer.Exit as done:
        if done.exit_code:
            raise
    console.rule("3/4 docs site")
    docs(data_dir=data_dir, serve=False, port=8080)
    console.rule("4/4 model report")
    report(data_dir=data_dir, model_version=None)
    root = Path(data_dir).resolve()
    console.rule("done")
    console.print(
        f"Warehouse: [cyan]{_settings(data_dir=data_dir).warehouse}[/]"
        " (schemas raw, main, marts, ml)\n"
        f"Docs site: [cyan]{root / 'dbt_target' / 'static_index.html'}[/]\n"
        f"Report:    [cyan]{root / 'reports'}[/]\n"
        f"BI catalog: [cyan]{Path(_settings(data_dir=data_dir).serving_dir).resolve()}/bi.duckdb[/]"
        " (read-only, while runs go on)\n"
        "Next: `shopfloor status`. Open the BI catalog with any DuckDB 1.5 client (duckdb CLI,"
        " DBeaver, Metabase's DuckDB driver) and try:\n"
        "  select * from marts.fct_machine_risk order by risk desc;\n"
        "  select * from marts.fct_data_quality order by data_date, machine_id;\n"
        "  select machine_id, hour_at, completeness, is_clock_jump from marts.fct_machine_hours"
        " where is_missing_hour or is_clock_jump;"
    )


if __name__ == "__main__":
    app()
