"""The `shopfloor` command as tests call it: a real subprocess, its output kept for the
failure message."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


def build_models(data: Path, select: str = "", env: Mapping[str, str] | None = None) -> None:
    """`shopfloor build` of the models only (the data and unit tests run elsewhere)."""
    args = ["shopfloor", "build", "--data-dir", str(data)]
    args += ["--select", select] if select else []
    args += ["--exclude", "resource_type:unit_test resource_type:test"]
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stdout[-4000:]
