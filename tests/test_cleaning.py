"""The cleaning keeps faults: hand-made 1 Hz hours, ingested from their text files and built
by dbt, where a sustained shift, a sensor resting at its resolution and isolated spikes
each get the flags a maintenance engineer would give them."""

from __future__ import annotations

import math
import os
import random
from datetime import datetime, timedelta

import duckdb
import pytest

from ingestion.pipeline import IngestConfig, run_ingest
from tests.cli import build_models
from tests.landing import HandMachine, utc, write_registry, write_series

HOUR = utc(2026, 5, 4, 10)
SPIKE_LINES = [120, 400, 777, 1500, 2222, 2900, 3333, 3590]


def noisy(rng: random.Random, k: int) -> float:
    """A real-valued sensor: a slow wave and noise, three decimals."""
    return 100.0 + 2.0 * math.sin(k / 300) + rng.gauss(0.0, 0.5)


def series(values: list[float], decimals: int) -> list[tuple[datetime, str]]:
    return [(HOUR + timedelta(seconds=k), f"{v:.{decimals}f}") for k, v in enumerate(values)]


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, ...]]:
    rng = random.Random(7)
    # a fault that lasts: the reading 50 % higher for ten minutes, then back
    step = [noisy(rng, k) * (1.5 if 1200 <= k < 1800 else 1.0) for k in range(3600)]
    # a flow sensor resting at 32.0 l/min, moving in 0.1 steps now and then
    resting, value = [], 32.0
    for _ in range(3600):
        if rng.random() < 0.08:
            value = round(value + rng.choice((-0.1, 0.1)) - 0.1 * (value > 32.15), 1)
        resting.append(value)
    # isolated spikes, up and down, on a noisy sensor
    spiky = [noisy(rng, k) for k in range(3600)]
    for n, line in enumerate(SPIKE_LINES):
        spiky[line] += (-1) ** n * (15.0 + 5 * n)
    plants = {
        "STEP-1": ("vibration_g", step, 3),
        "REST-1": ("flow_lmin", resting, 1),
        "SPIKE-1": ("pressure_bar", spiky, 3),
    }
    landing = tmp_path_factory.mktemp("landing")
    data = tmp_path_factory.mktemp("data")
    machines = []
    for machine_id, (sensor, values, decimals) in plants.items():
        machine = HandMachine(machine_id, "HC-1", {sensor: 100.0}, sample_interval_s=1)
        write_series(landing, machine, sensor, series(values, decimals))
        machines.append(machine)
    write_registry(landing, machines, sensor_range=1000.0)
    os.environ["SHOPFLOOR_PSEUDONYM_KEY"] = "k"
    assert run_ingest(IngestConfig(landing=str(landing), data_dir=str(data))).status == "succeeded"
    build_models(data, select="+fct_machine_hour_sensors")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.sql(
            "select machine_id, readings, clean_readings, spike_count, stuck_count, "
            "value_mean, raw_value_mean from marts.fct_machine_hour_sensors"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_a_step_that_lasts_ten_minutes_is_no_spike(cleaned: dict[str, tuple[int, ...]]) -> None:
    readings, clean, spikes, stuck, clean_mean, raw_mean = cleaned["STEP-1"]
    assert (readings, spikes, stuck) == (3600, 0, 0)
    assert clean == readings
    assert abs(clean_mean - raw_mean) <= 0.01 * raw_mean
    assert raw_mean > 108  # the step is in the hour's figures (100 without it)


def test_a_sensor_resting_at_its_resolution_is_neither_spiky_nor_stuck(
    cleaned: dict[str, tuple[int, ...]],
) -> None:
    readings, clean, spikes, stuck, *_ = cleaned["REST-1"]
    assert readings == 3600
    assert readings - clean <= 0.01 * readings, (spikes, stuck)


def test_isolated_spikes_are_all_found(cleaned: dict[str, tuple[int, ...]]) -> None:
    readings, clean, spikes, stuck, clean_mean, raw_mean = cleaned["SPIKE-1"]
    assert (readings, spikes, stuck, clean) == (3600, len(SPIKE_LINES), 0, 3600 - len(SPIKE_LINES))
    assert abs(clean_mean - 100.0) < abs(raw_mean - 100.0) or abs(clean_mean - 100.0) < 0.1
