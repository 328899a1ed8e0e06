"""Real published sensor data through the pipeline (tests/data/real/README.md).

NAB's machine temperature series (MIT; 34 days, one reading every 5 minutes, values
with up to 17 significant digits, two labelled anomaly windows and a clock that steps
back one hour on 2014-01-07) written as the plant's hour files: every value arrives bit
for bit, the repeated hour keeps one reading per instant, and no machine-hour counts
more readings than its interval allows.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.listing import ListingPolicy
from ingestion.pipeline import IngestConfig, run_ingest
from tests.landing import HandMachine, write_registry, write_series
from tests.test_outside_data import cli

pytestmark = pytest.mark.slow

REAL = Path(__file__).parent / "data" / "real"
MACHINE = HandMachine("NAB-MT-1", "NAB-MACHINE", {"temperatura_c": 80.0}, 300)
SENSOR = "temperatura_c"


def nab_rows() -> list[tuple[datetime, str]]:
    with (REAL / "nab_machine_temperature.csv").open() as fh:
        return [
            (datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC), row["value"])
            for row in csv.DictReader(fh)
        ]


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nab")
    landing = root / "landing"
    write_registry(landing, [MACHINE], sensor_range=2.0)
    write_series(landing, MACHINE, SENSOR, nab_rows())
    summary = run_ingest(
        IngestConfig(
            landing=str(landing),
            data_dir=str(root / "data"),
            pseudonym_key="k",
            policy=ListingPolicy(max_past_days=365 * 20),  # the series is from 2014
        )
    )
    assert summary.status == "succeeded", summary.error
    return root / "data"


def query(data: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_every_published_value_arrives_bit_for_bit_once_per_instant(plant: Path) -> None:
    rows = nab_rows()
    first: dict[datetime, str] = {}
    for at, value in rows:
        first.setdefault(at, value)
    loaded = dict(
        query(plant, f"select reading_at, s_{SENSOR} from raw.telemetry_readings")  # type: ignore[arg-type]
    )
    assert len(loaded) == len(first) == len(rows) - 12  # the clock stepped back one hour
    assert all(loaded[at] == float(text) for at, text in first.items())
    rejects = query(
        plant, "select reason, count(*) from raw.telemetry_rejects group by all order by all"
    )
    assert len(rejects) == 1 and rejects[0][0].startswith("repeated timestamp")  # type: ignore[union-attr]
    assert rejects[0][1] == 12
    reconciled = query(
        plant,
        "select sum(rows_read) = sum(rows_loaded) + sum(rows_rejected), count(*),"
        " count(*) filter (where status = 'loaded') from raw.landing_files",
    )
    assert reconciled[0][0] and reconciled[0][1] == reconciled[0][2]


def test_no_machine_hour_counts_more_readings_than_its_interval_allows(plant: Path) -> None:
    built = cli("build", "--data-dir", str(plant), "--exclude", "resource_type:unit_test")
    assert built.returncode == 0, built.stdout[-3000:]
    hours = query(
        plant,
        "select max(readings_received), max(completeness), sum(readings_received)"
        " from marts.fct_machine_hours",
    )
    assert hours[0][0] == 12 and hours[0][1] <= 1.0
    assert hours[0][2] == len({at for at, _ in nab_rows()})
