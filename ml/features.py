"""The ML step's view of the warehouse: dbt marts only, features discovered from columns.

Two marts feed the model, both built by dbt:

* ``marts.fct_machine_hour_features`` -- one row per machine-hour: machine-level
  look-back features, the machine model and the label;
* ``marts.fct_machine_hour_sensor_features`` -- the same hours per sensor (long):
  6 h / 24 h window statistics of each sensor.

The sensor mart is pivoted wide here (``<sensor>__<statistic>``) with DuckDB's dynamic
``PIVOT``, so a sensor a new firmware adds becomes new feature columns at the next
training without code changes. Nothing here lists sensors or features by hand: every
column of the marts is a feature unless it is a key, the label, or a column that looks
into the future (``NOT_FEATURES``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

FEATURES_MART = "marts.fct_machine_hour_features"
SENSOR_FEATURES_MART = "marts.fct_machine_hour_sensor_features"
LABEL = "will_fail_within_horizon"
KEYS = ("machine_id", "hour_at")
CATEGORICAL = ("machine_model",)
# columns of the marts that must never be features: keys, the label, the time of the
# next failure (it looks forward; it is in the mart to explain the label), and lineage
# (when the data was ingested says nothing about the machine)
NOT_FEATURES = frozenset(
    {*KEYS, LABEL, "next_failure_at", "source_ingested_at", "label_horizon_hours"}
)


@dataclass(frozen=True)
class FeatureFrame:
    """Machine-hours with keys, features and the label (NULL = not yet observed)."""

    frame: pd.DataFrame
    features: list[str]

    @property
    def labelled(self) -> pd.DataFrame:
        return self.frame[self.frame[LABEL].notna()]


def load_features(
    con: duckdb.DuckDBPyConnection,
    *,
    until: pd.Timestamp | None = None,
    since: pd.Timestamp | None = None,
    machines: list[str] | None = None,
) -> FeatureFrame:
    """Read the feature marts, pivot sensor statistics wide, discover the feature columns."""
    # literals, not parameters: DuckDB's dynamic PIVOT refuses parameters in its source
    where = []
    if since is not None:
        where.append(f"hour_at >= '{pd.Timestamp(since).isoformat()}'::timestamptz")
    if until is not None:
        where.append(f"hour_at <= '{pd.Timestamp(until).isoformat()}'::timestamptz")
    if machines:
        quoted = ", ".join("'" + m.replace("'", "''") + "'" for m in machines)
        where.append(f"machine_id in ({quoted})")
    clause = ("where " + " and ".join(where)) if where else ""

    sensor_cols = [
        name
        for name, *_ in con.sql(f"describe {SENSOR_FEATURES_MART}").fetchall()
        if name not in (*KEYS, "sensor") and name not in NOT_FEATURES
    ]
    base = con.sql(f"select * from {FEATURES_MART} {clause}").df()
    with warnings.catch_warnings():
        # DuckDB builds the wide frame a column at a time, which pandas reports as
        # fragmentation; the frame is only read from here on
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        sensors = con.sql(
            f"""
            pivot (select machine_id, hour_at, sensor, {", ".join(sensor_cols)}
                   from {SENSOR_FEATURES_MART} {clause})
            on sensor
            using {", ".join(f"first({c}) as {c}" for c in sensor_cols)}
            group by machine_id, hour_at
            """
        ).df()
    # DuckDB names pivoted columns <sensor>_<alias>; make the split unambiguous
    sensors = sensors.rename(
        columns={
            col: _sensor_feature_name(col, sensor_cols)
            for col in sensors.columns
            if col not in KEYS
        }
    )
    frame = base.merge(sensors, on=list(KEYS), how="left")
    frame = frame.sort_values(["hour_at", "machine_id"], kind="stable").reset_index(drop=True)
    for col in CATEGORICAL:
        frame[col] = frame[col].astype("string")
    features = [c for c in frame.columns if c not in NOT_FEATURES]
    for col in features:
        if col in CATEGORICAL:
            continue
        if frame[col].dtype == bool or str(frame[col].dtype) == "boolean":
            frame[col] = frame[col].astype("float64")
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame[LABEL] = frame[LABEL].astype("boolean")
    return FeatureFrame(frame=frame, features=features)


def _sensor_feature_name(column: str, stats: list[str]) -> str:
    for stat in sorted(stats, key=len, reverse=True):
        if column.endswith("_" + stat):
            return f"{column[: -len(stat) - 1]}__{stat}"
    return column


def matrix(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The model's input: exactly the trained feature list; new columns ignored, missing NaN."""
    out = frame.reindex(columns=features)
    for col in features:
        if col in CATEGORICAL:
            out[col] = out[col].astype("string").fillna("unknown")
        else:
            out[col] = out[col].astype("float64")
    return out


def labels(frame: pd.DataFrame) -> np.ndarray:
    return frame[LABEL].astype(bool).to_numpy()
