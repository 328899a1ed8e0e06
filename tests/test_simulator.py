"""The simulator is the plant's stand-in: its files must follow the contract, its
manifest must be the exact truth, and its failures must be predictable."""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score

from simulator.defects import ALL_DEFECTS, NON_NUMERIC_TOKENS, DefectRates
from simulator.fleet import FleetConfig
from simulator.models import MODELS
from simulator.simulate import SimulationConfig, simulate
from tests.contract import ParsedFile, number, parse


def run(
    out: Path,
    *,
    machines: int = 3,
    hours: int = 48,
    interval: int = 60,
    defects: str = "stress",
    seed: int = 7,
    **fleet: float,
) -> Path:
    simulate(
        SimulationConfig(
            out=str(out),
            fleet=FleetConfig(machines=machines, hours=hours, seed=seed, **fleet),  # type: ignore[arg-type]
            sample_interval_s=interval,
            defects=DefectRates.profile(defects),
            workers=1,
        )
    )
    return out


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), int(p.stat().st_mtime))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("clean"), defects="none")


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("dirty"), defects="stress")


def test_same_seed_gives_identical_bytes(dirty: Path, tmp_path: Path) -> None:
    again = run(tmp_path / "again", defects="stress")
    assert tree(again) == tree(dirty)
    other = run(tmp_path / "other", defects="stress", seed=8)
    first = "landing/telemetry/M001/2026/03/02/M001_20260302T12.txt"
    assert (other / first).read_bytes() != (dirty / first).read_bytes()


def test_parallel_workers_change_nothing(dirty: Path, tmp_path: Path) -> None:
    out = tmp_path / "parallel"
    simulate(
        SimulationConfig(
            out=str(out),
            fleet=FleetConfig(machines=3, hours=48, seed=7),
            sample_interval_s=60,
            defects=DefectRates.profile("stress"),
            workers=2,
        )
    )
    assert tree(out) == tree(dirty)


def test_more_days_never_rewrite_the_past(tmp_path: Path) -> None:
    short = tree(run(tmp_path / "short", hours=30))
    longer = tree(run(tmp_path / "long", hours=60))
    telemetry = {k: v for k, v in short.items() if k.startswith("landing/telemetry/")}
    assert telemetry and all(longer[k] == v for k, v in telemetry.items())


def test_clean_files_follow_the_contract(clean: Path) -> None:
    files = sorted((clean / "landing/telemetry").rglob("*.txt"))
    assert len(files) == 3 * 48
    sensor_sets = set()
    for path in files:
        parsed = parse(path.read_bytes())
        assert parsed.problems == []
        assert parsed.ends_with_newline and parsed.encoding == "utf-8"
        assert len(parsed.rows) == 60
        assert parsed.header["machine_id"] == path.parent.parent.parent.parent.name
        assert parsed.header["start_time"] == parsed.rows[0][0]
        start = parsed.utc(0).astimezone(UTC)
        assert path.name == f"{parsed.header['machine_id']}_{start:%Y%m%dT%H}.txt"
        assert all(len(r) == len(parsed.columns) for r in parsed.rows)
        assert all(number(v) is not None for r in parsed.rows for v in r[2:])
        sensor_sets.add((parsed.header["model"], tuple(parsed.sensors)))
    assert len({model for model, _ in sensor_sets}) == 3  # three models, three sensor sets
    assert len({sensors for _, sensors in sensor_sets}) == 3


def test_registry_and_maintenance_log_follow_the_contract(tmp_path: Path) -> None:
    clean = run(tmp_path, hours=24 * 21, interval=3600, defects="none")
    machines = list(csv.DictReader((clean / "landing/registry/machines.csv").open()))
    assert [m["machine_id"] for m in machines] == ["M001", "M002", "M003"]
    ratings = list(csv.DictReader((clean / "landing/registry/sensor_ratings.csv").open()))
    assert {r["model"] for r in ratings} == {m.name for m in MODELS}
    with (clean / "landing/maintenance/maintenance_log.csv").open(encoding="utf-8") as fh:
        log = list(csv.DictReader(fh, delimiter=";"))
    assert {row["maintenance_type"] for row in log} == {"preventive", "corrective"}
    for row in log:
        assert row["maintenance_type"] in {"preventive", "corrective"}
        datetime.strptime(row["reported_at"], "%d/%m/%Y %H:%M")
        assert row["technician"]
        assert bool(row["failure_mode"]) == (row["maintenance_type"] == "corrective")


@pytest.mark.parametrize("interval", [1, 7, 3600])
def test_any_sample_interval(tmp_path: Path, interval: int) -> None:
    out = run(tmp_path, machines=1, hours=1, interval=interval, defects="none")
    (path,) = (out / "landing/telemetry").rglob("*.txt")
    parsed = parse(path.read_bytes())
    assert len(parsed.rows) == math.ceil(3600 / interval)
    assert parsed.header["sample_interval_s"] == str(interval)
    if interval == 1:  # full fidelity: about 1 MB an hour
        assert 0.9e6 <= path.stat().st_size <= 1.1e6


def observed_defects(
    clean: Path, dirty: Path, stuck_lines: dict[tuple[str, str], list[int]]
) -> set[tuple]:
    """Every difference between the clean and the dirty fleet, classified; the lines a
    stuck sensor changed go to stuck_lines."""
    seen: set[tuple] = set()
    clean_files = sorted((clean / "landing/telemetry").rglob("*.txt"))
    firmware_seen: set[str] = set()
    for cpath in clean_files:
        rel = str(cpath.relative_to(clean / "landing"))
        dpath = dirty / "landing" / rel
        if not dpath.exists():
            seen.add(("missing_hour", rel))
            continue
        hour_end = datetime.strptime(cpath.stem.split("_")[1], "%Y%m%dT%H").replace(
            tzinfo=UTC
        ) + timedelta(hours=1)
        if dpath.stat().st_mtime - hour_end.timestamp() > 1800:
            seen.add(("resend_same_name", rel))
        data = dpath.read_bytes()
        if not data:
            seen.add(("empty_file", rel))
            continue
        c, d = parse(cpath.read_bytes()), parse(data)
        if d.encoding == "latin-1":
            seen.add(("latin1_encoding", rel))
        machine = d.header["machine_id"]
        if d.columns != c.columns and machine not in firmware_seen:
            firmware_seen.add(machine)
            (added,) = set(d.columns) - set(c.columns)
            seen.add(("firmware_new_column", rel, added))
        for line, what in d.problems:
            kind = {"undecodable": "garbage_line", "truncated": "truncated"}.get(what)
            if kind:
                seen.add((kind, rel, line))
            elif what.startswith("fields:"):
                seen.add(("wrong_column_count", rel, line))
            elif what.startswith("non_numeric:"):
                seen.add(("non_numeric", rel, line, what.split(":")[1]))
        garbage = [line for line, what in d.problems if what == "undecodable"]
        c_by_line = dict(zip(c.row_lines, range(len(c.rows)), strict=True))
        changed: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for k, line in enumerate(d.row_lines):
            clean_line = line - sum(1 for g in garbage if g < line)
            crow = c.rows[c_by_line[clean_line]]
            drow = dict(zip(d.columns, d.rows[k], strict=True))
            if drow["timestamp"][-6:] != crow[0][-6:]:
                seen.add(("offset_change", rel))
            if datetime.fromisoformat(drow["timestamp"]) != datetime.fromisoformat(crow[0]):
                seen.add(("clock_drift", rel))
            for col, cval in zip(c.columns[2:], crow[2:], strict=True):
                dval = drow[col]
                if dval != cval and dval not in NON_NUMERIC_TOKENS:
                    changed[col].append((line, cval, dval))
        for col, cells in changed.items():
            lines = [line for line, _, _ in cells]
            if all(dval == "" for _, _, dval in cells):
                seen.add(("sensor_dropout", rel, col, min(lines), max(lines)))
            elif len(cells) == 1 and abs(number(cells[0][2]) or 0) > 1.5 * max(
                abs(number(r[c.columns.index(col)]) or 0) for r in c.rows
            ):
                seen.add(("spike", rel, lines[0], col))
            else:  # stuck: one repeated value; cells may equal the clean value by chance
                # (often, where a sensor writes few decimals), so only the lines it changed
                assert len({dval for _, _, dval in cells}) == 1, (rel, col, cells[:5])
                seen.add(("stuck_sensor", rel, col))
                stuck_lines[(rel, col)] = lines
    for dpath in (dirty / "landing/telemetry").rglob("* (1).txt"):
        original = dpath.with_name(dpath.name.replace(" (1)", ""))
        assert dpath.read_bytes() == original.read_bytes()
        seen.add(("resend_other_name", str(dpath.relative_to(dirty / "landing"))))
    return seen


def manifest_defects(
    dirty: Path, problems: dict[str, set[int]], stuck_ranges: dict[tuple[str, str], range]
) -> set[tuple]:
    out: set[tuple] = set()
    for line in (dirty / "ground_truth/defects.jsonl").read_text().splitlines():
        d = json.loads(line)
        kind, rel = d["defect"], d["file"]
        if kind in {"garbage_line", "truncated", "wrong_column_count"}:
            out.add((kind, rel, d["line"]))
        elif kind in {"non_numeric", "spike"}:
            out.add((kind, rel, d["line"], d["column"]))
        elif kind == "firmware_new_column":
            out.add((kind, rel, d["column"]))
        elif kind == "sensor_dropout":
            lines = [
                n
                for n in range(d["line_start"], d["line_end"] + 1)
                if n not in problems.get(rel, set())
            ]
            out.add((kind, rel, d["column"], min(lines), max(lines)))
        elif kind == "stuck_sensor":
            out.add((kind, rel, d["column"]))
            stuck_ranges[(rel, d["column"])] = range(d["line_start"], d["line_end"] + 1)
        else:
            out.add((kind, rel))
    return out


def test_manifest_lists_every_defect_and_nothing_else(clean: Path, dirty: Path) -> None:
    problems: dict[str, set[int]] = {}
    for path in (dirty / "landing/telemetry").rglob("*.txt"):
        if path.stat().st_size:
            rel = str(path.relative_to(dirty / "landing"))
            problems[rel] = {line for line, _ in parse(path.read_bytes()).problems}
    stuck_lines: dict[tuple[str, str], list[int]] = {}
    stuck_ranges: dict[tuple[str, str], range] = {}
    seen = observed_defects(clean, dirty, stuck_lines)
    listed = manifest_defects(dirty, problems, stuck_ranges)
    assert seen - listed == set(), "defects on disk that the manifest does not list"
    assert listed - seen == set(), "manifest entries not visible on disk"
    for key, lines in stuck_lines.items():
        assert set(lines) <= set(stuck_ranges[key]), ("stuck lines outside the manifest's", key)
    assert {entry[0] for entry in listed} == set(ALL_DEFECTS), "stress shows every class"


def test_readings_are_shared_between_clean_and_dirty(clean: Path, dirty: Path) -> None:
    """Defects must not change the underlying signal (they are injected on top of it)."""
    rel = "landing/telemetry/M002/2026/03/03/M002_20260303T12.txt"
    c = parse((clean / rel).read_bytes())
    d = parse((dirty / rel).read_bytes())
    same = sum(a[2:] == b[2 : len(a)] for a, b in zip(c.rows, d.rows, strict=False))
    assert same >= len(d.rows) - 3


def hourly_run_means(root: Path) -> dict[str, dict[datetime, dict[str, float]]]:
    out: dict[str, dict[datetime, dict[str, float]]] = defaultdict(dict)
    for path in sorted((root / "landing/telemetry").rglob("*.txt")):
        p: ParsedFile = parse(path.read_bytes())
        run_rows = [r for r in p.rows if r[1] == "RUN"]
        if len(run_rows) >= 3:
            start = p.utc(0).astimezone(UTC)
            out[p.header["machine_id"]][start] = {
                col: float(np.mean([number(r[i + 2]) for r in run_rows]))
                for i, col in enumerate(p.sensors)
            }
    return out


@pytest.mark.slow
def test_failure_physics_precede_failures(tmp_path: Path) -> None:
    """Wear-driven sensors sit higher in the 24 h before a failure than in healthy hours."""
    out = run(tmp_path, machines=6, hours=24 * 45, interval=600, defects="none")
    means = hourly_run_means(out)
    failures = list(csv.DictReader((out / "ground_truth/failures.csv").open()))
    assert len(failures) >= 8
    effect_sensor = {
        "bearing_seizure": "vibration_x_mm_s",
        "tool_breakage": "spindle_load_pct",
        "pump_cavitation": "pump_vibration_mm_s",
        "filter_clogging": "filter_differential_bar",
        "screw_check_ring_wear": "screw_torque_pct",
        "heater_burnout": "heater_current_a",
    }
    before, healthy = [], []
    for f in failures:
        machine = f["machine_id"]
        at = datetime.fromisoformat(f["failure_at"])
        sensor = effect_sensor[f["failure_mode"]]
        hours = means[machine]
        load = "total_power_kw"
        median = np.median([v[sensor] / v[load] for v in hours.values()])
        sign = -1 if f["failure_mode"] == "heater_burnout" else 1
        for h, v in hours.items():
            ratio = sign * (v[sensor] / v[load] / median - 1)
            if timedelta(0) < at - h <= timedelta(hours=24):
                before.append(ratio)
            elif timedelta(days=5) < at - h <= timedelta(days=9):
                healthy.append(ratio)
    assert len(before) >= 20 and len(healthy) >= 50
    result = mannwhitneyu(before, healthy, alternative="greater")
    assert result.pvalue < 1e-3, (np.median(before), np.median(healthy))

    # ...but not trivially: no single raw sensor separates the next 24 h well
    labels, columns = [], defaultdict(list)
    all_sensors = {s for vals in means.values() for hv in vals.values() for s in hv}
    for f_machine, hours in means.items():
        at = [
            datetime.fromisoformat(f["failure_at"])
            for f in failures
            if f["machine_id"] == f_machine
        ]
        for h, v in hours.items():
            labels.append(any(timedelta(0) < t - h <= timedelta(hours=24) for t in at))
            for sensor in all_sensors:
                columns[sensor].append(v.get(sensor, np.nan))
    y = np.array(labels)
    best = 0.0
    for values in columns.values():
        x = np.array(values)
        ok = ~np.isnan(x)
        if y[ok].sum() >= 5 and (~y[ok]).sum() >= 5:
            auc = roc_auc_score(y[ok], x[ok])
            best = max(best, auc, 1 - auc)
    assert 0.55 < best < 0.85, best


def test_run_meets_contract_mtime(dirty: Path) -> None:
    """Files carry the time they were delivered: after the hour they cover."""
    path = dirty / "landing/telemetry/M001/2026/03/02/M001_20260302T12.txt"
    hour_end = datetime(2026, 3, 2, 13, tzinfo=UTC).timestamp()
    assert hour_end < os.stat(path).st_mtime < hour_end + 6 * 3600 + 600
