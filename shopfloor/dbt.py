"""Run dbt in-process for the CLI (the dbt project is the repository's own)."""

from __future__ import annotations

import os
from pathlib import Path

from dbt.cli.main import dbtRunner, dbtRunnerResult


def project_dir() -> Path:
    """The folder holding dbt_project.yml and profiles.yml (the repository root)."""
    if env := os.environ.get("SHOPFLOOR_PROJECT_DIR"):
        return Path(env)
    return Path(__file__).resolve().parents[1]


def run_dbt(args: list[str], data_dir: str | None = None) -> dbtRunnerResult:
    """`dbt <args>` against the warehouse under data_dir (profiles.yml reads the env)."""
    if data_dir:
        os.environ["SHOPFLOOR_DATA_DIR"] = data_dir
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    root = project_dir()
    # dbt's artifacts and the docs site live with the data they describe
    target = Path(os.environ.get("SHOPFLOOR_DATA_DIR", "data")).resolve() / "dbt_target"
    return dbtRunner().invoke(
        [
            *args,
            "--project-dir",
            str(root),
            "--profiles-dir",
            str(root),
            "--target-path",
            str(target),
        ]
    )
