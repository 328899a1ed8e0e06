"""What the plant asks of the marts, in one place: read by `shopfloor run` (its summary)
and `shopfloor status`, from the warehouse or from the serving layer's catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

DATA_QUALITY_COLUMNS = (
    "data_date",
    "files_expected",
    "files_received",
    "files_partial",
    "files_quarantined",
    "hours_missing",
    "rows_rejected",
    "completeness",
)


def present(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The marts this database holds (a young warehouse may lack some)."""
    return {
        t
        for (t,) in con.sql(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    }


def newest_hour(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest machine-hour any machine sent (UTC), or None before the first."""
    row = con.sql("select max(hour_at) from marts.fct_machine_hours").fetchone()
    newest = row[0] if row else None
    return newest.astimezone(UTC) if newest is not None else None


def latest_drift(con: duckdb.DuckDBPyConnection, version: str) -> tuple[float, str] | None:
    """(largest PSI, its feature) of the version's last drift measurement, if any (a
    snapshot published before drift was measured has no such column)."""
    columns = {name for name, *_ in con.sql("describe marts.fct_model_monitoring").fetchall()}
    if "max_feature_psi" not in columns:
        return None
    row = con.execute(
        "select max_feature_psi, most_drifted_feature from marts.fct_model_monitoring"
        " where model_version = ? and max_feature_psi is not null"
        " order by week_start desc limit 1",
        [version],
    ).fetchone()
    return (float(row[0]), str(row[1])) if row else None


def drift_level(psi: float) -> str:
    """The conventional reading of a population stability index."""
    return "stable" if psi < 0.1 else "moderate" if psi <= 0.25 else "shifted"


def silent_machines(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """(machine, hours behind the fleet) of the machines that stopped sending files."""
    return [
        (m, h)
        for m, h in con.sql(
            "select machine_id, hours_behind_fleet from marts.fct_machine_last_seen"
            " where is_silent order by 1"
        ).fetchall()
    ]


def machines_on_alert(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The machines the model alerts on, highest risk first."""
    return [
        m
        for (m,) in con.sql(
            "select machine_id from marts.fct_machine_risk where is_alert order by risk desc"
        ).fetchall()
    ]


def machines_on_watch_list(con: duckdb.DuckDBPyConnection) -> list[str] | None:
    """The machines likely to fail within the horizon, highest risk first (None: a
    published snapshot from before the watch list)."""
    if "on_watch_list" not in _risk_columns(con):
        return None
    return [
        m
        for (m,) in con.sql(
            "select machine_id from marts.fct_machine_risk where on_watch_list order by risk desc"
        ).fetchall()
    ]


def worst_health(con: duckdb.DuckDBPyConnection, limit: int = 5) -> list[tuple[Any, ...]] | None:
    """(machine, health score, most deviated sensor) of the machines with the highest
    health scores (None: a published snapshot from before the health score)."""
    if "health_score" not in _risk_columns(con):
        return None
    return con.sql(
        "select machine_id, health_score, most_deviated_sensor from marts.fct_machine_risk"
        f" where health_score is not null order by health_score desc limit {int(limit)}"
    ).fetchall()


def _risk_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        name
        for (name,) in con.sql(
            "select column_name from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'fct_machine_risk'"
        ).fetchall()
    }


def top_risks(con: duckdb.DuckDBPyConnection, limit: int = 5) -> list[tuple[Any, ...]]:
    """(machine, risk, band, action, reasons), highest risk first."""
    return con.sql(
        "select machine_id, risk, risk_band, recommended_action, top_reasons"
        f" from marts.fct_machine_risk order by risk desc nulls last limit {int(limit)}"
    ).fetchall()


def data_quality_by_day(con: duckdb.DuckDBPyConnection, days: int = 7) -> list[tuple[Any, ...]]:
    """The plant's data quality per day (DATA_QUALITY_COLUMNS), newest first."""
    return con.sql(
        "select data_date, sum(files_expected), sum(files_received), sum(files_partial),"
        " sum(files_quarantined), sum(hours_missing), sum(rows_rejected),"
        " round(avg(completeness), 3)"
        f" from marts.fct_data_quality group by data_date order by data_date desc limit {int(days)}"
    ).fetchall()
