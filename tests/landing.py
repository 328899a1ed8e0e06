"""Hand-made landing areas: plants the simulator never writes.

A few lines of plain Python that write files by the contract (docs/machine-files.md),
sharing no code with the simulator or the ingestion: other machine ids, models and
sensor names, any sample interval down to one reading per hour, hours left out, and
files delivered whenever a test says so.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PLANT_OFFSET = timedelta(hours=-3)


@dataclass
class HandMachine:
    machine_id: str
    model: str
    sensors: dict[str, float]  # sensor column -> typical value
    sample_interval_s: int = 3600
    installed_on: date | None = None
    retired_on: date | None = None
    firmware: str = "7.1"
    line: str = "A"
    skip_hours: set[datetime] = field(default_factory=set)  # hours with no file, ever


def telemetry_rel(machine_id: str, hour: datetime) -> str:
    return f"telemetry/{machine_id}/{hour:%Y/%m/%d}/{machine_id}_{hour:%Y%m%dT%H}.txt"


def render(machine: HandMachine, hour: datetime) -> bytes:
    """One hour file: local time with its offset, decimal comma, ';' separated."""
    local = (hour + PLANT_OFFSET).replace(tzinfo=None)
    stamp = f"{local:%Y-%m-%dT%H:%M:%S}-03:00"
    lines = [
        "# shopfloor machine export v1",
        f"# machine_id: {machine.machine_id}",
        f"# model: {machine.model}",
        f"# firmware: {machine.firmware}",
        "# plant: Planta Teste",
        "# timezone: America/Sao_Paulo",
        f"# start_time: {stamp}",
        f"# sample_interval_s: {machine.sample_interval_s}",
        ";".join(["timestamp", "status", *machine.sensors]),
    ]
    for k in range(math.ceil(3600 / machine.sample_interval_s)):
        t = local + timedelta(seconds=k * machine.sample_interval_s)
        # a smooth, varying signal: no spike or stuck rule can fire on it
        values = [
            f"{base * (1 + 0.01 * math.sin(hour.hour + k + i)):.3f}".replace(".", ",")
            for i, base in enumerate(machine.sensors.values())
        ]
        lines.append(";".join([f"{t:%Y-%m-%dT%H:%M:%S}-03:00", "RUN", *values]))
    return ("\n".join(lines) + "\n").encode()


def write_hours(landing: Path, machine: HandMachine, hours: list[datetime]) -> int:
    """Write the machine's files for these UTC hours (skipping its skip_hours)."""
    written = 0
    for hour in hours:
        if hour in machine.skip_hours:
            continue
        path = landing / telemetry_rel(machine.machine_id, hour)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render(machine, hour))
        delivered = (hour + timedelta(hours=1, minutes=1)).timestamp()  # a finished upload
        os.utime(path, (delivered, delivered))
        written += 1
    return written


def write_registry(landing: Path, machines: list[HandMachine], sensor_range: float = 10.0) -> None:
    """machines.csv with the optional retired_on column, and the sensors' rated ranges."""
    folder = landing / "registry"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "machines.csv").open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(
            ["machine_id", "model", "line", "installed_on", "rated_power_kw", "retired_on"]
        )
        for m in machines:
            out.writerow(
                [
                    m.machine_id,
                    m.model,
                    m.line,
                    (m.installed_on or date(2020, 1, 1)).isoformat(),
                    "22.5",
                    m.retired_on.isoformat() if m.retired_on else "",
                ]
            )
    with (folder / "sensor_ratings.csv").open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["model", "sensor", "unit", "rated_min", "rated_max"])
        seen: set[tuple[str, str]] = set()
        for m in machines:
            for sensor, base in m.sensors.items():
                if (m.model, sensor) not in seen:
                    seen.add((m.model, sensor))
                    unit = sensor.rsplit("_", 1)[-1]
                    out.writerow([m.model, sensor, unit, -sensor_range * base, sensor_range * base])


def write_maintenance(landing: Path, rows: list[tuple[str, str, datetime, datetime, str]]) -> None:
    """(work order, machine, start UTC, end UTC, type) rows in the export's format."""
    folder = landing / "maintenance"
    folder.mkdir(parents=True, exist_ok=True)
    header = (
        "work_order;machine_id;reported_at;started_at;ended_at;maintenance_type;"
        "component;failure_mode;technician;notes"
    )
    lines = [header]
    for work_order, machine_id, start, end, kind in rows:
        s = (start + PLANT_OFFSET).strftime("%d/%m/%Y %H:%M")
        e = (end + PLANT_OFFSET).strftime("%d/%m/%Y %H:%M")
        mode = "desgaste" if kind == "corrective" else ""
        lines.append(f"{work_order};{machine_id};{s};{s};{e};{kind};mancal;{mode};Joana Lima;")
    (folder / "maintenance_log.csv").write_text("\n".join(lines) + "\n")


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """UTC hours start <= h < end."""
    n = int((end - start).total_seconds() // 3600)
    return [start + timedelta(hours=k) for k in range(n)]


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def write_series(
    landing: Path,
    machine: HandMachine,
    sensor: str,
    rows: list[tuple[datetime, str]],
) -> list[str]:
    """Hour files of one sensor's published series, by the contract: each row in the file
    of its timestamp's UTC hour, in the series' own order (a clock that stepped back puts
    repeated times in one file), the value's text kept as published (decimal comma).
    Times are UTC, written with a +00:00 offset. Returns the files' relative paths."""
    return write_table(landing, machine, [sensor], [(at, [value]) for at, value in rows])


def write_table(
    landing: Path,
    machine: HandMachine,
    sensors: list[str],
    rows: list[tuple[datetime, list[str]]],
) -> list[str]:
    """write_series for several sensors: one text per sensor on each row."""
    hours: dict[datetime, list[tuple[datetime, list[str]]]] = {}
    for at, values in rows:
        hours.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append((at, values))
    written = []
    for hour, lines in hours.items():
        text = [
            "# shopfloor machine export v1",
            f"# machine_id: {machine.machine_id}",
            f"# model: {machine.model}",
            f"# firmware: {machine.firmware}",
            "# plant: published data",
            "# timezone: UTC",
            f"# start_time: {hour:%Y-%m-%dT%H:%M:%S}+00:00",
            f"# sample_interval_s: {machine.sample_interval_s}",
            ";".join(["timestamp", "status", *sensors]),
            *(
                ";".join(
                    [f"{at:%Y-%m-%dT%H:%M:%S}+00:00", "RUN"] + [v.replace(".", ",") for v in values]
                )
                for at, values in lines
            ),
        ]
        rel = telemetry_rel(machine.machine_id, hour)
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(text) + "\n")
        delivered = (hour + timedelta(hours=1, minutes=1)).timestamp()  # a finished upload
        os.utime(path, (delivered, delivered))
        written.append(rel)
    return written
