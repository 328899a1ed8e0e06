"""Drift of the model's inputs: how far the recent hours' values of its most telling
features are from the training period's, as the population stability index (PSI).

At training, the features that rank the training labels best (ROC-AUC farthest from
0.5) keep their training deciles (`metadata["drift_reference"]`). Once a day the score
stage measures, per such feature, the PSI of the last week's hours against those
deciles and appends it to `ml.feature_drift`; `fct_model_monitoring` and `shopfloor
status` show the largest. Conventional reading: below 0.1 stable, 0.1 to 0.25 moderate,
above 0.25 shifted (the model sees hours unlike those it learned from: retrain, or look
at the sensor).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ml.evaluate import label_auc_distance
from ml.features import CATEGORICAL, load_features

TOP_FEATURES = 10
BINS = 10
WINDOW = timedelta(days=7)
_FLOOR = 1e-4  # an empty bin's share: PSI is finite, and one stray hour does not dominate


def reference(train: pd.DataFrame, features: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per most telling numeric feature: its training deciles' inner edges and the share
    of training hours in each bin."""
    ranked: list[tuple[float, str]] = []
    for feature in features:
        if feature in CATEGORICAL:
            continue
        distance = label_auc_distance(train, feature)
        if distance is not None:
            ranked.append((distance, feature))
    out: dict[str, dict[str, list[float]]] = {}
    for _, feature in sorted(ranked, reverse=True)[:TOP_FEATURES]:
        values = train[feature].astype("float64").to_numpy()
        values = values[np.isfinite(values)]
        edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
        out[feature] = {"edges": edges.tolist(), "expected": shares(values, edges).tolist()}
    return out


def shares(values: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
    """The share of values in each bin the inner edges make (len(edges) + 1 bins)."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return np.asarray(counts / max(len(values), 1), dtype="float64")


def psi(expected: np.ndarray | list[float], actual: np.ndarray | list[float]) -> float:
    """Population stability index of `actual` shares against `expected` ones."""
    e = np.maximum(np.asarray(expected, dtype="float64"), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype="float64"), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def measure(con: duckdb.DuckDBPyConnection, metadata: Any, now: datetime) -> pd.DataFrame | None:
    """The PSI of each reference feature over the week up to the newest hour, or None
    when this version measured that day already (or has no reference)."""
    drift_reference: dict[str, dict[str, list[float]]] = metadata.get("drift_reference") or {}
    row = con.execute("select max(hour_at) from marts.fct_machine_hour_features").fetchone()
    if not drift_reference or not row or row[0] is None:
        return None
    window_end = pd.Timestamp(row[0]) + pd.Timedelta(hours=1)
    done = con.execute(
        "select count(*) from ml.feature_drift where model_version = ?"
        " and window_end::date = ?::timestamptz::date",
        [metadata["version"], window_end.to_pydatetime()],
    ).fetchone()
    if done and done[0]:
        return None
    window_start = window_end - pd.Timedelta(WINDOW)
    recent = load_features(con, since=window_start).frame
    rows = []
    for feature, ref in drift_reference.items():
        if feature not in recent:
            continue
        values = recent[feature].astype("float64").to_numpy()
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        rows.append(
            {
                "model_version": metadata["version"],
                "window_start": window_start.to_pydatetime(),
                "window_end": window_end.to_pydatetime(),
                "feature": feature,
                "psi": psi(ref["expected"], shares(values, ref["edges"])),
                "hours": len(values),
                "computed_at": now,
            }
        )
    return pd.DataFrame(rows) if rows else None


def write(con: duckdb.DuckDBPyConnection, metadata: Any, now: datetime) -> int:
    """Measure and append today's drift for this version; the rows written."""
    measured = measure(con, metadata, now)
    if measured is None:
        return 0
    con.register("new_drift", measured)
    con.execute("insert into ml.feature_drift by name select * from new_drift")
    con.unregister("new_drift")
    return len(measured)
