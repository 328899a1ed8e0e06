"""Running the plant: the hourly `run`, `backup`, `restore`, `config`, `capacity`, `demo`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shopfloor.core.errors import SettingsError

if TYPE_CHECKING:
    from shopfloor.pipeline.run import RunSummary

from shopfloor.cli._common import (
    DataDirOption,
    LakehouseOption,
    LandingOption,
    _check_writable,
    _embedded_only,
    _settings,
    _usage_error,
    app,
    console,
)
from shopfloor.cli.model import report
from shopfloor.cli.plant import ingest_with_progress, simulate_with_progress
from shopfloor.cli.warehouse import docs


@contextmanager
def _backup_errors(nothing_done: str) -> Iterator[None]:
    """A busy data folder exits 75, a backup that cannot be used exits 1: one line each."""
    from shopfloor.core.errors import (
        EXIT_BUSY,
        BackupError,
        PipelineBusyError,
        WarehouseBusyError,
    )

    try:
        yield
    except (PipelineBusyError, WarehouseBusyError) as exc:
        console.print(f"[yellow]{exc}[/]; {nothing_done} (exit {EXIT_BUSY})")
        raise typer.Exit(EXIT_BUSY) from exc
    except BackupError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


BackupDestination = Annotated[
    str, typer.Argument(help="A folder, or an fsspec URL such as s3://bucket/backups.")
]
BackupWait = Annotated[float, typer.Option(help="Seconds to wait for a run in progress to finish.")]
BackupSource = Annotated[
    str, typer.Argument(help="A backup, or a folder/URL of backups (the newest is used).")
]
RestoreForce = Annotated[
    bool, typer.Option(help="Replace the warehouse, models and key already in DATA_DIR.")
]
RunWait = Annotated[
    float, typer.Option(help="Seconds to wait for another run to finish (0: exit at once).")
]
TrainIfMissing = Annotated[bool, typer.Option(help="Train a model first when none exists.")]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Print dbt's line per model and test (else only its errors; all in its log).",
    ),
]


@app.command()
def backup(
    destination: BackupDestination, data_dir: DataDirOption = "", wait: BackupWait = 900.0
) -> None:
    """Back up what cannot be rebuilt: warehouse, model versions, pseudonymisation key,
    quarantined originals and the run log, as one consistent snapshot.

    Waits for a run in progress, then holds the run lock only while the files are copied
    locally; the upload to DESTINATION happens after. What is rebuilt instead, and the
    recovery point and time: docs/operations.md (Backup and restore).
    """
    from shopfloor.operations.backup import take

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
    source: BackupSource, data_dir: DataDirOption = "", force: RestoreForce = False
) -> None:
    """Restore a backup into the data folder; the next `shopfloor run` catches up.

    Checks every file against the backup's checksums before anything is replaced. The
    next run loads the landing files that arrived after the backup and republishes the
    serving layer.
    """
    from shopfloor.operations.backup import restore as restore_backup

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
    wait: RunWait = 0.0,
    train_if_missing: TrainIfMissing = True,
    verbose: Verbose = False,
) -> None:
    """The hourly pipeline: ingest -> dbt build -> score (train first if no model) -> risk mart.

    Safe to schedule: one run at a time per data folder (a second run exits with code
    75, or waits with --wait); a run after a crash resumes where it stopped; with no
    new files nothing changes.

    Exit codes: 0 succeeded (quarantined files and warnings included), 1 a stage
    failed, 2 a setting cannot work, 75 another run is in progress.
    """
    from shopfloor.core.errors import EXIT_BUSY, PipelineBusyError, WarehouseBusyError
    from shopfloor.pipeline.run import run_pipeline, train_config

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
            dbt_lines=verbose,
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
    from shopfloor.serving.snapshot import version_number

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
        "none: nothing new since the last build"
        if "build" in s.unchanged
        else f"{s.models_built} / {s.models_failed} / {s.nodes_skipped}",
    )
    table.add_row(
        "dbt tests passed / warned / failed",
        f"{s.tests_passed} / {s.tests_warned} / {s.tests_failed}",
    )
    table.add_row(
        "model",
        s.scoring_skipped
        or (s.model_version and s.model_version + (" (trained in this run)" if s.trained else ""))
        or "not scored",
    )
    table.add_row("machine-hours scored", f"{s.hours_scored:,}")
    table.add_row("machines at risk", ", ".join(s.machines_at_risk) or "none")
    table.add_row("silent machines", ", ".join(s.silent_machines) or "none")
    published = f"publish #{version_number(s.published_version)}" if s.published_version else ""
    if "publish" in s.unchanged:
        published = "unchanged (nothing new since the last run)"
    table.add_row("serving layer", published or "not published")
    table.add_row("stage seconds", ", ".join(f"{k} {v:.1f}" for k, v in s.stages_s.items()))
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
        str,
        typer.Option(help="A unit-price table (TOML) instead of shopfloor/operations/prices.toml."),
    ] = "",
) -> None:
    """Storage per layer, rows and run cost per machine-day, projected to 1, 3 and 5 years.

    Measured on this data folder: the warehouse, the serving snapshot, the model versions,
    the quarantine and the run log. Writes DATA_DIR/reports/capacity/capacity.md with two
    charts.
    """
    from shopfloor.operations.capacity import load_prices, measure, tables, write_report

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
def demo(
    data_dir: DataDirOption = "",
    days: Annotated[int, typer.Option(min=7, help="Days of sample history.")] = 60,
    verbose: Verbose = False,
) -> None:
    """Run shopfloor end to end on a built-in sample fleet (no server needed).

    Simulates 10 machines for 60 days (one reading every 5 minutes, realistic file
    defects, enough failures to train on), then runs the pipeline (`shopfloor run`:
    ingest, dbt build, train, score), builds the docs site and the model report, and
    prints where to look. A few minutes on a 2-core laptop.
    """
    from simulator.simulate import SimulationConfig

    data_dir = _settings(data_dir=data_dir).data_dir
    console.rule("1/4 simulate the plant's machines")
    # the sample fleet is declared once, in SimulationConfig.demo; a second demo only
    # writes the files that are missing
    simulate_with_progress(replace(SimulationConfig.demo(data_dir, days), skip_existing=True))
    console.rule("2/4 the pipeline: ingest, build, train, score")
    try:
        run(
            landing=str(Path(data_dir) / "landing"),
            data_dir=data_dir,
            wait=0.0,
            train_if_missing=True,
            verbose=verbose,
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
