"""Run dbt in-process for the CLI (the dbt project is the repository's own)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.core.settings import Settings, scoped_env

if TYPE_CHECKING:  # dbt takes a second to import: only a command that runs it pays
    from dbt.cli.main import dbtRunnerResult


def project_dir() -> Path:
    """The folder holding dbt_project.yml and profiles.yml (the repository root)."""
    if env := os.environ.get("SHOPFLOOR_PROJECT_DIR"):
        return Path(env)
    return Path(__file__).resolve().parents[2]


def default_memory_limit(share: float = 0.6, ceiling_gib: int = 2) -> str:
    """DuckDB's memory limit for dbt: 60 % of this machine's RAM, at most 2 GiB.

    A build's batches (shopfloor/pipeline/batches.py) need about 1.5 GB a fleet-day at 1 Hz;
    a higher limit only lets DuckDB keep more of the history it read cached, so that
    memory would grow with the history a build reads. Past the limit DuckDB spills."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: profiles.yml's default
        return "8GB"
    return f"{max(1, min(ceiling_gib, int(ram * share / 2**30)))}GiB"


def memory_limit(settings: Settings) -> str:
    """The dbt_memory setting, `auto` resolved for this machine."""
    value = settings.values.get("dbt_memory", "auto")
    return default_memory_limit() if value in ("", "auto") else value


def dbt_log_path(settings: Settings) -> Path:
    """Where dbt writes its log (dbt.log): with the data it describes."""
    return settings.data.resolve() / "dbt_target" / "logs"


def plain_output() -> bool:
    """No colour codes in logs: output is not a terminal, or NO_COLOR is set."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


def run_dbt(
    args: list[str], settings: Settings, extra_env: dict[str, str] | None = None
) -> dbtRunnerResult:
    """`dbt <args>` against the settings' warehouse.

    profiles.yml reads the warehouse path through env_var(); the settings are put in
    the environment for this call only, so one resolution serves every stage.
    """
    from dbt.cli.main import dbtRunner

    from shopfloor.core.warehouse import dbt_env, prepare

    root = project_dir()
    prepare(settings)
    env = (
        settings.env()
        | dbt_env(settings)
        | {
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "SHOPFLOOR_DBT_MEMORY": memory_limit(settings),
            # where a lake's in-memory DuckDB session spills past its memory limit
            "SHOPFLOOR_DBT_TEMP_DIR": str(settings.data.resolve() / "dbt_target" / "spill"),
            # outside a batched build, no window
            "SHOPFLOOR_BUILD_WINDOW_START": "",
            "SHOPFLOOR_BUILD_WINDOW_END": "",
            "SHOPFLOOR_BUILD_WINDOWS_DONE": "",
            # every check over the whole history, unless the caller scopes it
            "SHOPFLOOR_TEST_SINCE": "",
        }
        | (extra_env or {})
    )
    # dbt's artifacts and the docs site live with the data they describe
    target = settings.data.resolve() / "dbt_target"
    colours = ["--no-use-colors"] if plain_output() else []
    with scoped_env(env):
        return dbtRunner().invoke(
            [
                *args,
                *colours,
                "--project-dir",
                str(root),
                "--profiles-dir",
                str(root),
                "--target-path",
                str(target),
                "--log-path",
                str(dbt_log_path(settings)),
            ]
        )
