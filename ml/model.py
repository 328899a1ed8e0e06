"""Train, evaluate and save the maintenance model; load it back safely.

The estimator is a scikit-learn pipeline: the machine model ordinal-encoded as a
categorical feature, then a HistGradientBoostingClassifier (missing values native: a
sensor a machine model does not have is NaN). It is fitted on the training period and
calibrated (sigmoid) on the validation period, where the alert threshold is chosen too;
the test period is only ever predicted.

Class imbalance (about one hour in eight is positive) is handled by threshold moving:
no reweighting or resampling, which would bias the probabilities the maintenance team
reads; the threshold is the alert policy's choice on validation (`ml.policy`), and PR-AUC
is the headline metric.

Artifacts go to ``<models>/<version>/`` as ``model.skops`` (skops: no pickle, loading
only the types recorded at training time, all from scikit-learn/numpy) and
``metadata.json`` (training window, features, metrics, data fingerprint, versions).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from ml import drift, evaluate
from ml.features import CATEGORICAL, KEYS, LABEL, FeatureFrame, labels, load_features, matrix
from ml.metadata import ModelMetadata
from ml.policy import AlertPolicy, PeriodOutcomes, choose_threshold

LATEST = "LATEST"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    horizon_hours: int | None = None  # None: the horizon the marts' label was built with
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    grouped_folds: int = 2  # machine-grouped evaluation folds (0: skip it)


def make_pipeline(features: list[str], seed: int) -> Pipeline:
    categorical = [f for f in features if f in CATEGORICAL]
    numeric = [f for f in features if f not in CATEGORICAL]
    encode = ColumnTransformer(
        [
            (
                "machine_model",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                categorical,
            ),
            ("sensors", "passthrough", numeric),
        ],
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=200,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        categorical_features=list(range(len(categorical))),
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("classify", classifier)])


def fingerprint(frame: pd.DataFrame, features: list[str]) -> str:
    """SHA-256 over the rows and columns the model was trained on (order-independent)."""
    cols = [*KEYS, *sorted(features), LABEL]
    hashed = pd.util.hash_pandas_object(
        frame[cols].sort_values(list(KEYS)).reset_index(drop=True), index=False
    )
    digest = hashlib.sha256(hashed.to_numpy().tobytes())
    digest.update("\x1f".join(cols).encode())
    return digest.hexdigest()


def failures_from(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Corrective events (their reported time is the failure time), from the marts."""
    return con.sql(
        "select machine_id, reported_at as failure_at from marts.fct_maintenance_events"
        " where maintenance_type = 'corrective' order by failure_at"
    ).df()


MIN_FAILURE_HOURS = 5  # labelled failure hours in all, and at least one in each period


class NotEnoughHistoryError(ValueError):
    """Too little labelled history to train: a young plant, not an error of the run."""


@dataclass(frozen=True)
class Readiness:
    """How much labelled history the marts hold, and whether it is enough to train."""

    failures: int  # corrective failures reported in the marts
    labelled_hours: int
    failure_hours: int  # labelled hours whose horizon holds a failure
    failure_hours_by_period: tuple[int, int, int]  # train, validation, test
    other_hours_by_period: tuple[int, int, int]

    @property
    def ready(self) -> bool:
        return (
            self.failure_hours >= MIN_FAILURE_HOURS
            and min(self.failure_hours_by_period) > 0
            and min(self.other_hours_by_period) > 0
        )

    def blockers(self) -> list[str]:
        """What stops training, each with the data that would remove it (none: ready)."""
        periods = ("train", "validation", "test")
        out = []
        if self.failure_hours < MIN_FAILURE_HOURS:
            out.append(
                f"{self.failure_hours} labelled hour(s) before a failure where training needs "
                f"{MIN_FAILURE_HOURS}: more corrective work orders in the maintenance log, "
                "with the machines' files of the hours before them"
            )
        split = any(self.other_hours_by_period) or any(self.failure_hours_by_period)
        if self.labelled_hours and not split:
            out.append(
                "too few labelled hours to split into train, validation and test periods "
                "in time: more days of history"
            )
            return out
        no_failure = [
            p for p, n in zip(periods, self.failure_hours_by_period, strict=True) if not n
        ]
        if no_failure and self.failure_hours >= MIN_FAILURE_HOURS:
            out.append(
                f"no hour before a failure in the {' and '.join(no_failure)} period(s) (the "
                "labelled time is cut in order: 60 % train, 20 % validation, 20 % test): "
                "a failure in each, which more history brings"
            )
        no_other = [p for p, n in zip(periods, self.other_hours_by_period, strict=True) if not n]
        if no_other:
            out.append(
                f"no hour without a failure ahead in the {' and '.join(no_other)} period(s): "
                "hours of normal running there (more history, or machines that did not fail)"
            )
        return out

    def describe(self) -> str:
        train, validation, test = self.failure_hours_by_period
        history = (
            f"{self.failures} failure(s) and {self.labelled_hours:,} labelled machine-hours so "
            f"far, {self.failure_hours} of them before a failure (train / validation / test "
            f"periods: {train} / {validation} / {test})"
        )
        blockers = self.blockers()
        return (
            f"{history}; what training still needs: {'; '.join(blockers)}" if blockers else history
        )


def label_horizon(con: duckdb.DuckDBPyConnection) -> int:
    """The label horizon the feature mart was built with (one value in every row)."""
    found = con.sql(
        "select distinct label_horizon_hours from marts.fct_machine_hour_features"
    ).fetchall()
    if len(found) > 1:
        raise ValueError(f"the feature mart mixes label horizons {sorted(found)}: rebuild it")
    return int(found[0][0]) if found else 24


def readiness(con: duckdb.DuckDBPyConnection) -> Readiness:
    """Read from the marts (no pivot): cheap enough to ask before every scoring."""
    hours = con.sql(
        f"select hour_at, {LABEL} as label from marts.fct_machine_hour_features"
        f" where {LABEL} is not null"
    ).df()
    (failures,) = con.sql(
        "select count(*) from marts.fct_maintenance_events where maintenance_type = 'corrective'"
    ).fetchone() or (0,)
    by_period: list[tuple[int, int]] = [(0, 0)] * 3
    if hours["hour_at"].nunique() >= evaluate.MIN_LABELLED_HOURS:
        periods = evaluate.split_periods(hours)
        by_period = [
            (int(part["label"].sum()), int((~part["label"].astype(bool)).sum()))
            for part in (periods.part(hours, name) for name in ("train", "validation", "test"))
        ]
    return Readiness(
        failures=int(failures),
        labelled_hours=len(hours),
        failure_hours=int(hours["label"].sum()) if len(hours) else 0,
        failure_hours_by_period=(by_period[0][0], by_period[1][0], by_period[2][0]),
        other_hours_by_period=(by_period[0][1], by_period[1][1], by_period[2][1]),
    )


@dataclass
class TrainResult:
    version: str
    path: str  # the version's folder or URL
    metadata: ModelMetadata


def train(
    con: duckdb.DuckDBPyConnection,
    models_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fit, calibrate, evaluate against the baselines, and save a new model version."""
    config = config or TrainConfig()
    built_with = label_horizon(con)
    if config.horizon_hours not in (None, built_with):
        raise ValueError(
            f"refusing to train: the marts' label looks {built_with} h ahead "
            f"(dbt var label_horizon_hours), the training asks for {config.horizon_hours} h"
        )
    config = replace(config, horizon_hours=built_with)
    if not (ready := readiness(con)).ready:
        raise NotEnoughHistoryError(f"not enough history to train yet: {ready.describe()}")
    data: FeatureFrame = load_features(con)
    labelled = data.labelled
    periods = evaluate.split_periods(labelled)
    train_part = periods.part(labelled, "train")
    validation = periods.part(labelled, "validation")
    test = periods.part(labelled, "test")
    # a feature with no value in the training period cannot be learned (e.g. a sensor
    # that appeared later): it joins at the next training
    features = _observed(train_part, data.features)
    # screening: a sensor statistic that ranks the training hours no better than chance
    # carries nothing the trees should split on
    screened_out = len(features)
    features = screen(train_part, features)
    screened_out -= len(features)

    step = on_step or (lambda _message: None)
    step(f"fitting on {len(train_part):,} machine-hours x {len(features)} features")
    pipeline = make_pipeline(features, config.seed)
    pipeline.fit(matrix(train_part, features), labels(train_part))
    step(f"calibrating on {len(validation):,} validation hours; choosing the alert threshold")
    model = CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid")
    model.fit(matrix(validation, features), labels(validation))
    failures = failures_from(con)
    judge = {
        name: evaluate.outcomes(part, failures, horizon_hours=built_with, policy=config.policy)
        for name, part in (("train", train_part), ("validation", validation), ("test", test))
    }
    # both cuts are chosen on the validation period (never the test): the alert threshold
    # by the policy, the watch list's by the best F1 of "fails within the horizon"
    validation_risk = model.predict_proba(matrix(validation, features))[:, 1]
    threshold = choose_threshold(judge["validation"], validation_risk)
    watch_threshold = evaluate.watch_list_threshold(labels(validation), validation_risk)
    step("evaluating on the test period against the baselines")
    test_risk = model.predict_proba(matrix(test, features))[:, 1]
    metrics: dict[str, Any] = {
        "model": evaluate.alert_metrics(judge["test"], test_risk, threshold),
        "watch_list": evaluate.alert_metrics(judge["test"], test_risk, watch_threshold),
    }
    for rule in (
        evaluate.fixed_interval_baseline(train_part),
        evaluate.single_sensor_baseline(train_part, features),
    ):  # the baselines get the same policy, their threshold chosen on the training period
        rule_threshold = choose_threshold(judge["train"], evaluate.baseline_score(rule, train_part))
        rule["threshold"] = rule_threshold
        metrics[str(rule["name"])] = evaluate.alert_metrics(
            judge["test"], evaluate.baseline_score(rule, test), rule_threshold
        ) | {"rule": rule}
    if config.grouped_folds:
        step(f"machine-grouped evaluation ({config.grouped_folds} folds)")
    metrics["machine_grouped"] = machine_grouped_split(labelled, features, config)

    trained_at = (now or datetime.now(UTC)).replace(microsecond=0)
    data_fingerprint = fingerprint(labelled, features)
    version = f"{trained_at:%Y%m%dT%H%M%SZ}-{data_fingerprint[:8]}"
    reference = {
        f: float(np.nanmedian(train_part[f].astype("float64")))
        for f in features
        if f not in CATEGORICAL and train_part[f].notna().any()
    }
    metadata: ModelMetadata = {
        "version": version,
        "trained_at": trained_at.isoformat(),
        "label": LABEL,
        "horizon_hours": built_with,
        "policy": config.policy.to_dict(),
        "seed": config.seed,
        "periods": periods.to_dict(),
        "rows": {"train": len(train_part), "validation": len(validation), "test": len(test)},
        "positives": {
            "train": int(labels(train_part).sum()),
            "validation": int(labels(validation).sum()),
            "test": int(labels(test).sum()),
        },
        "features": features,
        "features_screened_out": screened_out,
        "categorical": [f for f in features if f in CATEGORICAL],
        "reference_values": reference,
        "drift_reference": drift.reference(train_part, features),
        "threshold": threshold,
        "watch_threshold": watch_threshold,
        "metrics": metrics,
        "warnings": beaten_by_baselines(metrics),
        "data_fingerprint": data_fingerprint,
        "library_versions": {
            name: package_version(name)
            for name in ("scikit-learn", "numpy", "pandas", "duckdb", "skops", "shopfloor")
        }
        | {"python": platform.python_version()},
    }
    # champion / challenger: the new version replaces the current one only if it ranks the
    # latest labelled period (its test period) at least as well
    champion = compare_with_current(models_dir, test, judge["test"], metrics["model"])
    if champion is not None:
        metadata["champion"] = champion
        if not champion["challenger_wins"]:
            metadata["status"] = "candidate"
            metadata["warnings"].insert(
                0,
                f"kept as a candidate, not made current: on the latest labelled period "
                f"({periods.test_start:%Y-%m-%d} .. {periods.test_end:%Y-%m-%d}) its "
                f"PR-AUC {champion['challenger_pr_auc']:.3f} is below the current model "
                f"{champion['version']}'s {champion['champion_pr_auc']:.3f}",
            )
    metadata.setdefault("status", "current")
    path = save(model, metadata, models_dir, make_current=metadata["status"] == "current")
    return TrainResult(version=version, path=path, metadata=metadata)


def compare_with_current(
    models_dir: str | Path,
    test: pd.DataFrame,
    judge: PeriodOutcomes,
    challenger: dict[str, Any],
) -> dict[str, Any] | None:
    """The current model (LATEST) judged on the new version's test period, against it:
    PR-AUC (the ranking, which no threshold changes) decides. None before a first model
    or when the period has no failure hour to rank by."""
    if latest_version(models_dir) is None or challenger.get("pr_auc") is None:
        return None
    current, meta = load(models_dir)
    risk = current.predict_proba(matrix(test, meta["features"]))[:, 1]
    measured = evaluate.alert_metrics(judge, risk, float(meta["threshold"]))
    return {
        "version": meta["version"],
        "champion_pr_auc": measured["pr_auc"],
        "challenger_pr_auc": challenger["pr_auc"],
        "challenger_wins": challenger["pr_auc"] >= measured["pr_auc"] - 1e-9,
    }


def beaten_by_baselines(metrics: dict[str, Any]) -> list[str]:
    """One line per baseline that costs less than the model on the test period."""
    model = metrics["model"]
    return [
        f"the {name.replace('_', '-')} baseline beats the model on the test period: cost "
        f"{metrics[name]['cost']:,.0f} vs {model['cost']:,.0f}"
        for name in ("fixed_interval", "single_sensor")
        if metrics[name]["cost"] < model["cost"]
    ]


def machine_grouped_split(
    labelled: pd.DataFrame, features: list[str], config: TrainConfig
) -> dict[str, object]:
    """Machines held out: trained on some machines, scored on others (whole history)."""
    groups = labelled["machine_id"].to_numpy()
    n_folds = min(config.grouped_folds, len(np.unique(groups)))
    if n_folds < 2:
        return {"folds": 0, "pr_auc": None, "roc_auc": None, "prevalence": None}
    y = labels(labelled)
    scores = np.full(len(labelled), np.nan)
    for train_idx, test_idx in GroupKFold(n_splits=n_folds).split(labelled, y, groups):
        if len(np.unique(y[train_idx])) < 2:  # held-out machines had every failure
            continue
        fold_features = _observed(labelled.iloc[train_idx], features)
        fold = make_pipeline(fold_features, config.seed)
        fold.fit(matrix(labelled.iloc[train_idx], fold_features), y[train_idx])
        scores[test_idx] = fold.predict_proba(matrix(labelled.iloc[test_idx], fold_features))[:, 1]
    from sklearn.metrics import average_precision_score, roc_auc_score

    scored = ~np.isnan(scores)
    y, scores = y[scored], scores[scored]
    if len(np.unique(y)) < 2:
        return {"folds": n_folds, "pr_auc": None, "roc_auc": None, "prevalence": None}
    return {
        "folds": n_folds,
        "pr_auc": float(average_precision_score(y, scores)),
        "roc_auc": float(roc_auc_score(y, scores)),
        "prevalence": float(y.mean()),
    }


def _observed(frame: pd.DataFrame, features: list[str]) -> list[str]:
    return [f for f in features if frame[f].notna().any()]


SCREEN_MIN_AUC_DISTANCE = 0.03  # |ROC-AUC - 0.5| a sensor statistic needs on training


def screen(train: pd.DataFrame, features: list[str]) -> list[str]:
    """The features without the sensor statistics (`<sensor>__<statistic>`) whose values
    rank the training period's labels no better than chance (ROC-AUC within
    SCREEN_MIN_AUC_DISTANCE of 0.5, either direction). The fleet's own columns (age, flags,
    machine model) always stay, and a statistic with fewer than 50 known hours goes."""
    y = labels(train)
    if y.all() or not y.any():
        return features
    kept = []
    for feature in features:
        if "__" not in feature:
            kept.append(feature)
            continue
        distance = evaluate.label_auc_distance(train, feature)
        if distance is not None and distance >= SCREEN_MIN_AUC_DISTANCE:
            kept.append(feature)
    return kept


def save(
    model: object, metadata: ModelMetadata, models_dir: str | Path, *, make_current: bool = True
) -> str:
    """Write a model version under models_dir (a folder or an fsspec URL), then point
    LATEST at it (unless it is only a candidate): a reader never finds LATEST naming a
    version not written yet."""
    import skops.io as sio

    fs, root = _models_fs(models_dir)
    path = f"{root}/{metadata['version']}"
    fs.makedirs(path, exist_ok=True)
    blob = sio.dumps(model)
    fs.pipe_file(f"{path}/model.skops", blob)
    # the types a load may instantiate: recorded now, checked again at load time
    metadata["trusted_types"] = sorted(sio.get_untrusted_types(data=blob))
    fs.pipe_file(f"{path}/metadata.json", json.dumps(metadata, indent=2, default=str).encode())
    if make_current:
        fs.pipe_file(f"{root}/{LATEST}", (metadata["version"] + "\n").encode())
    return path


def _models_fs(models_dir: str | Path) -> tuple[Any, str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(str(models_dir))
    return fs, root.rstrip("/")


def latest_version(models_dir: str | Path) -> str | None:
    """The version LATEST names, or None before the first training."""
    fs, root = _models_fs(models_dir)
    try:
        return str(fs.cat_file(f"{root}/{LATEST}").decode().strip()) or None
    except FileNotFoundError:
        return None


TRUSTED_PREFIXES = (
    "sklearn.",
    "numpy.",
    "builtins.",
    "collections.",
    "scipy.",
    "functools.partial",
)


def versions(models_dir: str | Path) -> list[ModelMetadata]:
    """Every saved version's metadata, oldest first (current and candidates)."""
    fs, root = _models_fs(models_dir)
    try:
        folders = sorted(fs.ls(root, detail=False))
    except FileNotFoundError:
        return []
    found = []
    for folder in folders:
        try:
            found.append(json.loads(fs.cat_file(f"{folder.rstrip('/')}/metadata.json")))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(found, key=lambda meta: meta["trained_at"])


def load(models_dir: str | Path, version: str | None = None) -> tuple[Any, ModelMetadata]:
    """Load a model version (default: the latest trained). Refuses foreign types."""
    import skops.io as sio

    fs, root = _models_fs(models_dir)
    if version is None:
        version = latest_version(models_dir)
        if version is None:
            raise FileNotFoundError(f"no model trained yet in {models_dir} (run `shopfloor train`)")
    path = f"{root}/{version}"
    metadata: ModelMetadata = json.loads(fs.cat_file(f"{path}/metadata.json"))
    blob = fs.cat_file(f"{path}/model.skops")
    untrusted = sio.get_untrusted_types(data=blob)
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if foreign or not set(untrusted) <= set(metadata.get("trusted_types", [])):
        raise ValueError(f"refusing to load {path}: unexpected types {foreign or untrusted}")
    model = sio.loads(blob, trusted=untrusted)
    return model, metadata
