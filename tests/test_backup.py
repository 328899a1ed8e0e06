"""`shopfloor backup` / `restore` on a hand-made data folder: to a folder and to a real S3
API (moto on loopback), checksums checked, nothing replaced without --force, a run in
progress waited for. The whole cycle on a real plant (back up during a run, lose the
data folder, restore, run again) is in tests/test_run.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from shopfloor.core.errors import BackupError, PipelineBusyError
from shopfloor.core.settings import resolve
from shopfloor.operations.backup import restore, take
from shopfloor.pipeline.run import pipeline_lock
from tests.s3 import s3_server


@pytest.fixture(autouse=True)
def _key_from_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other modules' fixtures set SHOPFLOOR_PSEUDONYM_KEY for their worker; here the key
    is the data folder's file unless a test sets one."""
    monkeypatch.delenv("SHOPFLOOR_PSEUDONYM_KEY", raising=False)


def data_folder(root: Path) -> Path:
    """A data folder with every kind of thing a backup must keep, and some it must not."""
    data = root / "data"
    (data / "models" / "v1").mkdir(parents=True)
    (data / "models" / "v1" / "model.joblib").write_bytes(os.urandom(2048))
    (data / ".secrets").mkdir()
    (data / ".secrets" / "pseudonym_key").write_text("a" * 64)
    (data / "quarantine" / "M01").mkdir(parents=True)
    (data / "quarantine" / "M01" / "bad.txt").write_text("not a machine file")
    (data / "runs.jsonl").write_text('{"status": "succeeded"}\n')
    (data / "serving").mkdir()  # rebuilt by the next run: not backed up
    (data / "serving" / "bi.duckdb").write_bytes(b"x")
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("create schema raw")
        con.execute("create table raw.telemetry_readings as select range as line from range(5000)")
        con.execute("insert into raw.telemetry_readings values (-1)")  # left in the WAL
    return data


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_for(data: Path):  # type: ignore[no-untyped-def]
    return resolve({"data_dir": str(data)}, cwd=data.parent)


def test_backup_to_a_folder_and_restore_into_an_empty_one(tmp_path: Path) -> None:
    data = data_folder(tmp_path)
    result = take(settings_for(data), str(tmp_path / "backups"))
    assert result.key_in_backup and result.files == 5  # warehouse, model, key, quarantine, log
    (backup,) = (tmp_path / "backups").iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["counts"] == {"raw.telemetry_readings": 5001}
    assert not (backup / "serving").exists() and not (data / ".backup").exists()

    fresh = tmp_path / "elsewhere" / "data"
    restored = restore(settings_for(fresh), str(tmp_path / "backups"))  # the newest backup
    assert restored.files == 5
    for name in ("models/v1/model.joblib", ".secrets/pseudonym_key", "quarantine/M01/bad.txt"):
        assert digest(fresh / name) == digest(data / name), name
    with duckdb.connect(str(fresh / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*), min(line) from raw.telemetry_readings").fetchone() == (
            5001,
            -1,
        )


def test_a_restore_replaces_nothing_without_force_and_checks_every_file(tmp_path: Path) -> None:
    data = data_folder(tmp_path)
    take(settings_for(data), str(tmp_path / "backups"))
    (backup,) = (tmp_path / "backups").iterdir()
    with pytest.raises(BackupError, match="--force"):
        restore(settings_for(data), str(backup))
    model = backup / "models" / "v1" / "model.joblib"
    model.write_bytes(model.read_bytes()[:-1] + b"!")  # one byte changed in the backup
    (data / "models" / "v1" / "model.joblib").write_bytes(b"kept")
    with pytest.raises(BackupError, match="checksum; nothing restored"):
        restore(settings_for(data), str(backup), force=True)
    assert (data / "models" / "v1" / "model.joblib").read_bytes() == b"kept"
    with pytest.raises(BackupError, match="no complete backup"):
        restore(settings_for(data), str(tmp_path / "nowhere"))


def test_a_backup_waits_for_the_run_in_progress(tmp_path: Path) -> None:
    data = data_folder(tmp_path)
    with pipeline_lock(str(data)), pytest.raises(PipelineBusyError):  # a run holds it
        take(settings_for(data), str(tmp_path / "backups"), wait_s=0.2)
    assert not (tmp_path / "backups").exists()
    # the same through the command line: the backup waits, then exits 0
    holder = subprocess.Popen(
        [
            "python",
            "-c",
            "import sys, time; from shopfloor.pipeline.run import pipeline_lock\n"
            f"with pipeline_lock({str(data)!r}):\n    print('held', flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    cli = subprocess.run(
        ["shopfloor", "backup", str(tmp_path / "backups"), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    holder.wait()
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert time.monotonic() - started > 1  # it waited for the lock holder
    assert "Backed up 5 files" in cli.stdout


def test_backup_to_s3_and_restore_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = data_folder(tmp_path)
    with s3_server(monkeypatch, bucket="backups"):
        monkeypatch.setenv("SHOPFLOOR_PSEUDONYM_KEY", "from-the-environment")
        result = take(settings_for(data), "s3://backups/plant")
        assert not result.key_in_backup and result.files == 4  # the key is the operator's
        fresh = tmp_path / "restored" / "data"
        restored = restore(settings_for(fresh), "s3://backups/plant")
    assert not restored.key_in_backup
    assert digest(fresh / "models" / "v1" / "model.joblib") == digest(
        data / "models" / "v1" / "model.joblib"
    )
    assert not (fresh / ".secrets").exists()
