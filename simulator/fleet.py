"""Hour-by-hour life of each machine: shifts, load, wear, failures, maintenance.

This is the cheap, sequential part of the simulation. It is causal (an hour
depends only on earlier hours), so simulating more days never changes the
days already simulated, and each machine has its own random stream, so the
fleet size does not change a machine's history either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from simulator.models import MODELS, MachineModel

PLANT_UTC_OFFSET_H = -3  # America/Sao_Paulo has had no daylight saving since 2019
PLANT = "Fábrica São Bernardo"
TIMEZONE = "America/Sao_Paulo"

TECHNICIANS = (
    "Ana Souza",
    "Bruno Lima",
    "Carla Ferreira",
    "Diego Santos",
    "Eduarda Rocha",
    "Felipe Almeida",
    "Gabriela Costa",
    "Henrique Oliveira",
)
PREVENTIVE_NOTES = (
    "Preventiva programada; {tech} lubrificou guias e trocou filtros",
    "Inspeção geral, reaperto de conexões. Acompanhado por {tech}",
    "Preventiva: troca de óleo e limpeza do trocador, sem anomalias",
    "Plano de manutenção cumprido por {tech}; nenhuma observação",
)
CORRECTIVE_NOTES = (
    "Máquina parou em alarme; {tech} substituiu {component}",
    "Falha em {component}. {tech} trocou a peça e testou em vazio",
    "Ruído anormal antes da parada; {component} substituído por {tech}",
    "Operador chamou {tech}: {component} danificado, troca realizada",
)


@dataclass(frozen=True)
class FleetConfig:
    machines: int = 10
    start: datetime = datetime(2026, 3, 2, 3, tzinfo=UTC)  # 00:00 at the plant
    hours: int = 24
    seed: int = 42
    wear_scale: float = 1.0  # >1 wears machines out faster (more failures per day)
    pm_interval_days: float = 14.0


@dataclass
class MaintenanceEvent:
    work_order: str
    machine_id: str
    started_at: datetime
    ended_at: datetime
    maintenance_type: str  # preventive | corrective
    component: str
    failure_mode: str
    technician: str
    notes: str
    failure_at: datetime | None = None  # corrective only: when the machine failed


@dataclass
class HourState:
    """What the renderer needs to draw one hour of one machine."""

    index: int
    start: datetime
    scheduled_run: bool
    load: float
    prev_load: float
    wear_start: np.ndarray
    wear_end: np.ndarray
    # (start_s, end_s, status) within the hour, later entries win
    segments: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class Machine:
    machine_id: str
    index: int
    model: MachineModel
    line: str
    installed_on: str
    level_factor: np.ndarray  # per-sensor multiplicative baseline offset
    wear_rates: np.ndarray  # per wear process
    pm_phase_days: float
    hours: list[HourState] = field(default_factory=list)
    events: list[MaintenanceEvent] = field(default_factory=list)


def machine_id(index: int) -> str:
    return f"M{index + 1:03d}"


def local_hour(ts: datetime) -> tuple[int, int]:
    """(weekday, hour) at the plant for a UTC instant."""
    local = ts + timedelta(hours=PLANT_UTC_OFFSET_H)
    return local.weekday(), local.hour


def is_shift(ts: datetime) -> bool:
    """Two shifts Mon-Fri 06:00-22:00, Saturday 06:00-14:00, otherwise idle."""
    weekday, hour = local_hour(ts)
    if weekday < 5:
        return 6 <= hour < 22
    return weekday == 5 and 6 <= hour < 14


def hazard(wear: np.ndarray) -> np.ndarray:
    """Failure rate per running hour: negligible when new, steep past wear 0.8."""
    return 0.0004 + 0.12 * np.clip((wear - 0.75) / 0.45, 0.0, None) ** 2


def build_machine(cfg: FleetConfig, index: int) -> Machine:
    rng = np.random.default_rng([cfg.seed, index, 1])
    model = MODELS[index % len(MODELS)]
    installed = datetime(2019, 1, 1) + timedelta(days=int(rng.integers(0, 5 * 365)))
    return Machine(
        machine_id=machine_id(index),
        index=index,
        model=model,
        line=f"L{index // 5 + 1}",
        installed_on=installed.date().isoformat(),
        level_factor=rng.normal(1.0, [s.spread for s in model.sensors]),
        wear_rates=np.array([w.rate_per_run_hour for w in model.wear])
        * rng.lognormal(0.0, 0.25, len(model.wear))
        * cfg.wear_scale,
        pm_phase_days=float(rng.uniform(0, cfg.pm_interval_days)),
    )


def simulate_machine(cfg: FleetConfig, index: int) -> Machine:
    """Run one machine through cfg.hours hours and record its maintenance log."""
    machine = build_machine(cfg, index)
    rng = np.random.default_rng([cfg.seed, index, 2])
    n_wear = len(machine.model.wear)
    wear = rng.uniform(0.0, 0.5, n_wear)
    blocked_until = cfg.start  # machine in alarm or maintenance until then
    next_pm = cfg.start + timedelta(days=machine.pm_phase_days)
    prev_load = 0.0
    work_orders = 0

    def new_event(**kwargs: object) -> MaintenanceEvent:
        nonlocal work_orders
        work_orders += 1
        tech = TECHNICIANS[int(rng.integers(0, len(TECHNICIANS)))]
        return MaintenanceEvent(
            work_order=f"WO-{machine.index + 1:03d}{work_orders:04d}",
            machine_id=machine.machine_id,
            technician=tech,
            **kwargs,  # type: ignore[arg-type]
        )

    for h in range(cfg.hours):
        start = cfg.start + timedelta(hours=h)
        scheduled = is_shift(start)
        load = float(rng.uniform(0.55, 1.0)) if scheduled else 0.0
        state = HourState(h, start, scheduled, load, prev_load, wear.copy(), wear.copy())
        segments = state.segments
        if scheduled:
            segments.append((0, 3600, "RUN"))
            if rng.random() < 0.35:  # setup or short break inside the shift
                b0 = int(rng.integers(0, 3000))
                segments.append(
                    (b0, b0 + int(rng.integers(300, 1500)), str(rng.choice(["SETUP", "IDLE"])))
                )
        else:
            segments.append((0, 3600, "IDLE"))

        # preventive maintenance is due: first idle-ish slot after the due time
        if start >= next_pm and start >= blocked_until and not scheduled:
            duration = timedelta(minutes=int(rng.integers(120, 300)))
            offset = timedelta(minutes=int(rng.integers(0, 30)))
            ev = new_event(
                started_at=start + offset,
                ended_at=start + offset + duration,
                maintenance_type="preventive",
                component="all",
                failure_mode="",
                notes="",
            )
            ev.notes = str(rng.choice(PREVENTIVE_NOTES)).format(tech=ev.technician.split()[0])
            machine.events.append(ev)
            blocked_until = ev.ended_at
            next_pm = start + timedelta(days=cfg.pm_interval_days)
            wear = wear * 0.1  # imperfect renewal

        _apply_events(segments, machine.events[-3:], start)
        run_seconds = _run_seconds(segments)
        if run_seconds > 0:
            frac = run_seconds / 3600
            gained = machine.wear_rates * load * frac * rng.lognormal(0, 0.3, n_wear)
            p_fail = 1.0 - np.exp(-hazard(wear + gained / 2) * frac)
            failed = np.flatnonzero(rng.random(n_wear) < p_fail)
            wear = wear + gained
            if failed.size:
                process = machine.model.wear[int(failed[0])]
                fail_s = _random_run_second(segments, rng)
                failure_at = start + timedelta(seconds=fail_s)
                response = timedelta(minutes=int(rng.integers(20, 180)))
                repair = timedelta(minutes=int(rng.integers(120, 600)))
                ev = new_event(
                    started_at=failure_at + response,
                    ended_at=failure_at + response + repair,
                    maintenance_type="corrective",
                    component=process.component,
                    failure_mode=process.failure_mode,
                    notes="",
                    failure_at=failure_at,
                )
                ev.notes = str(rng.choice(CORRECTIVE_NOTES)).format(
                    tech=ev.technician.split()[0], component=process.component
                )
                machine.events.append(ev)
                blocked_until = ev.ended_at
                _apply_events(segments, [ev], start)
                state.wear_end = wear.copy()
                wear[int(failed[0])] = rng.uniform(0.0, 0.08)  # the part is replaced
            else:
                state.wear_end = wear.copy()
        prev_load = load * run_seconds / 3600
        machine.hours.append(state)
    return machine


def _apply_events(
    segments: list[tuple[int, int, str]], events: list[MaintenanceEvent], start: datetime
) -> None:
    """Overlay alarm (failure until repair starts) and maintenance on the hour's schedule."""

    def sec(ts: datetime) -> int:
        return int(min(max((ts - start).total_seconds(), 0), 3600))

    for ev in events:
        if ev.failure_at is not None and sec(ev.failure_at) < sec(ev.started_at):
            segments.append((sec(ev.failure_at), sec(ev.started_at), "ALARM"))
        if sec(ev.started_at) < sec(ev.ended_at):
            segments.append((sec(ev.started_at), sec(ev.ended_at), "MAINT"))


def _run_seconds(segments: list[tuple[int, int, str]]) -> int:
    status = np.empty(3600, dtype="U5")
    for s0, s1, st in segments:
        status[s0:s1] = st
    return int((status == "RUN").sum())


def _random_run_second(segments: list[tuple[int, int, str]], rng: np.random.Generator) -> int:
    status = np.empty(3600, dtype="U5")
    for s0, s1, st in segments:
        status[s0:s1] = st
    run = np.flatnonzero(status == "RUN")
    return int(run[int(rng.integers(0, run.size))])
