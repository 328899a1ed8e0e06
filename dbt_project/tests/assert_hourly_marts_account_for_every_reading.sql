-- Every staged reading is counted in exactly one machine-hour, every non-NULL
-- sensor value of the staged readings is counted in fct_machine_hour_sensors
-- under its own machine and sensor, and every flag is counted in both marts:
-- what the marts leave out of their statistics is accounted for by flags, not
-- dropped, and no value is filed under another sensor. Count-based: one scan of
-- the wide staged readings, no long rows (one count per sensor column,
-- whatever the firmware added). In the hourly run, the machine-hours with a file
-- loaded since the last run that passed its checks only (macro checked_since), found
-- by their readings' time so that the scan skips the rest of the history.
-- depends_on: {{ ref('stg_landing__landing_files') }}
{%- set sensors = sensor_columns(ref('int_readings_deduplicated')) %}
{%- set since = checked_since() %}
{%- set scope = none %}
{%- set start = "'-infinity'::timestamptz" %}
{%- if since %}
    {%- set scope = "select distinct machine_id, file_hour_at from "
        ~ ref('stg_landing__landing_files')
        ~ " where machine_id is not null and file_hour_at is not null"
        ~ " and ingested_at >= " ~ since %}
    {%- set start = timestamptz_literal(
        "select coalesce(min(file_hour_at), 'infinity'::timestamptz)::varchar from ("
        ~ scope ~ ")") if execute else "'-infinity'::timestamptz" %}
{%- endif %}
with

staged_counts as (

    -- per machine: readings, and the non-NULL values of each sensor column
    select
        machine_id,
        {% for s in sensors -%}
            count({{ s }}) as {{ s }},
        {% endfor -%}
        count(*) as readings__
    from {{ ref('int_readings_deduplicated') }}
    {% if scope %}
        where
            reading_at >= {{ start }} - interval 1 day
            and (machine_id, hour_at) in ({{ scope }})
    {% endif %}
    group by machine_id

),

staged_values as (

    {% if sensors %}
        select
            per_sensor.machine_id,
            {{ sensor_name_sql('per_sensor.sensor') }} as sensor,
            per_sensor.sensor_values
        from (
            unpivot staged_counts
            on columns(* exclude (machine_id, readings__))
            into name sensor value sensor_values
        ) as per_sensor
    {% else %}
        -- no sensor column yet (an empty landing area)
        select
            null::varchar as machine_id,
            null::varchar as sensor,
            null::bigint as sensor_values
        where false
    {% endif %}

),

mart_values as (

    select
        machine_id,
        sensor,
        sum(readings) as sensor_values
    from {{ ref('fct_machine_hour_sensors') }}
    {% if scope %}where (machine_id, hour_at) in ({{ scope }}){% endif %}
    group by machine_id, sensor

),

misfiled as (

    -- machine and sensor pairs whose values the mart does not count exactly
    select count(*) as pairs
    from staged_values
    full outer join mart_values
        on
            staged_values.machine_id = mart_values.machine_id
            and staged_values.sensor = mart_values.sensor
    where coalesce(staged_values.sensor_values, 0) != coalesce(mart_values.sensor_values, 0)

),

staged as (

    select sum(readings__) as readings from staged_counts

),

hours as (

    select
        sum(readings_received) as readings,
        sum(spike_count + stuck_count + out_of_range_count) as flags
    from {{ ref('fct_machine_hours') }}
    {% if scope %}where (machine_id, hour_at) in ({{ scope }}){% endif %}

),

sensor_hours as (

    select
        sum(readings - clean_readings) as flagged,
        sum(spike_count + stuck_count + out_of_range_count) as flags
    from {{ ref('fct_machine_hour_sensors') }}
    {% if scope %}where (machine_id, hour_at) in ({{ scope }}){% endif %}

)

select
    staged.readings as staged_readings,
    hours.readings as hour_readings,
    misfiled.pairs as misfiled_sensor_pairs,
    sensor_hours.flags as sensor_hour_flags,
    hours.flags as hour_flags
from staged
cross join hours
cross join sensor_hours
cross join misfiled
where
    staged.readings != hours.readings
    or misfiled.pairs > 0
    or sensor_hours.flags != hours.flags
    -- a flagged reading carries one to three flags
    or sensor_hours.flagged > sensor_hours.flags
    or sensor_hours.flagged * 3 < sensor_hours.flags
