"""Benchmark `shopfloor backup` and `restore` on a plant with DAYS of history.

The fleet (10 machines) is simulated and loaded with one `shopfloor run` (which trains
the first model); then the data folder is backed up to a local folder and restored
into an empty one, each timed. Reference measured in the same run: copying the same
files with `cp -r` (what a hand-made backup costs). Reported: seconds, MB, how long
runs are held back (the local copy under the run lock), and the ratios to the copy;
and, for comparison, the first run that built the warehouse from the landing area.

    uv run python bench/bench_backup.py --days 30
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_run import child_run, fleet

from shopfloor.core.settings import resolve
from shopfloor.operations.backup import backed_up, restore, take


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sample-interval", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_backup_") as tmp:
        root = Path(tmp)
        data = root / "data"
        print(f"simulating and loading {args.days} days of 10 machines ...", flush=True)
        fleet(root, args.days * 24, args.sample_interval)
        rebuild = child_run(data, root / "landing", key=None)  # the key file is backed up

        copy_started = time.perf_counter()
        (root / "copy").mkdir()
        for path in backed_up(resolve({"data_dir": str(data)})).values():
            if path.exists():
                subprocess.run(["cp", "-r", str(path), str(root / "copy")], check=True)
        copy_s = time.perf_counter() - copy_started

        backed = take(resolve({"data_dir": str(data)}), str(root / "backups"))
        restored = restore(resolve({"data_dir": str(root / "restored")}), str(root / "backups"))
        landing_mb = sum(p.stat().st_size for p in (root / "landing").rglob("*.txt")) / 1e6
        shutil.rmtree(root / "copy")

    mb = backed.bytes / 1e6
    print(
        f"\n| {args.days} days, 10 machines | seconds | ratio to cp -r |\n|---|---:|---:|\n"
        f"| reference: cp -r of the same files ({mb:,.1f} MB) | {copy_s:.2f} | 1.00 |\n"
        f"| shopfloor backup ({backed.files} files, checksums, manifest) | {backed.seconds:.2f} "
        f"| {backed.seconds / copy_s:.2f} |\n"
        f"| of it, runs held back (copy under the run lock) | {backed.locked_seconds:.2f} "
        f"| {backed.locked_seconds / copy_s:.2f} |\n"
        f"| shopfloor restore (checksums checked) | {restored.seconds:.2f} "
        f"| {restored.seconds / copy_s:.2f} |\n"
        f"| for comparison: the warehouse rebuilt from the landing area alone (a first "
        f"`shopfloor run`, training included) | {rebuild['wall_s']:.1f} | "
        f"{rebuild['wall_s'] / copy_s:.0f} |\n"
        f"\nbackup {mb:,.1f} MB for {landing_mb:,.0f} MB of machine files in the landing area"
    )


if __name__ == "__main__":
    main()
