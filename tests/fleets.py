"""Simulated fleets for the tests that need a plant of their own."""

from __future__ import annotations

from pathlib import Path

from shopfloor.simulator.defects import DefectRates
from shopfloor.simulator.fleet import FleetConfig
from shopfloor.simulator.simulate import SimulationConfig, simulate


def simulate_fleet(
    root: Path,
    *,
    machines: int,
    hours: int,
    seed: int,
    wear_scale: float = 1.5,
    sample_interval_s: int = 600,
) -> None:
    """Write (or extend: files already there are kept) a fleet's landing area under root."""
    simulate(
        SimulationConfig(
            out=str(root),
            fleet=FleetConfig(machines=machines, hours=hours, seed=seed, wear_scale=wear_scale),
            sample_interval_s=sample_interval_s,
            defects=DefectRates.profile("realistic"),
            workers=2,
            skip_existing=True,
        )
    )
