"""Benchmark the hourly `shopfloor run`: 10 new files on top of 1 vs 30 days of history.

For each history length, the fleet (10 machines) is simulated and loaded with a first,
untimed `shopfloor run`; then the machines write one more hour (10 files) and the
hourly run is timed in a child process: wall time, per-stage seconds (from the run log)
and the child's peak RSS (VmHWM). The same model is used for both histories (trained
on the 30-day fleet), so the hourly runs do the same work apart from history.
The reference measured in the same run is the 1-day-history hourly run: the ratio
30 d / 1 d shows whether cost follows history or start-up.

    uv run python bench/bench_run.py                # 1 and 30 days, one reading a minute
    uv run python bench/bench_run.py --sample-interval 1 --days 1 7
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

from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.simulate import SimulationConfig, simulate

# the child imports bench/rss.py
_CHILD = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    + """
import json, sys, time
from rss import peak_rss_mb
from shopfloor.pipeline.run import run_pipeline
from shopfloor.core.settings import resolve


t0 = time.perf_counter()
s = run_pipeline(resolve({"data_dir": sys.argv[1], "landing": sys.argv[2]}))
print(json.dumps({"seconds": time.perf_counter() - t0, "status": s.status, "error": s.error,
                  "stages": s.stages_s, "files_new": s.files_new, "hours_scored": s.hours_scored,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)


def fleet(root: Path, hours: int, interval: int) -> None:
    simulate(
        SimulationConfig(
            out=str(root),
            fleet=FleetConfig(machines=10, hours=hours, seed=42, wear_scale=1.5),
            sample_interval_s=interval,
            defects=DefectRates.profile("realistic"),
            skip_existing=True,
        )
    )


def child_run(data: Path, landing: Path, key: str | None = "bench") -> dict:
    """One `shopfloor run` in a child process (key None: the data folder's key file)."""
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "SHOPFLOOR_PSEUDONYM_KEY"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(data), str(landing)],
        capture_output=True,
        text=True,
        env={**env, "SHOPFLOOR_PSEUDONYM_KEY": key} if key else env,
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started  # includes interpreter start-up
    if result["status"] != "succeeded":
        raise SystemExit(f"run failed: {result['error']}")
    return result


def publish_detail(data: Path) -> dict:
    """What the run's publish did: day partitions changed (of all), and the time the
    per-day checksums that find them take on this warehouse."""
    import duckdb

    from shopfloor.serving import snapshot as serving

    root = serving.serving_dir(data)
    newest, previous = [v for v, _ in serving._pointer(root)][:2]
    days = {
        v: {m: r.get("days", {}) for m, r in serving._manifest(root, v).items()}
        for v in (newest, previous)
    }
    changed = sum(
        d not in days[previous].get(m, {}) or days[previous][m][d] != h
        for m, per_day in days[newest].items()
        for d, h in per_day.items()
    )
    total = sum(len(per_day) for per_day in days[newest].values())
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        growing = {
            mart: [c for c, _ in typed]
            for mart, typed in serving.mart_columns(con).items()
            if serving.PARTITION_COLUMN in dict(typed)
        }
        for mart, columns in growing.items():  # warm, as the run's connection is
            serving.day_checksums(con, mart, columns)
        started = time.perf_counter()
        for mart, columns in growing.items():
            serving.day_checksums(con, mart, columns)
        checksum_s = time.perf_counter() - started
    return {"days_changed": changed, "days_total": total, "checksum_s": checksum_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 1])
    parser.add_argument("--sample-interval", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    days = sorted(args.days, reverse=True)  # the longest history trains the shared model
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_run_") as tmp:
        models: Path | None = None
        for d in days:
            root = Path(tmp) / f"{d}d"
            data = root / "data"
            print(f"[{d} d] simulating and loading the history ...", flush=True)
            fleet(root, d * 24, args.sample_interval)
            if models is not None:
                shutil.copytree(models, data / "models")
            initial = child_run(data, root / "landing")
            models = data / "models"
            fleet(root, d * 24 + 1, args.sample_interval)  # the machines write one more hour
            # the hourly run REPEATS times from the same state, the median run reported
            # (single runs vary by +-30 % on a shared 2-core host)
            before = root / "data-before"
            shutil.copytree(data, before, symlinks=True)
            runs = []
            for _ in range(args.repeats):
                shutil.rmtree(data)
                shutil.copytree(before, data, symlinks=True)
                runs.append(child_run(data, root / "landing"))
            runs.sort(key=lambda r: r["wall_s"])
            hourly = runs[len(runs) // 2]
            hourly["publish_detail"] = publish_detail(data)
            results[d] = {"initial": initial, "hourly": hourly}
            print(
                f"[{d} d] hourly run (median of {len(runs)}: "
                f"{[round(r['wall_s'], 1) for r in runs]}): {hourly['wall_s']:.1f} s wall, "
                f"{hourly['files_new']} new files, stages {hourly['stages']}, "
                f"peak RSS {hourly['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    short, long_ = min(days), max(days)
    ratio = results[long_]["hourly"]["wall_s"] / results[short]["hourly"]["wall_s"]
    print(
        "\n| history | hourly run s | startup | ingest | build | score | risk | publish "
        "| publish share | of it: checksums | day partitions written | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in days:
        h = results[d]["hourly"]
        s, p = h["stages"], h["publish_detail"]
        print(
            f"| {d} d | {h['wall_s']:.1f} | {s.get('startup', 0):.1f} | {s.get('ingest', 0):.1f} "
            f"| {s.get('build', 0):.1f} "
            f"| {s.get('score', 0):.1f} | {s.get('risk', 0):.1f} | {s.get('publish', 0):.2f} "
            f"| {100 * s.get('publish', 0) / h['wall_s']:.1f} % | {p['checksum_s']:.2f} "
            f"| {p['days_changed']} of {p['days_total']} | {h['peak_rss_mb']:.0f} |"
        )
    print(f"\nratio {long_} d / {short} d history: {ratio:.2f}x")
    print("target: the hourly run under 30 s, flat in history; publish <= 10 % of it, flat")


if __name__ == "__main__":
    main()
