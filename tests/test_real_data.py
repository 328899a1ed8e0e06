"""Real published sensor data through the pipeline (tests/data/real/README.md).

Petrobras 3W's oil well (CC BY 4.0; five hours at one reading a second, seven channels
with seven significant digits) written as the plant's hour files and ingested into a
lakehouse: every value kept exactly, in fewer bytes than `zstd -19` of the text.

NAB's machine temperature series (MIT; 34 days, one reading every 5 minutes, values
with up to 17 significant digits, two labelled anomaly windows and a clock that steps
back one hour on 2014-01-07) written as the plant's hour files: every value arrives bit
for bit, the repeated hour keeps one reading per instant, and no machine-hour counts
more readings than its interval allows.
"""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingestion.listing import ListingPolicy
from ingestion.pipeline import IngestConfig, run_ingest
from shopfloor.core.settings import resolve
from shopfloor.core.warehouse import connect
from tests.landing import HandMachine, write_registry, write_series, write_table
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


# Petrobras 3W, one real well at one reading a second (CC BY 4.0; tests/data/real/README.md)
WELL_FILE = REAL / "3w_WELL-00014_20170925110124.csv"
WELL_SENSORS = {
    "P-PDG": "p_pdg_pa",
    "P-TPT": "p_tpt_pa",
    "T-TPT": "t_tpt_c",
    "P-MON-CKP": "p_mon_ckp_pa",
    "T-JUS-CKP": "t_jus_ckp_c",
    "P-JUS-CKGL": "p_jus_ckgl_pa",
    "QGL": "qgl_sm3s",
}
WELL = HandMachine("3W-WELL-14", "3W-WELL", dict.fromkeys(WELL_SENSORS.values(), 1.0), 1)
# two readings no DECIMAL(18, 9) holds exactly: beyond ±1e9, and finer than 1e-9
ODD = HandMachine("ODD-1", "3W-WELL", {"qgl_sm3s": 1.0}, 1)
ODD_VALUES = ["1.5", "2500000000.25", "0.0000000001234", "-7"]


def well_rows() -> list[tuple[datetime, list[str]]]:
    """The published values written out as decimals, as a plant's controller writes them
    (`2.405470e+07` as 24054700, `1.178841e+00` as 1.178841)."""
    with WELL_FILE.open() as fh:
        return [
            (
                datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC),
                [format(Decimal(row[column]), "f") for column in WELL_SENSORS],
            )
            for row in csv.DictReader(fh)
        ]


@pytest.fixture(scope="module")
def well_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The well's hour files and two odd readings, ingested into a lakehouse in a folder;
    the staged readings built on it. Returns the root and the hour files' text."""
    root = tmp_path_factory.mktemp("well")
    landing = root / "landing"
    write_registry(landing, [WELL, ODD], sensor_range=1e12)
    files = write_table(landing, WELL, list(WELL_SENSORS.values()), well_rows())
    start = datetime(2017, 9, 25, 12, tzinfo=UTC)
    odd = [(start + timedelta(seconds=k), [v]) for k, v in enumerate(ODD_VALUES)]
    write_table(landing, ODD, ["qgl_sm3s"], odd)
    text = b"".join((landing / rel).read_bytes() for rel in sorted(files))
    flags = ["--data-dir", str(root / "data"), "--lakehouse", str(root / "lake")]
    os.environ["SHOPFLOOR_MAX_PAST_DAYS"] = str(365 * 20)  # the well's data is from 2017
    ingested = cli("ingest", "--landing", str(landing), *flags)
    assert ingested.returncode == 0, ingested.stdout[-3000:] + ingested.stderr[-3000:]
    built = cli("build", *flags, "--select", "stg_landing__telemetry_readings")
    assert built.returncode == 0, built.stdout[-3000:]
    return root, text


def test_a_lake_keeps_real_1hz_values_exactly_in_fewer_bytes_than_zstd_19(
    well_lake: tuple[Path, bytes],
) -> None:
    """Decimals where they hold the value exactly (every 3W value), a double beside
    them where they do not; the lake's readings smaller than `zstd -19` of the text."""
    root, text = well_lake
    settings = resolve({"data_dir": str(root / "data"), "lakehouse": str(root / "lake")})
    sensors = ", ".join(f"s_{s}::varchar" for s in WELL_SENSORS.values())
    with connect(settings, read_only=True) as con:
        well = con.sql(
            f"select reading_at, {sensors} from raw.telemetry_readings"
            " where machine_id = '3W-WELL-14'"
        ).fetchall()
        staged = con.sql(
            "select s_qgl_sm3s from stg_landing__telemetry_readings"
            " where machine_id = 'ODD-1' order by reading_at"
        ).fetchall()
    published = {at: values for at, values in well_rows()}
    assert len(well) == len(published) == 17_917
    assert all(
        [Decimal(v) for v in values] == [Decimal(v) for v in published[at]] for at, *values in well
    )
    assert [value for (value,) in staged] == [float(v) for v in ODD_VALUES]

    parquet = list((root / "lake" / "raw" / "telemetry_readings").rglob("*.parquet"))
    lake_bytes = sum(path.stat().st_size for path in parquet)
    reference = len(pa.Codec("zstd", compression_level=19).compress(text, asbytes=True))
    assert lake_bytes <= reference, (lake_bytes, reference)
