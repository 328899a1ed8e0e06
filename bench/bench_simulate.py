"""Benchmark: simulate one full-fidelity day of 10 machines (240 files, ~240 MB).

Reference measured in the same run: writing the same bytes to disk with no
simulation (the floor any generator pays). Prints wall time, MB/s, the
ratio to the reference and the size range of the files.

    uv run python bench/bench_simulate.py [--machines 10] [--days 1]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.simulate import SimulationConfig, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        out = Path(tmp) / "sim"
        t0 = time.perf_counter()
        result = simulate(
            SimulationConfig(
                out=str(out),
                fleet=FleetConfig(machines=args.machines, hours=24 * args.days),
                sample_interval_s=1,
                defects=DefectRates.profile("none"),
            )
        )
        sim_s = time.perf_counter() - t0
        files = sorted((out / "landing/telemetry").rglob("*.txt"))
        sizes = [f.stat().st_size for f in files]
        blobs = [f.read_bytes() for f in files]
        copy = Path(tmp) / "copy"
        t0 = time.perf_counter()
        for i, blob in enumerate(blobs):
            target = copy / f"{i // 24}" / f"{i}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        ref_s = time.perf_counter() - t0
        shutil.rmtree(copy)
    mb = result.bytes / 1e6
    print(f"files            {len(files)}  ({min(sizes) / 1e6:.3f}-{max(sizes) / 1e6:.3f} MB each)")
    print(f"simulate         {sim_s:6.1f} s  {mb / sim_s:7.1f} MB/s")
    print(f"write-only ref   {ref_s:6.1f} s  {mb / ref_s:7.1f} MB/s")
    print(f"ratio            {sim_s / ref_s:6.1f}x the time of writing the bytes")


if __name__ == "__main__":
    main()
