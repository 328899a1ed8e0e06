"""The simulated fleets the test modules build on: one declaration per shape.

A module takes its shape's landing area from the session's `fleets` fixture
(tests/conftest.py), which simulates each shape once per test session and hands out
copies; a module that lets its plant grow writes the later hours into its copy with
`FleetShape.extend`. Hand-made plants, with shapes the simulator never writes, are in
tests/landing.py.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.simulate import SimulationConfig, simulate


@dataclass(frozen=True)
class FleetShape:
    machines: int
    hours: int
    seed: int
    wear_scale: float = 1.5
    sample_interval_s: int = 600
    defects: str = "realistic"

    def extend(self, root: Path, hours: int | None = None) -> None:
        """Write the shape's files up to `hours` under root (files already there are kept)."""
        fleet = FleetConfig(
            machines=self.machines,
            hours=hours or self.hours,
            seed=self.seed,
            wear_scale=self.wear_scale,
        )
        simulate(
            SimulationConfig(
                out=str(root),
                fleet=fleet,
                sample_interval_s=self.sample_interval_s,
                defects=DefectRates.profile(self.defects),
                workers=2,
                skip_existing=True,
            )
        )


_DEMO = SimulationConfig.demo("")

SHAPES = {
    # `shopfloor demo`'s sample fleet: the ML module trains on it
    "demo": FleetShape(
        machines=_DEMO.fleet.machines,
        hours=_DEMO.fleet.hours,
        seed=_DEMO.fleet.seed,
        wear_scale=_DEMO.fleet.wear_scale,
        sample_interval_s=_DEMO.sample_interval_s,
    ),
    # three machines, every file defect the simulator knows, a reading every 2 minutes
    "stress": FleetShape(machines=3, hours=72, seed=21, sample_interval_s=120, defects="stress"),
    # a young plant that grows into one with failures: `shopfloor run` end to end
    "hourly": FleetShape(machines=6, hours=20 * 24, seed=5),
    # a reading every 15 minutes: serving-layer readers during runs
    "serving": FleetShape(machines=4, hours=3 * 24, seed=9, sample_interval_s=900),
    # fast wear, so nine days train a model: the lakehouse on S3
    "lake": FleetShape(machines=4, hours=9 * 24, seed=11, wear_scale=3.0),
    # another seed and wear than the demo's, for the alert policy
    "policy": FleetShape(machines=8, hours=45 * 24, seed=11, wear_scale=2.0),
}


class Fleets:
    """Each shape simulated once into a cache shared by the session's workers; every
    caller gets a copy it may add files to."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def copy(self, name: str, into: Path, hours: int | None = None) -> Path:
        """A copy of shape `name` at `hours` (default: the shape's) under `into`; the
        landing area is `into / "landing"`."""
        shape = SHAPES[name]
        key = f"{name}-{hours or shape.hours}h"
        built = self.cache / key
        with FileLock(str(self.cache / f"{key}.lock")):
            if not (built / ".complete").exists():
                shutil.rmtree(built, ignore_errors=True)
                shape.extend(built, hours)
                (built / ".complete").touch()
        shutil.copytree(built, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
        return into
