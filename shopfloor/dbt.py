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


def default_memory_limit(share: float = 0.6) -> str:
    """DuckDB's memory limit for dbt: a share of this machine's RAM (profiles.yml)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: profiles.yml's default
        return "8GB"
    return f"{max(1, int(ram * share / 2**30))}GiB"


def run_dbt(args: list[str], data_dir: str | None = None) -> dbtRunnerResult:
    """`dbt <args>` against the warehouse under data_dir (profiles.yml reads the env)."""
    if data_dir:
        os.environ["SHOPFLOOR_DATA_DIR"] = data_dir
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("SHOPFLOOR_DBT_MEMORY", default_memory_limit())
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
