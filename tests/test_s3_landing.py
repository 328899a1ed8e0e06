"""An S3 landing area (a real S3 API: moto's server on loopback) needs no new code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ingestion.listing import ListingPolicy
from ingestion.pipeline import IngestConfig, run_ingest
from simulator.defects import DefectRates
from simulator.fleet import FleetConfig
from simulator.simulate import SimulationConfig, simulate
from tests.s3 import s3_server

# S3 dates every object by its upload (just now): the uploads are complete
SETTLED = ListingPolicy(settle_s=0)


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SHOPFLOOR_PSEUDONYM_KEY", "k")
    with s3_server(monkeypatch, bucket="plant") as endpoint:
        yield endpoint


def test_s3_landing_area_loads_like_a_local_folder(s3: str, tmp_path: Path) -> None:
    def fleet(out: str) -> None:
        simulate(
            SimulationConfig(
                out=out,
                fleet=FleetConfig(machines=2, hours=6, seed=5),
                sample_interval_s=60,
                defects=DefectRates.profile("stress"),
                workers=1,
            )
        )

    fleet("s3://plant/site")
    fleet(str(tmp_path / "local"))
    results = []
    for landing, data in (
        ("s3://plant/site/landing", tmp_path / "from_s3"),
        (str(tmp_path / "local/landing"), tmp_path / "from_local"),
    ):
        summary = run_ingest(IngestConfig(landing=landing, data_dir=str(data), policy=SETTLED))
        assert summary.status == "succeeded", summary.error
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            results.append(
                (
                    # which of two identical files is kept depends on upload times, which
                    # S3 sets itself: compare per content, not per path
                    con.execute(
                        "select content_sha256, status, rows_read, rows_loaded, "
                        "rows_rejected from raw.landing_files order by all"
                    ).fetchall(),
                    con.execute(
                        "select count(*), sum(source_line), sum(hash(reading_at)) "
                        "from raw.telemetry_readings"
                    ).fetchall(),
                    con.execute("select count(*) from raw.maintenance_log").fetchall(),
                )
            )
        again = run_ingest(IngestConfig(landing=landing, data_dir=str(data), policy=SETTLED))
        assert again.files_new == 0
    from_s3, from_local = results
    assert from_s3 == from_local
    assert len(from_s3[0]) >= 12 and from_s3[1][0][0] > 0
