"""A sensor statistic is one line in macro sensor_statistics plus its column in the marts'
YAML: added to a copy of the project, it reaches fct_machine_hour_sensors, the features
mart, the model's feature table and the docs, with no other file edited."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb

from ingestion.pipeline import IngestConfig, run_ingest
from ml.features import load_features
from shopfloor.pipeline.dbt import project_dir
from tests.cli import build_models
from tests.landing import HandMachine, hours_between, utc, write_hours, write_registry

DECLARATION = "dbt_project/macros/sensors/sensor_statistics.sql"
MARTS = "dbt_project/models/marts"
NEW_STAT = (
    "        {'name': 'value_range', 'sql': 'max(@__clean) - min(@__clean)', "
    "'type': 'double', 'features': true},\n"
)
NEW_COLUMN = """  - name: value_range
    data_type: double
    description: Range of the hour's clean readings (maximum minus minimum).
"""


def project_with_a_new_statistic(root: Path) -> Path:
    """A copy of the dbt project with `value_range` declared: the edits a new statistic
    takes (one declaration line, its column with a description in each mart)."""
    source = project_dir()
    root.mkdir(parents=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(source / name, root / name)
    shutil.copytree(
        source / "dbt_project", root / "dbt_project", ignore=shutil.ignore_patterns("target")
    )
    declaration = root / DECLARATION
    text = declaration.read_text()
    anchor = "        {'name': 'spike_count'"
    assert anchor in text
    declaration.write_text(text.replace(anchor, NEW_STAT + anchor, 1))
    # its column in both marts: after the last statistic's, before the first window's
    sensors = root / MARTS / "fct_machine_hour_sensors.yml"
    text = sensors.read_text()
    end = text.index("\n  - ", text.index("  - name: raw_value_mean\n")) + 1
    sensors.write_text(text[:end] + NEW_COLUMN + text[end:])
    features = root / MARTS / "fct_machine_hour_sensor_features.yml"
    text = features.read_text()
    first_window = "  - name: run_mean_6h\n"
    features.write_text(text.replace(first_window, NEW_COLUMN + first_window, 1))
    return root


def test_a_statistic_declared_once_reaches_marts_features_and_docs(tmp_path: Path) -> None:
    project = project_with_a_new_statistic(tmp_path / "project")
    landing, data = tmp_path / "landing", tmp_path / "data"
    press = HandMachine(
        "PRESS-2", "HP-9", {"ram_force_kn": 820.0, "oil_temp_c": 45.0}, sample_interval_s=300
    )
    write_hours(landing, press, hours_between(utc(2026, 6, 1), utc(2026, 6, 2, 6)))
    write_registry(landing, [press], sensor_range=1000.0)
    os.environ["SHOPFLOOR_PSEUDONYM_KEY"] = "k"
    ingested = run_ingest(IngestConfig(landing=str(landing), data_dir=str(data)))
    assert ingested.status == "succeeded"
    build_models(
        data,
        select="+fct_machine_hour_sensor_features +fct_machine_hour_features",
        env={"SHOPFLOOR_PROJECT_DIR": str(project)},
    )

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        wrong, rows = con.sql(
            "select count(*) filter (value_range is distinct from value_max - value_min),"
            " count(*) from marts.fct_machine_hour_sensors"
        ).fetchone()  # type: ignore[misc]
        assert rows > 0 and wrong == 0
        carried = con.sql(
            "select count(*) from marts.fct_machine_hour_sensor_features as f"
            " inner join marts.fct_machine_hour_sensors as s using (machine_id, hour_at, sensor)"
            " where f.value_range = s.value_range"
        ).fetchone()
        assert carried == (rows,)
        features = load_features(con)
    assert {"ram_force_kn__value_range", "oil_temp_c__value_range"} <= set(features.features)

    manifest = json.loads((data / "dbt_target" / "manifest.json").read_text())
    for model in ("fct_machine_hour_sensors", "fct_machine_hour_sensor_features"):
        column = manifest["nodes"][f"model.shopfloor.{model}"]["columns"]["value_range"]
        assert column["description"].startswith("Range of the hour's clean readings"), model
        assert column["data_type"] == "double"


def test_no_model_or_macro_lists_the_statistics_again() -> None:
    """Only the declaration names the statistics together; models and macros loop over it."""
    names = ["clean_readings", "value_min", "value_max", "value_p95", "run_value_mean"]
    root = project_dir() / "dbt_project"
    assert all(
        f"'{n}'" in (root / "macros/sensors/sensor_statistics.sql").read_text() for n in names
    )
    listing = [
        str(path.relative_to(root))
        for path in root.rglob("*.sql")
        if path.name != "sensor_statistics.sql"
        and sum(name in path.read_text() for name in names) >= 3
    ]
    assert listing == []
