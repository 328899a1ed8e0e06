"""What a young plant's refusal to train says: the actual blocker, and the data that
would remove it (a unit test: no fleet, no warehouse)."""

from __future__ import annotations

from ml.model import MIN_FAILURE_HOURS, Readiness


def test_the_refusal_names_the_period_without_normal_hours_not_the_count() -> None:
    ready = Readiness(
        failures=3,
        labelled_hours=400,
        failure_hours=40,
        failure_hours_by_period=(20, 10, 10),
        other_hours_by_period=(300, 0, 0),
    )
    assert not ready.ready
    text = ready.describe()
    assert "no hour without a failure ahead in the validation and test period(s)" in text
    assert f"training needs {MIN_FAILURE_HOURS}" not in text  # 40 such hours are plenty


def test_the_refusal_names_missing_failures_and_the_period_that_lacks_one() -> None:
    few = Readiness(2, 300, 3, (3, 0, 0), (200, 50, 47))
    assert f"3 labelled hour(s) before a failure where training needs {MIN_FAILURE_HOURS}" in (
        few.describe()
    )
    late = Readiness(4, 500, 30, (30, 0, 0), (300, 85, 85))
    assert "no hour before a failure in the validation and test period(s)" in late.describe()
    young = Readiness(0, 6, 0, (0, 0, 0), (0, 0, 0))
    assert "too few labelled hours to split" in young.describe()
    assert "0 failure(s)" in young.describe()  # what a young plant's run prints
    assert Readiness(5, 500, 30, (10, 10, 10), (300, 80, 80)).blockers() == []
