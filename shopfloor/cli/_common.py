"""What every command shares: the app, the console, the settings options and checks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from shopfloor.core.errors import EXIT_USAGE, SettingsError, ShopfloorError
from shopfloor.core.settings import Settings, resolve

if TYPE_CHECKING:
    import duckdb


app = typer.Typer(
    help=(
        "shopfloor: machine files -> dlt -> DuckDB warehouse -> dbt marts -> "
        "preventive-maintenance model.\n\n"
        "Paths default under ./data (SHOPFLOOR_DATA_DIR); flags override environment variables."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,  # entry() prints one line, or the traceback with --debug
)
console = Console()

# one data-folder option for every command that reads or writes the warehouse; "\[" keeps
# rich from reading the hint as markup
DataDirOption = Annotated[
    str,
    typer.Option(help="Data folder (warehouse, quarantine, docs). \\[env: SHOPFLOOR_DATA_DIR]"),
]
LakehouseOption = Annotated[
    str,
    typer.Option(
        help="Keep every table in a DuckLake under this URL or folder (e.g. s3://plant/lake) "
        "instead of the DuckDB file. \\[env: SHOPFLOOR_LAKEHOUSE]"
    ),
]
LandingOption = Annotated[
    str, typer.Option(help="Landing area: folder or fsspec URL. \\[env: SHOPFLOOR_LANDING]")
]


def _settings(**flags: str | None) -> Settings:
    """The command's settings (flag > environment > shopfloor.toml > default), or exit 2."""
    try:
        return resolve(flags)
    except SettingsError as exc:
        _usage_error(str(exc))
        raise  # unreachable


def _embedded_only(settings: Settings, command: str) -> None:
    """Commands that work on the DuckDB file: one line instead of a traceback on a lake."""
    if settings.lakehouse:
        _usage_error(
            f"`shopfloor {command}` works on the DuckDB warehouse; the lakehouse "
            f"{settings.lakehouse} is kept by its object store and its catalog "
            "(docs/decisions/0007-lakehouse-ducklake.md)"
        )


def compact_table(title: str) -> Table:
    """A table that stays readable at 80 columns: a rule under the header, one space
    between columns (headers may take two lines)."""
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0))


def _usage_error(message: str) -> None:
    console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def _check_writable(settings: Settings, landing: bool = True) -> None:
    """The misconfigurations a scheduled run would otherwise hit every hour, one line each."""

    data = settings.data
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / ".shopfloor-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        _usage_error(f"data folder {data} is not writable ({exc.strerror})")
    if landing and "://" not in settings.landing:
        where = Path(settings.landing)
        if not where.is_dir():
            _usage_error(
                f"landing area {where} does not exist or is not a folder "
                "(--landing or SHOPFLOOR_LANDING)"
            )
        if not os.access(where, os.R_OK | os.X_OK):
            _usage_error(f"landing area {where} is not readable")
    from shopfloor.core.warehouse import exists, location

    warehouse, there = location(settings), exists(settings)
    if not there:  # a typo in the data folder would start a second warehouse
        console.print(
            f"new warehouse: {warehouse} (data folder {data}, settings: `shopfloor config`)",
            highlight=False,
            soft_wrap=True,
        )
    if (
        there
        and settings.sources["pseudonym_key"] == "default"
        and not settings.pseudonym_key_file.exists()
    ):
        _usage_error(
            f"warehouse {warehouse} exists but its pseudonymisation key "
            f"{settings.pseudonym_key_file} is missing: restore it or set "
            "SHOPFLOOR_PSEUDONYM_KEY (a new key would stop technician keys joining history)"
        )


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"shopfloor {version('shopfloor')}")
        raise typer.Exit()


_DEBUG = {"on": False}


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    """Machine files -> dlt -> DuckDB warehouse -> dbt marts -> maintenance model."""
    _DEBUG["on"] = debug


def entry() -> None:
    """The `shopfloor` command: an unexpected error is one line (exit 1) unless --debug."""
    try:
        code = app(standalone_mode=False)  # click returns the exit code instead of exiting
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except ShopfloorError as exc:  # one line, and the code a scheduler can act on
        if _DEBUG["on"] or "--debug" in sys.argv:
            raise
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if _DEBUG["on"] or "--debug" in sys.argv:
            raise
        console.print(
            f"[red]error:[/] {type(exc).__name__}: {exc} (--debug shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    from shopfloor.core.warehouse import connect, exists, location

    if not exists(settings):
        console.print(
            f"[red]No warehouse at {location(settings)}[/]: run `shopfloor ingest` and "
            "`shopfloor build`"
        )
        raise typer.Exit(1)
    # never read_only: after an in-process dbt run (demo) DuckDB refuses a second
    # connection to the same file with a different configuration
    return connect(settings)


@contextmanager
def _writes_warehouse(settings: Settings) -> Iterator[None]:
    """Around a command that writes the warehouse: on a lake on an object store with a
    SQLite catalog, the catalog is copied beside the data when the command ends, so the
    local file is a cache (docs/operations.md)."""
    from shopfloor.core.warehouse import save_catalog
    from shopfloor.pipeline import build_state

    build_state.forget(settings)  # the next run builds what this command changed
    try:
        yield
    except BaseException:
        try:  # the command's own failure is what the user must see, not this one
            save_catalog(settings)
        except Exception as exc:
            console.print(
                f"[yellow]warning:[/] the lake's catalog was not copied beside its data: {exc}",
                highlight=False,
                soft_wrap=True,
            )
        raise
    save_catalog(settings)
