"""Honest evaluation for a time series of machine-hours: time splits, alert metrics, baselines.

Every method (the model and both baselines) is turned into the same thing -- an alert
per machine-hour -- and judged the same way (`ml.policy`):

* hour level: precision, recall and F1 of alerts against the label, PR-AUC and ROC-AUC
  of the score behind them;
* event level: for each failure, the first alert in the label horizon before it gives
  the lead time (an alert for hour h is raised when h ends, at h + 1 hour); a failure is
  *caught* when its lead time reaches the policy's planning lead;
* visits the alerts ask for, per machine per week, and those that found nothing due;
* the policy's cost, and what the best threshold on the same period would have given
  (F1 and cost): the distance between the two is what the threshold choice wastes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from ml.features import LABEL
from ml.policy import AlertPolicy, PeriodOutcomes, best_cost

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class Periods:
    """Train < validation < test, by time. Thresholds are chosen on validation only."""

    train_start: pd.Timestamp
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def part(self, frame: pd.DataFrame, name: str) -> pd.DataFrame:
        hour = frame["hour_at"]
        if name == "train":
            mask = hour < self.validation_start
        elif name == "validation":
            mask = (hour >= self.validation_start) & (hour < self.test_start)
        else:
            mask = hour >= self.test_start
        return frame[mask]

    def to_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Periods:
        return cls(**{k: pd.Timestamp(v) for k, v in data.items()})


MIN_LABELLED_HOURS = 10


def split_periods(labelled: pd.DataFrame, validation: float = 0.2, test: float = 0.2) -> Periods:
    """Cut the labelled hours in time: the first 60 % train, then 20 % validation, 20 % test."""
    hours = np.sort(labelled["hour_at"].unique())
    if len(hours) < MIN_LABELLED_HOURS:
        raise ValueError(f"only {len(hours)} labelled hours: too little history to train")
    n = len(hours)
    return Periods(
        train_start=pd.Timestamp(hours[0]),
        validation_start=pd.Timestamp(hours[int(n * (1 - validation - test))]),
        test_start=pd.Timestamp(hours[int(n * (1 - test))]),
        test_end=pd.Timestamp(hours[-1]) + HOUR,
    )


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The score threshold with the best F1 (alerts are score >= threshold).

    Vectorised over every distinct score: sort once, cumulate true and false positives.
    """
    y = np.asarray(y, dtype=bool)
    score = np.asarray(score, dtype="float64")
    finite = np.isfinite(score)
    if not finite.any() or not y.any():
        return float("inf")
    order = np.argsort(-score[finite], kind="stable")
    s, t = score[finite][order], y[finite][order]
    tp = np.cumsum(t)
    fp = np.cumsum(~t)
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each tie: alerts are score >= s
    f1 = 2 * tp[last] / (tp[last] + fp[last] + y.sum())
    return float(s[last][int(np.argmax(f1))])


WATCH_LIST_DEFAULT = 0.5  # the watch list's cut when validation cannot choose one


def watch_list_threshold(y: np.ndarray, risk: np.ndarray) -> float:
    """The watch list's cut on the calibrated risk: the best F1 of "fails within the
    horizon" on validation; 0.5 (more likely than not) when validation has no positive
    hour to choose by."""
    if not np.asarray(y, dtype=bool).any():
        return WATCH_LIST_DEFAULT
    return best_f1_threshold(y, risk)


def watch_threshold_of(metadata: Mapping[str, Any]) -> float:
    """A model version's watch-list cut (a version saved before the watch list: 0.5)."""
    return float(metadata.get("watch_threshold", WATCH_LIST_DEFAULT))


def outcomes(
    frame: pd.DataFrame, failures: pd.DataFrame, *, horizon_hours: int, policy: AlertPolicy
) -> PeriodOutcomes:
    """One period (labelled machine-hours) ready to be judged at any threshold."""
    return PeriodOutcomes(frame, failures, horizon_hours=horizon_hours, policy=policy, label=LABEL)


def alert_metrics(period: PeriodOutcomes, score: np.ndarray, threshold: float) -> dict[str, Any]:
    """All metrics of one method on one period at its threshold, and the best achievable."""
    y = period.y
    sorted_score = period.sorted_score(score)
    finite = np.isfinite(sorted_score)
    ranked = np.where(finite, sorted_score, sorted_score[finite].min() - 1 if finite.any() else 0)
    both_classes = 0 < y.sum() < len(y)
    lowest_cost, at = best_cost(period, score)
    best_f1 = best_f1_threshold(y, sorted_score)
    return {
        "pr_auc": float(average_precision_score(y, ranked)) if y.any() else None,
        "roc_auc": float(roc_auc_score(y, ranked)) if both_classes else None,
        **period.metrics(score, threshold),
        "best_f1": float(period.metrics(score, best_f1)["f1"]) if y.any() else None,
        "best_f1_threshold": best_f1,
        "best_cost": lowest_cost,
        "best_cost_threshold": at,
    }


class BaselineRule(TypedDict):
    """A baseline's alert rule: alert when sign x feature >= threshold."""

    name: str
    feature: str
    sign: float
    threshold: float


def fixed_interval_baseline(train: pd.DataFrame) -> BaselineRule:
    """Preventive maintenance every T hours: alert once hours_since_maintenance >= T.

    T is tuned on the training period (best F1). Machines never maintained count from
    their first hour.
    """
    score = _hours_since_maintenance(train)
    threshold = best_f1_threshold(train[LABEL].astype(bool).to_numpy(), score)
    return {
        "name": "fixed_interval",
        "feature": "hours_since_maintenance",
        "sign": 1.0,
        "threshold": threshold,
    }


def _hours_since_maintenance(frame: pd.DataFrame) -> np.ndarray:
    since = frame["hours_since_maintenance"].astype("float64")
    first = frame.groupby("machine_id")["hour_at"].transform("min")
    return since.fillna((frame["hour_at"] - first) / HOUR).to_numpy()


def single_sensor_baseline(train: pd.DataFrame, features: list[str]) -> BaselineRule:
    """The best single-sensor threshold rule on the training period.

    Every sensor statistic (``<sensor>__<statistic>`` columns) in both directions; the
    rule with the best training F1 wins, threshold included.
    """
    y = train[LABEL].astype(bool).to_numpy()
    best = BaselineRule(name="single_sensor", feature="", sign=1.0, threshold=np.inf)
    best_f1 = -1.0
    for feature in (f for f in features if "__" in f):
        values = train[feature].astype("float64").to_numpy()
        if np.isfinite(values).sum() < 20 or np.nanstd(values) == 0:
            continue
        for sign in (1.0, -1.0):
            score = np.nan_to_num(sign * values, nan=-np.inf)
            threshold = best_f1_threshold(y, score)
            f1 = _f1(y, score >= threshold)
            if f1 > best_f1:
                best_f1 = f1
                best = BaselineRule(
                    name="single_sensor", feature=feature, sign=sign, threshold=threshold
                )
    return best


def _f1(y: np.ndarray, alert: np.ndarray) -> float:
    tp = float((alert & y).sum())
    return 2 * tp / (alert.sum() + y.sum()) if alert.sum() + y.sum() else 0.0


def baseline_score(rule: BaselineRule, frame: pd.DataFrame) -> np.ndarray:
    if rule["feature"] == "hours_since_maintenance":
        return _hours_since_maintenance(frame)
    values = frame[rule["feature"]].astype("float64").to_numpy()
    return np.nan_to_num(rule["sign"] * values, nan=-np.inf)


def label_auc_distance(frame: pd.DataFrame, feature: str, min_known: int = 50) -> float | None:
    """How well the feature alone ranks the frame's labels: |ROC-AUC - 0.5| over the hours
    where it has a value; None with fewer than `min_known` such hours or one class only.

    The ROC-AUC is the Mann-Whitney statistic (ties count one half), as roc_auc_score
    computes it, without its input checks: screening asks it of hundreds of features."""
    y = frame[LABEL].astype(bool).to_numpy()
    values = frame[feature].astype("float64").to_numpy()
    known = np.isfinite(values)
    positives = int(y[known].sum())
    negatives = int(known.sum()) - positives
    if known.sum() < min_known or not positives or not negatives:
        return None
    ranks = rankdata(values[known])  # ties get their average rank
    auc = (ranks[y[known]].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return float(abs(auc - 0.5))


def health_ranking(
    con: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None
) -> dict[str, float | int] | None:
    """How the health score (marts.fct_machine_health, no model and no label used) ranks
    "fails within the horizon" against hours since maintenance alone, on the labelled hours
    with a health score in [start, end) (everything when not given); None when there is no
    health score or the hours hold one class only."""
    try:
        frame = con.execute(
            f"""
            select health.health_score, health.hours_in_service, features.{LABEL}
            from marts.fct_machine_health as health
            inner join marts.fct_machine_hour_features as features using (machine_id, hour_at)
            where health.health_score is not null and features.{LABEL} is not null
                and ($1::timestamptz is null or health.hour_at >= $1)
                and ($2::timestamptz is null or health.hour_at < $2)
            """,
            [start, end],
        ).df()
    except duckdb.CatalogException:  # a warehouse built before the health score
        return None
    y = frame[LABEL].astype(bool).to_numpy()
    if y.all() or not y.any():
        return None
    health = frame["health_score"].to_numpy(dtype="float64")
    age = frame["hours_in_service"].to_numpy(dtype="float64")
    return {
        "hours": len(frame),
        "failure_hours": int(y.sum()),
        "health_roc_auc": float(roc_auc_score(y, health)),
        "age_roc_auc": float(roc_auc_score(y, age)),
        "health_pr_auc": float(average_precision_score(y, health)),
        "age_pr_auc": float(average_precision_score(y, age)),
    }
