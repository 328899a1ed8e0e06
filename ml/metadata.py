"""What a model version records beside its model (`metadata.json`): one declaration that
training writes and scoring, the alert policy, the report and the CLI read."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class ModelMetadata(TypedDict):
    """What a model version records next to its model (metadata.json): how it was trained,
    on what, how it scored on the test period, and the alert threshold scoring uses."""

    version: str
    trained_at: str  # ISO 8601, UTC
    label: str
    horizon_hours: int
    policy: dict[str, Any]  # AlertPolicy.to_dict()
    seed: int
    periods: dict[str, Any]  # train / validation / test bounds
    rows: dict[str, int]  # machine-hours per period
    positives: dict[str, int]  # labelled hours per period
    features: list[str]
    features_screened_out: NotRequired[int]  # sensor statistics dropped by screen()
    categorical: list[str]
    reference_values: dict[str, float]  # training medians: what "unusual" is measured from
    # the most telling features' training deciles, what drift is measured against (ml.drift)
    drift_reference: NotRequired[dict[str, dict[str, list[float]]]]
    threshold: float
    # the watch list's cut: a failure within the horizon likely (best F1 on validation)
    watch_threshold: NotRequired[float]
    # "current" (LATEST names it: it scores) or "candidate" (it lost to the current model
    # on this version's test period; kept, never scoring); and that comparison
    status: NotRequired[str]
    champion: NotRequired[dict[str, Any]]
    metrics: dict[str, Any]  # per rule (model, baselines) and the machine-grouped split
    warnings: list[str]
    data_fingerprint: str
    library_versions: dict[str, str]
    trusted_types: NotRequired[list[str]]  # what loading the model may instantiate (skops)
