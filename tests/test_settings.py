"""Operable from day one: one resolution of the settings for every stage, and every
misconfiguration a scheduled run can meet is one clear line with its own exit code."""

from __future__ import annotations

import os
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from ml.model import TrainConfig, train
from shopfloor.core import warehouse
from shopfloor.core.errors import SettingsError
from shopfloor.core.settings import resolve
from tests.landing import HandMachine, hours_between, utc, write_hours, write_registry

pytestmark = pytest.mark.e2e
MACHINE = HandMachine("P-1", "PRENSA-9", {"pressao_bar": 180.0}, 900)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    return subprocess.run(
        ["shopfloor", *args],
        capture_output=True,  # a pipe, as cron gives: no terminal
        text=True,
        env={**base, "COLUMNS": "200", **env},
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, piece: str) -> None:
    out = (result.stdout + result.stderr).strip()
    assert result.returncode == code, out
    assert "Traceback" not in out and piece in out, out
    assert len(out.splitlines()) == 1, out


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    write_registry(root, [MACHINE])
    write_hours(root, MACHINE, hours_between(utc(2026, 5, 4), utc(2026, 5, 4) + timedelta(hours=4)))
    return root


def test_one_warehouse_for_every_stage(landing: Path, tmp_path: Path) -> None:
    """SHOPFLOOR_WAREHOUSE set: ingest, build, score and status all use that file."""
    other = tmp_path / "elsewhere" / "plant.duckdb"
    other.parent.mkdir()
    data = tmp_path / "data"
    env = {"SHOPFLOOR_WAREHOUSE": str(other), "SHOPFLOOR_PSEUDONYM_KEY": "k"}
    result = cli("run", "--data-dir", str(data), "--landing", str(landing), **env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "\x1b[" not in result.stdout + result.stderr, "colour codes in a piped log"
    assert not (data / "warehouse.duckdb").exists()
    with duckdb.connect(str(other), read_only=True) as con:
        assert con.sql("select count(*) from raw.telemetry_readings").fetchone() == (16,)
        assert con.sql("select count(*) from marts.fct_machine_hours").fetchone() == (4,)
        # the label horizon the marts were built with is what training must use
        assert con.sql(
            "select distinct label_horizon_hours from marts.fct_machine_hour_features"
        ).fetchall() == [(24,)]
    with duckdb.connect(str(other)) as con, pytest.raises(ValueError, match="refusing to train"):
        train(con, tmp_path / "models", TrainConfig(horizon_hours=12))
    status = cli("status", "--data-dir", str(data), **env)
    assert status.returncode == 0 and "No warehouse yet" not in status.stdout
    shown = cli("config", "--data-dir", str(data), **env)
    assert "plant.duckdb" in shown.stdout and "env SHOPFLOOR_WAREHOUSE" in shown.stdout
    assert "k" not in [
        line.split("│")[2].strip() for line in shown.stdout.splitlines() if "pseudonym_key" in line
    ]


def test_misconfigurations_are_one_line_with_exit_code_2(landing: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    one_line_error(
        cli("run", "--data-dir", str(data), "--landing", str(tmp_path / "typo")),
        2,
        "does not exist",
    )
    status = cli("status", "--data-dir", str(tmp_path / "new"))
    assert status.returncode == 0 and "No warehouse yet" in status.stdout
    one_line_error(cli("run", "--data-dir", "s3://plant/data", "--landing", str(landing)), 2, "URL")
    # a lake on a store whose fsspec filesystem is not installed: the package is named
    one_line_error(cli("status", "--lakehouse", "gcs://plant/lake"), 2, "gcsfs")
    lake = {"SHOPFLOOR_LAKEHOUSE": str(tmp_path / "lake")}
    one_line_error(cli("backup", str(tmp_path / "b"), **lake), 2, "works on the DuckDB warehouse")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(read_only, os.W_OK):  # root writes anywhere: use a path under a file
            target = str(tmp_path / "a_file" / "data")
            (tmp_path / "a_file").write_text("")
        else:
            target = str(read_only / "data")
        one_line_error(
            cli("run", "--data-dir", target, "--landing", str(landing)), 2, "not writable"
        )
    finally:
        read_only.chmod(stat.S_IRWXU)
    # a warehouse whose pseudonymisation key went missing is refused, not re-keyed
    data.mkdir(exist_ok=True)
    (data / "warehouse.duckdb").write_bytes(b"")
    one_line_error(
        cli("ingest", "--data-dir", str(data), "--landing", str(landing)), 2, "pseudonymisation key"
    )


def test_a_silent_landing_area_is_named(landing: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"SHOPFLOOR_PSEUDONYM_KEY": "k"}
    assert cli("ingest", "--data-dir", str(data), "--landing", str(landing), **env).returncode == 0
    empty = tmp_path / "empty_landing"
    empty.mkdir()
    result = cli("ingest", "--data-dir", str(data), "--landing", str(empty), **env)
    assert result.returncode == 0
    assert "lists no telemetry file, but the warehouse holds 4" in result.stdout
    assert str(empty) in result.stdout


def test_help_shows_environment_variables_and_one_spelling() -> None:
    for command in ("run", "ingest", "status", "demo", "build"):
        out = cli(command, "--help").stdout
        assert "--data-dir" in out and "[env: SHOPFLOOR_DATA_DIR]" in out, command
    assert "[env: SHOPFLOOR_LANDING]" in cli("run", "--help").stdout


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shopfloor.toml").write_text('data_dir = "from_file"\nsettle_seconds = "5"\n')
    monkeypatch.delenv("SHOPFLOOR_DATA_DIR", raising=False)
    monkeypatch.delenv("SHOPFLOOR_SETTLE_SECONDS", raising=False)
    monkeypatch.setenv("SHOPFLOOR_MAX_PAST_DAYS", "30")
    s = resolve({"landing": "/x"}, cwd=tmp_path)
    assert (s.data_dir, s.sources["data_dir"]) == ("from_file", "shopfloor.toml")
    assert (s.landing, s.sources["landing"]) == ("/x", "flag")
    assert (s.max_past_days, s.sources["max_past_days"]) == (30.0, "env SHOPFLOOR_MAX_PAST_DAYS")
    assert s.warehouse == str(Path("from_file") / "warehouse.duckdb")
    assert resolve({"data_dir": "flagged"}, cwd=tmp_path).data_dir == "flagged"
    (tmp_path / "shopfloor.toml").write_text('data_dri = "typo"\n')
    with pytest.raises(SettingsError, match="unknown setting"):
        resolve({}, cwd=tmp_path)


def test_a_missing_extension_package_is_named_never_downloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(warehouse.EXTENSIONS, "excel", "duckdb-extension-excel")
    with duckdb.connect() as con:
        con.execute("set autoinstall_known_extensions = false")
        with pytest.raises(warehouse.LakeError, match="install the PyPI package") as err:
            warehouse.install_extensions(con, ["ducklake", "excel"])
        assert "duckdb-extension-excel==1.5.5" in str(err.value)
        assert "\n" not in str(err.value)
        # the packaged ones are installed from their files and loaded
        loaded = con.sql(
            "select extension_name from duckdb_extensions() where loaded and"
            " extension_name = 'ducklake'"
        ).fetchall()
    assert loaded == [("ducklake",)]


def test_a_failing_catalog_copy_does_not_hide_the_commands_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a command that failed, copying the lake's catalog may fail too (the store
    went away): the command's error is raised, the copy's is a warning."""
    from shopfloor.cli._common import _writes_warehouse

    def store_gone(_settings: object) -> None:
        raise OSError("store unreachable")

    monkeypatch.setattr(warehouse, "save_catalog", store_gone)
    settings = resolve({"data_dir": str(tmp_path)}, cwd=tmp_path)
    with pytest.raises(ValueError, match="the command's own"), _writes_warehouse(settings):
        raise ValueError("the command's own failure")
    assert "store unreachable" in capsys.readouterr().out
    with pytest.raises(OSError, match="store unreachable"), _writes_warehouse(settings):
        pass  # after a command that succeeded, a failed copy is the error


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("settle_seconds", "abc", "not a non-negative number"),
        ("max_file_mb", "0", "not a number above 0"),
        ("build_batch_readings", "1.5", "not a whole number"),
        ("dbt_memory", "lots", "amount of memory"),
        ("plant_timezone", "Mars/Olympus_Mons", "IANA time zone"),
    ],
)
def test_a_bad_value_is_refused_by_config_and_before_anything_is_written(
    landing: Path, tmp_path: Path, name: str, value: str, problem: str
) -> None:
    data = tmp_path / "data"
    env = {f"SHOPFLOOR_{name.upper()}": value}
    one_line_error(cli("config", **env), 2, problem)
    one_line_error(
        cli("run", "--data-dir", str(data), "--landing", str(landing), **env), 2, problem
    )
    assert not data.exists(), "nothing is written before the settings are checked"


def test_every_setting_is_a_declared_attribute_of_its_kind() -> None:
    """One declaration per setting: SETTINGS names it, Settings types it (a number reads
    as a float, a misspelt name is an error, never an empty string)."""
    from shopfloor.core.settings import SETTINGS, Settings, _Number, _Text, resolve

    declared = {n: v for n, v in vars(Settings).items() if isinstance(v, _Text)}
    assert set(declared) == {s.name for s in SETTINGS}
    for s in SETTINGS:
        numeric = s.kind in ("number", "positive", "count")
        assert isinstance(declared[s.name], _Number) == numeric, s.name
    settings = resolve({"data_dir": "/tmp/plant", "settle_seconds": "30"})
    assert settings.settle_seconds == 30.0 and settings.data_dir == "/tmp/plant"
    with pytest.raises(AttributeError):
        settings.settle_second  # type: ignore[attr-defined]  # noqa: B018
