"""Where the warehouse lives: an embedded DuckDB file (the default) or a DuckLake lakehouse.

The lakehouse setting (`lakehouse`, e.g. ``s3://plant/lake``) puts every table — the raw
loads, dbt's models, the ML step's scores — in one DuckLake: Parquet files under that
prefix and a catalog (`lake_catalog`, a SQLite file or a PostgreSQL database) that lists
them per snapshot. Every stage reaches it through this module: dlt's `ducklake`
destination, dbt's `lake` profile output and `connect()` for Python stages, so a stage's
SQL names `raw.…`, `marts.…`, `ml.…` the same way on both.

DuckDB's extensions come from PyPI packages (`duckdb-extension-<name>`, built for the
pinned DuckDB) and are installed from those files: nothing is ever downloaded at run time
(decision record: docs/decisions/0007-lakehouse-ducklake.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from shopfloor.core.errors import LakeError, SettingsError
from shopfloor.core.settings import Settings

if TYPE_CHECKING:
    import duckdb

LAKE = "lake"  # the name the lake is attached as, in every engine session
# DuckDB extension -> the PyPI package shipping it for the pinned DuckDB
EXTENSIONS = {
    "ducklake": "duckdb-extension-ducklake",
    "httpfs": "duckdb-extension-httpfs",
    "sqlite_scanner": "duckdb-extension-sqlite-scanner",
    "postgres_scanner": "duckdb-extension-postgres-scanner",
}


@dataclass(frozen=True)
class Lake:
    """A DuckLake: data files under `data_path`, the list of them in `catalog`."""

    data_path: str  # s3://bucket/prefix, any fsspec URL DuckDB reads, or a folder
    catalog: str  # a SQLite file, or postgres://…

    @property
    def on_s3(self) -> bool:
        return urlparse(self.data_path).scheme in ("s3", "s3a")

    @property
    def catalog_is_postgres(self) -> bool:
        return self.catalog.startswith(("postgres://", "postgresql://"))

    @property
    def data_url(self) -> str:
        """The data path with a trailing slash, as DuckLake stores it."""
        return self.data_path.rstrip("/") + "/"

    @property
    def metadata_schema(self) -> str:
        """Where the catalog's tables are: dlt puts them in a schema named after the lake
        on a PostgreSQL catalog; a SQLite file has one schema."""
        return LAKE if self.catalog_is_postgres else "main"

    @property
    def attach_target(self) -> str:
        """What ATTACH names: `ducklake:` and the catalog database."""
        if self.catalog_is_postgres:
            return "ducklake:postgres:" + _libpq(self.catalog)
        return "ducklake:sqlite:" + str(Path(self.catalog).resolve())

    def attach_sql(self, read_only: bool = False) -> str:
        options = [
            f"DATA_PATH '{_quote(self.data_url)}'",
            f"METADATA_SCHEMA '{self.metadata_schema}'",
        ]
        if read_only:
            options.append("READ_ONLY")
        if not self.catalog_is_postgres:
            options.append("META_JOURNAL_MODE 'WAL', META_BUSY_TIMEOUT 30000")
        target = _quote(self.attach_target)
        return f"ATTACH IF NOT EXISTS '{target}' AS {LAKE} ({', '.join(options)})"

    def extensions(self) -> list[str]:
        catalog = "postgres_scanner" if self.catalog_is_postgres else "sqlite_scanner"
        return ["ducklake", catalog, "httpfs"]


def lake_of(settings: Settings) -> Lake | None:
    """The settings' lakehouse, or None for the embedded DuckDB file."""
    if not settings.lakehouse:
        return None
    return Lake(settings.lakehouse, settings.lake_catalog)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _libpq(url: str) -> str:
    """postgres://user:pw@host:port/db -> the key=value form DuckDB's postgres scanner takes."""
    parsed = urlparse(url)
    parts = {
        "host": parsed.hostname,
        "port": parsed.port,
        "dbname": parsed.path.lstrip("/"),
        "user": parsed.username,
        "password": parsed.password,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def install_extensions(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """Install and load DuckDB extensions from their PyPI packages (never the internet)."""
    import importlib

    version = con.sql("pragma version").fetchone()[0]  # type: ignore[index]
    installed = {
        name
        for (name,) in con.sql(
            "select extension_name from duckdb_extensions() where installed"
        ).fetchall()
    }
    for name in names:
        if name not in installed:
            package = EXTENSIONS[name]
            try:
                module = importlib.import_module(package.replace("-", "_"))
            except ImportError:
                raise LakeError(
                    f"the lakehouse needs DuckDB's {name} extension: install the PyPI "
                    f"package {package}=={version.lstrip('v')} (uv add / pip install)"
                ) from None
            file = Path(module.__file__ or "").parent / "extensions" / version
            file = file / f"{name}.duckdb_extension"
            if not file.exists():
                raise LakeError(
                    f"{package} does not ship the {name} extension for DuckDB {version}: "
                    f"install {package}=={version.lstrip('v')}"
                )
            con.execute(f"INSTALL '{_quote(str(file))}'")
        con.execute(f"LOAD {name}")


def s3_options(data_path: str) -> dict[str, str]:
    """The S3 secret for `data_path` from the AWS chain (environment, ~/.aws, a role).

    AWS_ENDPOINT_URL(_S3) points at an S3-compatible server (MinIO, moto): path-style
    URLs, and plain HTTP when the endpoint says so.
    """
    import botocore.session

    session = botocore.session.get_session()
    creds = session.get_credentials()
    frozen = creds.get_frozen_credentials() if creds else None
    options: dict[str, str] = {
        "type": "s3",
        "scope": "s3://" + urlparse(data_path).netloc,
        "region": session.get_config_variable("region") or "us-east-1",
    }
    if frozen:
        options |= {"key_id": frozen.access_key, "secret": frozen.secret_key}
        if frozen.token:
            options["session_token"] = frozen.token
    if endpoint := _endpoint():
        parsed = urlparse(endpoint)
        options |= {
            "endpoint": parsed.netloc,
            "url_style": "path",
            "use_ssl": str(parsed.scheme == "https").lower(),
        }
    return options


def _endpoint() -> str | None:
    """An S3-compatible server's endpoint, as the AWS SDKs read it from the environment."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _secret_sql(options: Mapping[str, str]) -> str:
    body = ", ".join(
        f"{key} {value}" if key in ("type", "use_ssl") else f"{key} '{_quote(value)}'"
        for key, value in options.items()
    )
    return f"CREATE OR REPLACE SECRET shopfloor_lake ({body})"


def s3_secret_sql(url: str) -> str:
    """The session's S3 secret for `url`, from the AWS chain (never stored in a file)."""
    return _secret_sql(s3_options(url))


CATALOG_COPY = "catalog/lake_catalog.sqlite"


def catalog_copy(lake: Lake) -> str | None:
    """Where a SQLite catalog of a lake on an object store is kept beside its data, so that
    the local file is a cache: None for a PostgreSQL catalog or a lake in a folder."""
    if lake.catalog_is_postgres or "://" not in lake.data_path:
        return None
    return lake.data_url + CATALOG_COPY


def _restore_catalog(lake: Lake) -> None:
    """A missing local SQLite catalog is fetched from the lake's copy, if there is one."""
    import fsspec

    copy = catalog_copy(lake)
    local = Path(lake.catalog)
    if copy is None or local.exists():
        return
    fs, path = fsspec.core.url_to_fs(copy)
    if fs.exists(path):
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".part")
        fs.get_file(path, str(partial))
        os.replace(partial, local)


def save_catalog(settings: Settings) -> str | None:
    """Copy the lake's SQLite catalog (a consistent snapshot, taken with SQLite's backup
    API while writers may be at work) beside its data; where it went, or None."""
    import sqlite3
    import tempfile

    import fsspec

    lake = lake_of(settings)
    copy = catalog_copy(lake) if lake else None
    if lake is None or copy is None or not Path(lake.catalog).exists():
        return None
    with tempfile.TemporaryDirectory(prefix="shopfloor_catalog_") as tmp:
        snapshot = str(Path(tmp) / "lake_catalog.sqlite")
        with (
            contextlib.closing(sqlite3.connect(lake.catalog)) as source,
            contextlib.closing(sqlite3.connect(snapshot)) as target,
        ):
            source.backup(target)
        fs, path = fsspec.core.url_to_fs(copy)
        fs.put_file(snapshot, path)  # one object, replaced whole
    return copy


def open_lake(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool = False) -> None:
    """Attach the lake to a DuckDB session and make it the default catalog."""
    install_extensions(con, lake.extensions())
    if lake.on_s3:
        con.execute(s3_secret_sql(lake.data_path))
    if not lake.catalog_is_postgres:
        _restore_catalog(lake)
        Path(lake.catalog).parent.mkdir(parents=True, exist_ok=True)
    con.execute(lake.attach_sql(read_only))
    con.execute(f"USE {LAKE}")


def connect(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB session on the settings' warehouse: the embedded file or the lake."""
    import duckdb

    lake = lake_of(settings)
    if lake is None:
        return duckdb.connect(settings.warehouse, read_only=read_only)
    con = duckdb.connect()
    try:
        open_lake(con, lake, read_only)
    except Exception:
        con.close()
        raise
    return con


def exists(settings: Settings) -> bool:
    """Whether the warehouse has been created (a file, or a lake catalog)."""
    lake = lake_of(settings)
    if lake is None:
        return Path(settings.warehouse).exists()
    if lake.catalog_is_postgres or Path(lake.catalog).exists():
        return True
    import fsspec

    copy = catalog_copy(lake)
    return copy is not None and fsspec.core.url_to_fs(copy)[0].exists(copy)


def location(settings: Settings) -> str:
    """Where the warehouse is, for messages (no secret)."""
    lake = lake_of(settings)
    if lake is None:
        return settings.warehouse
    catalog = "PostgreSQL" if lake.catalog_is_postgres else lake.catalog
    return f"lakehouse {lake.data_path} (catalog {catalog})"


def dbt_env(settings: Settings) -> dict[str, str]:
    """What profiles.yml's `lake` output reads: the attach and the S3 secret's fields."""
    lake = lake_of(settings)
    if lake is None:
        return {}
    env = {
        "SHOPFLOOR_DBT_TARGET": "lake",
        "SHOPFLOOR_LAKE_ATTACH": lake.attach_target,
        "SHOPFLOOR_LAKE_DATA_PATH": lake.data_url,
        "SHOPFLOOR_LAKE_METADATA_SCHEMA": lake.metadata_schema,
    }
    secret = s3_options(lake.data_path) if lake.on_s3 else {}
    for key in ("key_id", "secret", "session_token", "region", "endpoint", "url_style"):
        env[f"SHOPFLOOR_LAKE_S3_{key.upper()}"] = secret.get(key, "")
    env["SHOPFLOOR_LAKE_S3_USE_SSL"] = secret.get("use_ssl", "true")
    env["SHOPFLOOR_LAKE_S3_SCOPE"] = secret.get("scope", "s3://")
    return env


# kept in the lake's catalog, so every writer (dlt, dbt, the ML step) follows them
LAKE_OPTIONS = {
    # every row in Parquet: small inserts otherwise stay inside the catalog database,
    # where an engine reading the Parquet files would not see them
    "data_inlining_row_limit": "0",
    "parquet_compression": "zstd",
    # Parquet v2: delta encoding for the readings' decimals, times and line numbers
    # (docs/decisions/0007-lakehouse-ducklake.md)
    "parquet_version": "2",
}


_PREPARED: set[Lake] = set()  # lakes this process has prepared


def prepare(settings: Settings) -> None:
    """Before an engine that attaches the lake by itself (dbt, dlt) runs: the extensions
    installed from their packages (an attach autoloads them, and DuckDB would otherwise
    download them) and the lake created with its options. Once per process and lake."""
    lake = lake_of(settings)
    if lake is None or lake in _PREPARED:
        return
    with connect(settings) as con:
        current = dict(con.sql(f"select option_name, value from {LAKE}.options()").fetchall())
        for name, value in LAKE_OPTIONS.items():
            if current.get(name) != value:
                con.execute(f"CALL {LAKE}.set_option('{name}', '{value}')")
    _PREPARED.add(lake)


def dlt_destination(settings: Settings) -> Any:
    """dlt's `ducklake` destination on the same lake (same catalog, data path, secret),
    configured the way dlt resolves any configuration: a mapping of its fields."""
    from dlt.destinations import ducklake

    lake = lake_of(settings)
    if lake is None:
        raise SettingsError("no lakehouse configured")
    prepare(settings)  # dlt's attach autoloads `ducklake`: installed, it is never downloaded
    storage: dict[str, Any] = {"bucket_url": lake.data_url}
    if lake.on_s3:
        secret = s3_options(lake.data_path)
        given: dict[str, Any] = {
            "aws_access_key_id": secret.get("key_id"),
            "aws_secret_access_key": secret.get("secret"),
            "aws_session_token": secret.get("session_token"),
            "region_name": secret["region"],
            "endpoint_url": _endpoint(),
        }
        storage["credentials"] = {k: v for k, v in given.items() if v}
    if lake.catalog_is_postgres:
        catalog = lake.catalog
    else:  # the folder exists: prepare() attached the catalog
        catalog = "sqlite:///" + str(Path(lake.catalog).resolve())
    credentials: Any = {"ducklake_name": LAKE, "catalog": catalog, "storage": storage}
    return ducklake(credentials=credentials)
