"""Benchmark building history at the plant's real rate: memory and time per machine-day.

10 machines at one reading a second (~1 MB per machine-hour), no file defects. One
fleet of --days days (default 21) is simulated once; for each history in --histories
(default 3, 7, 21 days) a landing area of its first days is ingested, then the first
`shopfloor build` after that ingest (every model and data test, the backlog in batches
of build_batch_readings) runs in a child process: wall time, time per machine-day, peak
RSS. Reference in the same run, on the same warehouse: one DuckDB query that aggregates
the raw readings per machine-hour and sensor (mean, std, min, max, p95 of every sensor
column), the floor no warehouse design goes under.

Then the hourly run on top of the longest and of a 1-day history: one more hour of files,
ingest + build (what `shopfloor run` does before scoring, its checks of the whole
history scoped to what came since the previous run) in a child, --repeats times from the
same state, the histories interleaved, medians compared.

    uv run python bench/bench_history.py                       # 3, 7, 21 days (~25 min)
    uv run python bench/bench_history.py --histories 1 3 --days 4
    uv run python bench/bench_history.py --keep /tmp/bench_history
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from bench_dbt import child, fleet

_BUILD = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    + """
import json, os, sys, time
from rss import peak_rss_mb
from shopfloor.pipeline.batches import build
from shopfloor.core.settings import resolve

settings = resolve({"data_dir": sys.argv[1]})
# what `shopfloor run` passes: the full-history checks look at what came since
since = os.environ.get("BENCH_TEST_SINCE")
t0 = time.perf_counter()
steps = []
result = build(settings, ["--quiet", *sys.argv[2:]], on_step=steps.append,
               env={"SHOPFLOOR_TEST_SINCE": since} if since else None)
print(json.dumps({"seconds": time.perf_counter() - t0, "success": bool(result.success),
                  "batches": sum(1 for s in steps if s.startswith("batch ")),
                  "peak_rss_mb": peak_rss_mb()}))
"""
)

_INGEST = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    + """
import json, sys, time
from rss import peak_rss_mb
from ingestion.pipeline import IngestConfig, run_ingest

t0 = time.perf_counter()
s = run_ingest(IngestConfig(landing=sys.argv[1], data_dir=sys.argv[2]))
print(json.dumps({"status": s.status, "seconds": time.perf_counter() - t0,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)

# what `shopfloor run` builds every hour (shopfloor/pipeline/run.py)
HOURLY_ARGS = ["--exclude-resource-type", "unit_test"]


def ingest(landing: Path, data: Path) -> dict:
    result = child(_INGEST, str(landing), str(data))
    if result["status"] != "succeeded":
        raise SystemExit(f"ingest of {landing} failed")
    return result


def build(data: Path, *args: str) -> dict:
    result = child(_BUILD, str(data), *args)
    if not result["success"]:
        raise SystemExit(f"build failed in {data}")
    return result


def landing_of(fleet_root: Path, root: Path, days: int) -> Path:
    """A landing area holding the fleet's first `days` days (hard links)."""
    source = fleet_root / "landing"
    landing = root / "landing"
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        target = landing / relative
        if path.is_dir():
            continue
        parts = relative.parts
        if parts[0] == "telemetry":
            # telemetry/<machine>/<yyyy>/<mm>/<dd>/file: keep the first `days` folders
            day = "/".join(parts[2:5])
            if day not in _first_days(source, days):
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.hardlink_to(path)
    return landing


_DAYS: dict[tuple[Path, int], set[str]] = {}


def _first_days(source: Path, days: int) -> set[str]:
    key = (source, days)
    if key not in _DAYS:
        found = sorted(
            {
                "/".join(p.relative_to(source).parts[2:5])
                for p in (source / "telemetry").glob("*/*/*/*")
            }
        )
        _DAYS[key] = set(found[:days])
    return _DAYS[key]


def readings(data: Path) -> int:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        (n,) = con.execute("select count(*) from raw.telemetry_readings").fetchone() or (0,)
    return int(n)


def reference_peak(warehouse: Path) -> dict:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import json, sys\n"
        "from rss import peak_rss_mb\n"
        "from bench_dbt import reference\n"
        "s = reference(__import__('pathlib').Path(sys.argv[1]))\n"
        "print(json.dumps({'seconds': s, 'peak_rss_mb': peak_rss_mb()}))\n"
    )
    return child(code, str(warehouse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--days", type=int, default=22, help="days simulated (one more than the longest history)"
    )
    parser.add_argument("--histories", type=int, nargs="+", default=[3, 7, 21])
    parser.add_argument("--repeats", type=int, default=3, help="hourly runs per history")
    parser.add_argument("--keep", type=Path, help="work here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_history_"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SHOPFLOOR_PSEUDONYM_KEY", "bench")
    os.environ.setdefault("SHOPFLOOR_SETTLE_SECONDS", "0")  # the fleet was just written
    fleet_root = root / "fleet"
    print(f"[history] simulating {args.days} days of 10 machines at 1 Hz ...", flush=True)
    started = time.perf_counter()
    fleet(fleet_root, args.days * 24, 1, "none")
    print(f"[history] simulated in {time.perf_counter() - started:.0f} s", flush=True)

    rows = []
    for days in sorted(set(args.histories)):
        here = root / f"{days}d"
        shutil.rmtree(here, ignore_errors=True)
        landing = landing_of(fleet_root, here, days)
        ingested = ingest(landing, here / "data")
        n = readings(here / "data")
        machine_days = n / 86_400
        print(f"[history] {days} d: {n:,} readings ingested; first build ...", flush=True)
        built = build(here / "data")
        ref = reference_peak(here / "data" / "warehouse.duckdb")
        rows.append(
            {
                "days": days,
                "readings": n,
                "machine_days": machine_days,
                "ingest_s": ingested["seconds"],
                "build_s": built["wall_s"],
                "batches": built["batches"],
                "build_peak_mb": built["peak_rss_mb"],
                "per_machine_day_s": built["wall_s"] / machine_days,
                "reference_s": ref["seconds"],
                "reference_peak_mb": ref["peak_rss_mb"],
            }
        )
        print(f"[history] {json.dumps(rows[-1])}", flush=True)
        if days != max(args.histories):
            shutil.rmtree(here / "data", ignore_errors=True)

    print("\n== first build after ingest, 10 machines at 1 Hz")
    print(
        "| history | readings | batches | build s | s per machine-day | peak RSS MB "
        "| reference s | build / reference | reference peak MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['days']} d | {r['readings']:,} | {r['batches']} | {r['build_s']:.1f} "
            f"| {r['per_machine_day_s']:.2f} | {r['build_peak_mb']:,.0f} "
            f"| {r['reference_s']:.1f} | {r['build_s'] / r['reference_s']:.1f}x "
            f"| {r['reference_peak_mb']:,.0f} |"
        )
    first, last = rows[0], rows[-1]
    print(
        f"{last['days']} d vs {first['days']} d: peak RSS "
        f"{last['build_peak_mb'] / first['build_peak_mb']:.2f}x, time per machine-day "
        f"{last['per_machine_day_s'] / first['per_machine_day_s']:.2f}x "
        "(targets: within 1.3x; peak RSS at 21 d <= 6 GB)"
    )
    hourly(root, fleet_root, max(args.histories), args.repeats)


def hourly(root: Path, fleet_root: Path, longest: int, repeats: int) -> None:
    """The hourly ingest + build on top of 1 day and of `longest` days of history."""
    short = root / "1d"
    shutil.rmtree(short, ignore_errors=True)
    ingest(landing_of(fleet_root, short, 1), short / "data")
    build(short / "data")
    states = {}
    for days, here in ((1, short), (longest, root / f"{longest}d")):
        # the next hour: the fleet's files of the day after the history, first hour
        extra = root / f"hour_after_{days}d"
        shutil.rmtree(extra, ignore_errors=True)
        days_all = sorted(
            {
                "/".join(p.relative_to(fleet_root / "landing").parts[2:5])
                for p in (fleet_root / "landing" / "telemetry").glob("*/*/*/*")
            }
        )
        if days >= len(days_all):
            raise SystemExit(f"simulate more than {days} days for the hourly part (--days)")
        next_day = days_all[days]
        for machine in sorted((fleet_root / "landing" / "telemetry").iterdir()):
            files = sorted((machine / next_day).glob("*"))
            if files:
                target = here / "landing" / files[0].relative_to(fleet_root / "landing")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.hardlink_to(files[0])
        shutil.rmtree(here / "before", ignore_errors=True)
        shutil.copytree(here / "data", here / "before", symlinks=True)
        states[days] = here
    runs: dict[int, list[float]] = {d: [] for d in states}
    for k in range(repeats):
        for days, here in states.items():
            shutil.rmtree(here / "data")
            shutil.copytree(here / "before", here / "data", symlinks=True)
            # the previous run passed its checks before this hour's files were loaded
            os.environ["BENCH_TEST_SINCE"] = datetime.now(UTC).isoformat()
            started = time.perf_counter()
            ingest(here / "landing", here / "data")
            build(here / "data", *HOURLY_ARGS)
            runs[days].append(time.perf_counter() - started)
            del os.environ["BENCH_TEST_SINCE"]
            print(f"[hourly] {days} d, run {k + 1}: {runs[days][-1]:.1f} s", flush=True)
    medians = {d: sorted(r)[len(r) // 2] for d, r in runs.items()}
    print("\n== hourly ingest + build, 10 new files at 1 Hz")
    print(f"| history | median s of {repeats} | runs |")
    print("|---|---:|---|")
    for d, r in runs.items():
        print(f"| {d} d | {medians[d]:.1f} | {' / '.join(f'{x:.1f}' for x in r)} |")
    print(f"ratio {longest} d / 1 d: {medians[longest] / medians[1]:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
