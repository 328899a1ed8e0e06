"""The drift measure on made-up distributions: no warehouse, no fleet (fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml import drift


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(7)
    train = rng.normal(50.0, 2.0, 5_000)
    edges = np.unique(np.quantile(train, np.linspace(0, 1, drift.BINS + 1)[1:-1]))
    expected = drift.shares(train, edges)
    assert abs(expected.sum() - 1.0) < 1e-12 and len(expected) == drift.BINS
    same = drift.psi(expected, drift.shares(rng.normal(50.0, 2.0, 1_000), edges))
    shifted = drift.psi(expected, drift.shares(rng.normal(52.0, 2.0, 1_000), edges))
    assert same < 0.05 < 0.25 < shifted
    # every hour past the training range: one bin holds everything, PSI is finite and large
    beyond = drift.psi(expected, drift.shares(np.full(100, 99.0), edges))
    assert np.isfinite(beyond) and beyond > shifted


def test_the_reference_keeps_the_features_that_tell_failures_apart() -> None:
    rng = np.random.default_rng(11)
    n = 2_000
    fails = rng.random(n) < 0.2
    train = pd.DataFrame(
        {
            "will_fail_within_horizon": fails,
            "m__telling": rng.normal(0, 1, n) + 2.0 * fails,
            "m__noise": rng.normal(0, 1, n),
            "machine_model": "HP-200",
        }
    )
    features = ["m__telling", "m__noise", "machine_model"]
    ref = drift.reference(train, features)
    assert next(iter(ref)) == "m__telling" and "machine_model" not in ref
    assert len(ref["m__telling"]["expected"]) == len(ref["m__telling"]["edges"]) + 1
