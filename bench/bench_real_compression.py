"""The lake's bytes on real published values: raw readings against `zstd -19` of the text.

Two real datasets (tests/data/real/README.md), each written as the plant's hour files
(tests/landing.py), ingested into a lakehouse in a local folder (DuckLake, the options
shopfloor sets); the Parquet files of `raw.telemetry_readings` are measured against the
hour files' text compressed by `zstd -19` (the reference, measured in the same run):
  - Petrobras 3W, one oil well (CC BY 4.0): five hours at one reading a second, seven
    channels with seven significant digits: the plant's own shape;
  - NAB's machine temperature (MIT): 34 days, one reading every 5 minutes (12 readings
    a file), values with up to 17 significant digits.
Per column, the compressed bytes Parquet reports, to show where the bytes go.

    uv run python bench/bench_real_compression.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.landing import HandMachine, write_registry, write_series, write_table  # noqa: E402
from tests.test_real_data import (  # noqa: E402
    MACHINE,
    SENSOR,
    WELL,
    WELL_SENSORS,
    nab_rows,
    well_rows,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_real_compression_"))
    shutil.rmtree(root, ignore_errors=True)

    def well(landing: Path) -> tuple[HandMachine, list[str]]:
        return WELL, write_table(landing, WELL, list(WELL_SENSORS.values()), well_rows())

    def nab(landing: Path) -> tuple[HandMachine, list[str]]:
        return MACHINE, write_series(landing, MACHINE, SENSOR, nab_rows())

    for name, write in (("3W oil well, 1 s, 7 channels", well), ("NAB machine temperature", nab)):
        measure(root / write.__name__, name, write)


def measure(root: Path, name: str, write: Any) -> None:
    landing = root / "landing"
    machine, files = write(landing)
    write_registry(landing, [machine], sensor_range=1e12)
    text = root / "telemetry.txt"
    with text.open("wb") as out:
        for rel in sorted(files):
            out.write((landing / rel).read_bytes())
    subprocess.run(["zstd", "-19", "-q", "-f", str(text), "-o", str(text) + ".zst"], check=True)
    reference = os.path.getsize(str(text) + ".zst")

    env = {
        **os.environ,
        "SHOPFLOOR_PSEUDONYM_KEY": "bench",
        "SHOPFLOOR_MAX_PAST_DAYS": str(365 * 20),  # the series are from 2014 and 2017
    }
    subprocess.run(
        [
            "shopfloor", "ingest", "--landing", str(landing),
            "--data-dir", str(root / "data"), "--lakehouse", str(root / "lake"),
        ],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    parquet = sorted((root / "lake" / "raw" / "telemetry_readings").rglob("*.parquet"))
    lake = sum(p.stat().st_size for p in parquet)
    columns: Counter[str] = Counter()
    rows = 0
    for path in parquet:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                columns[column.path_in_schema] += column.total_compressed_size

    print(f"== {name} as {len(files):,} hour files, {rows:,} readings")
    print(f"hour files, text          {text.stat().st_size:>10,} bytes")
    print(f"zstd -19 of the text      {reference:>10,} bytes  (reference)")
    print(f"lake raw readings         {lake:>10,} bytes  ({lake / reference:.2f}x the reference)")
    print("| column | compressed bytes | bytes per reading |")
    print("|---|---:|---:|")
    for name, size in columns.most_common():
        print(f"| {name} | {size:,} | {size / rows:.2f} |")


if __name__ == "__main__":
    main()
