"""Score every machine-hour with a model version and write the scores to the warehouse.

Tables (schema ``ml``; dbt creates them empty in an on-run-start hook, so the marts that
read them build before any model exists, and this module only inserts):

* ``ml.machine_hour_scores`` -- one row per machine, hour and model version: risk (the
  calibrated probability of a failure within the horizon), the model's threshold and
  whether it alerts (the act-now list), and whether the risk reaches the watch list's
  cut (likely to fail within the horizon). Idempotent: an hour already scored by a
  version is never rescored, so scoring twice adds no rows.
* ``ml.machine_risk_reasons`` -- for each machine's latest scored hour, the features
  that moved its risk most: the risk minus the risk with that one feature set to its
  typical (training median) value. Replaced per machine and version.
* ``ml.feature_drift`` -- once a day, the drift of the model's most telling features
  over the last week against training (``ml.drift``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from ml import drift
from ml.evaluate import watch_threshold_of
from ml.features import CATEGORICAL, load_features, matrix

if TYPE_CHECKING:
    from ml.metadata import ModelMetadata

TOP_REASONS = 3


@dataclass
class ScoreResult:
    model_version: str
    hours_scored: int
    hours_already_scored: int
    machines: int
    alerts_now: int
    drift_measured: int = 0  # features whose drift this call measured (once a day)


def _require_tables(con: duckdb.DuckDBPyConnection) -> None:
    found = {
        name
        for (name,) in con.sql(
            "select table_name from information_schema.tables where table_schema = 'ml'"
        ).fetchall()
    }
    missing = {"machine_hour_scores", "machine_risk_reasons", "feature_drift"} - found
    if missing:
        raise RuntimeError(
            f"warehouse has no ml.{', ml.'.join(sorted(missing))}: run `shopfloor build` first "
            "(dbt creates the score tables)"
        )


def score(
    con: duckdb.DuckDBPyConnection,
    model: Any,
    metadata: ModelMetadata,
    *,
    now: datetime | None = None,
) -> ScoreResult:
    """Score the hours this model version has not scored yet; refresh the reasons."""
    _require_tables(con)
    version = metadata["version"]
    features: list[str] = metadata["features"]
    threshold = float(metadata["threshold"])
    watch = watch_threshold_of(metadata)
    scored_at = (now or datetime.now(UTC)).replace(microsecond=0)

    # only the hours this version has not scored yet (and each machine's latest hour, for
    # the reasons): an hourly run reads a few hours of the marts, not their history
    since = con.execute(
        """
        select least(
            (select min(f.hour_at) from marts.fct_machine_hour_features f
             where not exists (
                 select 1 from ml.machine_hour_scores s
                 where s.model_version = ? and s.machine_id = f.machine_id
                   and s.hour_at = f.hour_at)),
            (select min(latest) from (
                select max(hour_at) as latest from marts.fct_machine_hour_features
                group by machine_id))
        )
        """,
        [version],
    ).fetchone()
    data = load_features(con, since=pd.Timestamp(since[0]) if since and since[0] else None)
    frame = data.frame
    done = con.execute(
        "select machine_id, hour_at from ml.machine_hour_scores where model_version = ?"
        " and hour_at >= ?",
        [version, frame["hour_at"].min().to_pydatetime() if len(frame) else datetime.now(UTC)],
    ).df()
    if not done.empty:
        keyed = frame.merge(done.assign(_done=True), on=["machine_id", "hour_at"], how="left")
        todo = frame[keyed["_done"].isna().to_numpy()]
    else:
        todo = frame
    if not todo.empty:
        risk = model.predict_proba(matrix(todo, features))[:, 1]
        scores = pd.DataFrame(
            {
                "machine_id": todo["machine_id"].to_numpy(),
                "hour_at": todo["hour_at"].to_numpy(),
                "model_version": version,
                "risk": risk,
                "threshold": threshold,
                "is_alert": risk >= threshold,
                "watch_threshold": watch,
                "on_watch_list": risk >= watch,
                "scored_at": scored_at,
            }
        )
        con.register("new_scores", scores)
        con.execute("begin")
        con.execute(
            """
            insert into ml.machine_hour_scores by name
            select * from new_scores
            where not exists (
                select 1 from ml.machine_hour_scores s
                where s.machine_id = new_scores.machine_id
                  and s.hour_at = new_scores.hour_at
                  and s.model_version = new_scores.model_version
            )
            """
        )
        con.execute("commit")
        con.unregister("new_scores")

    latest = frame.sort_values("hour_at").groupby("machine_id").tail(1)
    latest_risk = model.predict_proba(matrix(latest, features))[:, 1]
    reasons = explain(model, metadata, latest, risk=latest_risk)
    con.register("new_reasons", reasons.assign(model_version=version, scored_at=scored_at))
    con.execute("begin")
    con.execute("delete from ml.machine_risk_reasons where model_version = ?", [version])
    con.execute("insert into ml.machine_risk_reasons by name select * from new_reasons")
    con.execute("commit")
    con.unregister("new_reasons")
    drifts = drift.write(con, metadata, scored_at)  # once a day: the last week vs training
    return ScoreResult(
        model_version=version,
        hours_scored=len(todo),
        hours_already_scored=len(frame) - len(todo) + _scored_before(con, version, frame),
        machines=int(frame["machine_id"].nunique()),
        alerts_now=int((latest_risk >= threshold).sum()),
        drift_measured=drifts,
    )


def explain(
    model: Any, metadata: ModelMetadata, rows: pd.DataFrame, risk: np.ndarray | None = None
) -> pd.DataFrame:
    """Per row, the features whose typical value would lower the risk most.

    risk: the rows' risk if the caller has already predicted it.
    """
    features: list[str] = metadata["features"]
    reference: dict[str, float] = metadata["reference_values"]
    x_rows = matrix(rows, features).reset_index(drop=True)
    base = model.predict_proba(x_rows)[:, 1] if risk is None else np.asarray(risk)
    numeric = [f for f in features if f not in CATEGORICAL and f in reference]
    # one batch: every row with one feature set to its reference value; built column by
    # column in NumPy (block i of the batch is the rows with numeric[i] replaced)
    n = len(x_rows)
    position = {feature: i for i, feature in enumerate(numeric)}
    batch_columns: dict[str, Any] = {}
    for feature in features:
        values = np.tile(x_rows[feature].to_numpy(), len(numeric))
        if feature in position:
            values = values.astype(float)
            i = position[feature]
            values[i * n : (i + 1) * n] = reference[feature]
        batch_columns[feature] = pd.Series(values).astype(x_rows[feature].dtype)
    batch = pd.DataFrame(batch_columns)
    moved = model.predict_proba(batch)[:, 1].reshape(len(numeric), len(x_rows))
    contribution = base[None, :] - moved  # how much the actual value raises the risk
    out = []
    for j in range(len(x_rows)):
        order = np.argsort(-contribution[:, j])[:TOP_REASONS]
        for rank, i in enumerate(order, start=1):
            if contribution[i, j] <= 0:
                break
            out.append(
                {
                    "machine_id": rows["machine_id"].iloc[j],
                    "hour_at": rows["hour_at"].iloc[j],
                    "reason_rank": rank,
                    "feature": numeric[i],
                    "feature_value": x_rows[numeric[i]].iloc[j],
                    "reference_value": reference[numeric[i]],
                    "contribution": float(contribution[i, j]),
                }
            )
    columns = ["machine_id", "hour_at", "reason_rank", "feature", "feature_value"]
    return pd.DataFrame(out, columns=[*columns, "reference_value", "contribution"])


def _scored_before(con: duckdb.DuckDBPyConnection, version: str, frame: pd.DataFrame) -> int:
    if frame.empty:
        return 0
    row = con.execute(
        "select count(*) from ml.machine_hour_scores where model_version = ? and hour_at < ?",
        [version, frame["hour_at"].min().to_pydatetime()],
    ).fetchone()
    return int(row[0]) if row else 0
