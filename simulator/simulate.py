"""Write a simulated fleet to a landing folder (local or any fsspec URL).

Layout under the output root:
    landing/       what the plant's file server holds (docs/machine-files.md)
    ground_truth/  what really happened and every injected defect; the
                   pipeline never reads it, tests compare against it
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fsspec.implementations.local import LocalFileSystem

from simulator.defects import (
    NON_NUMERIC_TOKENS,
    DefectRates,
    Episodes,
    FilePlan,
    plan_episodes,
    plan_file,
    plan_late_delivery,
    record,
)
from simulator.fleet import (
    PLANT_UTC_OFFSET_H,
    FleetConfig,
    Machine,
    MaintenanceEvent,
    build_machine,
    simulate_machine,
)
from simulator.render import (
    draw_hour,
    format_matrix,
    format_timestamps,
    header_lines,
    join_rows,
)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SimulationConfig:
    out: str = "data/sample"
    fleet: FleetConfig = field(default_factory=FleetConfig)
    sample_interval_s: int = 1
    defects: DefectRates = field(default_factory=DefectRates)
    skip_existing: bool = False  # extend an existing landing area: write only new files
    late_share: float = 0.0  # share of machine-days on which an uplink outage delays files
    workers: int = 0  # 0: one per core

    @classmethod
    def demo(cls, out: str, days: int = 60, workers: int = 0) -> SimulationConfig:
        """The sample fleet of `shopfloor demo`: 10 machines, one reading per 5 minutes,
        realistic file defects and enough failures to train on."""
        return cls(
            out=out,
            fleet=FleetConfig(machines=10, hours=days * 24, seed=42, wear_scale=1.5),
            sample_interval_s=300,
            defects=DefectRates.profile("realistic"),
            workers=workers,
        )


@dataclass
class MachineResult:
    machine_id: str
    files: int
    bytes: int
    defects: list[dict[str, Any]]
    events: list[MaintenanceEvent]


@dataclass
class SimulationResult:
    out: str
    files: int
    bytes: int
    defects: int
    failures: int
    maintenance_events: int
    seconds: float


def telemetry_path(machine_id: str, hour_start: datetime) -> str:
    return f"telemetry/{machine_id}/{hour_start:%Y/%m/%d}/{machine_id}_{hour_start:%Y%m%dT%H}.txt"


def _hour_iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Writer:
    """Writes landing files through fsspec; keeps modification times on local disks."""

    def __init__(self, out: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(out)
        self.local = isinstance(self.fs, LocalFileSystem)
        self._dirs: set[str] = set()

    def path(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}"

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def write(self, rel: str, data: bytes, mtime: float | None = None) -> None:
        full = self.path(rel)
        parent = full.rsplit("/", 1)[0]
        if parent not in self._dirs:
            self.fs.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        with self.fs.open(full, "wb") as fh:
            fh.write(data)
        if mtime is not None and self.local:
            os.utime(full, (mtime, mtime))


def _render_machine(cfg: SimulationConfig, index: int) -> MachineResult:
    fleet = cfg.fleet
    machine = simulate_machine(fleet, index)
    episodes = plan_episodes(cfg.defects, fleet.hours, fleet.seed, index)
    delivery = plan_late_delivery(cfg.late_share, fleet.hours, fleet.seed, index)
    writer = _Writer(cfg.out)
    manifest: list[dict[str, Any]] = []
    files = size = 0
    announced_fw = False
    for hour in machine.hours:
        rel = "landing/" + telemetry_path(machine.machine_id, hour.start)
        hour_iso = _hour_iso(hour.start)
        if episodes.missing[hour.index]:
            manifest.append(record("missing_hour", machine.machine_id, hour_iso, rel[8:]))
            continue
        if delivery[hour.index] >= fleet.hours:  # still on a machine whose uplink is down
            manifest.append(record("late_delivery", machine.machine_id, hour_iso, rel[8:]))
            continue
        plan = plan_file(cfg.defects, fleet.seed, index, hour.index)
        new_fw = bool(episodes.new_firmware[hour.index])
        if new_fw and not announced_fw and "empty_file" not in plan.defects:
            announced_fw = True
            old, new = machine.model.firmwares
            added = [s.name for s in machine.model.sensors if s.since_firmware == new]
            manifest.append(
                record(
                    "firmware_new_column",
                    machine.machine_id,
                    hour_iso,
                    rel[8:],
                    column=added[0],
                    firmware_from=old,
                    firmware_to=new,
                )
            )
        delivered = hour.start.timestamp() + 3600 + 30 + int(plan.rng.integers(0, 240))
        if (late_by := int(delivery[hour.index]) - hour.index) > 0:
            delivered += 3600 * late_by
            manifest.append(
                record(
                    "late_delivery",
                    machine.machine_id,
                    hour_iso,
                    rel[8:],
                    delivered_at=datetime.fromtimestamp(delivered, UTC).isoformat(),
                )
            )
        if cfg.skip_existing and writer.exists(rel):
            data = None
        else:
            data, file_records = _render_file(cfg, machine, hour.index, episodes, plan, rel[8:])
            manifest.extend(file_records)
        if data is not None:
            mtime = delivered
            if "resend_same_name" in plan.defects:
                mtime += 3600 * int(plan.rng.integers(1, 7))
            writer.write(rel, data, mtime)
            files += 1
            size += len(data)
            if "resend_other_name" in plan.defects:
                copy = rel[:-4] + " (1).txt"
                writer.write(copy, data, delivered + 600)
                files += 1
                size += len(data)
        for name in ("resend_same_name", "resend_other_name"):
            if name in plan.defects:
                copy = rel[8:] if name == "resend_same_name" else rel[8:-4] + " (1).txt"
                manifest.append(record(name, machine.machine_id, hour_iso, copy, original=rel[8:]))
    return MachineResult(machine.machine_id, files, size, manifest, machine.events)


def _render_file(
    cfg: SimulationConfig,
    machine: Machine,
    h: int,
    ep: Episodes,
    plan: FilePlan,
    rel: str,
) -> tuple[bytes, list[dict[str, Any]]]:
    """Render one telemetry file with its defects; return bytes and manifest lines."""
    hour = machine.hours[h]
    interval = cfg.sample_interval_s
    mid, hour_iso = machine.machine_id, _hour_iso(hour.start)
    rng = plan.rng
    defects = set(plan.defects)
    out: list[dict[str, Any]] = []

    if "empty_file" in defects:
        out.append(record("empty_file", mid, hour_iso, rel))
        return b"", out

    sig = draw_hour(machine, hour, interval, cfg.fleet.seed)
    firmware = machine.model.firmwares[1 if ep.new_firmware[h] else 0]
    written = {s.name for s in machine.model.sensors_for(firmware)}
    keep = [i for i, s in enumerate(sig.sensors) if s.name in written]
    sensors = [sig.sensors[i] for i in keep]
    values = sig.values[keep].copy()
    n = values.shape[1]

    # clock: a fast clock leads true time; a DST-like offset shifts local time only
    frac = (sig.epoch_s - sig.epoch_s[0]) / 3600.0
    lead = np.rint(ep.drift_s[h] + ep.drift_rate[h] * frac).astype(np.int64)
    stamps = format_timestamps(sig.epoch_s + lead, int(ep.offset_h[h]))
    if lead.any():
        out.append(
            record(
                "clock_drift",
                mid,
                hour_iso,
                rel,
                lead_start_s=int(lead[0]),
                lead_end_s=int(lead[-1]),
            )
        )
    if ep.offset_h[h] != PLANT_UTC_OFFSET_H:
        out.append(record("offset_change", mid, hour_iso, rel, offset_h=int(ep.offset_h[h])))

    # where the upload is cut decides which rows can carry other defects
    cut_row = n
    if "truncated" in defects:
        cut_row = int(rng.integers(int(n * 0.7), n)) if n > 1 else 0
    cell_defects = [
        d
        for d in ("stuck_sensor", "spike", "sensor_dropout", "non_numeric", "wrong_column_count")
        if d in defects
    ]
    if "stuck_sensor" in cell_defects and cut_row < 10:
        cell_defects.remove("stuck_sensor")
    cell_defects = cell_defects[: min(len(cell_defects), cut_row)]
    k = len(cell_defects)
    rows: np.ndarray = rng.choice(cut_row, size=k, replace=False) if k else np.empty(0, int)
    cols: np.ndarray = rng.choice(len(sensors) - 1, size=k, replace=False)
    pos = dict(zip(cell_defects, zip(rows, cols, strict=True), strict=True))
    garbage_at = int(rng.integers(0, cut_row)) if "garbage_line" in defects and cut_row else None

    header = header_lines(machine, firmware, interval, str(stamps[0]), [s.name for s in sensors])

    def line_no(row: int) -> int:  # 1-based physical line of a data row
        return len(header) + 1 + row + (1 if garbage_at is not None and row >= garbage_at else 0)

    if "stuck_sensor" in pos:
        r, c = pos["stuck_sensor"]
        r = min(int(r), cut_row - 10)
        length = int(rng.integers(10, max(11, (cut_row - r))))
        values[c, r : r + length] = values[c, r]
        out.append(
            record(
                "stuck_sensor",
                mid,
                hour_iso,
                rel,
                column=sensors[c].name,
                line_start=line_no(r),
                line_end=line_no(r + length - 1),
            )
        )
    if "spike" in pos:
        r, c = pos["spike"]
        s = sensors[c]
        values[c, r] = max(s.rated_max, s.run, 1.0) * float(rng.uniform(2.0, 5.0))
        out.append(record("spike", mid, hour_iso, rel, column=s.name, line=line_no(int(r))))
    texts = dict(enumerate(format_matrix(values, [s.resolution for s in sensors])))
    if "sensor_dropout" in pos:
        r, c = pos["sensor_dropout"]
        length = int(rng.integers(1, max(2, min(900, cut_row - r) + 1)))
        mask = np.zeros(n, dtype=bool)
        mask[r : r + length] = True
        texts[c] = pc.if_else(pa.array(mask), "", texts[c])
        out.append(
            record(
                "sensor_dropout",
                mid,
                hour_iso,
                rel,
                column=sensors[c].name,
                line_start=line_no(int(r)),
                line_end=line_no(int(r) + length - 1),
            )
        )
    if "non_numeric" in pos:
        r, c = pos["non_numeric"]
        mask = np.zeros(n, dtype=bool)
        mask[r] = True
        token = str(rng.choice(NON_NUMERIC_TOKENS))
        texts[c] = pc.if_else(pa.array(mask), token, texts[c])
        out.append(
            record(
                "non_numeric",
                mid,
                hour_iso,
                rel,
                column=sensors[c].name,
                line=line_no(int(r)),
                value=token,
            )
        )

    status = pa.array(sig.status)
    lines = join_rows([stamps, status, *[texts[c] for c in range(len(sensors))]])
    if "wrong_column_count" in pos:
        r = int(pos["wrong_column_count"][0])
        missing = bool(rng.random() < 0.5)
        lines[r] = lines[r].rsplit(";", 1)[0] if missing else lines[r] + ";0,000"
        out.append(
            record(
                "wrong_column_count",
                mid,
                hour_iso,
                rel,
                line=line_no(r),
                fields=len(sensors) + 2 + (-1 if missing else 1),
            )
        )

    encoding = "latin-1" if "latin1_encoding" in defects else "utf-8"
    if encoding == "latin-1":
        out.append(record("latin1_encoding", mid, hour_iso, rel))
    partial = ""
    if "truncated" in defects:
        row_text = lines[cut_row] if cut_row < n else ""
        partial = row_text[: int(rng.integers(1, max(2, len(row_text))))]
        out.append(
            record("truncated", mid, hour_iso, rel, line=line_no(cut_row), complete_rows=cut_row)
        )
    body = [*header, *lines[:cut_row]]
    data = ("\n".join(body) + "\n").encode(encoding) + partial.encode(encoding)
    if garbage_at is not None:
        junk = (
            b"\xff\xfe\x00\x81"
            + rng.integers(0x80, 0x100, int(rng.integers(20, 120)), dtype=np.uint8).tobytes()
        )
        parts = data.split(b"\n")
        parts.insert(len(header) + garbage_at, junk)
        data = b"\n".join(parts)
        out.append(record("garbage_line", mid, hour_iso, rel, line=len(header) + garbage_at + 1))
    return data, out


def _maintenance_log(events: list[MaintenanceEvent], end: datetime) -> bytes:
    """The work-order export as the maintenance team's system writes it."""

    def local(ts: datetime | None) -> str:
        if ts is None or ts >= end:
            return ""
        return (ts + timedelta(hours=PLANT_UTC_OFFSET_H)).strftime("%d/%m/%Y %H:%M")

    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\n")
    w.writerow(
        [
            "work_order",
            "machine_id",
            "reported_at",
            "started_at",
            "ended_at",
            "maintenance_type",
            "component",
            "failure_mode",
            "technician",
            "notes",
        ]
    )
    for ev in sorted(events, key=lambda e: (e.failure_at or e.started_at, e.work_order)):
        reported = ev.failure_at or ev.started_at
        if reported >= end:
            continue
        w.writerow(
            [
                ev.work_order,
                ev.machine_id,
                local(reported),
                local(ev.started_at),
                local(ev.ended_at),
                ev.maintenance_type,
                ev.component,
                ev.failure_mode,
                ev.technician,
                ev.notes,
            ]
        )
    return buf.getvalue().encode("utf-8")


def _registry(cfg: FleetConfig) -> tuple[bytes, bytes]:
    machines = [build_machine(cfg, i) for i in range(cfg.machines)]
    reg = io.StringIO()
    w = csv.writer(reg, lineterminator="\n")
    w.writerow(["machine_id", "model", "line", "installed_on", "rated_power_kw"])
    for m in machines:
        w.writerow([m.machine_id, m.model.name, m.line, m.installed_on, m.model.rated_power_kw])
    ratings = io.StringIO()
    w = csv.writer(ratings, lineterminator="\n")
    w.writerow(["model", "sensor", "unit", "rated_min", "rated_max"])
    models = {m.model.name: m.model for m in machines}
    for name in sorted(models):
        for s in models[name].sensors:
            w.writerow([name, s.name, s.unit, s.rated_min, s.rated_max])
    return reg.getvalue().encode(), ratings.getvalue().encode()


def simulate(
    cfg: SimulationConfig, on_machine_done: Callable[[MachineResult], None] | None = None
) -> SimulationResult:
    """Simulate the fleet and write landing files plus ground truth."""
    started = datetime.now(UTC)
    fleet = cfg.fleet
    workers = cfg.workers or min(os.cpu_count() or 1, fleet.machines)
    results: list[MachineResult] = []
    if workers <= 1:
        for i in range(fleet.machines):
            results.append(_render_machine(cfg, i))
            if on_machine_done:
                on_machine_done(results[-1])
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            futures = [pool.submit(_render_machine, cfg, i) for i in range(fleet.machines)]
            for fut in as_completed(futures):
                results.append(fut.result())
                if on_machine_done:
                    on_machine_done(results[-1])
    results.sort(key=lambda r: r.machine_id)

    end = fleet.start + timedelta(hours=fleet.hours)
    writer = _Writer(cfg.out)
    done_at = end.timestamp() + 600  # every file gets a deterministic modification time
    events = [ev for r in results for ev in r.events]
    writer.write("landing/maintenance/maintenance_log.csv", _maintenance_log(events, end), done_at)
    registry, ratings = _registry(fleet)
    writer.write("landing/registry/machines.csv", registry, fleet.start.timestamp())
    writer.write("landing/registry/sensor_ratings.csv", ratings, fleet.start.timestamp())

    defects = [d for r in results for d in r.defects]
    defects.sort(key=lambda d: (d["machine_id"], d["hour"], d["defect"], d["file"] or ""))
    writer.write(
        "ground_truth/defects.jsonl",
        "".join(json.dumps(d, sort_keys=True) + "\n" for d in defects).encode(),
        done_at,
    )
    failures = io.StringIO()
    w = csv.writer(failures, lineterminator="\n")
    w.writerow(["machine_id", "failure_at", "component", "failure_mode", "work_order"])
    n_failures = 0
    for ev in sorted(events, key=lambda e: (e.machine_id, e.started_at)):
        if ev.failure_at is not None and ev.failure_at < end:
            n_failures += 1
            w.writerow(
                [
                    ev.machine_id,
                    ev.failure_at.isoformat(),
                    ev.component,
                    ev.failure_mode,
                    ev.work_order,
                ]
            )
    writer.write("ground_truth/failures.csv", failures.getvalue().encode(), done_at)
    fleet_meta = {
        "format_version": FORMAT_VERSION,
        "machines": fleet.machines,
        "start": fleet.start.isoformat(),
        "hours": fleet.hours,
        "seed": fleet.seed,
        "wear_scale": fleet.wear_scale,
        "pm_interval_days": fleet.pm_interval_days,
        "sample_interval_s": cfg.sample_interval_s,
        "defect_rates": asdict(cfg.defects),
    }
    writer.write("ground_truth/fleet.json", json.dumps(fleet_meta, indent=2).encode(), done_at)
    return SimulationResult(
        out=cfg.out,
        files=sum(r.files for r in results),
        bytes=sum(r.bytes for r in results),
        defects=len(defects),
        failures=n_failures,
        maintenance_events=len(events),
        seconds=(datetime.now(UTC) - started).total_seconds(),
    )
