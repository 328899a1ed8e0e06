"""A backlog built in bounded batches (shopfloor/pipeline/batches.py), on a hand-made plant.

Four days of two machines, ingested at once, built with a batch budget of about one
day of readings: the build goes window by window; killed with SIGKILL half-way it
continues with the next window and ends with the marts an uninterrupted build makes;
so does a full refresh; and DuckDB running out of memory is one line naming the
settings, exit 1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests.landing import HandMachine, hours_between, utc, write_hours, write_registry
from tests.test_outside_data import cli, marts_differ_from_full_refresh

pytestmark = pytest.mark.slow

START = utc(2026, 5, 4)
DAYS = 4
MACHINES = [
    HandMachine("LINHA-1", "EXTRUSORA-X", {"temperatura_c": 210.0, "pressao_bar": 80.0}, 300),
    HandMachine("LINHA-2", "EXTRUSORA-X", {"temperatura_c": 205.0, "pressao_bar": 78.0}, 300),
]
# one UTC day of both machines is 2 x 288 readings: a window a day
BUDGET = "600"
_BUILT = re.compile(r"batch (\d+) of (\d+) built: (\d{4}-\d\d-\d\d)")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batches")
    landing, data = root / "landing", root / "data"
    write_registry(landing, MACHINES)
    for machine in MACHINES:
        write_hours(landing, machine, hours_between(START, START + timedelta(days=DAYS)))
    result = cli("ingest", "--data-dir", str(data), "--landing", str(landing))
    assert result.returncode == 0, result.stdout[-3000:]
    return data


def _copy(data: Path, to: Path) -> Path:
    shutil.copytree(data, to)
    return to


def _build(data: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "COLUMNS": "200",
        "SHOPFLOOR_PSEUDONYM_KEY": "k",
        "SHOPFLOOR_BUILD_BATCH_READINGS": BUDGET,
    }
    return subprocess.Popen(
        ["shopfloor", "build", "--data-dir", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _kill_after(process: subprocess.Popen[str], batches: int) -> list[str]:
    """Read the build's output until `batches` windows are built, then SIGKILL it (it is
    then inside the next window's dbt run)."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        found = _BUILT.search(line)
        if found and int(found.group(1)) == batches:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, "".join(lines)[-3000:]
    return lines


def _finish(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-4000:]
    return out


def _built_days(output: str) -> list[str]:
    return [m.group(3) for m in _BUILT.finditer(output)]


def test_a_killed_build_and_a_killed_full_refresh_continue_with_the_next_batch(
    ingested: Path, tmp_path: Path
) -> None:
    data = _copy(ingested, tmp_path / "data")
    # the first build after ingest, killed inside its third window
    killed = "".join(_kill_after(_build(data, "--exclude", "resource_type:unit_test"), 2))
    total = int(_BUILT.search(killed).group(2))  # type: ignore[union-attr]
    assert total >= DAYS, killed  # a window a day (plus the plant-time spill-over)
    done = _built_days(killed)
    resumed = _finish(_build(data, "--exclude", "resource_type:unit_test"))
    assert f"in {total - 2} batches of whole days" in resumed, resumed[-3000:]
    again = _built_days(resumed)
    assert len(again) == total - 2 and not set(again) & set(done), (done, again)

    # a full refresh, killed inside its second window: started again, it goes on
    killed = "".join(_kill_after(_build(data, "--full-refresh"), 1))
    total = int(_BUILT.search(killed).group(2))  # type: ignore[union-attr]
    resumed = _finish(_build(data, "--full-refresh"))
    assert "continuing where it stopped" in resumed, resumed[-3000:]
    assert len(_built_days(resumed)) == total - 1, resumed[-3000:]
    assert not (data / "dbt_target" / "full_refresh_in_windows").exists()

    # the marts an uninterrupted build makes (in one go: the default batch budget)
    differ = marts_differ_from_full_refresh(data, tmp_path)
    assert differ and not any(differ.values()), differ


def test_out_of_memory_is_one_line_naming_the_settings(ingested: Path, tmp_path: Path) -> None:
    data = _copy(ingested, tmp_path / "data")
    env = {
        **os.environ,
        "COLUMNS": "200",
        "SHOPFLOOR_PSEUDONYM_KEY": "k",
        "SHOPFLOOR_BUILD_BATCH_READINGS": BUDGET,
        "SHOPFLOOR_DBT_MEMORY": "4MB",
    }
    result = subprocess.run(
        ["shopfloor", "build", "--data-dir", str(data)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 1, result.stdout[-3000:]
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stdout[-3000:]
    assert "out of memory" in errors[0] and "SHOPFLOOR_BUILD_BATCH_READINGS" in errors[0]
    assert "SHOPFLOOR_DBT_MEMORY" in errors[0] and "4MB" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_full_refresh_that_fits_one_batch_rebuilds_the_sensor_mart(
    ingested: Path, tmp_path: Path
) -> None:
    """With no window to build, `--full-refresh` is the ordinary build's and rebuilds
    fct_machine_hour_sensors like every other model (the mart is spoiled first)."""
    import duckdb

    data = _copy(ingested, tmp_path / "data")
    args = ["build", "--data-dir", str(data), "--exclude", "resource_type:test"]
    assert cli(*args).returncode == 0
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("update marts.fct_machine_hour_sensors set readings = -1")
    refreshed = cli(*args, "--full-refresh")  # the default budget: one batch holds it all
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert "batches of whole days" not in refreshed.stdout
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        spoiled = con.sql("select count(*) from marts.fct_machine_hour_sensors where readings < 0")
        assert spoiled.fetchone() == (0,)
