"""Benchmark how the hourly run grows with the fleet: 10, 15, 50, 150 and 500 machines.

For each fleet size: a week of history is simulated at a lower rate (one reading every
15 minutes: the history only has to exist) and loaded by a first `shopfloor run`, with
a model trained once on a separate 10-machine, 30-day plant (the same model for every
size, so every hourly run scores). Then every machine writes one more hour at full
fidelity (one reading a second, about 1 MB per file, the plant's rate) and that hourly
run (ingest + incremental build + scoring + risk + publish) is timed in a child
process: wall time, stages, peak memory, and the data folder's growth.

The reference measured in the same run is the 10-machine hourly run: every size is
reported as a ratio to it. Straight lines fitted to run time and to peak memory against
fleet size give the fleet at which one such machine (2 cores here) stops meeting the SLA
or runs out of memory, whichever comes first.

    uv run python bench/bench_scale.py                     # 10 15 50 150 500
    uv run python bench/bench_scale.py --machines 10 15 --history-days 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_run import child_run

from shopfloor.operations.capacity import disk_bytes
from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.simulate import SimulationConfig, simulate

HISTORY_INTERVAL_S = 900
FULL_FIDELITY_S = 1


def simulate_fleet(root: Path, machines: int, hours: int, interval: int, seed: int) -> None:
    simulate(
        SimulationConfig(
            out=str(root),
            fleet=FleetConfig(machines=machines, hours=hours, seed=seed, wear_scale=1.5),
            sample_interval_s=interval,
            defects=DefectRates.profile("realistic"),
            skip_existing=True,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, nargs="+", default=[10, 15, 50, 150, 500])
    parser.add_argument("--history-days", type=int, default=7)
    parser.add_argument("--sla-minutes", type=float, default=15.0)
    args = parser.parse_args()
    hours = args.history_days * 24
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        print("training the shared model on 10 machines x 30 days ...", flush=True)
        trainer = Path(tmp) / "trainer"
        simulate_fleet(trainer, 10, 30 * 24, HISTORY_INTERVAL_S, seed=42)
        child_run(trainer / "data", trainer / "landing")
        models = trainer / "data" / "models"
        for machines in sorted(args.machines):
            root = Path(tmp) / f"{machines}m"
            started = time.perf_counter()
            print(f"[{machines}] simulating and loading {args.history_days} days ...", flush=True)
            simulate_fleet(root, machines, hours, HISTORY_INTERVAL_S, seed=7)
            shutil.copytree(models, root / "data" / "models")
            initial = child_run(root / "data", root / "landing")
            before = disk_bytes(root / "data")
            landed = set((root / "landing").rglob("*.txt"))
            simulate_fleet(root, machines, hours + 1, FULL_FIDELITY_S, seed=7)
            new_files = set((root / "landing").rglob("*.txt")) - landed
            hourly = child_run(root / "data", root / "landing")
            results[machines] = {
                "hourly": hourly,
                "initial_s": initial["wall_s"],
                "growth_bytes": disk_bytes(root / "data") - before,
                "file_mb": sum(p.stat().st_size for p in new_files) / max(len(new_files), 1) / 1e6,
            }
            print(
                f"[{machines}] hourly run {hourly['wall_s']:.1f} s, {hourly['files_new']} new "
                f"files, {hourly['hours_scored']} hours scored, stages {hourly['stages']}, "
                f"peak RSS {hourly['peak_rss_mb']:.0f} MB "
                f"(set-up {time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            shutil.rmtree(root)
    report(results, args.sla_minutes)


def report(results: dict[int, dict], sla_minutes: float) -> None:
    sizes = sorted(results)
    reference = results[sizes[0]]["hourly"]["wall_s"]
    print(
        "\n| machines | MB per file | hourly run s | ratio to "
        f"{sizes[0]} | ingest | build | score | risk | publish | peak RSS MB "
        "| data folder growth MB/h |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in sizes:
        h = results[m]["hourly"]
        s = h["stages"]
        print(
            f"| {m} | {results[m]['file_mb']:.2f} | {h['wall_s']:.1f} "
            f"| {h['wall_s'] / reference:.2f} | {s.get('ingest', 0):.1f} "
            f"| {s.get('build', 0):.1f} | {s.get('score', 0):.1f} | {s.get('risk', 0):.1f} "
            f"| {s.get('publish', 0):.1f} | {h['peak_rss_mb']:.0f} "
            f"| {results[m]['growth_bytes'] / 1e6:.1f} |"
        )
    xs = [float(m) for m in sizes]
    if len(xs) < 2:
        return
    seconds = fit(xs, [results[m]["hourly"]["wall_s"] for m in sizes])
    memory = fit(xs, [results[m]["hourly"]["peak_rss_mb"] for m in sizes])
    ram_mb = memory_total_mb()
    by_time = (sla_minutes * 60 - seconds[0]) / seconds[1] if seconds[1] > 0 else float("inf")
    by_memory = (ram_mb - memory[0]) / memory[1] if memory[1] > 0 else float("inf")
    print(
        f"\nfit: hourly run = {seconds[0]:.1f} s + {seconds[1]:.3f} s per machine"
        f"\nfit: peak memory = {memory[0]:.0f} MB + {memory[1]:.1f} MB per machine"
        f"\nSLA {sla_minutes:g} min: met up to about {by_time:,.0f} machines on this machine"
        f"\nmemory ({ram_mb / 1024:.0f} GiB here): enough up to about {by_memory:,.0f} machines"
        f"\none machine like this one ends at about {min(by_time, by_memory):,.0f} machines"
    )


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares line: (intercept, slope)."""
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return mean_y - slope * mean_x, slope


def memory_total_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return float("inf")


if __name__ == "__main__":
    main()
