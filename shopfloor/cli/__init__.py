"""The `shopfloor` command: thin wiring of the stages; each stage's logic lives in its folder.

One module per group of commands; importing them registers their commands on `app`, in
the order `--help` lists them.
"""

# ruff: noqa: I001, F401  (imported for their commands, in this order)
from shopfloor.cli import plant, warehouse, model, operations
from shopfloor.cli._common import app, entry

__all__ = ["app", "entry"]
