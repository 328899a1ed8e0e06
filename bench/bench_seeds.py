"""The maintenance model on several simulated seeds: what each list keeps, and the margin.

For each seed, a fleet of the alert-policy test's shape (8 machines, 45 days, one reading
every 10 minutes, wear 2.0) is simulated, ingested and built, and the model trained once
(`ml.model.train`, no machine-grouped folds). Printed per seed, on the test period:

* the act-now list (the alert policy's cut) and the watch list (best F1 on validation):
  F1 against the best F1 any cut of the same risk gives there (target: >= 0.9x);
* PR-AUC of the model against the fixed-interval baseline's (hours since maintenance).

Not a timing: a quality measurement on the simulator's fleets, to compare model changes
(docs/decisions/0009-maintenance-answer.md).

    uv run python bench/bench_seeds.py                 # seeds 11 23 37
    uv run python bench/bench_seeds.py --seeds 5 6 7 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.cli import build_models  # noqa: E402
from tests.fleets import FleetShape  # noqa: E402


def one_seed(root: Path, seed: int) -> dict:
    from ingestion.pipeline import IngestConfig, run_ingest
    from ml.model import TrainConfig, train

    FleetShape(machines=8, hours=45 * 24, seed=seed, wear_scale=2.0).extend(root)
    data = root / "data"
    run = run_ingest(IngestConfig(landing=str(root / "landing"), data_dir=str(data), workers=2))
    assert run.status == "succeeded", run.error
    build_models(data)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return dict(train(con, data / "models", TrainConfig(grouped_folds=0)).metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 23, 37])
    args = parser.parse_args()
    os.environ.setdefault("SHOPFLOOR_PSEUDONYM_KEY", "bench")
    print(
        "| seed | failures (test) | act-now F1 / best | watch-list F1 / best "
        "| watch cut | PR-AUC model | PR-AUC fixed interval | features |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix=f"bench_seed{seed}_") as tmp:
            meta = one_seed(Path(tmp), seed)
        m, fi = meta["metrics"]["model"], meta["metrics"]["fixed_interval"]
        w = meta["metrics"].get("watch_list")  # none in a model without the watch list
        watch = (
            f"{w['f1']:.2f} / {w['best_f1']:.2f} ({w['f1'] / w['best_f1']:.2f}x) "
            f"| {meta['watch_threshold']:.3f}"
            if w
            else "n/a | n/a"
        )
        print(
            f"| {seed} | {m['failures']} | {m['f1']:.2f} / {m['best_f1']:.2f} "
            f"({m['f1'] / m['best_f1']:.2f}x) | {watch} "
            f"| {m['pr_auc']:.3f} | {fi['pr_auc']:.3f} | {len(meta['features'])} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
