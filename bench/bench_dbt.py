"""Benchmark the dbt warehouse: a full `dbt build` and the hourly incremental build.

full     10 machines at full fidelity (one reading a second) for --full-days days
         (default 7), ingested, then a full build as `shopfloor build` runs it (the
         backlog in batches of whole days, then every model, data test and unit test)
         timed in a child process, --full-repeats times (default 3)
         from the freshly ingested warehouse, median reported. Reference: DuckDB
         alone computing the per-machine-hour statistics of every sensor (mean,
         std, min, max, p95) straight from the raw readings table, i.e. the scan
         and aggregation no warehouse design can avoid.
hourly   10 machines at --hourly-interval seconds per reading (default 60), for
         1 and 30 days of history: ingest and build the history (untimed), let
         the machines write one more hour, ingest it, and time the hourly build
         (the `dbt build` that `shopfloor run` runs) --hourly-repeats times (default
         3) from that state, the histories interleaved. Ratio of the medians.

    uv run python bench/bench_dbt.py                      # both parts
    uv run python bench/bench_dbt.py --part full --full-days 1
    uv run python bench/bench_dbt.py --keep /tmp/bench_dbt   # keep the fleets
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.simulate import SimulationConfig, simulate

# the child imports bench/rss.py
_CHILD = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    + """
import json, sys, time
from rss import peak_rss_mb
from shopfloor.pipeline.batches import build
from shopfloor.core.settings import resolve


t0 = time.perf_counter()
# what `shopfloor build` runs: a backlog bigger than build_batch_readings in batches
result = build(resolve({"data_dir": sys.argv[1]}), ["--quiet", *sys.argv[2:]])
nodes = getattr(result.result, "results", None) or []
slowest = sorted(((n.execution_time, n.node.name) for n in nodes), reverse=True)[:6]
print(json.dumps({"seconds": time.perf_counter() - t0, "success": bool(result.success),
                  "nodes": len(nodes), "slowest": [[round(s, 1), n] for s, n in slowest],
                  "peak_rss_mb": peak_rss_mb()}))
"""
)

# what `shopfloor run` builds every hour (shopfloor/pipeline/run.py)
HOURLY_ARGS = ["--exclude-resource-type", "unit_test"]


def child(*args: str) -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SHOPFLOOR_PSEUDONYM_KEY": "bench"},
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:] + out.stdout[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]


def dbt_build(data: Path, *args: str) -> dict:
    result = child(_CHILD, str(data), *args)
    if not result["success"]:
        raise SystemExit(f"dbt build failed in {data}")
    return result


def ingest(landing: Path, data: Path) -> None:
    code = (
        "import sys\n"
        "from ingestion.pipeline import IngestConfig, run_ingest\n"
        "s = run_ingest(IngestConfig(landing=sys.argv[1], data_dir=sys.argv[2]))\n"
        'print(\'{"status": "%s"}\' % s.status)\n'
    )
    if child(code, str(landing), str(data))["status"] != "succeeded":
        raise SystemExit("ingest failed")


def fleet(root: Path, hours: int, interval: int, defects: str) -> None:
    simulate(
        SimulationConfig(
            out=str(root),
            fleet=FleetConfig(machines=10, hours=hours, seed=42, wear_scale=1.5),
            sample_interval_s=interval,
            defects=DefectRates.profile(defects),
            skip_existing=True,
        )
    )


def reference(warehouse: Path) -> float:
    """DuckDB alone: per machine-hour mean/std/min/max/p95 of every sensor column."""
    con = duckdb.connect(str(warehouse))
    columns = [
        name
        for (name, kind) in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'telemetry_readings'"
        ).fetchall()
        if kind in ("DOUBLE", "FLOAT") and not name.startswith("_")
    ]
    aggregates = ",\n".join(
        f"avg({c}), stddev_samp({c}), min({c}), max({c}), quantile_cont({c}, 0.95)" for c in columns
    )
    started = time.perf_counter()
    con.execute(
        "create or replace table main.reference_hours as select machine_id, "
        f"date_trunc('hour', reading_at) as hour_at, {aggregates} "
        "from raw.telemetry_readings group by all"
    )
    seconds = time.perf_counter() - started
    con.execute("drop table main.reference_hours")
    con.close()
    return seconds


def full(root: Path, days: int, repeats: int) -> None:
    print(f"[full] simulating {days} full-fidelity day(s) of 10 machines ...", flush=True)
    fleet(root, days * 24, 1, "realistic")
    print("[full] ingesting ...", flush=True)
    ingest(root / "landing", root / "data")
    warehouse = root / "data" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (rows,) = con.execute("select count(*) from raw.telemetry_readings").fetchone() or (0,)
    print(f"[full] {rows:,} readings; timing `dbt build` {repeats} time(s) ...", flush=True)
    shutil.copy2(warehouse, root / "ingested.duckdb")
    builds = []
    for k in range(repeats):  # each from the freshly ingested warehouse
        shutil.copy2(root / "ingested.duckdb", warehouse)
        builds.append(dbt_build(root / "data"))
        print(f"[full] run {k + 1}: {builds[-1]['wall_s']:.1f} s", flush=True)
    build = median_run(builds)
    ref = reference(warehouse)
    each = " / ".join(f"{b['wall_s']:.1f}" for b in builds)
    print(f"\n== full dbt build, {days} day(s) at 1 Hz, {rows:,} readings")
    print(
        f"dbt build (all {build['nodes']} nodes)  {build['wall_s']:7.1f} s (median of "
        f"{repeats}: {each})  "
        f"peak RSS {build['peak_rss_mb']:,.0f} MB"
    )
    print(f"  slowest nodes: {build['slowest']}")
    print(f"duckdb reference           {ref:7.1f} s  (per machine-hour stats of every sensor)")
    print(f"ratio {build['wall_s'] / ref:.1f}x the reference; target: under 120 s")


def hourly(root: Path, days: list[int], interval: int, repeats: int) -> None:
    for d in days:
        here = root / f"{d}d"
        print(f"[hourly] {d} d of history at {interval} s: simulate, ingest, build ...", flush=True)
        fleet(here, d * 24, interval, "realistic")
        ingest(here / "landing", here / "data")
        dbt_build(here / "data", *HOURLY_ARGS)
        fleet(here, d * 24 + 1, interval, "realistic")  # one more hour, 10 files
        ingest(here / "landing", here / "data")
        shutil.copy2(here / "data" / "warehouse.duckdb", here / "before.duckdb")
    # each history's hourly build `repeats` times from the same state, the histories
    # interleaved, medians compared: single runs vary by +-30 % on a shared 2-core host
    runs: dict[int, list[dict]] = {d: [] for d in days}
    for k in range(repeats):
        for d in days:
            here = root / f"{d}d"
            shutil.copy2(here / "before.duckdb", here / "data" / "warehouse.duckdb")
            runs[d].append(dbt_build(here / "data", *HOURLY_ARGS))
            print(f"[hourly] {d} d, run {k + 1}: {runs[d][-1]['wall_s']:.1f} s", flush=True)
    results = {d: median_run(runs[d]) for d in days}
    print(f"\n== hourly incremental dbt build (one reading every {interval} s)")
    print(
        f"| history | hourly build s (median of {repeats}) | runs | peak RSS MB | slowest nodes |"
    )
    print("|---|---:|---|---:|---|")
    for d in days:
        r = results[d]
        each = " / ".join(f"{x['wall_s']:.1f}" for x in runs[d])
        print(
            f"| {d} d | {r['wall_s']:.1f} | {each} | {r['peak_rss_mb']:,.0f} | {r['slowest'][:3]} |"
        )
    short, long_ = min(days), max(days)
    ratio = results[long_]["wall_s"] / results[short]["wall_s"]
    print(f"ratio {long_} d / {short} d: {ratio:.2f}x (target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["full", "hourly", "both"], default="both")
    parser.add_argument("--full-days", type=int, default=7)
    parser.add_argument("--hourly-days", type=int, nargs=2, default=[1, 30])
    parser.add_argument("--hourly-interval", type=int, default=60)
    parser.add_argument("--full-repeats", type=int, default=3)
    parser.add_argument("--hourly-repeats", type=int, default=3)
    parser.add_argument("--keep", help="build the fleets in this folder and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_dbt_") as tmp:
        root = Path(args.keep or tmp)
        if args.part in ("hourly", "both"):
            hourly(
                root / "hourly", sorted(args.hourly_days), args.hourly_interval, args.hourly_repeats
            )
        if args.part in ("full", "both"):
            full(root / f"full{args.full_days}d", args.full_days, args.full_repeats)


if __name__ == "__main__":
    main()
