"""Where shopfloor keeps things. One place, documented precedence:

CLI flag  >  environment variable  >  default under the project's data folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> str:
    """Root of everything shopfloor writes locally (SHOPFLOOR_DATA_DIR, default ./data)."""
    return os.environ.get("SHOPFLOOR_DATA_DIR", "data")


def landing_url() -> str:
    """Where machine files land: a folder or any fsspec URL (SHOPFLOOR_LANDING)."""
    return os.environ.get("SHOPFLOOR_LANDING", str(Path(data_dir()) / "landing"))


def warehouse_path(data: str | None = None) -> str:
    """The DuckDB warehouse file (SHOPFLOOR_WAREHOUSE, default <data dir>/warehouse.duckdb).

    profiles.yml resolves the same two variables, so dbt and Python agree.
    """
    return os.environ.get("SHOPFLOOR_WAREHOUSE") or str(
        Path(data or data_dir()) / "warehouse.duckdb"
    )


def models_dir(data: str | None = None) -> Path:
    """Trained model versions (SHOPFLOOR_MODELS_DIR, default <data dir>/models)."""
    return Path(os.environ.get("SHOPFLOOR_MODELS_DIR") or Path(data or data_dir()) / "models")


def reports_dir(data: str | None = None) -> Path:
    """Evaluation reports, one folder per model version (<data dir>/reports)."""
    return Path(data or data_dir()) / "reports"
