-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the subquery rendered from completed_loads misleads the indent rule)
{#
    Readings, one row each, with the UTC hour of the file they came from (hour_at:
    the machine-hour they belong to, whatever the machine's clock said). Of two
    readable files for one machine-hour only the one delivered last counts
    (stg_landing__landing_files.is_superseded). A crash inside dlt's load step can
    leave a reading twice in raw; a reading is identified by the content of the file
    it came from and its line. Only a load that no run finished by itself can hold
    such a copy (a run that completes its own load logs it in ingest_runs), so only
    those loads' rows pay for the de-duplicating window: on a clean history it costs
    nothing. reading_at and machine_id are part of the window's partition so that
    filters on them still reach the raw table. The raw table and the completed loads
    are read in each branch, not through CTEs: DuckDB materializes a CTE that is
    read twice (a copy of every reading, or a barrier to the join filter), and a
    view does not keep `not materialized`; the staged views are inlined.
#}
{#- loads finished by the run that made them: each reading is in them once -#}
{%- set completed_loads = "select load_id from " ~ ref('stg_landing__ingest_runs')
    ~ " where run_status = 'succeeded' and load_id is not null" %}
with

file_hours as (

    -- the UTC hour a file covers (from its name), and whether a later file of the
    -- same machine-hour replaced it
    select distinct
        file_path,
        content_sha256,
        file_hour_at,
        is_superseded
    from {{ ref('stg_landing__landing_files') }}
    where file_status in ('loaded', 'partial')

),

deduplicated as (

    select *
    from {{ ref('stg_landing__telemetry_readings') }}
    where load_id in ({{ completed_loads }})

    union all

    -- loads a later run finished after a crash: keep one copy of each reading
    -- (a semi join: in the usual case nothing matches and DuckDB skips this scan)
    select *
    from {{ ref('stg_landing__telemetry_readings') }}
    where load_id in (
        select distinct other_loads.load_id
        from {{ ref('stg_landing__telemetry_readings') }} as other_loads
        where other_loads.load_id not in ({{ completed_loads }})
    )
    qualify row_number() over (
        partition by machine_id, reading_at, source_file_sha256, source_line
        order by load_id
    ) = 1

)

select
    deduplicated.*,  -- noqa: RF02
    file_hours.file_hour_at as hour_at
from deduplicated
left join file_hours
    on
        deduplicated.source_file = file_hours.file_path
        and deduplicated.source_file_sha256 = file_hours.content_sha256
-- a superseded version's readings are not counted beside its replacement's
where not coalesce(file_hours.is_superseded, false)
