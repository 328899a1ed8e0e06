"""Capacity: how big the plant's data is, how fast it grows, and what the hourly run costs,
measured on the plant's own warehouse, data folder and run log (no constants).

Per layer, the bytes per machine-day observed so far: the machine files as they
landed (``raw.landing_files``), the warehouse file (raw tables, marts and scores), the
serving snapshot (its newest version), the model versions and the quarantine. From
the run log: the hourly runs' seconds per stage and peak memory. Projected to 1, 3 and
5 years for the current fleet and a planned one, with the headroom left against the
hourly SLA and against the free disk.

Projections are linear: storage in machine-days, and each stage's time in machines
(files per hour) apart from start-up, an upper bound for stages with fixed costs.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from shopfloor.core.settings import Settings
from shopfloor.operations.backup import read_log
from shopfloor.pipeline.run import STAGES

YEARS = (1, 3, 5)


@dataclass(frozen=True)
class Layer:
    name: str
    bytes: int
    grows: bool = True  # with machine-days (the models and the catalog do not)


@dataclass
class Capacity:
    machines: int
    machine_days: float
    layers: list[Layer]
    rows: dict[str, int]  # table -> rows
    stage_seconds: dict[str, float]  # median over the hourly runs
    stage_peak_rss_mb: dict[str, float]  # median of the run's peak memory after each stage
    hourly_runs: int
    disk_free_bytes: int
    sla_minutes: float
    arrival_to_load_s: float | None  # median, files with a real arrival time (not simulated)
    largest_load: tuple[int, float] | None  # (files, seconds) of the run that loaded the most
    backups: list[dict[str, Any]]  # backups.jsonl
    sample_interval_s: float | None = None  # median of the loaded files' header

    def rate(self) -> str:
        """The sampling rate the measured figures come from, in words."""
        if self.sample_interval_s is None:
            return "no file loaded yet"
        interval = self.sample_interval_s
        return "1 Hz" if interval == 1 else f"one reading every {interval:g} s"

    @property
    def peak_rss_mb(self) -> float | None:
        return max(self.stage_peak_rss_mb.values(), default=None)

    @property
    def days(self) -> float:
        return self.machine_days / self.machines if self.machines else 0.0

    def per_machine_day(self, value: float) -> float:
        return value / self.machine_days if self.machine_days else 0.0

    @property
    def run_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def run_seconds_at(self, machines: int) -> float:
        """The hourly run at `machines`, every stage but start-up scaled with the fleet."""
        scale = machines / self.machines if self.machines else 1.0
        return sum(s if name == "startup" else s * scale for name, s in self.stage_seconds.items())

    def bytes_at(self, machines: int, years: int) -> dict[str, float]:
        days = 365 * years
        return {
            layer.name: (
                self.per_machine_day(layer.bytes) * machines * days if layer.grows else layer.bytes
            )
            for layer in self.layers
        }


def measure(settings: Settings, sla_minutes: float = 15.0) -> Capacity:
    """Measure the data folder `settings` points at."""
    warehouse = Path(settings.warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}: run `shopfloor run` first")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        landed = con.sql(
            """
            select
                count(distinct machine_id),
                count(distinct (machine_id, file_hour_at)) / 24.0,
                coalesce(sum(size_bytes), 0)
            from (
                select machine_id, file_hour_at, size_bytes
                from raw.landing_files
                where machine_id is not null and file_hour_at is not null
                qualify row_number() over (
                    partition by relative_path order by ingested_at desc
                ) = 1
            )
            """
        ).fetchone()
        assert landed is not None
        machines, machine_days, landing_bytes = int(landed[0]), float(landed[1]), int(landed[2])
        rows = {
            f"{schema}.{table}": int(count)
            for schema, table, count in con.sql(
                "select schema_name, table_name, estimated_size from duckdb_tables()"
                " where schema_name in ('raw', 'marts', 'ml') order by all"
            ).fetchall()
        }
        arrival = con.sql(
            """
            select median(epoch(ingested_at) - epoch(modified_at))
            from raw.landing_files
            where ingested_at >= modified_at and ingested_at - modified_at < interval 1 day
            """
        ).fetchone()
        interval = con.sql(
            "select median(sample_interval_s) from raw.landing_files "
            "where status in ('loaded', 'partial')"
        ).fetchone()
        blocks = _blocks_by_schema(con)
        for table in ("raw.telemetry_readings", "marts.fct_machine_hours"):
            if table in rows:  # exact for the tables the report shows per machine-day
                counted = con.sql(f"select count(*) from {table}").fetchone()
                rows[table] = int(counted[0]) if counted else 0
    file_bytes, used = disk_bytes(warehouse), sum(blocks.values()) or 1
    share = {name: file_bytes * n / used for name, n in blocks.items()}  # the file, split
    layers = [
        Layer("machine files (landing)", landing_bytes),
        Layer("warehouse: raw", round(share.get("raw", 0))),
        Layer("warehouse: marts", round(share.get("marts", 0))),
        Layer(
            "warehouse: scores and the rest",
            file_bytes - round(share.get("raw", 0)) - round(share.get("marts", 0)),
        ),
        Layer("serving snapshot", _serving_bytes(Path(settings.serving_dir))),
        Layer("quarantine", disk_bytes(settings.data / "quarantine")),
        Layer("model versions", disk_bytes(Path(settings.values["models_dir"])), grows=False),
    ]
    runs = _hourly_runs(settings.data / "runs.jsonl", machines)
    largest = max(
        _runs(settings.data / "runs.jsonl"), key=lambda r: r.get("files_new", 0), default={}
    )
    stage_seconds = _median_by_stage([r.get("stages_s", {}) for r in runs])
    stage_peaks = _median_by_stage([r.get("peak_rss_mb") or {} for r in runs])
    return Capacity(
        machines=machines,
        machine_days=machine_days,
        layers=layers,
        rows=rows,
        stage_seconds=stage_seconds,
        stage_peak_rss_mb=stage_peaks,
        hourly_runs=len(runs),
        disk_free_bytes=shutil.disk_usage(settings.data).free,
        sla_minutes=sla_minutes,
        arrival_to_load_s=float(arrival[0]) if arrival and arrival[0] is not None else None,
        backups=read_log(settings.data),
        sample_interval_s=float(interval[0]) if interval and interval[0] is not None else None,
        largest_load=(
            (largest["files_new"], sum(largest.get("stages_s", {}).values()))
            if largest.get("files_new")
            else None
        ),
    )


def _median_by_stage(per_run: list[dict[str, float]]) -> dict[str, float]:
    return {
        stage: statistics.median(values)
        for stage in STAGES
        if (values := [r[stage] for r in per_run if stage in r])
    }


def _blocks_by_schema(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Storage blocks each schema's tables use in the warehouse file."""
    blocks: dict[str, int] = {}
    for schema, table in con.sql("select schema_name, table_name from duckdb_tables()").fetchall():
        row = con.sql(
            f"select count(distinct block_id) from pragma_storage_info('{schema}.{table}')"
            " where block_id >= 0"
        ).fetchone()
        blocks[schema] = blocks.get(schema, 0) + (int(row[0]) if row else 0)
    return blocks


def _runs(log: Path) -> list[dict[str, Any]]:
    """The succeeded runs of the run log."""
    if not log.exists():
        return []
    runs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in runs if r.get("status") == "succeeded"]


def _hourly_runs(log: Path, machines: int) -> list[dict[str, Any]]:
    """The last runs that loaded about one hour of files (not a first load, no training)."""
    return [
        r
        for r in _runs(log)
        if 0 < r.get("files_new", 0) <= 2 * max(machines, 1) and not r.get("trained")
    ][-24:]


def disk_bytes(path: Path) -> int:
    """Bytes a file or folder takes (a hard-linked file counts once)."""
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    seen: set[int] = set()  # hard links count once
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def _serving_bytes(root: Path) -> int:
    """The newest published version: what BI reads (older versions are hard links)."""
    from shopfloor.serving.snapshot import VERSION_KEY, newest_version

    newest = newest_version(root)
    if newest is None:
        return 0
    return sum(disk_bytes(mart / f"{VERSION_KEY}={newest}") for mart in (root / "marts").iterdir())


Table = tuple[str, list[str], list[list[str]]]  # title, header, rows


def tables(capacity: Capacity, planned: int, prices: dict[str, Any] | None = None) -> list[Table]:
    """The report's tables, for the terminal and for Markdown alike."""
    fleets = sorted({capacity.machines, planned})
    return [
        _storage_table(capacity, fleets),
        _rows_table(capacity),
        _run_table(capacity),
        _headroom_table(capacity, fleets),
        _latency_table(capacity),
        _recovery_table(capacity),
        _rebuild_at_plant_rate_table(capacity, fleets),
        _cost_table(capacity, planned, prices or load_prices()),
        _reference_table(capacity, planned),
    ]


def _reference_table(c: Capacity, planned: int) -> Table:
    """The scale benchmark's figures (bench/bench_scale.py), shipped with shopfloor."""
    ref = tomllib.loads(Path(__file__).with_name("scale_reference.toml").read_text())
    run, memory = ref["run_seconds"], ref["peak_memory_mb"]
    rows = [
        [
            f"{m} machines",
            f"{run['fixed'] + run['per_machine'] * m:.0f}",
            f"{memory['fixed'] + memory['per_machine'] * m:,.0f}",
        ]
        for m in sorted({c.machines, planned, *ref["fleets"]})
    ]
    return (
        f"Reference: {ref['machine']} ({ref['source']}, {ref['measured']}); one such "
        f"machine ends at about {ref['limit_machines']:,} machines ({ref['limit']})",
        ["fleet", "hourly run s (fit)", "peak memory MB (fit)"],
        rows,
    )


def _storage_table(c: Capacity, fleets: list[int]) -> Table:
    rows = [
        [
            layer.name,
            _mb(layer.bytes),
            _mb(c.per_machine_day(layer.bytes)) if layer.grows else "(fixed)",
            *[_gb(c.bytes_at(m, y)[layer.name]) for m in fleets for y in YEARS],
        ]
        for layer in c.layers
    ]
    totals = [sum(c.bytes_at(m, y).values()) for m in fleets for y in YEARS]
    rows.append(["total", _mb(sum(x.bytes for x in c.layers)), "", *map(_gb, totals)])
    return (
        f"Storage: measured on {c.machines} machines x {c.days:.1f} days of files at "
        f"{c.rate()}, projected",
        ["layer", "now MB", "MB per machine-day"]
        + [f"{m} machines, {y} y GB" for m in fleets for y in YEARS],
        rows,
    )


def _rows_table(c: Capacity) -> Table:
    rows = [
        [table, f"{count:,}", f"{c.per_machine_day(count):,.0f}"]
        for table, count in c.rows.items()
        if table in ("raw.telemetry_readings", "marts.fct_machine_hours")
    ]
    return ("Rows", ["table", "rows", "per machine-day"], rows)


def _run_table(c: Capacity) -> Table:
    rows = [
        [stage, f"{seconds:.1f}", _peak(c.stage_peak_rss_mb.get(stage))]
        for stage, seconds in c.stage_seconds.items()
    ]
    if rows:
        rows.append(["hourly run", f"{c.run_seconds:.1f}", _peak(c.peak_rss_mb)])
    else:
        rows.append(["no hourly run logged yet (a first load is not one)", "-", "-"])
    return (
        f"Hourly run (median of the last {c.hourly_runs} hourly runs, files at {c.rate()})",
        ["stage", "seconds", "peak memory MB"],
        rows,
    )


def _headroom_table(c: Capacity, fleets: list[int]) -> Table:
    sla_s = c.sla_minutes * 60
    rows = [
        [
            f"{m} machines",
            f"{c.run_seconds_at(m):.0f} s" if c.run_seconds_at(m) else "-",
            f"{sla_s / c.run_seconds_at(m):.0f}x" if c.run_seconds_at(m) else "-",
            _years_until_full(c, m),
        ]
        for m in fleets
    ]
    return (
        f"Headroom: SLA {c.sla_minutes:g} min after the files land; "
        f"{_gb(c.disk_free_bytes)} GB free on the data folder's disk",
        ["fleet", "hourly run", "SLA headroom", "disk full in"],
        rows,
    )


def _latency_table(c: Capacity) -> Table:
    """File landed -> alert: a machine closes its file at the end of the hour."""
    run = f"{c.run_seconds:.0f} s" if c.stage_seconds else "the run"
    measured = (
        f"measured here: a file is loaded a median {c.arrival_to_load_s / 60:,.1f} min after "
        "it lands"
        if c.arrival_to_load_s is not None
        else "file arrival times here are simulated: the arrival-to-load delay is not measured"
    )
    return (
        f"Batch or streaming: from a file landing to its alert ({measured})",
        ["trigger", "file landed -> alert", "oldest reading -> alert"],
        [
            ["cron at minute 5 (today)", f"5 min + {run}", f"65 min + {run}"],
            ["a file watcher starting the run", run, f"60 min + {run}"],
            ["streaming each reading (Kafka)", "-", "seconds, if the machines sent readings"],
        ],
    )


def _recovery_table(c: Capacity) -> Table:
    backups = [b for b in c.backups if b.get("kind") == "backup"]
    restores = [b for b in c.backups if b.get("kind") == "restore"]
    kept = sum(x.bytes for x in c.layers if x.name in _BACKED_UP)
    rows = []
    if backups:
        last = backups[-1]
        rows.append([f"last backup ({last['at']})", _mb(last["bytes"]), f"{last['seconds']:.2f}"])
    if restores:
        last = restores[-1]
        rows.append([f"last restore ({last['at']})", _mb(last["bytes"]), f"{last['seconds']:.2f}"])
        rate = last["bytes"] / max(last["seconds"], 1e-3)
        for years in YEARS:
            size = sum(v for k, v in c.bytes_at(c.machines, years).items() if k in _BACKED_UP)
            rows.append([f"restore after {years} y (projected)", _mb(size), f"{size / rate:.1f}"])
    if not rows:
        rows.append(["no backup or restore logged yet", _mb(kept), "-"])
    if c.largest_load:
        files, seconds = c.largest_load
        rebuild = f"rebuild from the landing area (files at {c.rate()})"
        rows.append([f"{rebuild}: {files:,} files, measured", "", f"{seconds:.0f}"])
        for years in YEARS:
            projected = seconds / files * c.machines * 24 * 365 * years
            rows.append([f"{rebuild}, {years} y (projected)", "", f"{projected:,.0f}"])
    return ("Recovery: `shopfloor backup` / `restore`", ["", "MB", "seconds"], rows)


def _rebuild_at_plant_rate_table(c: Capacity, fleets: list[int]) -> Table:
    """Rebuilding everything from the landing area at the plant's real rate (1 Hz, about
    1 MB per machine-hour), from the history benchmark shipped with shopfloor: the
    figures above come from this data folder's own files, whatever their rate."""
    ref = tomllib.loads(Path(__file__).with_name("scale_reference.toml").read_text())
    rebuild = ref["rebuild_1hz"]
    per_day = rebuild["ingest_s_per_machine_day"] + rebuild["build_s_per_machine_day"]
    rows = [
        [f"{m} machines, {y} y", f"{m * 365 * y:,}", f"{per_day * m * 365 * y / 3600:,.1f}"]
        for m in fleets
        for y in YEARS
    ]
    rows.append(
        [
            f"peak memory of the build (batches of {rebuild['batch_readings']:,} readings)",
            "",
            f"{rebuild['build_peak_mb']:,.0f} MB",
        ]
    )
    return (
        f"Rebuild from the landing area at 1 Hz ({rebuild['source']}, {rebuild['measured']}: "
        f"ingest {rebuild['ingest_s_per_machine_day']:.1f} s + build "
        f"{rebuild['build_s_per_machine_day']:.1f} s per machine-day on {ref['machine']})",
        ["history", "machine-days", "hours"],
        rows,
    )


def load_prices(path: Path | None = None) -> dict[str, Any]:
    """The unit prices: `path`, or the dated table shipped with shopfloor."""
    return tomllib.loads((path or Path(__file__).with_name("prices.toml")).read_text())


def _cost_table(c: Capacity, planned: int, prices: dict[str, Any]) -> Table:
    rows = [
        [name, *[_money(cost(c, m, y, prices)) for m, y in ((c.machines, 1), (planned, 5))], note]
        for name, cost, note in _OPTIONS
    ]
    return (
        f"Monthly cost, {prices['currency']} (prices as of {prices['as_of']}, "
        "shopfloor/operations/prices.toml)",
        ["option", f"{c.machines} machines, year 1", f"{planned} machines, year 5", "buys"],
        rows,
    )


def _data_gb(c: Capacity, machines: int, years: int) -> float:
    return sum(c.bytes_at(machines, years).values()) / 1e9


def _vm(c: Capacity, m: int, y: int, p: dict[str, Any]) -> float:
    return p["compute"]["vm_2vcpu_8gb_month"] + _data_gb(c, m, y) * p["storage"]["block_gb_month"]


def _on_premise(c: Capacity, m: int, y: int, p: dict[str, Any]) -> float:
    return float(p["compute"]["on_premise_box_month"])


def _lakehouse(c: Capacity, m: int, y: int, p: dict[str, Any]) -> float:
    hours = c.run_seconds_at(m) / 3600 * 24 * 30
    memory_gb = (c.peak_rss_mb or 1024) / 1024
    compute = hours * (2 * p["compute"]["container_vcpu_hour"])
    compute += hours * memory_gb * p["compute"]["container_gb_hour"]
    writes = (m + 50) * 24 * 30 / 1000 * p["storage"]["put_per_1000"]  # files + tables
    return _data_gb(c, m, y) * p["storage"]["object_gb_month"] + compute + writes


def _proposal(c: Capacity, m: int, y: int, p: dict[str, Any]) -> float:
    q, hours = p["proposal"], 730
    kafka = q["kafka_broker_hour"] * q["kafka_brokers"] * hours
    kafka += _data_gb(c, m, 1) / 12 * q["kafka_storage_gb_month"]  # a month retained
    spark = q["spark_node_hour"] * q["spark_nodes"] * hours
    kubernetes = (q["kubernetes_control_plane_hour"] + q["kubernetes_node_hour"] * 2) * hours
    return kafka + spark + kubernetes + _data_gb(c, m, y) * p["storage"]["object_gb_month"]


_OPTIONS = (
    ("one small VM running `shopfloor run` hourly", _vm, "today's design, as is"),
    ("an on-premise 2-core box", _on_premise, "the same, on the plant's own hardware"),
    (
        "lakehouse on object storage + a scheduled container",
        _lakehouse,
        "no server to keep; pays per run",
    ),
    (
        "the proposal: streaming bus + Spark cluster + Kubernetes",
        _proposal,
        "per-reading latency, if the machines streamed",
    ),
)
_BACKED_UP = (
    "warehouse: raw",
    "warehouse: marts",
    "warehouse: scores and the rest",
    "quarantine",
    "model versions",
)


def _years_until_full(c: Capacity, machines: int) -> str:
    per_year = sum(c.bytes_at(machines, 1).values()) - sum(
        layer.bytes for layer in c.layers if not layer.grows
    )
    return f"{c.disk_free_bytes / per_year:,.1f} years" if per_year > 0 else "-"


def _peak(mb: float | None) -> str:
    return f"{mb:,.0f}" if mb else "-"  # runs logged before peaks were recorded


def _money(value: float) -> str:
    return f"{value:,.2f}" if value < 10 else f"{value:,.0f}"


def _mb(value: float) -> str:
    return f"{value / 1e6:,.2f}"


def _gb(value: float) -> str:
    return f"{value / 1e9:,.2f}"


def write_report(
    capacity: Capacity, planned: int, out: Path, prices: dict[str, Any] | None = None
) -> Path:
    """capacity.md with two PNG charts under `out`; the Markdown file's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    years = [y / 4 for y in range(0, 21)]
    fig, ax = plt.subplots(figsize=(7, 4))
    for machines in sorted({capacity.machines, planned}):
        per_day = (
            sum(capacity.per_machine_day(x.bytes) for x in capacity.layers if x.grows) * machines
        )
        ax.plot(years, [per_day * 365 * y / 1e9 for y in years], label=f"{machines} machines")
    ax.set(xlabel="years", ylabel="GB", title="Data folder growth (every layer)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "storage.png", dpi=100)
    plt.close(fig)

    fleets = [10, 15, 50, 150, 500, capacity.machines, planned]
    fleets = sorted(set(fleets))
    fig, ax = plt.subplots(figsize=(7, 4))
    if capacity.run_seconds:  # never a line for what was not measured
        ax.plot(fleets, [capacity.run_seconds_at(m) / 60 for m in fleets], marker="o", label="run")
    else:
        ax.text(
            0.5,
            0.6,
            "no hourly run measured yet\n(a `shopfloor run` that loads one hour of files)",
            transform=ax.transAxes,
            ha="center",
        )
    ax.axhline(capacity.sla_minutes, color="red", linestyle="--", label="SLA")
    ax.set(xscale="log", xlabel="machines", ylabel="minutes", title="Hourly run, projected")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "run_time.png", dpi=100)
    plt.close(fig)

    lines = ["# Capacity", "", __doc__.split("\n\n")[1].replace("\n", " "), ""]
    for title, header, rows in tables(capacity, planned, prices):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |"]
        lines += ["|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    lines += ["![storage](storage.png)", "", "![run time](run_time.png)", ""]
    path = out / "capacity.md"
    path.write_text("\n".join(lines))
    return path
