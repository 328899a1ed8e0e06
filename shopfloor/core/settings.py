"""Every setting shopfloor uses, resolved once: flag > environment > shopfloor.toml > default.

The CLI resolves one `Settings` per command and hands it to every stage: ingestion,
dbt (as the environment its profile reads, for the duration of the call only) and the
ML step. `shopfloor config` prints the effective values and where each came from.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shopfloor.core.errors import SettingsError


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str
    help: str
    secret: bool = False
    # what resolve() checks: text, number (>= 0), positive, count, memory, timezone, paths
    kind: str = "text"


SETTINGS = (
    Setting("data_dir", "SHOPFLOOR_DATA_DIR", "data", "what shopfloor writes (a folder)"),
    Setting("landing", "SHOPFLOOR_LANDING", "<data_dir>/landing", "the plant's landing area"),
    Setting("warehouse", "SHOPFLOOR_WAREHOUSE", "<data_dir>/warehouse.duckdb", "DuckDB file"),
    Setting("lakehouse", "SHOPFLOOR_LAKEHOUSE", "",
            "set: every table in a DuckLake under this URL or folder, e.g. s3://plant/lake"),
    Setting("lake_catalog", "SHOPFLOOR_LAKE_CATALOG", "<data_dir>/lake_catalog.sqlite",
            "the lakehouse's catalog: a SQLite file or postgres://…", secret=True),
    Setting("models_dir", "SHOPFLOOR_MODELS_DIR", "<data_dir>/models",
            "trained model versions: a folder or an fsspec URL (<lakehouse>/models on a lake)"),
    Setting("serving_dir", "SHOPFLOOR_SERVING_DIR", "<data_dir>/serving",
            "what BI reads: the marts as Parquet and a catalog of views "
            "(<lakehouse>/serving on a lake)"),
    Setting("bi_postgres_url", "SHOPFLOOR_BI_POSTGRES_URL", "",
            "also publish the marts to this PostgreSQL database", secret=True),
    Setting("bi_catalog_paths", "SHOPFLOOR_BI_CATALOG_PATHS", "absolute",
            "how bi.duckdb's views name their files: absolute, or relative to the serving "
            "folder (moved, or mounted elsewhere by BI: set file_search_path)", kind="paths"),
    Setting("bi_role", "SHOPFLOOR_BI_ROLE", "shopfloor_bi", "the read-only Postgres role for BI"),
    Setting("bi_role_password", "SHOPFLOOR_BI_ROLE_PASSWORD", "",
            "its password (set when given)", secret=True),
    Setting("pseudonym_key", "SHOPFLOOR_PSEUDONYM_KEY", "<data_dir>/.secrets/pseudonym_key",
            "key of the technicians' pseudonyms", secret=True),
    Setting("settle_seconds", "SHOPFLOOR_SETTLE_SECONDS", "60", "newer files may be growing",
            kind="number"),
    Setting("max_future_hours", "SHOPFLOOR_MAX_FUTURE_HOURS", "2", "latest plausible file hour",
            kind="number"),
    Setting("max_past_days", "SHOPFLOOR_MAX_PAST_DAYS", "3650", "oldest plausible file hour",
            kind="number"),
    Setting("plant_timezone", "SHOPFLOOR_PLANT_TIMEZONE", "America/Sao_Paulo",
            "IANA time zone of the maintenance export's local times", kind="timezone"),
    Setting("max_file_mb", "SHOPFLOOR_MAX_FILE_MB", "64", "biggest file read", kind="positive"),
    Setting("dbt_target", "SHOPFLOOR_DBT_TARGET", "local", "profiles.yml output"),
    Setting("dbt_memory", "SHOPFLOOR_DBT_MEMORY", "auto",
            "DuckDB's memory limit in dbt, e.g. 4GB (auto: 60 % of RAM, at most 2 GiB)",
            kind="memory"),
    Setting("build_batch_readings", "SHOPFLOOR_BUILD_BATCH_READINGS", "1000000",
            "raw readings one build batch takes at most (whole days): sets the build's memory",
            kind="count"),
    Setting("planning_lead_hours", "SHOPFLOOR_PLANNING_LEAD_HOURS", "8",
            "warning an alert must give to be fully useful", kind="positive"),
    Setting("cost_failure", "SHOPFLOOR_COST_FAILURE", "12000", "cost of a breakdown",
            kind="number"),
    Setting("cost_visit", "SHOPFLOOR_COST_VISIT", "1500", "cost of a planned visit", kind="number"),
    Setting("cost_early_alert", "SHOPFLOOR_COST_EARLY_ALERT", "1500",
            "cost of a visit that finds no failure due", kind="number"),
)  # fmt: skip
PROJECT_FILE = "shopfloor.toml"


class _Text:
    """A setting as a typed attribute of Settings: its text."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, settings: Settings, owner: type | None = None) -> str:
        return settings.values[self.name]


class _Number(_Text):
    """A numeric setting as a typed attribute: a float (SettingsError if it is not one)."""

    def __get__(self, settings: Settings, owner: type | None = None) -> float:  # type: ignore[override]
        return settings.number(self.name)


@dataclass(frozen=True)
class Settings:
    """The resolved settings: one declared attribute per entry of SETTINGS (so a misspelt
    setting is a type error), the text in `values`, where each came from in `sources`."""

    values: Mapping[str, str]
    sources: Mapping[str, str] = field(default_factory=dict)

    data_dir = _Text()
    landing = _Text()
    warehouse = _Text()
    lakehouse = _Text()
    lake_catalog = _Text()
    models_dir = _Text()
    serving_dir = _Text()
    bi_postgres_url = _Text()
    bi_catalog_paths = _Text()
    bi_role = _Text()
    bi_role_password = _Text()
    pseudonym_key = _Text()
    settle_seconds = _Number()
    max_future_hours = _Number()
    max_past_days = _Number()
    plant_timezone = _Text()
    max_file_mb = _Number()
    dbt_target = _Text()
    dbt_memory = _Text()
    build_batch_readings = _Number()
    planning_lead_hours = _Number()
    cost_failure = _Number()
    cost_visit = _Number()
    cost_early_alert = _Number()

    def number(self, name: str) -> float:
        """A numeric setting, or a SettingsError naming where the bad value came from."""
        value = self.values[name]
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number >= 0:  # NaN and negatives
            raise SettingsError(
                f"setting {name} = {value!r} ({self.sources.get(name, 'default')}) "
                "is not a non-negative number"
            )
        return number

    @property
    def data(self) -> Path:
        return Path(self.values["data_dir"])

    @property
    def pseudonym_key_file(self) -> Path:
        return self.data / ".secrets" / "pseudonym_key"

    def env(self) -> dict[str, str]:
        """The environment the stages (and dbt's profiles.yml) read."""
        out = {s.env: self.values[s.name] for s in SETTINGS if s.name != "pseudonym_key"}
        if self.sources.get("pseudonym_key") != "default":
            out["SHOPFLOOR_PSEUDONYM_KEY"] = self.values["pseudonym_key"]
        return out

    def rows(self) -> Iterator[tuple[str, str, str, str]]:
        """(setting, value, source, meaning), secrets masked."""
        for s in SETTINGS:
            value = self.values[s.name]
            if s.secret and self.sources[s.name] != "default":
                value = "****" + value[-2:] if len(value) > 8 else "****"
            yield s.name, value, self.sources[s.name], s.help


def resolve(flags: Mapping[str, str | None] | None = None, cwd: Path | None = None) -> Settings:
    """flag > environment > shopfloor.toml (current folder) > default."""
    flags = flags or {}
    project = _project_file(cwd or Path.cwd())
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        if flags.get(s.name):
            values[s.name], sources[s.name] = str(flags[s.name]), "flag"
        elif os.environ.get(s.env):
            values[s.name], sources[s.name] = os.environ[s.env], f"env {s.env}"
        elif s.name in project:
            values[s.name], sources[s.name] = str(project[s.name]), PROJECT_FILE
        else:
            values[s.name], sources[s.name] = s.default, "default"
    data = values["data_dir"]
    if "://" in data:
        raise SettingsError(
            f"data folder {data!r} is a URL: the data folder must be a local path "
            "(the landing area may be a URL, e.g. s3://bucket/landing)"
        )
    for name, under in (("models_dir", "models"), ("serving_dir", "serving")):
        if values["lakehouse"] and sources[name] == "default":
            values[name] = values["lakehouse"].rstrip("/") + "/" + under
            sources[name] = "default (lakehouse)"
    for name in ("landing", "lakehouse", "models_dir", "serving_dir"):
        _check_filesystem(name, values[name], sources[name])
    for setting in SETTINGS:
        _check_kind(setting, values[setting.name], sources[setting.name])
    for name, under in (
        ("landing", "landing"),
        ("warehouse", "warehouse.duckdb"),
        ("lake_catalog", "lake_catalog.sqlite"),
        ("models_dir", "models"),
        ("serving_dir", "serving"),
        ("pseudonym_key", ".secrets/pseudonym_key"),
    ):
        if sources[name] == "default":
            values[name] = str(Path(data) / under)
    return Settings(values, sources)


_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _check_kind(setting: Setting, value: str, source: str) -> None:
    """A value its stages could not use, refused before any command writes anything."""
    problem = None
    if setting.kind in ("number", "positive", "count"):
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if setting.kind == "number" and not number >= 0:
            problem = "is not a non-negative number"
        elif setting.kind == "positive" and not number > 0:
            problem = "is not a number above 0"
        elif setting.kind == "count" and not (number >= 1 and number == int(number)):
            problem = "is not a whole number of 1 or more"
    elif setting.kind == "memory" and value != "auto" and not _MEMORY.match(value):
        problem = "is not `auto` or an amount of memory such as 4GB or 512MiB"
    elif setting.kind == "paths" and value not in ("absolute", "relative"):
        problem = "is neither absolute nor relative"
    elif setting.kind == "timezone":
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            problem = "is not an IANA time zone name such as Europe/Lisbon"
    if problem:
        shown = "****" if setting.secret else repr(value)
        raise SettingsError(f"setting {setting.name} = {shown} ({source}) {problem}")


def _check_filesystem(name: str, value: str, source: str) -> None:
    """A URL setting whose filesystem is not installed: one line naming the package."""
    if "://" not in value:
        return
    import fsspec

    try:
        fsspec.get_filesystem_class(value.split("://", 1)[0])
    except (ImportError, ValueError) as exc:  # not installed / no such protocol
        raise SettingsError(f"setting {name} = {value} ({source}): {exc}") from None


def _project_file(cwd: Path) -> dict[str, Any]:
    path = cwd / PROJECT_FILE
    if not path.exists():
        return {}
    try:
        loaded = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(loaded) - {s.name for s in SETTINGS}
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return loaded


@contextmanager
def scoped_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for one call (dbt's env_var reads the process's
    environment) and restore them after, so nothing leaks into later stages."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
