"""The evaluation report: Markdown with PNG plots, its model numbers read from the warehouse.

The model's test-period metrics are recomputed from ``ml.machine_hour_scores`` (the
rows the maintenance team sees) joined to the labels of the feature mart, and checked
against the metrics recorded at training: the report and the scores table cannot
disagree silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ml import evaluate
from ml.features import FEATURES_MART, LABEL
from ml.metadata import ModelMetadata
from ml.model import beaten_by_baselines, failures_from
from ml.policy import AlertPolicy, PeriodOutcomes

METHODS = {
    "model": "shopfloor model",
    "fixed_interval": "Fixed-interval maintenance",
    "single_sensor": "Best single-sensor rule",
}


def scored_test_period(con: duckdb.DuckDBPyConnection, metadata: ModelMetadata) -> pd.DataFrame:
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


@dataclass(frozen=True)
class TestPeriod:
    """The test hours a model version scored, as the warehouse has them now."""

    hours: pd.DataFrame  # labelled test hours with the model's risk
    judge: PeriodOutcomes
    changed: str  # what changed since training ("" when nothing did)


def test_period(con: duckdb.DuckDBPyConnection, metadata: ModelMetadata) -> TestPeriod:
    hours = scored_test_period(con, metadata)
    recorded = int(metadata["rows"]["test"])
    if hours.empty:
        raise RuntimeError(
            f"model {metadata['version']} has scored none of its test hours: run "
            "`shopfloor score` first"
        )
    judge = evaluate.outcomes(
        hours,
        failures_from(con),
        horizon_hours=int(metadata["horizon_hours"]),
        policy=AlertPolicy.from_metadata(metadata),
    )
    changed = ""
    if len(hours) != recorded:
        changed = (
            f"Since training, the test period's labelled and scored hours went from "
            f"{recorded:,} to {len(hours):,} (labels that became known later, or files "
            "that arrived late): the numbers below are recomputed on the hours as they are "
            "now, and may differ from those recorded at training."
        )
    return TestPeriod(hours, judge, changed)


def recompute_model_metrics(
    con: duckdb.DuckDBPyConnection,
    metadata: ModelMetadata,
    period: TestPeriod | None = None,
) -> dict[str, object]:
    """The model's test metrics from the scores table; checked against those recorded
    at training whenever the test hours are still the same."""
    period = period or test_period(con, metadata)
    metrics = evaluate.alert_metrics(
        period.judge, period.hours["risk"].to_numpy(), float(metadata["threshold"])
    )
    recorded = metadata["metrics"]["model"]
    if not period.changed:
        # a version saved before the alert policy counted cost and catches another way
        keys = ["pr_auc", "roc_auc", "precision", "recall", "f1"]
        keys += ["failures_caught", "cost"] if "policy" in metadata else []
        mismatch = [key for key in keys if not _close(metrics[key], recorded[key])]
        if mismatch:
            raise RuntimeError(f"scores table disagrees with the training metrics on {mismatch}")
    return metrics


def write_report(con: duckdb.DuckDBPyConnection, metadata: ModelMetadata, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    period = test_period(con, metadata)
    model_metrics = recompute_model_metrics(con, metadata, period)
    test = period.hours
    y = test[LABEL].astype(bool).to_numpy()
    scores = _scores_by_method(metadata, test, _test_features(con, metadata))
    metrics: dict[str, Any] = {"model": model_metrics}
    metrics["watch_list"] = evaluate.alert_metrics(
        period.judge, test["risk"].to_numpy(), evaluate.watch_threshold_of(metadata)
    )
    for name in ("fixed_interval", "single_sensor"):
        rule = metadata["metrics"][name]["rule"]
        metrics[name] = evaluate.alert_metrics(
            period.judge, scores[name], float(rule["threshold"])
        ) | {"rule": rule}
    metrics["machine_grouped"] = metadata["metrics"]["machine_grouped"]
    periods = metadata["periods"]
    metrics["health"] = evaluate.health_ranking(con, periods["test_start"], periods["test_end"])

    # PR curve: the model from the scores table, the baselines from their rules
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y, np.nan_to_num(score, nan=-1e12))
        ax.plot(recall, precision, label=f"{METHODS[name]} (PR-AUC {metrics[name]['pr_auc']:.2f})")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"prevalence {y.mean():.2f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test period")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "pr_curve.png", dpi=110)
    plt.close(fig)

    # lead times of the caught failures
    fig, ax = plt.subplots(figsize=(8, 3.5))
    horizon = int(metadata["horizon_hours"])
    bins = [float(b) for b in range(0, horizon + 2, 2)]
    for name in METHODS:
        ax.hist(metrics[name]["lead_times_hours"], bins=bins, alpha=0.5, label=METHODS[name])
    ax.axvline(
        AlertPolicy.from_metadata(metadata).planning_lead_hours,
        color="black",
        linestyle="--",
        label="planning lead time",
    )
    ax.set(xlabel="hours from first alert to failure", ylabel="failures", title="Lead time")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside, never on a bar
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
    path.write_text(_markdown(metadata, metrics, machine, period.changed))
    return path


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]


def _test_features(con: duckdb.DuckDBPyConnection, metadata: ModelMetadata) -> pd.DataFrame:
    from ml.features import load_features

    periods = evaluate.Periods.from_dict(metadata["periods"])
    frame = load_features(con).labelled
    return frame[(frame["hour_at"] >= periods.test_start) & (frame["hour_at"] < periods.test_end)]


def _scores_by_method(
    metadata: ModelMetadata, test: pd.DataFrame, features: pd.DataFrame
) -> dict[str, np.ndarray]:
    aligned = test[["machine_id", "hour_at"]].merge(
        features, on=["machine_id", "hour_at"], how="left"
    )
    out = {"model": test["risk"].to_numpy()}
    for name in ("fixed_interval", "single_sensor"):
        out[name] = evaluate.baseline_score(metadata["metrics"][name]["rule"], aligned)
    return out


def _timeline(
    con: duckdb.DuckDBPyConnection, metadata: ModelMetadata, out_dir: Path, plt: Any
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


def _fmt(value: object, kind: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if kind == "%":
            return f"{100 * value:.0f} %"
        if kind == "money":
            return f"{value:,.0f}"
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:,}" if isinstance(value, int) else str(value)


ROWS = (
    ("PR-AUC", "pr_auc", ""),
    ("ROC-AUC", "roc_auc", ""),
    ("precision at threshold", "precision", ""),
    ("recall at threshold", "recall", ""),
    ("**F1 at threshold**", "f1", ""),
    ("**best F1 any threshold gives on the test period**", "best_f1", ""),
    ("visits asked per machine per week", "visits_per_machine_week", ""),
    ("visits that found nothing due", "wasted_visits", ""),
    ("failures in test period", "failures", ""),
    ("failures alerted before they happened", "failures_alerted", ""),
    ("failures caught with the planning lead time", "failures_caught", ""),
    ("share caught with the planning lead time", "share_caught", "%"),
    ("median lead time (h)", "median_lead_time_hours", ""),
    ("**cost at threshold**", "cost", "money"),
    ("**lowest cost any threshold gives on the test period**", "best_cost", "money"),
)


def _lists_table(metadata: ModelMetadata, metrics: dict[str, Any]) -> str:
    """The two lists one model gives, on the test period, next to the best F1 any cut of
    the same risk gives there."""
    rows = [
        "| list | risk cut | precision | recall | F1 | best F1 any cut gives |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    watch = evaluate.watch_threshold_of(metadata)
    for label, key, cut in (
        ("act now (alert policy)", "model", float(metadata["threshold"])),
        ("watch list (likely to fail within the horizon)", "watch_list", watch),
    ):
        m = metrics[key]
        rows.append(
            f"| {label} | {cut:.3f} | {_fmt(m['precision'])} | {_fmt(m['recall'])} "
            f"| **{_fmt(m['f1'])}** | {_fmt(m['best_f1'])} |"
        )
    return "\n".join(rows)


def _markdown(metadata: ModelMetadata, metrics: dict[str, Any], machine: str, changed: str) -> str:
    periods = metadata["periods"]
    m, fi, ss = metrics["model"], metrics["fixed_interval"], metrics["single_sensor"]
    table = ["| metric | " + " | ".join(METHODS.values()) + " |", "|---|---:|---:|---:|"]
    for label, key, kind in ROWS:
        table.append(
            f"| {label} | " + " | ".join(_fmt(metrics[n].get(key), kind) for n in METHODS) + " |"
        )
    policy = AlertPolicy.from_metadata(metadata)
    horizon = int(metadata["horizon_hours"])
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
    warnings = "".join(f"> **Warning:** {w}.\n\n" for w in beaten_by_baselines(metrics))
    return f"""# shopfloor maintenance model — evaluation report

{warnings}Model version **{metadata["version"]}**, trained {metadata["trained_at"]}.
{standing(metadata)}

## Two lists from one model (test period)

{_lists_table(metadata, metrics)}

The act-now list asks for a technician: its cut is the alert policy's (below). The watch
list is every machine whose calibrated risk of failing within {int(metadata["horizon_hours"])}
hours is at or above the cut with the best F1 on the validation period, for planning parts
and people in the coming days.

F1 at the alert threshold **{_fmt(m["f1"])}** against **{_fmt(m["best_f1"])}**, the best
any threshold gives on the test period; cost {m["cost"]:,.0f} against the lowest possible
{m["best_cost"]:,.0f}. {changed}

Label: a corrective failure starts within the next {horizon} hours (censored hours,
whose future is not yet observed, are excluded).

{period_table}

{len(metadata["features"])} features discovered from the marts; data fingerprint
`{metadata["data_fingerprint"][:16]}…`. The model's numbers below are recomputed from
`ml.machine_hour_scores`, the baselines' from their rules.

## Alert policy

{policy.describe(horizon)} Chosen threshold: **{metadata["threshold"]:.3f}**.

## Model vs baselines (test period)

{chr(10).join(table)}

Baselines, their thresholds chosen by the same policy on the training period:
fixed-interval maintenance = alert once {fi["rule"]["threshold"]:.0f} hours have passed since
the last maintenance; best single-sensor rule = `{rule["feature"]}`
{">=" if rule["sign"] > 0 else "<="} {rule["sign"] * rule["threshold"]:.3f}.

PR-AUC {m["pr_auc"]:.2f} vs {fi["pr_auc"]:.2f} (fixed interval) and {ss["pr_auc"]:.2f}
(single sensor); cost {m["cost"]:,.0f} vs {fi["cost"]:,.0f} and {ss["cost"]:,.0f}
({_saving(fi["cost"], m["cost"])} and {_saving(ss["cost"], m["cost"])} cheaper); without
any alerts the period would cost {m["cost_without_alerts"]:,.0f}.

![baselines](baselines.png)

![precision-recall](pr_curve.png)

![lead time](lead_time.png)

## A machine across a failure and a maintenance

![risk timeline of {machine}](risk_timeline.png)

## Health score beside the model (test period)

{_health_text(metrics["health"], m)}

## Machine-grouped split

{_grouped_text(metrics["machine_grouped"])}

Libraries: {", ".join(f"{k} {v}" for k, v in metadata["library_versions"].items())}.
"""


def _saving(baseline: float, model: float) -> str:
    if not baseline:
        return "n/a"
    return f"{100 * (baseline - model) / baseline:.0f} %"


def _health_text(health: dict[str, Any] | None, model: dict[str, Any]) -> str:
    if health is None:
        return "No health score on the test period's labelled hours (or one class only)."
    return (
        "The health score (`marts.fct_machine_health`: the sensors' distance from each "
        "machine's own healthy level plus the hours since maintenance; no model and no label "
        f"used) on the {health['hours']:,} labelled test hours that have one "
        f"({health['failure_hours']:,} before a failure): ROC-AUC "
        f"**{health['health_roc_auc']:.3f}**, PR-AUC {health['health_pr_auc']:.3f}; hours since "
        f"maintenance alone {health['age_roc_auc']:.3f} and {health['age_pr_auc']:.3f}; the "
        f"model's PR-AUC on all test hours {_fmt(model.get('pr_auc'))}. It answers before the "
        "plant has failures to train on; once the model ranks better, the model's lists lead."
    )


def _grouped_text(grouped: dict[str, Any]) -> str:
    if not grouped["folds"]:
        return (
            "Not run for this model version: the first model a `shopfloor run` trains skips it"
            " (`shopfloor train` runs it; `--grouped-folds 0` skips it too)."
        )
    return (
        "Trained on some machines and scored on the others over the whole history "
        f"({grouped['folds']} folds by machine): PR-AUC {grouped['pr_auc']:.2f}, ROC-AUC "
        f"{grouped['roc_auc']:.2f} (prevalence {grouped['prevalence']:.2f}). A new machine is "
        "scored less well than one with history: its sensors' levels are new to the model."
    )


def standing(metadata: ModelMetadata) -> str:
    """Whether this version scores (current) or was kept as a candidate, and why."""
    champion = metadata.get("champion")
    if metadata.get("status") != "candidate" or not champion:
        return ""
    return (
        f"\n**Candidate, not scoring**: on this version's test period it ranked the hours "
        f"with PR-AUC {_fmt(champion['challenger_pr_auc'])} against "
        f"{_fmt(champion['champion_pr_auc'])} for the current model {champion['version']}, "
        "which stays current (a retrained version replaces it only when it ranks at least "
        "as well). `shopfloor status` lists the candidates.\n"
    )
