"""Benchmark training: the whole `shopfloor train` work on the demo fleet, against one fit.

The demo's fleet (10 machines, 60 days, one reading per 5 minutes, seed 42, wear 1.5)
is simulated, ingested and built once (untimed; or --warehouse uses a built one). Then,
--repeats times (default 3), on a fresh copy of the warehouse:

* reference: one plain `HistGradientBoostingClassifier().fit` (scikit-learn defaults)
  on the training period's matrix, the same rows and features the model trains on;
* train: `ml.model.train` -- fit, calibration, the alert threshold, both baselines,
  the machine-grouped evaluation -- then scoring every hour and writing the report.

Medians and their ratio are printed; the stages of one training are printed too.

    uv run python bench/bench_train.py
    uv run python bench/bench_train.py --warehouse /tmp/demo/warehouse.duckdb
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def build_demo_fleet(root: Path) -> Path:
    from ingestion.pipeline import IngestConfig, run_ingest
    from simulator.simulate import SimulationConfig, simulate

    simulate(SimulationConfig.demo(str(root), workers=2))
    data = root / "data"
    run_ingest(IngestConfig(landing=str(root / "landing"), data_dir=str(data), workers=2))
    subprocess.run(["shopfloor", "build", "--data-dir", str(data)], check=True)
    return data / "warehouse.duckdb"


def reference_fit(warehouse: Path) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ml import evaluate
    from ml.features import CATEGORICAL, labels, load_features

    with duckdb.connect(str(warehouse), read_only=True) as con:
        data = load_features(con)
    labelled = data.labelled
    train = evaluate.split_periods(labelled).part(labelled, "train")
    numeric = [f for f in data.features if f not in CATEGORICAL and train[f].notna().any()]
    x = train[numeric].to_numpy(dtype="float64")
    y = labels(train)
    t0 = time.perf_counter()
    HistGradientBoostingClassifier().fit(x, y)
    return time.perf_counter() - t0


def full_training(warehouse: Path, work: Path) -> tuple[float, list[tuple[float, str]]]:
    from ml.model import load, train
    from ml.report import write_report
    from ml.score import score

    copy = work / "warehouse.duckdb"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy2(warehouse, copy)
    steps: list[tuple[float, str]] = []
    t0 = time.perf_counter()

    def step(message: str) -> None:
        steps.append((time.perf_counter() - t0, message))

    with duckdb.connect(str(copy)) as con:
        try:
            train(con, work / "models", on_step=step)  # type: ignore[call-arg]
        except TypeError:  # a version of train() without progress steps
            train(con, work / "models")
        step("scoring every machine-hour")
        model, meta = load(work / "models")
        score(con, model, meta)
        step("writing the report")
        write_report(con, meta, work / "report")
    return time.perf_counter() - t0, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, help="a built demo warehouse to use")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("SHOPFLOOR_PSEUDONYM_KEY", "bench")
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        warehouse = args.warehouse or build_demo_fleet(Path(tmp) / "fleet")
        refs, trains = [], []
        for i in range(args.repeats):
            refs.append(reference_fit(warehouse))
            work = Path(tmp) / f"run{i}"
            seconds, steps = full_training(warehouse, work)
            trains.append(seconds)
            shutil.rmtree(work)
            print(f"repeat {i + 1}: reference fit {refs[-1]:.1f} s, training {seconds:.1f} s")
        print("stages of the last training (seconds from its start):")
        for at, message in steps:
            print(f"  {at:6.1f}  {message}")
        ref, full = statistics.median(refs), statistics.median(trains)
        print(f"reference fit      {ref:6.1f} s  (one HistGradientBoostingClassifier.fit)")
        print(f"train+score+report {full:6.1f} s")
        print(f"ratio              {full / ref:6.1f}x the reference fit")
    sys.exit(0)


if __name__ == "__main__":
    main()
