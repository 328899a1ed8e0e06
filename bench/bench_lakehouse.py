"""Benchmark the hourly `shopfloor run` on the lakehouse (DuckLake on S3) vs the DuckDB file.

One fleet (10 machines, full fidelity: one reading per second, ~1 MB per file) is loaded by
a first, untimed run on each target; then, HOURS times, the machines write one more hour
and the hourly run is timed on both targets in child processes, one after the other on
the same files. The S3 API is moto's server on 127.0.0.1 (in this process), so the
figures carry no network latency: a real object store adds its round trips.

Then IDLE_RUNS runs on each target with no new file (the hourly run when the machines
have sent nothing since).

Reported: the median hourly run per target and their ratio (target <= 2x), the same for the
runs with no new file (target <= 2x), and the lake's bytes per machine-day against the
machine files' text (target: >= 5x smaller).

    uv run python bench/bench_lakehouse.py                  # 1 day of history, 3 hours
    uv run python bench/bench_lakehouse.py --history-hours 48 --hours 5
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pyarrow as pa
from moto.server import ThreadedMotoServer

from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.simulate import SimulationConfig, simulate

LAKE = "s3://bench/lake"
_CHILD = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    + """
import json, sys, time
from rss import peak_rss_mb
from shopfloor.pipeline.run import run_pipeline
from shopfloor.core.settings import resolve

t0 = time.perf_counter()
s = run_pipeline(resolve({"data_dir": sys.argv[1], "landing": sys.argv[2],
                          "lakehouse": sys.argv[3]}))
print(json.dumps({"seconds": time.perf_counter() - t0, "status": s.status, "error": s.error,
                  "stages": s.stages_s, "files_new": s.files_new, "peak_rss_mb": peak_rss_mb()}))
"""
)


def fleet(root: Path, hours: int) -> None:
    simulate(
        SimulationConfig(
            out=str(root),
            fleet=FleetConfig(machines=10, hours=hours, seed=42, wear_scale=1.5),
            sample_interval_s=1,
            defects=DefectRates.profile("realistic"),
            skip_existing=True,
        )
    )


def child_run(data: Path, landing: Path, lakehouse: str) -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(data), str(landing), lakehouse],
        capture_output=True,
        text=True,
        env={**os.environ, "SHOPFLOOR_PSEUDONYM_KEY": "bench"},
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "succeeded":
        raise SystemExit(f"run failed on {lakehouse or 'the DuckDB file'}: {result['error']}")
    result["wall_s"] = time.perf_counter() - started
    return result


def lake_bytes(data: Path, landing: Path) -> dict[str, float]:
    """The lake's Parquet bytes for the raw readings and for everything, per machine-day,
    next to the machine files' text bytes per machine-day."""
    from shopfloor.core.settings import resolve
    from shopfloor.core.warehouse import LAKE as NAME
    from shopfloor.core.warehouse import connect

    with connect(resolve({"data_dir": str(data), "lakehouse": LAKE})) as con:
        files = dict(
            con.sql(
                f"select table_name, sum(file_size_bytes) from ducklake_table_info('{NAME}')"
                " group by 1"
            ).fetchall()
        )
        machine_days = con.sql(
            "select count(distinct (machine_id, hour_at)) / 24 from marts.fct_machine_hours"
        ).fetchone()[0]
    files_text = sorted((landing / "telemetry").rglob("*.txt"))
    text = sum(p.stat().st_size for p in files_text)
    # a reference: the same text through a general-purpose compressor at its highest level
    codec = pa.Codec("zstd", compression_level=19)
    zstd = sum(len(codec.compress(p.read_bytes())) for p in files_text)
    return {
        "machine_days": machine_days,
        "text_per_machine_day": text / machine_days,
        "zstd19_text_per_machine_day": zstd / machine_days,
        "raw_readings_per_machine_day": files["telemetry_readings"] / machine_days,
        "lake_per_machine_day": sum(v or 0 for v in files.values()) / machine_days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-hours", type=int, default=24)
    parser.add_argument("--hours", type=int, default=3, help="timed hourly runs per target")
    parser.add_argument("--idle-runs", type=int, default=3, help="timed runs with no new file")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
    )
    boto3.client("s3").create_bucket(Bucket="bench")
    targets = {"embedded DuckDB file": "", "lakehouse (DuckLake on S3)": LAKE}
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    idle: dict[str, list[dict]] = {name: [] for name in targets}
    try:
        with tempfile.TemporaryDirectory(prefix="bench_lake_") as tmp:
            root = Path(tmp)
            print(f"simulating {args.history_hours} h of 10 machines at 1 reading/s ...")
            fleet(root, args.history_hours)
            for name, lake in targets.items():
                print(f"[{name}] loading the history ...", flush=True)
                child_run(root / ("lake" if lake else "embedded"), root / "landing", lake)
            for hour in range(1, args.hours + 1):
                fleet(root, args.history_hours + hour)  # one more hour of files
                for name, lake in targets.items():
                    data = root / ("lake" if lake else "embedded")
                    result = child_run(data, root / "landing", lake)
                    runs[name].append(result)
                    print(
                        f"[{name}] hour {hour}: {result['wall_s']:.1f} s, "
                        f"{result['files_new']} new files, stages {result['stages']}",
                        flush=True,
                    )
            for k in range(1, args.idle_runs + 1):
                for name, lake in targets.items():
                    data = root / ("lake" if lake else "embedded")
                    result = child_run(data, root / "landing", lake)
                    assert result["files_new"] == 0, result
                    idle[name].append(result)
                    print(
                        f"[{name}] no new file, run {k}: {result['wall_s']:.1f} s, "
                        f"stages {result['stages']}",
                        flush=True,
                    )
            sizes = lake_bytes(root / "lake", root / "landing")
    finally:
        server.stop()
    file_name, lake_name = targets
    for title, measured in (("hourly run", runs), ("run with no new file", idle)):
        if not all(measured.values()):
            continue
        median = {name: statistics.median(r["wall_s"] for r in rs) for name, rs in measured.items()}
        print(f"\n| target | {title} s (median) | ingest | build | score | risk | publish |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, rs in measured.items():
            stages = {
                k: statistics.median(r["stages"].get(k, 0) for r in rs)
                for k in ("ingest", "build", "score", "risk", "publish")
            }
            print(
                f"| {name} | {median[name]:.1f} | "
                + " | ".join(f"{v:.1f}" for v in stages.values())
            )
        print(f"ratio lakehouse / DuckDB file: {median[lake_name] / median[file_name]:.2f}x")
    text, raw = sizes["text_per_machine_day"], sizes["raw_readings_per_machine_day"]
    print(
        f"\nper machine-day ({sizes['machine_days']:.1f} machine-days): machine files "
        f"{text / 2**20:.1f} MB of text; lake raw readings {raw / 2**20:.2f} MB "
        f"({text / raw:.1f}x smaller); the whole lake {sizes['lake_per_machine_day'] / 2**20:.2f}"
        f" MB ({text / sizes['lake_per_machine_day']:.1f}x smaller)"
    )
    zstd = sizes["zstd19_text_per_machine_day"]
    print(
        f"reference: the machine files through zstd level 19, {zstd / 2**20:.2f} MB "
        f"({text / zstd:.1f}x smaller)"
    )
    print(
        "targets: lakehouse <= 2x the DuckDB file (hourly and with no new file); "
        "the lake >= 5x smaller than the text"
    )


if __name__ == "__main__":
    main()
