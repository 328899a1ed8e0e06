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
