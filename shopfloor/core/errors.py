"""The errors shopfloor reports to a person, each with the exit code a command ends with.

A stage raises one of these with a one-line message; the CLI prints the line and exits
with the error's code (`shopfloor.cli._common.entry`), so a scheduler can tell "try
later" from "fix a setting" from "a stage failed". The errors of the ingestion and the
ML step stay in their packages (they never import shopfloor): a bad file is quarantined,
a young plant's training is refused with its reason, and neither stops a run.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a stage failed: the message (and the run log) say which and why
EXIT_USAGE = 2  # a setting cannot work (typer's own code for bad usage)
EXIT_BUSY = 75  # EX_TEMPFAIL: another run or process holds the data; a scheduler retries


class ShopfloorError(Exception):
    """An error with a one-line message for a person, and the exit code it ends with."""

    exit_code = EXIT_FAILED


class SettingsError(ShopfloorError, ValueError):
    """A setting that cannot work."""

    exit_code = EXIT_USAGE


class LakeError(ShopfloorError, RuntimeError):
    """The lakehouse cannot be reached or used as configured."""


class BuildError(ShopfloorError, RuntimeError):
    """A batch of the build failed."""


class BackupError(ShopfloorError, RuntimeError):
    """A backup that cannot be made or used; nothing was changed."""


class PipelineBusyError(ShopfloorError, RuntimeError):
    """Another run holds the data folder's lock."""

    exit_code = EXIT_BUSY


class WarehouseBusyError(ShopfloorError, RuntimeError):
    """Another process (a BI tool, a notebook) holds the warehouse file."""

    exit_code = EXIT_BUSY
