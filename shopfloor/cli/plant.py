"""Commands for the plant's files: `simulate` (a stand-in fleet) and `ingest`."""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from ingestion.outcomes import FileOutcome
    from ingestion.pipeline import IngestConfig, IngestSummary
    from simulator.simulate import SimulationConfig

from shopfloor.cli._common import (
    DataDirOption,
    LakehouseOption,
    LandingOption,
    _check_writable,
    _connect,
    _settings,
    _usage_error,
    _writes_warehouse,
    app,
    console,
)


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
    from simulator.defects import DefectRates
    from simulator.fleet import PLANT_UTC_OFFSET_H, FleetConfig
    from simulator.simulate import SimulationConfig

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
    simulate_with_progress(cfg)


def simulate_with_progress(cfg: SimulationConfig) -> None:
    """Simulate the fleet `cfg` describes, with a progress bar and a summary table."""
    from simulator.simulate import simulate as run_simulation

    console.print(
        f"Simulating [bold]{cfg.fleet.machines}[/] machines x [bold]{cfg.fleet.hours}[/] h at "
        f"{cfg.sample_interval_s} s/sample into [cyan]{cfg.out}[/]"
    )
    machines = cfg.fleet.machines
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
    table.add_row("telemetry files written", f"{result.files:,}")
    table.add_row("size", f"{result.bytes / 1e6:,.1f} MB")
    table.add_row(
        "time", f"{result.seconds:.1f} s ({result.bytes / 1e6 / result.seconds:,.0f} MB/s)"
    )
    table.add_row("failures", str(result.failures))
    table.add_row("maintenance work orders", str(result.maintenance_events))
    table.add_row("injected defects (whole period)", f"{result.defects:,}")
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

    from shopfloor.pipeline.run import ingest_config

    settings = _settings(
        landing=landing, data_dir=data_dir, lakehouse=lakehouse, warehouse=warehouse
    )
    _check_writable(settings)
    with _writes_warehouse(settings):
        cfg = replace(ingest_config(settings), workers=workers)
        summary = ingest_with_progress(cfg)
        if summary.status != "succeeded":
            raise typer.Exit(1)


@app.command()
def reprocess(
    reason: Annotated[
        str, typer.Option(help="Quarantined files whose reason contains this text.")
    ] = "",
    path: Annotated[
        list[str] | None,
        typer.Option(help="A quarantined file's path in the landing area (repeatable)."),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every quarantined file.")] = False,
    landing: LandingOption = "",
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
) -> None:
    """Read quarantined files again: after a setting that quarantined them changed (an
    archive older than max_past_days), or after the file was fixed in place.

    Each file gets a new outcome beside the old one (raw.landing_files keeps every
    reason); the marts take the newest at the next build. Files that fail again stay
    quarantined with their new reason."""
    from dataclasses import replace

    from ingestion.pipeline import Reprocess
    from shopfloor.pipeline.run import ingest_config

    if not (reason or path or every):
        _usage_error("say which quarantined files to read again: --reason, --path or --all")
    settings = _settings(landing=landing, data_dir=data_dir, lakehouse=lakehouse)
    _check_writable(settings)
    wanted = Reprocess(paths=frozenset(path or []), reason=reason, every=every)
    with _connect(settings) as con:
        quarantined = con.sql(
            "select relative_path, reason from raw.landing_files"
            " qualify row_number() over (partition by relative_path, size_bytes, modified_at"
            " order by ingested_at desc) = 1 and status = 'quarantined'"
        ).fetchall()
    chosen = [(rel, why) for rel, why in quarantined if wanted.wants(rel, why)]
    console.print(
        f"{len(chosen):,} of {len(quarantined):,} quarantined file(s) to read again",
        highlight=False,
    )
    for rel, why in chosen[:10]:
        console.print(f"  {rel}: {why}", highlight=False, soft_wrap=True)
    if len(chosen) > 10:
        console.print(f"  ... and {len(chosen) - 10:,} more", highlight=False)
    if not chosen:
        return
    with _writes_warehouse(settings):
        summary = ingest_with_progress(replace(ingest_config(settings), reprocess=wanted))
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

        def done(outcome: FileOutcome) -> None:
            totals["bytes"] += outcome.size_bytes or 0
            totals["rows"] += outcome.rows_loaded
            elapsed = max((datetime.now(UTC) - started).total_seconds(), 1e-3)
            progress.update(
                task, advance=1, mb=totals["bytes"] / 1e6, rate=totals["rows"] / elapsed
            )

        summary = run_ingest(cfg, on_file=done, on_listed=listed)

    when = summary.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = Table(title=f"Ingest run of {when}", show_header=False)
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
