"""Honest evaluation for a time series of machine-hours: time splits, alert metrics, baselines.

Every method (the model and both baselines) is turned into the same thing -- an alert
per machine-hour -- and judged the same way:

* hour level: precision, recall and F1 of alerts against the label, PR-AUC and ROC-AUC
  of the score behind them;
* event level: for each failure, the first alert in the label horizon before it gives
  the lead time (an alert for hour h is raised when h ends, at h + 1 hour); a failure is
  *caught* when its lead time is at least ``min_lead_hours`` (time to plan a visit);
* alerts per machine per week (alert episodes: an alert hour after a quiet hour);
* a cost view: a caught failure costs a preventive visit, a missed one an unplanned
  failure, an alert episode with no failure within the horizon a wasted visit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from ml.features import LABEL

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class Costs:
    unplanned_failure: float = 12000.0  # repair, scrap and lost production of a breakdown
    preventive_visit: float = 1500.0  # a planned technician visit and short stop


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


def best_cost_threshold(
    frame: pd.DataFrame,
    score: np.ndarray,
    failures: pd.DataFrame,
    *,
    horizon_hours: int,
    min_lead_hours: float,
    costs: Costs,
) -> float:
    """The threshold with the lowest cost on this period (ties: the higher threshold)."""
    score = np.asarray(score, dtype="float64")
    finite = score[np.isfinite(score)]
    candidates = np.unique(np.quantile(finite, np.linspace(0.5, 0.995, 60)))
    best, best_cost = float(candidates[-1]), np.inf
    for threshold in candidates[::-1]:
        cost = alert_metrics(
            frame,
            score,
            float(threshold),
            failures,
            horizon_hours=horizon_hours,
            min_lead_hours=min_lead_hours,
            costs=costs,
        )["cost"]
        if float(cost) < best_cost:  # type: ignore[arg-type]
            best, best_cost = float(threshold), float(cost)  # type: ignore[arg-type]
    return best


def alert_metrics(
    frame: pd.DataFrame,
    score: np.ndarray,
    threshold: float,
    failures: pd.DataFrame,
    *,
    horizon_hours: int,
    min_lead_hours: float,
    costs: Costs,
) -> dict[str, object]:
    """All metrics of one method on one period. frame: machine_id, hour_at, label (labelled)."""
    y = frame[LABEL].astype(bool).to_numpy()
    score = np.nan_to_num(np.asarray(score, dtype="float64"), nan=-np.inf)
    alert = score >= threshold
    finite_score = np.where(np.isfinite(score), score, np.nanmin(score[np.isfinite(score)]) - 1)
    tp = int((alert & y).sum())
    fp = int((alert & ~y).sum())
    fn = int((~alert & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0

    hours = (
        frame[["machine_id", "hour_at"]].assign(alert=alert).sort_values(["machine_id", "hour_at"])
    )
    # one visit per episode: an alert starts a new episode only when the machine had no
    # alert in the horizon before it (a re-alert while a visit is planned is the same one)
    alerted_hours = hours[hours["alert"]]
    since_last = alerted_hours.groupby("machine_id")["hour_at"].diff()
    episodes = alerted_hours[since_last.isna() | (since_last > pd.Timedelta(hours=horizon_hours))]
    machine_weeks = len(hours) / (24 * 7)

    lead_times, caught = _lead_times(hours, failures, frame, horizon_hours, min_lead_hours)
    # an episode is wasted when no failure starts within the horizon after it starts
    wasted = 0
    for machine_id, start in episodes[["machine_id", "hour_at"]].itertuples(index=False):
        due = failures[
            (failures["machine_id"] == machine_id)
            & (failures["failure_at"] >= start + HOUR)
            & (failures["failure_at"] < start + HOUR + pd.Timedelta(hours=horizon_hours))
        ]
        wasted += due.empty
    n_failures = len(lead_times)
    n_caught = int(sum(caught))
    cost = (
        n_caught * costs.preventive_visit
        + (n_failures - n_caught) * costs.unplanned_failure
        + wasted * costs.preventive_visit
    )
    return {
        "pr_auc": float(average_precision_score(y, finite_score)) if y.any() else None,
        "roc_auc": float(roc_auc_score(y, finite_score)) if 0 < y.sum() < len(y) else None,
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "alert_hours": int(alert.sum()),
        "alert_episodes": len(episodes),
        "alerts_per_machine_week": len(episodes) / machine_weeks if machine_weeks else 0.0,
        "failures": n_failures,
        "failures_alerted": int(sum(lt is not None for lt in lead_times)),
        "failures_caught": n_caught,
        "share_caught": n_caught / n_failures if n_failures else None,
        "lead_times_hours": [lt for lt in lead_times if lt is not None],
        "median_lead_time_hours": (
            float(np.median([lt for lt in lead_times if lt is not None]))
            if any(lt is not None for lt in lead_times)
            else None
        ),
        "wasted_visits": int(wasted),
        "cost": float(cost),
        "cost_without_alerts": float(n_failures * costs.unplanned_failure),
    }


def _lead_times(
    hours: pd.DataFrame,
    failures: pd.DataFrame,
    frame: pd.DataFrame,
    horizon_hours: int,
    min_lead_hours: float,
) -> tuple[list[float | None], list[bool]]:
    """Per failure whose whole horizon lies in the period: hours from the first alert."""
    start, end = frame["hour_at"].min(), frame["hour_at"].max() + HOUR
    horizon = pd.Timedelta(hours=horizon_hours)
    in_period = failures[
        (failures["failure_at"] >= start + horizon)
        & (failures["failure_at"] <= end)
        & failures["machine_id"].isin(frame["machine_id"].unique())
    ]
    alerted = hours[hours["alert"]]
    lead_times: list[float | None] = []
    caught: list[bool] = []
    for machine_id, failure_at in in_period[["machine_id", "failure_at"]].itertuples(index=False):
        window = alerted[
            (alerted["machine_id"] == machine_id)
            & (alerted["hour_at"] + HOUR > failure_at - horizon)
            & (alerted["hour_at"] + HOUR <= failure_at)
        ]
        if window.empty:
            lead_times.append(None)
            caught.append(False)
            continue
        lead = (failure_at - (window["hour_at"].min() + HOUR)) / HOUR
        lead_times.append(float(lead))
        caught.append(lead >= min_lead_hours)
    return lead_times, caught


def fixed_interval_baseline(train: pd.DataFrame) -> dict[str, object]:
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


def single_sensor_baseline(train: pd.DataFrame, features: list[str]) -> dict[str, object]:
    """The best single-sensor threshold rule on the training period.

    Every sensor statistic (``<sensor>__<statistic>`` columns) in both directions; the
    rule with the best training F1 wins, threshold included.
    """
    y = train[LABEL].astype(bool).to_numpy()
    best: dict[str, object] = {"f1": -1.0}
    for feature in (f for f in features if "__" in f):
        values = train[feature].astype("float64").to_numpy()
        if np.isfinite(values).sum() < 20 or np.nanstd(values) == 0:
            continue
        for sign in (1.0, -1.0):
            score = np.nan_to_num(sign * values, nan=-np.inf)
            threshold = best_f1_threshold(y, score)
            f1 = _f1(y, score >= threshold)
            if f1 > float(best["f1"]):  # type: ignore[arg-type]
                best = {"feature": feature, "sign": sign, "threshold": threshold, "f1": f1}
    best.pop("f1")
    return {"name": "single_sensor", **best}


def _f1(y: np.ndarray, alert: np.ndarray) -> float:
    tp = float((alert & y).sum())
    return 2 * tp / (alert.sum() + y.sum()) if alert.sum() + y.sum() else 0.0


def baseline_score(rule: dict[str, object], frame: pd.DataFrame) -> np.ndarray:
    if rule["feature"] == "hours_since_maintenance":
        return _hours_since_maintenance(frame)
    values = frame[str(rule["feature"])].astype("float64").to_numpy()
    return np.nan_to_num(float(rule["sign"]) * values, nan=-np.inf)  # type: ignore[arg-type]
