"""Commands for the maintenance model: `train`, `score`, `report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shopfloor.core.errors import SettingsError
from shopfloor.core.settings import Settings

if TYPE_CHECKING:
    from ml.metadata import ModelMetadata

from shopfloor.cli._common import (
    DataDirOption,
    LakehouseOption,
    _connect,
    _settings,
    _usage_error,
    _writes_warehouse,
    app,
    console,
)

ModelVersionOption = Annotated[
    str | None, typer.Option(help="The model version to use. \\[default: latest trained]")
]


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
    from shopfloor.pipeline.run import train_config

    # the alert policy's settings, given here for this training only
    policy = {"planning_lead_hours": planning_lead_hours, "cost_failure": cost_failure}
    policy |= {"cost_visit": cost_visit, "cost_early_alert": cost_early_alert}
    settings = _settings(data_dir=data_dir, lakehouse=lakehouse, **policy)
    try:
        cfg = replace(train_config(settings), seed=seed, grouped_folds=grouped_folds)
    except SettingsError as exc:
        _usage_error(str(exc))
    with (
        _writes_warehouse(settings),
        _connect(settings) as con,
        console.status("training...") as status,
    ):
        try:
            result = train_model(
                con,
                settings.models_dir,
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


def _print_metrics(meta: ModelMetadata) -> None:
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


def _load_model(settings: Settings, version: str | None) -> tuple[Any, ModelMetadata]:
    """A model version (default: the latest) or a clear message and exit 1."""

    from ml.model import load

    try:
        return load(settings.models_dir, version)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


@app.command()
def score(
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
    model_version: ModelVersionOption = None,
) -> None:
    """Score every machine-hour not yet scored by the model; write ml.machine_hour_scores.

    Idempotent per model version and hour. Run `shopfloor build --select fct_machine_risk`
    (or `shopfloor run`) afterwards to refresh the risk mart.
    """
    from ml.score import score as score_hours

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    model, meta = _load_model(settings, model_version)
    with _writes_warehouse(settings), _connect(settings) as con, console.status("scoring..."):
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


ReportDir = Annotated[
    str, typer.Option(help="Folder the report goes in. \\[default: DATA_DIR/reports/VERSION]")
]


@app.command()
def report(
    model_version: ModelVersionOption = None,
    output_dir: ReportDir = "",
    data_dir: DataDirOption = "",
    lakehouse: LakehouseOption = "",
) -> None:
    """Write the model's evaluation report (Markdown + PNG plots) for the team that plans
    maintenance: under DATA_DIR/reports/VERSION, or in --output-dir (a shared folder)."""
    from ml.report import write_report

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    _, meta = _load_model(settings, model_version)
    out = Path(output_dir) if output_dir else settings.data / "reports" / meta["version"]
    with _connect(settings) as con:
        try:
            path = write_report(con, meta, out)
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
    console.print(f"Report: [cyan]{path.resolve()}[/]")
