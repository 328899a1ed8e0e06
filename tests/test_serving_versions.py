"""The serving snapshot's versions: a query reads one whole version while publishes go on.

A small warehouse whose latest days change at every publish is published many times in a
row while a reader process queries the catalog in a loop; every answer must be one
published state, none may fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from shopfloor.serving import snapshot as serving

DAYS = 10
PUBLISHES = 150

READER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import duckdb

    catalog, out, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    con = duckdb.connect(catalog, read_only=True)  # one connection for the whole test
    answers, failures = [], []
    while not stop.exists():
        try:
            answers.append(con.execute(
                "select count(*), sum(reading), (select max(generation) from marts.dim_state)"
                " from marts.fct_hours"
            ).fetchone())
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    answers.append(con.execute("select sum(reading) from marts.fct_hours").fetchone())
    out.write_text(json.dumps({"answers": answers, "failures": failures}))
    """
)


def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_hours as select timestamptz '2026-03-01 00:00:00+00'"
        f" + to_hours(i) as hour_at, i as machine_id, 0 as reading from range({DAYS * 24}) r(i)"
    )
    con.execute("create table marts.dim_state as select 0 as generation")
    return con


def change_latest_day(con: duckdb.DuckDBPyConnection, generation: int) -> int:
    """Rewrite the last day and a half (as late files would); the new total of readings."""
    con.execute(
        "update marts.fct_hours set reading = ? where hour_at >= (select max(hour_at)"
        " from marts.fct_hours) - interval 36 hour",
        [generation],
    )
    con.execute("update marts.dim_state set generation = ?", [generation])
    total = con.execute("select sum(reading) from marts.fct_hours").fetchone()
    assert total is not None
    return int(total[0])


def test_queries_during_many_publishes_each_read_one_whole_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving, "RETAIN_SECONDS", 0.5)  # old versions go while queries run
    root, con = tmp_path / "serving", warehouse()
    serving.publish(con, root)
    out, stop = tmp_path / "answers.json", tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(root / serving.CATALOG), str(out), str(stop)]
    )
    totals = {0}
    try:
        for generation in range(1, PUBLISHES + 1):
            totals.add(change_latest_day(con, generation))
            serving.publish(con, root)
    finally:
        stop.touch()
        reader.wait(timeout=120)
    result = json.loads(out.read_text())
    *answers, (final,) = result["answers"]
    assert result["failures"] == []
    assert len(answers) > 20, len(answers)  # the reader queried throughout
    assert {rows for rows, _, _ in answers} == {DAYS * 24}
    assert {total for _, total, _ in answers} <= totals  # never a mix of two versions
    assert len({generation for _, _, generation in answers}) > 10
    assert final == max(totals)  # the newest version, without reconnecting
    time.sleep(0.5)
    serving.publish(con, root)  # what no query can be reading any more goes
    kept = list((root / "marts" / "fct_hours").iterdir())
    assert len(kept) == serving.KEEP_VERSIONS, kept


def test_unchanged_days_are_linked_and_old_versions_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving, "RETAIN_SECONDS", 0)
    root, con = tmp_path / "serving", warehouse()
    first = serving.publish(con, root)
    change_latest_day(con, 1)
    second = serving.publish(con, root)
    assert (first.days_written, second.days_written, second.days_linked) == (DAYS, 2, DAYS - 2)

    def day_file(version: str, day: str) -> Path:
        folder = root / "marts" / "fct_hours" / f"{serving.VERSION_KEY}={version}"
        (file,) = (folder / f"day={day}").iterdir()
        return file

    same = day_file(first.version, "2026-03-01"), day_file(second.version, "2026-03-01")
    assert same[0].stat().st_ino == same[1].stat().st_ino
    changed = day_file(first.version, "2026-03-10"), day_file(second.version, "2026-03-10")
    assert changed[0].stat().st_ino != changed[1].stat().st_ino
    for _ in range(3):
        serving.publish(con, root)
    versions = sorted(p.name for p in (root / "marts" / "fct_hours").iterdir())
    assert len(versions) == serving.KEEP_VERSIONS
    assert versions[0].endswith(serving.current_version(root) or "none")
    assert serving.version_number(serving.current_version(root) or "0") == 5


def test_a_crashed_publish_and_an_older_layout_leave_nothing_behind(tmp_path: Path) -> None:
    root, con = tmp_path / "serving", warehouse()
    (root / "staging" / "9999999990" / "fct_hours").mkdir(parents=True)  # a crashed publish
    (root / "versions" / "20261130T120000-0" / "fct_hours").mkdir(parents=True)
    (root / "current").symlink_to("versions/20261130T120000-0")
    result = serving.publish(con, root)
    assert sorted(os.listdir(root)) == [
        "CURRENT",
        "bi.duckdb",
        "bi.duckdb.json",
        "marts",
        "staging",
        "versions",
    ]
    assert os.listdir(root / "staging") == []
    assert os.listdir(root / "versions") == [f"{result.version}.json"]
    with duckdb.connect(str(root / serving.CATALOG), read_only=True) as reader:
        assert reader.sql("select count(*) from marts.fct_hours").fetchone() == (DAYS * 24,)
        assert reader.sql("select * from marts.dim_state").fetchone() == (0,)


def test_a_mart_without_rows_is_published_with_its_columns(tmp_path: Path) -> None:
    root, con = tmp_path / "serving", warehouse()
    con.execute("delete from marts.fct_hours")
    serving.publish(con, root)
    with duckdb.connect(str(root / serving.CATALOG), read_only=True) as reader:
        assert reader.sql("select count(*) from marts.fct_hours").fetchone() == (0,)
        described = reader.sql("select column_name from (describe marts.fct_hours)")
        columns = [c for (c,) in described.fetchall()]
    assert columns == ["hour_at", "machine_id", "reading"]


def test_a_relative_catalog_is_read_from_wherever_the_folder_is_mounted(tmp_path: Path) -> None:
    """bi_catalog_paths = relative: the serving folder moved (as a BI container mounts it
    at another path) still answers, with file_search_path set to where it now is; the
    default, absolute catalog does not survive the move."""
    con = warehouse()
    for name, relative in (("relative", True), ("absolute", False)):
        root = tmp_path / name / "serving"
        serving.publish(con, root, relative=relative)
        mounted = tmp_path / "elsewhere" / name
        mounted.parent.mkdir(exist_ok=True)
        root.rename(mounted)
        reader = duckdb.connect(str(mounted / serving.CATALOG), read_only=True)
        reader.execute(f"set file_search_path = '{mounted}'")
        try:
            rows = reader.sql("select count(*) from marts.fct_hours").fetchone()
        except duckdb.IOException:
            rows = None
        assert rows == ((DAYS * 24,) if relative else None), name
        with serving.open_catalog(str(mounted / serving.CATALOG)) as own:  # shopfloor's
            if relative:
                assert own.sql("select count(*) from marts.dim_state").fetchone() == (1,)
