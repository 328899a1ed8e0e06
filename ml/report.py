"""The evaluation report: Markdown with PNG plots, its model numbers read from the warehouse.

The model's test-period metrics are recomputed from ``ml.machine_hour_scores`` (the
rows the maintenance team sees) joined to the labels of the feature mart, and checked
against the metrics recorded at training: the report and the scores table cannot
disagree silently.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ml import evaluate
from ml.features import FEATURES_MART, LABEL
from ml.model import failures_from

METHODS = {
    "model": "shopfloor model",
    "fixed_interval": "Fixed-interval maintenance",
    "single_sensor": "Best single-sensor rule",
}


def scored_test_period(con: duckdb.DuckDBPyConnection, metadata: dict[str, Any]) -> pd.DataFrame:
    """The test period's labelled hours with the risk the scores table holds for them."""
    periods = evaluate.Periods.from_dict(metadata["periods"])
    return con.execute(
        f"""
        select f.machine_id, f.hour_at, f.{LABEL}, f.hours_since_maintenance, s.risk, s.is_alert
        from {FEATURES_MART} f
        inner join ml.machine_hour_scores s
            on s.machine_id = f.machine_id and s.hour_at = f.hour_at and s.model_version = ?
        where f.{LABEL} is not null and f.hour_at >= ? and f.hour_at < ?
        order by f.hour_at, f.machine_id
        """,
        [metadata["version"], periods.test_start.to_pydatetime(), periods.test_end.to_pydatetime()],
    ).df()


def recompute_model_metrics(
    con: duckdb.DuckDBPyConnection, metadata: dict[str, Any]
) -> dict[str, object]:
    test = scored_test_period(con, metadata)
    if len(test) != metadata["rows"]["test"]:
        raise RuntimeError(
            f"scores table has {len(test)} of the {metadata['rows']['test']} test hours of model "
            f"{metadata['version']}: run `shopfloor score` first"
        )
    costs = evaluate.Costs(**metadata["costs"])
    return evaluate.alert_metrics(
        test,
        test["risk"].to_numpy(),
        float(metadata["threshold"]),
        failures_from(con),
        horizon_hours=int(metadata["horizon_hours"]),
        min_lead_hours=float(metadata["min_lead_hours"]),
        costs=costs,
    )


def write_report(con: duckdb.DuckDBPyConnection, metadata: dict[str, Any], out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = metadata["metrics"]
    model_metrics = recompute_model_metrics(con, metadata)
    mismatch = [
        key
        for key in ("pr_auc", "roc_auc", "precision", "recall", "f1", "failures_caught", "cost")
        if not _close(model_metrics[key], recorded["model"][key])
    ]
    if mismatch:
        raise RuntimeError(f"scores table disagrees with the training metrics on {mismatch}")
    metrics = {**recorded, "model": model_metrics}
    test = scored_test_period(con, metadata)
    y = test[LABEL].astype(bool).to_numpy()

    # PR curve: the model from the scores table, the baselines from their rules
    features = _test_features(con, metadata)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, score in _scores_by_method(metadata, test, features).items():
        precision, recall, _ = precision_recall_curve(y, np.nan_to_num(score, nan=-1e12))
        ax.plot(recall, precision, label=f"{METHODS[name]} (PR-AUC {metrics[name]['pr_auc']:.2f})")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"prevalence {y.mean():.2f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test period")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "pr_curve.png", dpi=110)
    plt.close(fig)

    # lead times of the caught failures
    fig, ax = plt.subplots(figsize=(6, 3.5))
    horizon = int(metadata["horizon_hours"])
    bins = [float(b) for b in range(0, horizon + 2, 2)]
    for name in METHODS:
        ax.hist(metrics[name]["lead_times_hours"], bins=bins, alpha=0.5, label=METHODS[name])
    ax.axvline(
        float(metadata["min_lead_hours"]), color="black", linestyle="--", label="minimum warning"
    )
    ax.set(xlabel="hours from first alert to failure", ylabel="failures", title="Lead time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "lead_time.png", dpi=110)
    plt.close(fig)

    machine = _timeline(con, metadata, out_dir, plt)

    # baseline comparison: cost and PR-AUC side by side
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    names = list(METHODS)
    axes[0].bar([METHODS[n] for n in names], [metrics[n]["cost"] for n in names], color="C0")
    axes[0].axhline(
        metrics["model"]["cost_without_alerts"], color="red", linestyle=":", label="no alerts"
    )
    axes[0].set(title="Cost on the test period", ylabel="cost")
    axes[0].legend(fontsize=8)
    axes[1].bar([METHODS[n] for n in names], [metrics[n]["pr_auc"] for n in names], color="C1")
    axes[1].set(title="PR-AUC on the test period")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=20, labelsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "baselines.png", dpi=110)
    plt.close(fig)

    path = out_dir / "report.md"
    path.write_text(_markdown(metadata, metrics, machine))
    return path


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]


def _test_features(con: duckdb.DuckDBPyConnection, metadata: dict[str, Any]) -> pd.DataFrame:
    from ml.features import load_features

    periods = evaluate.Periods.from_dict(metadata["periods"])
    frame = load_features(con).labelled
    return frame[(frame["hour_at"] >= periods.test_start) & (frame["hour_at"] < periods.test_end)]


def _scores_by_method(
    metadata: dict[str, Any], test: pd.DataFrame, features: pd.DataFrame
) -> dict[str, np.ndarray]:
    aligned = test[["machine_id", "hour_at"]].merge(
        features, on=["machine_id", "hour_at"], how="left"
    )
    out = {"model": test["risk"].to_numpy()}
    for name in ("fixed_interval", "single_sensor"):
        out[name] = evaluate.baseline_score(metadata["metrics"][name]["rule"], aligned)
    return out


def _timeline(
    con: duckdb.DuckDBPyConnection, metadata: dict[str, Any], out_dir: Path, plt: Any
) -> str:
    """Risk of one machine across a failure and a maintenance visit in the test period."""
    periods = evaluate.Periods.from_dict(metadata["periods"])
    events = con.execute(
        "select machine_id, maintenance_type, reported_at from marts.fct_maintenance_events"
        " where reported_at >= ? and reported_at < ?",
        [periods.test_start.to_pydatetime(), periods.test_end.to_pydatetime()],
    ).df()
    kinds = events.groupby("machine_id")["maintenance_type"].nunique()
    candidates = kinds[kinds == 2].index.tolist() or events["machine_id"].unique().tolist()
    if not candidates:
        return ""
    machine = sorted(candidates)[0]
    risk = con.execute(
        "select hour_at, risk from ml.machine_hour_scores"
        " where model_version = ? and machine_id = ?"
        " and hour_at >= ? and hour_at < ? order by hour_at",
        [
            metadata["version"],
            machine,
            periods.test_start.to_pydatetime(),
            periods.test_end.to_pydatetime(),
        ],
    ).df()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(risk["hour_at"] + pd.Timedelta(hours=1), risk["risk"], label="risk (known at hour end)")
    ax.axhline(
        float(metadata["threshold"]), color="orange", linestyle="--", label="alert threshold"
    )
    for row in events[events["machine_id"] == machine].itertuples():
        corrective = row.maintenance_type == "corrective"
        ax.axvline(
            row.reported_at,
            color="red" if corrective else "green",
            label="failure" if corrective else "preventive maintenance",
        )
    handles, labels_ = ax.get_legend_handles_labels()
    unique = dict(zip(labels_, handles, strict=False))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set(title=f"Risk of {machine} over the test period", ylabel="risk")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out_dir / "risk_timeline.png", dpi=110)
    plt.close(fig)
    return str(machine)


def _fmt(value: object, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{100 * value:.0f} %" if pct else f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:,}" if isinstance(value, int) else str(value)


def _markdown(metadata: dict[str, Any], metrics: dict[str, Any], machine: str) -> str:
    periods = metadata["periods"]
    m, fi, ss = metrics["model"], metrics["fixed_interval"], metrics["single_sensor"]
    rows = [
        ("PR-AUC", "pr_auc", False),
        ("ROC-AUC", "roc_auc", False),
        ("precision at threshold", "precision", False),
        ("recall at threshold", "recall", False),
        ("F1 at threshold", "f1", False),
        ("alerts per machine per week", "alerts_per_machine_week", False),
        ("failures in test period", "failures", False),
        (
            f"failures caught (>= {metadata['min_lead_hours']:g} h warning)",
            "failures_caught",
            False,
        ),
        ("share caught", "share_caught", True),
        ("median lead time (h)", "median_lead_time_hours", False),
        ("wasted visits", "wasted_visits", False),
        ("cost", "cost", False),
    ]
    table = ["| metric | " + " | ".join(METHODS.values()) + " |", "|---|---:|---:|---:|"]
    for label, key, pct in rows:
        table.append(
            f"| {label} | " + " | ".join(_fmt(metrics[n].get(key), pct) for n in METHODS) + " |"
        )
    none_cost = m["cost_without_alerts"]
    costs = metadata["costs"]
    grouped = metrics["machine_grouped"]
    rule = ss["rule"]
    bounds = [
        ("train", "train_start", "validation_start"),
        ("validation (calibration, threshold)", "validation_start", "test_start"),
        ("test (reported below)", "test_start", "test_end"),
    ]
    period_table = "\n".join(
        [
            "| period | from | to (exclusive) | hours | failure hours |",
            "|---|---|---|---:|---:|",
            *(
                f"| {label} | {periods[a]} | {periods[b]} "
                f"| {metadata['rows'][part]} | {metadata['positives'][part]} |"
                for label, a, b in bounds
                for part in [label.split()[0]]
            ),
        ]
    )
    return f"""# shopfloor maintenance model — evaluation report

Model version **{metadata["version"]}**, trained {metadata["trained_at"]}.
Label: a corrective failure starts within the next {metadata["horizon_hours"]} hours
(censored hours, whose future is not yet observed, are excluded).

{period_table}

{len(metadata["features"])} features discovered from the marts; data fingerprint
`{metadata["data_fingerprint"][:16]}…`. Alert threshold {metadata["threshold"]:.3f}
(lowest cost on the validation period). The model's numbers below are recomputed from
`ml.machine_hour_scores` and match the metrics recorded at training.

## Model vs baselines (test period)

{chr(10).join(table)}

Baselines, tuned on the training period with the same cost criterion:
fixed-interval maintenance = alert once {fi["rule"]["threshold"]:.0f} hours have passed since
the last maintenance; best single-sensor rule = `{rule["feature"]}`
{">=" if rule["sign"] > 0 else "<="} {rule["sign"] * rule["threshold"]:.3f}.

**By how much the model wins:** PR-AUC {m["pr_auc"]:.2f} vs {fi["pr_auc"]:.2f} (fixed
interval) and {ss["pr_auc"]:.2f} (single sensor); cost {m["cost"]:,.0f} vs {fi["cost"]:,.0f}
and {ss["cost"]:,.0f} — {_saving(fi["cost"], m["cost"])} and {_saving(ss["cost"], m["cost"])}
cheaper; without any alerts the period would cost {none_cost:,.0f}.

Cost view: an unplanned failure costs {costs["unplanned_failure"]:,.0f}, a preventive visit
{costs["preventive_visit"]:,.0f}. A failure with at least {metadata["min_lead_hours"]:g} hours of
warning becomes a visit; an alert episode with no failure within the horizon is a wasted visit
(a re-alert within the horizon is the same episode).

![baselines](baselines.png)

![precision-recall](pr_curve.png)

![lead time](lead_time.png)

## A machine across a failure and a maintenance

![risk timeline of {machine}](risk_timeline.png)

## Machine-grouped split

{_grouped_text(grouped)}

Libraries: {", ".join(f"{k} {v}" for k, v in metadata["library_versions"].items())}.
"""


def _saving(baseline: float, model: float) -> str:
    if not baseline:
        return "n/a"
    return f"{100 * (baseline - model) / baseline:.0f} %"


def _grouped_text(grouped: dict[str, Any]) -> str:
    if not grouped["folds"]:
        return "Not run for this model version (training with grouped_folds=0)."
    return (
        "Trained on some machines and scored on the others over the whole history "
        f"({grouped['folds']} folds by machine): PR-AUC {grouped['pr_auc']:.2f}, ROC-AUC "
        f"{grouped['roc_auc']:.2f} (prevalence {grouped['prevalence']:.2f}). A new machine is "
        "scored less well than one with history: its sensors' levels are new to the model."
    )
