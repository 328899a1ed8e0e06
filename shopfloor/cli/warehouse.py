"""Commands on the warehouse and what BI reads: `build`, `docs`, `publish`, `status`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass


from shopfloor.cli._common import (
    DataDirOption,
    LakehouseOption,
    _check_writable,
    _connect,
    _settings,
    _writes_warehouse,
    app,
    compact_table,
    console,
)


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
    """Build and test the dbt warehouse (`dbt build`): staging, marts, tests, contracts.

    A whole-project build takes a backlog of raw readings (a first build on an archive, a
    catch-up, a full refresh) in batches of whole days, each committed on its own: memory
    is set by the setting build_batch_readings, and a build stopped half-way continues
    with the next batch."""
    from shopfloor.core.errors import BuildError
    from shopfloor.pipeline.batches import build as build_batched

    args = (["--select", select] if select else []) + (["--exclude", exclude] if exclude else [])
    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    _check_writable(settings, landing=False)
    with _writes_warehouse(settings):
        try:
            result = build_batched(
                settings,
                args,
                full_refresh=full_refresh,
                batched=select is None,
                on_step=lambda text: console.print(text, highlight=False, soft_wrap=True),
            )
        except BuildError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
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

    from shopfloor.pipeline.dbt import run_dbt

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


@app.command()
def publish(data_dir: DataDirOption = "", lakehouse: LakehouseOption = "") -> None:
    """Publish the marts to the serving layer BI reads (`shopfloor run` does it every hour).

    Writes DATA_DIR/serving (LAKEHOUSE/serving on a lake): the marts as Parquet
    (machine-hour marts by day, only the days that changed) and bi.duckdb, a catalog
    of views that BI tools open read-only.
    Connection settings: docs/operations.md.
    """
    from shopfloor.pipeline.run import publish as publish_marts
    from shopfloor.serving.snapshot import catalog_url, version_number

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    with _connect(settings) as con, console.status("publishing...") as status:
        result = publish_marts(con, settings, lambda text: status.update(text))
    target = " and to PostgreSQL" if settings.bi_postgres_url else ""
    console.print(
        f"Published the marts as publish #{version_number(result.version)}{target}"
        f" in {result.seconds} s "
        f"({result.days_written} day partitions written, {result.days_linked} unchanged)\n"
        f"BI catalog: [cyan]{catalog_url(settings.serving_dir)}[/]"
    )


_DQ_HEADERS = {
    "data_date": "day",
    "files_expected": "files\nexpected",
    "files_received": "files\nreceived",
    "files_partial": "files\npartial",
    "files_quarantined": "files\nquarantined",
    "hours_missing": "hours\nmissing",
    "rows_rejected": "rows\nrejected",
    "completeness": "complete",
}


@app.command()
def status(data_dir: DataDirOption = "", lakehouse: LakehouseOption = "") -> None:
    """Last runs, silent machines, data quality of the last days and the current top risks.

    Reads the serving layer (the marts as the last successful run published them), so it
    never holds the warehouse a run needs; the warehouse only when nothing is published.
    """
    from datetime import UTC, datetime

    import duckdb

    from ml.model import latest_version
    from shopfloor.pipeline.run import read_runs
    from shopfloor.serving import marts

    settings = _settings(data_dir=data_dir, lakehouse=lakehouse)
    data = settings.data_dir
    runs = read_runs(data, last=5)
    table = compact_table("Last runs (runs.jsonl)")
    for col in (
        "started (UTC)",
        "status",
        "files\nnew",
        "files\nquarantined",
        "rows\nloaded",
        "tests\np/w/f",
        "machines\nat risk",
    ):
        table.add_column(col)
    for r in runs:
        table.add_row(
            r["started_at"][:16].replace("T", " "),
            r["status"] + (f" ({r['failed_stage']})" if r.get("failed_stage") else ""),
            str(r["files_new"]),
            str(r["files_quarantined"]),
            f"{r['rows_loaded']:,}",
            f"{r['tests_passed']}/{r['tests_warned']}/{r['tests_failed']}",
            str(len(r["machines_at_risk"])),
        )
    console.print(table if runs else "[yellow]No `shopfloor run` yet in this data folder.[/]")
    _print_models(settings.models_dir)
    # the serving layer when there is one: reading it never holds the warehouse
    from shopfloor.core.warehouse import connect, exists, location
    from shopfloor.serving.snapshot import (
        catalog_url,
        current_version,
        open_catalog,
        version_number,
    )

    catalog = catalog_url(settings.serving_dir)
    if catalog is None and not exists(settings):
        console.print(
            f"No warehouse yet at {location(settings)}: run `shopfloor run` (or ingest and build)."
        )
        raise typer.Exit(0)
    path = catalog or location(settings)
    if catalog:
        current = current_version(settings.serving_dir)
        shown = f"publish #{version_number(current)}" if current else "no version yet"
        console.print(f"Marts as published to the serving layer, {shown} ({catalog})")
    try:
        con = open_catalog(catalog) if catalog else connect(settings, read_only=True)
    except duckdb.Error as exc:
        console.print(
            f"[yellow]Warehouse {path} not readable now ({exc}); a run may be writing.[/]"
        )
        raise typer.Exit(0) from exc
    with con:
        tables = marts.present(con)
        if "fct_machine_hours" in tables and (newest := marts.newest_hour(con)):
            age_h = (datetime.now(UTC) - newest).total_seconds() / 3600
            console.print(
                f"Newest data: the hour of {newest:%Y-%m-%d %H:%M} UTC, "
                + (f"{age_h:,.0f} h ago" if age_h >= 1 else "this hour")
            )
            if age_h > 2:  # the hourly run finds no file from any machine
                console.print(
                    "[yellow]No machine has sent a file for "
                    f"{age_h:,.0f} h: is the landing area reachable, are the runs scheduled?[/]"
                )
        if "fct_machine_last_seen" in tables:
            silent = marts.silent_machines(con)
            console.print(
                "Silent machines: "
                + (", ".join(f"{m} ({h} h behind)" for m, h in silent) or "none")
            )
        if "fct_data_quality" in tables:
            dq = compact_table("Data quality, last 7 days")
            for col in marts.DATA_QUALITY_COLUMNS:
                dq.add_column(_DQ_HEADERS[col], justify="left" if col == "data_date" else "right")
            for row in marts.data_quality_by_day(con, days=7):
                dq.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
            console.print(dq)
        version = latest_version(settings.models_dir)
        drift = (
            marts.latest_drift(con, version)
            if version and "fct_model_monitoring" in tables
            else None
        )
        if drift:
            psi, feature = drift
            console.print(
                f"Drift of the model's inputs (last week against training): PSI {psi:.2f} "
                f"on {feature}, {marts.drift_level(psi)}",
                highlight=False,
            )
        if "fct_machine_risk" in tables:
            act_now = marts.machines_on_alert(con)
            console.print("Act now (alert policy): " + (", ".join(act_now) or "none"))
            watch = marts.machines_on_watch_list(con)
            if watch is not None:
                console.print(
                    "Watch list (likely to fail within the horizon): "
                    + (", ".join(watch) or "none")
                )
            health = marts.worst_health(con)
            if health is not None:
                console.print(
                    "Health, no model needed (about 2 is typical, higher is worse): "
                    + (
                        ", ".join(
                            f"{m} {h:.3g}" + (f" ({sensor})" if sensor else "")
                            for m, h, sensor in health
                        )
                        or "not yet (each machine needs about half a day of healthy hours)"
                    ),
                    highlight=False,
                )
            risk = compact_table("Current top risks (marts.fct_machine_risk)")
            for col in ("machine", "risk", "band", "action", "top reasons"):
                risk.add_column(col)
            for m, r, band, action, reasons in marts.top_risks(con, limit=5):
                risk.add_row(m, "n/a" if r is None else f"{r:.2f}", band, action, reasons or "")
            console.print(risk)


def _print_models(models_dir: str) -> None:
    """The current model, its age and its evaluation; candidates trained since."""
    from datetime import UTC, datetime

    from ml.model import latest_version, versions

    current = latest_version(models_dir)
    if current is None:
        console.print("Model: none trained yet.")
        return
    saved = {meta["version"]: meta for meta in versions(models_dir)}
    meta = saved.get(current)
    if meta is None:
        console.print(f"Model: {current} (its metadata is missing)")
        return
    age = datetime.now(UTC) - datetime.fromisoformat(meta["trained_at"])

    def three(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    m = meta["metrics"]["model"]
    console.print(
        f"Model: {current}, trained {age.days} d {age.seconds // 3600} h ago; on its test period"
        f" PR-AUC {three(m['pr_auc'])}, F1 {three(m['f1'])} (fixed interval PR-AUC "
        f"{three(meta['metrics']['fixed_interval']['pr_auc'])})",
        highlight=False,
    )
    for other in saved.values():
        if other.get("status") == "candidate" and other["trained_at"] > meta["trained_at"]:
            console.print(f"Candidate not made current: {other['version']}: {other['warnings'][0]}")
