"""Whether a run's dbt work can change anything: a run with nothing new skips it.

The marts are a function of the raw tables, the ML scores, the dbt project, the settings
dbt reads and the current model; no model reads the clock. After a run's build (and its
risk stage) succeeds, a fingerprint of those inputs is kept in
``<data>/dbt_target/built.json``. A run takes the record away before it ingests and puts
it back only when its ingest loaded nothing, the fingerprint is the same and the stage it
skips would have read nothing new; a run killed in between leaves no record, so the next
run builds. Every command that writes the warehouse (`shopfloor ingest`, `build`,
`score`, `train`, `reprocess`, `restore`) removes the record; `shopfloor build` always
builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from shopfloor.core.settings import Settings

_FILE = "built.json"
# what dbt reads besides the warehouse: the project (models, macros, seeds, tests) and
# its two configuration files at the repository root
_PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
_PROJECT_FOLDERS = ("dbt_project",)


def _path(settings: Settings) -> Path:
    return settings.data.resolve() / "dbt_target" / _FILE


def take(settings: Settings) -> dict[str, str]:
    """The record (empty when there is none), removed: put it back with `keep`."""
    path = _path(settings)
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    path.unlink(missing_ok=True)
    return record if isinstance(record, dict) else {}


def forget(settings: Settings) -> None:
    """Remove the record: the next run builds whatever its ingest finds."""
    _path(settings).unlink(missing_ok=True)


def keep(settings: Settings, record: dict[str, str]) -> None:
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def fingerprint(settings: Settings) -> str | None:
    """The build's inputs other than the warehouse's rows: the dbt project's files, the
    settings dbt reads, and which warehouse (None when there is no warehouse yet)."""
    from shopfloor.core.warehouse import dbt_env, exists, lake_of, location
    from shopfloor.pipeline.dbt import project_dir

    if not exists(settings):
        return None
    digest = hashlib.sha256()
    root = project_dir()
    files = [root / name for name in _PROJECT_FILES]
    for folder in _PROJECT_FOLDERS:
        files += sorted(p for p in (root / folder).rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    settings_read: dict[str, Any] = settings.env() | dbt_env(settings)
    # credentials rotate (an ECS task's session token) without changing what dbt builds
    secret = re.compile(r"SECRET|KEY_ID|SESSION_TOKEN|PASSWORD|PSEUDONYM_KEY")
    read = {k: v for k, v in settings_read.items() if not secret.search(k)}
    digest.update(json.dumps(read, sort_keys=True).encode())
    where: list[Any] = [location(settings)]
    if lake_of(settings) is None:  # a file put back from a backup is another file
        where.append(Path(settings.warehouse).stat().st_ino)
    digest.update(json.dumps(where).encode())
    return digest.hexdigest()
