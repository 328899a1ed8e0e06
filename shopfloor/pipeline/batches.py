"""A backlog of raw readings built in bounded batches: memory set by the batch, not the history.

`fct_machine_hour_sensors` flags and aggregates the wide raw readings; DuckDB holds the
readings it works on in memory, so building weeks of the plant's 1 Hz files in one query
outgrows any machine. Before the ordinary `dbt build`, `build_backlog` finds the
machine-hours that model still has to (re)build, groups them into windows of whole UTC
days of at most `build_batch_readings` raw readings, and runs the model once per window
(`dbt run`, each window committed on its own). The ordinary build that follows then finds
nothing left for it and builds the rest of the project as usual.

Resumable by construction: what is pending is read from the warehouse each time (a
machine-hour whose newest file is newer than what the mart holds for it), so a build
killed in window k starts again at window k and never redoes a finished one.
Decision and measurements: docs/decisions/0008-bounded-build-batches.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.core.errors import BuildError
from shopfloor.core.settings import Settings

if TYPE_CHECKING:
    import duckdb
    from dbt.cli.main import dbtRunnerResult

MODEL = "fct_machine_hour_sensors"
_MARKER = "full_refresh_in_windows"  # in the dbt target folder: a full refresh under way


@dataclass(frozen=True)
class Window:
    """Whole UTC days [start, end) and the raw readings they hold."""

    start: date
    end: date
    readings: int
    machine_days: int

    def describe(self) -> str:
        last = self.end - timedelta(days=1)
        days = f"{self.start}" if last == self.start else f"{self.start} to {last}"
        return f"{days} ({self.machine_days} machine-days, {self.readings:,} readings)"


@dataclass
class Plan:
    """What the build must do before its ordinary `dbt build`."""

    windows: list[Window] = field(default_factory=list)
    full_refresh: bool = False  # the first window replaces the model's table
    resumed: bool = False  # a full refresh killed earlier continues where it stopped

    @property
    def readings(self) -> int:
        return sum(w.readings for w in self.windows)

    @property
    def refreshed_the_model(self) -> bool:
        """The model was fully refreshed window by window: the ordinary build keeps it."""
        return (self.full_refresh and bool(self.windows)) or self.resumed


@dataclass(frozen=True)
class _Day:
    day: date
    readings: int
    machines: int
    newer_than_watermark: bool  # every pending hour of the day is newer than the mart


def _pending_days(con: duckdb.DuckDBPyConnection, rebuild_all: bool) -> list[_Day]:
    """Per UTC day, the raw readings of the machine-hours the model has yet to (re)build:
    those whose newest file (any outcome) is newer than what the model holds for them.
    An hour with no readable reading that the model never held has nothing to build."""
    has_model = not rebuild_all and _has_table(con, "marts", MODEL)
    built = (
        f"select machine_id, hour_at, max(source_ingested_at) as built_at from marts.{MODEL} "
        "group by all"
        if has_model
        else "select null::varchar as machine_id, null::timestamptz as hour_at, "
        "null::timestamptz as built_at where false"
    )
    rows = con.execute(
        f"""
        with landing as (
            select
                machine_id,
                file_hour_at as hour_at,
                max(ingested_at) as ingested_at,
                max(rows_loaded) filter (where status in ('loaded', 'partial')) as readings
            from raw.landing_files
            where machine_id is not null and file_hour_at is not null
            group by all
        ),
        built as ({built}),
        watermark as (select max(built_at) as at from built),
        pending as (
            select landing.*, landing.ingested_at > coalesce(watermark.at, '-infinity')
                as is_newer
            from landing
            left join built using (machine_id, hour_at)
            cross join watermark
            where landing.ingested_at > coalesce(built.built_at, '-infinity')
                and (coalesce(landing.readings, 0) > 0 or built.machine_id is not null)
        )
        select
            (hour_at at time zone 'UTC')::date as day,
            coalesce(sum(readings), 0)::bigint,
            count(distinct machine_id),
            bool_and(is_newer)
        from pending
        group by all
        order by day
        """
    ).fetchall()
    return [_Day(day, int(n), int(m), bool(newer)) for day, n, m, newer in rows]


def _windows(days: list[_Day], budget: int) -> list[Window]:
    """Consecutive pending days grouped up to `budget` readings (a bigger day alone)."""
    windows: list[Window] = []
    group: list[_Day] = []

    def close() -> None:
        if group:
            windows.append(
                Window(
                    start=group[0].day,
                    end=group[-1].day + timedelta(days=1),
                    readings=sum(d.readings for d in group),
                    machine_days=sum(d.machines for d in group),
                )
            )
            group.clear()

    for day in days:
        contiguous = not group or day.day == group[-1].day + timedelta(days=1)
        if group and (not contiguous or sum(d.readings for d in group) + day.readings > budget):
            close()
        group.append(day)
    close()
    return windows


def plan(con: duckdb.DuckDBPyConnection, budget: int, full_refresh: bool, target: Path) -> Plan:
    """The windows to build before the ordinary build: none when one query can take the
    backlog and the model's own incremental run (its watermark) finds all of it."""
    resumed = full_refresh and (target / _MARKER).exists()
    rebuild_all = full_refresh and not resumed
    days = _pending_days(con, rebuild_all)
    total = sum(d.readings for d in days)
    fits = total <= budget
    if fits and (rebuild_all or all(d.newer_than_watermark for d in days)):
        return Plan(resumed=resumed)  # a full refresh that fits is the ordinary build's
    return Plan(_windows(days, budget), full_refresh=rebuild_all, resumed=resumed)


@dataclass(frozen=True)
class Progress:
    """One finished window, for the progress line."""

    index: int  # 1-based
    count: int
    window: Window
    seconds: float
    machine_days_per_s: float
    left_s: float | None

    def describe(self) -> str:
        left = f", about {_duration(self.left_s)} left" if self.left_s is not None else ""
        return (
            f"batch {self.index} of {self.count} built: {self.window.describe()} in "
            f"{self.seconds:.1f} s; {self.machine_days_per_s:.2f} machine-days/s{left}"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


OUT_OF_MEMORY = "Out of Memory Error"


def memory_advice(settings: Settings) -> str:
    """The settings that decide a batch's memory, for a one-line error."""
    budget = int(settings.build_batch_readings)
    from shopfloor.pipeline.dbt import memory_limit

    return (
        f"DuckDB ran out of memory (dbt_memory {memory_limit(settings)}, build batches "
        f"of up to {budget:,} readings): lower build_batch_readings "
        "(SHOPFLOOR_BUILD_BATCH_READINGS) or raise dbt_memory (SHOPFLOOR_DBT_MEMORY)"
    )


def build_backlog(
    settings: Settings,
    full_refresh: bool,
    on_step: Callable[[str], None] = lambda _text: None,
) -> Plan:
    """Build the model's pending windows one dbt run each; raise BuildError on a failure.

    Returns the plan it carried out; when it rebuilt a full refresh window by window,
    the ordinary build that follows must keep the model (SHOPFLOOR_BUILD_WINDOWS_DONE)."""
    from shopfloor.core.warehouse import connect, exists
    from shopfloor.pipeline.dbt import run_dbt

    target = settings.data.resolve() / "dbt_target"
    if not exists(settings):
        return Plan()
    budget = int(settings.build_batch_readings)
    with connect(settings) as con:
        if not _has_table(con, "raw", "landing_files"):
            return Plan()
        todo = plan(con, budget, full_refresh, target)
    if not todo.windows:
        return todo
    if todo.resumed:
        on_step("a full refresh built in batches was interrupted: continuing where it stopped")
    on_step(
        f"building {MODEL} in {len(todo.windows)} batches of whole days "
        f"({todo.readings:,} readings; build_batch_readings {budget:,})"
    )
    started = time.perf_counter()
    machine_days = 0
    for index, window in enumerate(todo.windows, start=1):
        begun = time.perf_counter()
        # the first run also creates the views the model reads
        select = f"+{MODEL}" if index == 1 else MODEL
        args = ["run", "--quiet", "--select", select]
        args += ["--full-refresh"] if todo.full_refresh and index == 1 else []
        env = {
            "SHOPFLOOR_BUILD_WINDOW_START": f"{window.start.isoformat()} 00:00:00+00",
            "SHOPFLOOR_BUILD_WINDOW_END": f"{window.end.isoformat()} 00:00:00+00",
        }
        result = run_dbt(args, settings, extra_env=env)
        if not result.success:
            raise BuildError(_failure(settings, result, index, len(todo.windows), window))
        if todo.full_refresh and index == 1:
            # the table now holds the first window only: a build started again after a
            # stop continues the refresh instead of starting it over
            target.mkdir(parents=True, exist_ok=True)
            (target / _MARKER).write_text(datetime.now(UTC).isoformat())
        machine_days += window.machine_days
        elapsed = time.perf_counter() - started
        rate = machine_days / elapsed if elapsed > 0 else 0.0
        left_days = sum(w.machine_days for w in todo.windows[index:])
        on_step(
            Progress(
                index=index,
                count=len(todo.windows),
                window=window,
                seconds=time.perf_counter() - begun,
                machine_days_per_s=rate,
                left_s=left_days / rate if rate > 0 and left_days else None,
            ).describe()
        )
    return todo


def build(
    settings: Settings,
    args: list[str],
    *,
    full_refresh: bool = False,
    batched: bool = True,
    on_step: Callable[[str], None] = lambda _text: None,
    env: dict[str, str] | None = None,
) -> dbtRunnerResult:
    """`dbt build <args>` (plus --full-refresh), the model's backlog first in windows when
    `batched` (a build of the whole project). Raises BuildError when a window fails or
    DuckDB runs out of memory (one line naming the settings to change)."""
    from shopfloor.pipeline.dbt import run_dbt

    done = build_backlog(settings, full_refresh, on_step) if batched else Plan()
    keep = done.refreshed_the_model
    env = (env or {}) | ({"SHOPFLOOR_BUILD_WINDOWS_DONE": "1"} if keep else {})
    result = run_dbt(["build", *args, *(["--full-refresh"] if full_refresh else [])], settings, env)
    if any(OUT_OF_MEMORY in m for m in _messages(result)):
        raise BuildError(memory_advice(settings))
    if result.success and keep:
        (settings.data.resolve() / "dbt_target" / _MARKER).unlink(missing_ok=True)
    return result


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


def _messages(result: dbtRunnerResult) -> list[str]:
    """The nodes' messages and dbt's own exception, if any."""
    messages = [
        str(getattr(node, "message", "") or "")
        for node in getattr(result.result, "results", None) or []
    ]
    if result.exception is not None:
        messages.append(str(result.exception))
    return messages


def _failure(
    settings: Settings, result: dbtRunnerResult, index: int, count: int, window: Window
) -> str:
    messages = _messages(result)
    where = f"batch {index} of {count} ({window.describe()})"
    if any(OUT_OF_MEMORY in m for m in messages):
        return f"{where}: {memory_advice(settings)}"
    first = next((m.splitlines()[0] for m in messages if m.strip()), "dbt run failed")
    return f"{where} failed: {first}"
