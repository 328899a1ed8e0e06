"""The alert policy: what an alert is worth to the plant, and the threshold that follows.

An alert asks the maintenance team to plan a visit. Its worth depends on warning time:

* a failure alerted ``planning_lead_hours`` or more ahead (default one working day of
  8 hours: time to order parts and schedule people) becomes a planned visit;
* with less warning, part of the breakdown's cost is still paid: the value of an alert
  grows linearly with its lead time up to the planning lead (no warning, no value);
* alerts ask for visits: one when an alert episode starts and one more for every
  horizon it stays on; a visit with no failure due within the horizon finds nothing
  (raised too early, or wrongly) and costs what a visit costs.

The threshold is chosen on the validation period only, on a fine grid (logit steps of
0.05 for probabilities), and it is *stable*: the cost curve is smoothed over +/-0.5
logit before its minimum is taken, and on a flat minimum the middle of it wins. A
confident model has a wide flat minimum; taking its edge (the highest threshold with
the lowest cost) is what makes alerts arrive late.

`PeriodOutcomes` evaluates one period for any number of thresholds in NumPy: the rows
sorted once by machine and hour, each failure's warning window located once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ml.metadata import ModelMetadata

HOUR = pd.Timedelta(hours=1)
SMOOTHING_LOGIT = 0.5  # half-width of the window the cost curve is averaged over
GRID_STEP_LOGIT = 0.05
_MACHINE_STRIDE = 1e7  # hours; more than any machine's history (1,100 years)


@dataclass(frozen=True)
class AlertPolicy:
    planning_lead_hours: float = 8.0  # warning that lets logistics plan parts and people
    unplanned_failure: float = 12000.0  # repair, scrap and lost production of a breakdown
    preventive_visit: float = 1500.0  # a planned technician visit and short stop
    early_alert: float = 1500.0  # a visit that finds no failure due within the horizon

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: ModelMetadata) -> AlertPolicy:
        if "policy" in metadata:
            return cls(**metadata["policy"])
        # model versions saved before the policy existed: their lead and costs
        costs = metadata.get("costs", {})
        return cls(
            planning_lead_hours=float(metadata.get("min_lead_hours", 8.0)),
            unplanned_failure=float(costs.get("unplanned_failure", 12000.0)),
            preventive_visit=float(costs.get("preventive_visit", 1500.0)),
            early_alert=float(costs.get("preventive_visit", 1500.0)),
        )

    def describe(self, horizon_hours: int) -> str:
        return (
            f"An alert is worth most when it comes at least {self.planning_lead_hours:g} hours "
            "before the failure (the planning lead time: parts ordered, people scheduled); "
            f"then the failure costs a planned visit ({self.preventive_visit:,.0f}) instead of "
            f"a breakdown ({self.unplanned_failure:,.0f}). With less warning the saving "
            "shrinks in proportion to the warning time, and an alert in the last moment saves "
            "nothing. An alert asks for a visit, and for another every "
            f"{horizon_hours} hours it stays on; a visit with no failure due within "
            f"{horizon_hours} hours finds nothing and costs {self.early_alert:,.0f}. "
            "The threshold is the one with the lowest such cost on the validation period, "
            f"the cost curve averaged over +/-{SMOOTHING_LOGIT:g} logit so that a flat "
            "optimum gives its middle, not its edge."
        )


class PeriodOutcomes:
    """One period's machine-hours and failures, ready to be evaluated at any threshold.

    frame: machine_id, hour_at (hour start) and the label, one row per labelled hour.
    failures: machine_id, failure_at. A failure counts when its whole warning window
    (the horizon before it) lies in the period and its machine has hours in it.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        failures: pd.DataFrame,
        *,
        horizon_hours: int,
        policy: AlertPolicy,
        label: str,
    ) -> None:
        self.policy = policy
        self.horizon = int(horizon_hours)
        machine = pd.Categorical(frame["machine_id"].astype("string"))
        hour = _hours(frame["hour_at"])
        self.order = np.lexsort((hour, machine.codes))
        self.machine = np.asarray(machine.codes, dtype="int64")[self.order]
        self.hour = hour[self.order]
        self.y = frame[label].astype(bool).to_numpy()[self.order]
        self.machine_weeks = len(frame) / (24 * 7)
        self._failures(failures, list(machine.categories))

    def _failures(self, failures: pd.DataFrame, machines: list[str]) -> None:
        codes = {m: i for i, m in enumerate(machines)}
        failure_machine = failures["machine_id"].astype("string").map(codes)
        known = failure_machine.notna().to_numpy()
        f_machine = failure_machine[known].to_numpy(dtype="int64")
        f_at = _hours(failures["failure_at"][known])
        # machine and time in one sortable key: rows and failures of a machine are contiguous
        row_end = self.machine * _MACHINE_STRIDE + self.hour + 1.0
        f_key = np.sort(f_machine * _MACHINE_STRIDE + f_at)
        self.failure_keys = f_key
        # the period's failures, each with its warning window [lo, hi) of sorted rows
        start, end = (self.hour.min(), self.hour.max() + 1) if len(self.hour) else (0, 0)
        keep = (f_at >= start + self.horizon) & (f_at <= end) & np.isin(f_machine, self.machine)
        key = f_machine[keep] * _MACHINE_STRIDE + f_at[keep]
        self.window_lo = np.searchsorted(row_end, key - self.horizon, side="right")
        self.window_hi = np.searchsorted(row_end, key, side="right")
        self.failure_hour = f_at[keep]

    @property
    def n_failures(self) -> int:
        return len(self.failure_hour)

    def lead_times(self, alert: np.ndarray) -> np.ndarray:
        """Hours from each failure's first alert in its window to the failure (NaN: none)."""
        count = np.r_[0, np.cumsum(alert)]
        alerted = count[self.window_hi] > count[self.window_lo]
        first = np.searchsorted(count, count[self.window_lo] + 1, side="left") - 1
        lead = np.full(self.n_failures, np.nan)
        lead[alerted] = np.round(self.failure_hour[alerted] - (self.hour[first[alerted]] + 1), 6)
        return lead

    def visits(self, alert: np.ndarray) -> tuple[int, int]:
        """(visits asked for, visits that found no failure due) of one alert vector.

        Alerts on a machine with gaps of at most the horizon form one episode. An episode
        asks for a visit when it starts and another for every horizon it stays on (the
        visit was made and the machine still alerts). Visits beyond the number of
        failures that come during the episode or within the horizon after it found
        nothing due.
        """
        rows = np.flatnonzero(alert)
        if not len(rows):
            return 0, 0
        new = np.ones(len(rows), dtype=bool)
        new[1:] = (self.machine[rows[1:]] != self.machine[rows[:-1]]) | (
            np.diff(self.hour[rows]) > self.horizon
        )
        first = rows[new]
        last = rows[np.r_[np.flatnonzero(new)[1:] - 1, len(rows) - 1]]
        span = self.hour[last] - self.hour[first] + 1
        visits = np.ceil(span / self.horizon)
        key = self.machine[first] * _MACHINE_STRIDE + self.hour[first] + 1
        due = np.searchsorted(self.failure_keys, key + span - 1 + self.horizon, side="left")
        due -= np.searchsorted(self.failure_keys, key, side="left")
        return int(visits.sum()), int(np.maximum(visits - due, 0).sum())

    def cost(self, alert: np.ndarray) -> tuple[float, np.ndarray, int, int]:
        """(cost, lead times, visits, wasted visits) of one alert vector (sorted rows)."""
        p = self.policy
        lead = self.lead_times(alert)
        value = np.clip(np.nan_to_num(lead, nan=0.0) / p.planning_lead_hours, 0.0, 1.0)
        failures = p.unplanned_failure - (p.unplanned_failure - p.preventive_visit) * value
        visits, wasted = self.visits(alert)
        return float(failures.sum() + wasted * p.early_alert), lead, visits, wasted

    def sorted_score(self, score: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.asarray(score, dtype="float64"), nan=-np.inf)[self.order]

    def cost_curve(self, score: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        s = self.sorted_score(score)
        return np.array([self.cost(s >= t)[0] for t in thresholds])

    def metrics(self, score: np.ndarray, threshold: float) -> dict[str, Any]:
        s = self.sorted_score(score)
        alert = s >= threshold
        cost, lead, visits, wasted = self.cost(alert)
        y = self.y
        tp, fp, fn = int((alert & y).sum()), int((alert & ~y).sum()), int((~alert & y).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        leads = [float(v) for v in lead if not np.isnan(v)]
        caught = int((np.nan_to_num(lead, nan=-1.0) >= self.policy.planning_lead_hours).sum())
        n = self.n_failures
        return {
            "threshold": float(threshold),
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "alert_hours": int(alert.sum()),
            "visits": visits,
            "visits_per_machine_week": visits / self.machine_weeks if self.machine_weeks else 0.0,
            "failures": n,
            "failures_alerted": len(leads),
            "failures_caught": caught,
            "share_caught": caught / n if n else None,
            "lead_times_hours": leads,
            "median_lead_time_hours": float(np.median(leads)) if leads else None,
            "wasted_visits": wasted,
            "cost": cost,
            "cost_without_alerts": float(n * self.policy.unplanned_failure),
        }


def threshold_grid(score: np.ndarray) -> tuple[np.ndarray, int]:
    """Candidate thresholds and the smoothing half-width in grid steps.

    Probabilities: every GRID_STEP_LOGIT in logit space across the scores' range. Other
    scores (the baselines' rules): 401 quantiles, smoothed over +/-2 % of them.
    """
    finite = np.asarray(score, dtype="float64")
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return np.array([np.inf]), 0
    if finite.min() >= 0.0 and finite.max() <= 1.0:
        clipped = np.clip(finite, 1e-6, 1 - 1e-6)
        lo, hi = np.log(clipped / (1 - clipped)).min(), np.log(clipped / (1 - clipped)).max()
        logits = np.arange(lo, hi + GRID_STEP_LOGIT, GRID_STEP_LOGIT)
        return 1 / (1 + np.exp(-logits)), round(SMOOTHING_LOGIT / GRID_STEP_LOGIT)
    return np.unique(np.quantile(finite, np.linspace(0.0, 1.0, 401))), 8


def choose_threshold(outcomes: PeriodOutcomes, score: np.ndarray) -> float:
    """The lowest-cost threshold after smoothing; the middle of a flat minimum."""
    grid, half = threshold_grid(score)
    costs = outcomes.cost_curve(score, grid)
    if half and len(grid) > 1:
        padded = np.pad(costs, half, mode="edge")
        costs = np.convolve(padded, np.ones(2 * half + 1) / (2 * half + 1), mode="valid")
    minimal = costs <= costs.min() + 1e-9 * max(abs(costs.min()), 1.0)
    # the contiguous run of minimal points that holds the first minimum
    start = int(np.argmax(minimal))
    above = np.flatnonzero(~minimal[start:])
    end = start + (int(above[0]) if len(above) else len(costs) - start) - 1
    return float(grid[(start + end) // 2])


def best_cost(outcomes: PeriodOutcomes, score: np.ndarray) -> tuple[float, float]:
    """(lowest cost, its threshold) on this period: the most any threshold could give."""
    grid, _ = threshold_grid(score)
    costs = outcomes.cost_curve(score, grid)
    i = int(np.argmin(costs))
    return float(costs[i]), float(grid[i])


def _hours(values: pd.Series) -> np.ndarray:
    """Hours since the epoch (UTC), as floats: a failure may come inside an hour."""
    ns = pd.to_datetime(values, utc=True).to_numpy(dtype="datetime64[ns]").astype("int64")
    return ns / 3.6e12
