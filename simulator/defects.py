"""Defects that real file servers show, injected at configurable rates.

Defects draw from random streams of their own, separate from the signal, so
a fleet simulated with defects and the same fleet without them carry the same
readings: the difference between the two is exactly what the manifest lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from simulator.fleet import PLANT_UTC_OFFSET_H

# Rates are per file unless the name says otherwise.
FILE_DEFECTS = (
    "truncated",
    "empty_file",
    "resend_same_name",
    "resend_other_name",
    "garbage_line",
    "wrong_column_count",
    "non_numeric",
    "sensor_dropout",
    "stuck_sensor",
    "spike",
    "latin1_encoding",
)
EPISODE_DEFECTS = ("missing_hour", "clock_drift", "offset_change", "firmware_new_column")
ALL_DEFECTS = FILE_DEFECTS + EPISODE_DEFECTS
NON_NUMERIC_TOKENS = ("ERR", "#N/D", "---", "OVF")


@dataclass(frozen=True)
class DefectRates:
    """Probability of each defect: per file, or per machine-day for episodes."""

    truncated: float = 0.004
    empty_file: float = 0.002
    resend_same_name: float = 0.004
    resend_other_name: float = 0.004
    garbage_line: float = 0.004
    wrong_column_count: float = 0.008
    non_numeric: float = 0.008
    sensor_dropout: float = 0.008
    stuck_sensor: float = 0.004
    spike: float = 0.008
    latin1_encoding: float = 0.003
    # episodes, per machine-day
    missing_hour: float = 0.05
    clock_drift: float = 0.03
    offset_change: float = 0.02
    firmware_new_column: float = 0.04

    @classmethod
    def profile(cls, name: str) -> DefectRates:
        if name == "none":
            return cls(**{f.name: 0.0 for f in fields(cls)})
        if name == "realistic":
            return cls()
        if name == "stress":  # every class shows up even in a small fleet
            return cls(
                **{f.name: (0.35 if f.name in EPISODE_DEFECTS else 0.06) for f in fields(cls)}
            )
        raise ValueError(f"unknown defect profile {name!r}: use none, realistic or stress")

    def with_overrides(self, overrides: dict[str, float]) -> DefectRates:
        unknown = set(overrides) - set(ALL_DEFECTS)
        if unknown:
            raise ValueError(f"unknown defect(s) {sorted(unknown)}; known: {list(ALL_DEFECTS)}")
        return replace(self, **overrides)


@dataclass
class Episodes:
    """Per machine, per hour: how the machine's clock, firmware and uplink behave."""

    missing: np.ndarray  # bool per hour
    drift_s: np.ndarray  # clock lead in seconds at the start of each hour
    drift_rate: np.ndarray  # seconds gained per hour during that hour
    offset_h: np.ndarray  # UTC offset the clock uses in each hour
    new_firmware: np.ndarray  # bool per hour: firmware update installed


def plan_episodes(rates: DefectRates, hours: int, seed: int, machine_index: int) -> Episodes:
    """Causal per-machine episodes: an hour's plan never depends on later hours."""
    rng = np.random.default_rng([seed, machine_index, 5])
    per_hour = 1.0 / 24.0
    missing = np.zeros(hours, dtype=bool)
    drift_s = np.zeros(hours)
    drift_rate = np.zeros(hours)
    offset_h = np.full(hours, PLANT_UTC_OFFSET_H, dtype=np.int64)
    new_fw = np.zeros(hours, dtype=bool)
    h = 0
    updated = False
    while h < hours:
        u = rng.random(4)
        if u[0] < rates.missing_hour * per_hour and h > 0:
            missing[h : h + int(rng.integers(1, 7))] = True
        if u[1] < rates.clock_drift * per_hour:
            rate, length = float(rng.uniform(30, 120)), int(rng.integers(6, 36))
            for k in range(min(length, hours - h)):
                drift_s[h + k] = rate * k
                drift_rate[h + k] = rate
        if u[2] < rates.offset_change * per_hour:
            offset_h[h : h + int(rng.integers(12, 72))] = PLANT_UTC_OFFSET_H + 1
        if not updated and u[3] < rates.firmware_new_column * per_hour:
            updated = True
        new_fw[h] = updated
        h += 1
    return Episodes(missing, drift_s, drift_rate, offset_h, new_fw)


def plan_late_delivery(share: float, hours: int, seed: int, machine_index: int) -> np.ndarray:
    """Per hour, the hour at whose end the machine's file reaches the file server.

    On a share of machine-days the machine's uplink goes down for 6 to 72 hours; the
    files it writes meanwhile arrive together when it comes back (possibly after the
    simulated period: those files are written by a later, longer simulation). An hour
    on time is delivered at its own end. Causal, like plan_episodes: a longer
    simulation never changes the deliveries of earlier hours.
    """
    rng = np.random.default_rng([seed, machine_index, 6])
    delivered = np.arange(hours)
    h = 1
    while h < hours:
        if rng.random() < share / 24.0:
            back = h + int(rng.integers(6, 73))
            delivered[h : min(back, hours)] = back
            h = back
        else:
            h += 1
    return delivered


@dataclass
class FilePlan:
    """The file-level defects one file gets (decided before rendering)."""

    defects: set[str] = field(default_factory=set)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)


def plan_file(rates: DefectRates, seed: int, machine_index: int, hour_index: int) -> FilePlan:
    rng = np.random.default_rng([seed, machine_index, hour_index, 4])
    draws = rng.random(len(FILE_DEFECTS))
    chosen = {name for name, u in zip(FILE_DEFECTS, draws, strict=True) if u < getattr(rates, name)}
    if "empty_file" in chosen:  # nothing else can be seen in an empty file
        chosen = {"empty_file"} | (chosen & {"resend_other_name", "resend_same_name"})
    return FilePlan(chosen, rng)


def record(defect: str, machine_id: str, hour: str, file: str | None, **detail: Any) -> dict:
    """One manifest line."""
    return {"defect": defect, "machine_id": machine_id, "hour": hour, "file": file, **detail}
