"""Shared test set-up: no test or module leaks environment variables into the next; the
simulated fleet shapes, each simulated once per session; the slowest modules first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.fleets import Fleets


def pytest_configure(config: pytest.Config) -> None:
    # dbt's debug log file (<repo>/logs/dbt.log, one file for every dbt process of both
    # workers, rotated every 10 MB) is read by no test; writing it costs each build CPU
    os.environ.setdefault("DBT_LOG_LEVEL_FILE", "none")


@contextmanager
def _environment_restored() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True, scope="module")
def _restore_environment_after_the_module() -> Iterator[None]:
    """What a module's fixtures put in the environment ends with the module."""
    with _environment_restored():
        yield


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    with _environment_restored():
        yield


@pytest.fixture(scope="session")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Fleets:
    """The simulated fleet shapes of tests/fleets.py, each simulated once per session
    (shared by pytest-xdist's workers, whose temporary folders are siblings)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return Fleets(shared / "fleets")


# the slowest modules first: with one file per worker (--dist loadfile) a long module
# collected last would run alone at the end. pytest-xdist keeps this order only with
# --no-loadscope-reorder (pyproject.toml); by default it sorts the files by their number
# of tests, which put the slowest modules (few, long tests) last
_SLOW_FIRST = (  # by their measured total time (setup + calls), longest first
    "test_outside_data.py",
    "test_run.py",
    "test_ml.py",
    "test_lakehouse.py",
    "test_hostile.py",
    "test_build_batches.py",
    "test_serving.py",
    "test_alert_policy.py",
    "test_dbt.py",
    "test_ingestion.py",
    "test_settings.py",
    "test_simulator.py",
    "test_real_data.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return _SLOW_FIRST.index(name) if name in _SLOW_FIRST else len(_SLOW_FIRST)

    items.sort(key=rank)
