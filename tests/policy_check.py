"""How much of a trained model's ranking its alert threshold keeps, on the test period.

Shared by the tests that train on simulated fleets: the F1 at the threshold a policy
picks on the validation period, against the best F1 any threshold gives on the test
period (an oracle no policy can beat).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from ml import evaluate
from ml.features import load_features, matrix
from ml.model import failures_from, load
from ml.policy import AlertPolicy, PeriodOutcomes, threshold_grid

Chooser = Callable[[PeriodOutcomes, np.ndarray], float]


def _judged(
    warehouse: Path, models: Path, version: str, periods: tuple[str, ...]
) -> dict[str, tuple[PeriodOutcomes, np.ndarray]]:
    """Per period: its outcomes, ready to be judged at any threshold, and the model's risk."""
    model, meta = load(models, version)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        labelled = load_features(con).labelled
        failures = failures_from(con)
    split = evaluate.Periods.from_dict(meta["periods"])
    judged: dict[str, tuple[PeriodOutcomes, np.ndarray]] = {}
    for name in periods:
        part = split.part(labelled, name)
        risk = model.predict_proba(matrix(part, meta["features"]))[:, 1]
        judge = evaluate.outcomes(
            part,
            failures,
            horizon_hours=meta["horizon_hours"],
            policy=AlertPolicy.from_metadata(meta),
        )
        judged[name] = (judge, risk)
    return judged


def f1_kept(warehouse: Path, models: Path, version: str, choose: Chooser) -> tuple[float, float]:
    """(F1 at the threshold `choose` picks on validation / best test F1, that threshold)."""
    judged = _judged(warehouse, models, version, ("validation", "test"))
    threshold = choose(*judged["validation"])
    test, risk = judged["test"]
    best = test.metrics(risk, evaluate.best_f1_threshold(test.y, test.sorted_score(risk)))
    return test.metrics(risk, threshold)["f1"] / best["f1"], threshold


def caught_within_visits(warehouse: Path, models: Path, version: str, visits: int) -> int:
    """The most test-period failures the model catches, at any threshold whose alerts ask
    for no more maintenance visits than `visits` (a baseline's, for a like-for-like
    comparison: a rule that alerts more often may catch more at more cost)."""
    test, risk = _judged(warehouse, models, version, ("test",))["test"]
    grid, _ = threshold_grid(risk)
    caught = [test.metrics(risk, float(t)) for t in grid]
    return max((m["failures_caught"] for m in caught if m["visits"] <= visits), default=0)


def only_the_surest_hours(period: PeriodOutcomes, score: np.ndarray) -> float:
    """A mutated policy that waits for certainty: it alerts on the 1 % of validation hours
    the model is surest of, whatever the cost of the failures it lets through."""
    return float(np.quantile(score[np.isfinite(score)], 0.99))


def metrics_listed(metadata: dict[str, Any]) -> bool:
    """The model's metrics hold the chosen and the best achievable numbers side by side."""
    model = metadata["metrics"]["model"]
    return all(model.get(k) is not None for k in ("f1", "best_f1", "cost", "best_cost"))
