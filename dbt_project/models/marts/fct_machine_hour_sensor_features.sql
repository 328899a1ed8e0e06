-- depends_on: {{ ref('stg_landing__landing_files') }}
{#- the rows of every rebuilt hour are deleted first (pre-hook), whatever sensors the
    hour has now: a replacing file may lack one, or have no reading at all -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['machine_id', 'hour_at'],
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rebuilt_hours(after_hours=23) }}",
    )
}}
{#
    Per machine, hour and sensor: the model's per-sensor inputs, every column
    but the keys: look-back windows over the hourly means of the sensor while
    the machine ran (6 h and 24 h mean, standard deviation and slope per hour)
    and the hour's statistics declared `features` (macro sensor_statistics). Windows only look back. Long, like fct_machine_hour_sensors:
    a new sensor becomes new rows with no SQL edited.
    Incremental by ingestion: for each machine with a file ingested since the
    last build, the hours from its earliest changed hour to 23 hours after
    its latest one (every window that sees a changed hour) are rebuilt,
    reading the 23 hours before them. A full build is the same query with
    every file counted as changed.
#}
{%- set since = ingested_watermark() -%}
{#- a literal lower bound lets the scan skip the mart's older row groups -#}
{%- set start = changed_hours_start(since) if is_incremental() else "'-infinity'::timestamptz" -%}

with

spans as (

    select
        machine_id,
        min(hour_at) as first_changed_at,
        max(hour_at) + interval 23 hour as last_affected_at
    from ({{ changed_machine_hours(since) }})
    group by machine_id

),

sensor_hours as (

    select
        machine_id,
        hour_at,
        sensor,
        {% for stat in sensor_statistic_names(features=true) %}{{ stat }},
        {% endfor -%}
        run_value_mean,
        spike_count,
        stuck_count,
        out_of_range_count,
        source_ingested_at,
        -- hours since 2020, not since 1970: a slope does not depend on the origin, and
        -- smaller numbers keep its sums of squares exact enough that an incremental
        -- run (other window partitions) gives the same value as a full build
        (epoch(hour_at) - epoch(timestamptz '2020-01-01 00:00:00+00')) / 3600.0 as hour_number
    from {{ ref('fct_machine_hour_sensors') }} as sensors
    where
        hour_at >= {{ start }} - interval 23 hour
        and exists (
            select 1
            from spans
            where
                spans.machine_id = sensors.machine_id
                and sensors.hour_at
                between spans.first_changed_at - interval 23 hour
                and spans.last_affected_at
        )

),

final as (

    select
        machine_id,
        hour_at,
        sensor,
        {% for stat in sensor_statistic_names(features=true) %}{{ stat }},
        {% endfor -%}
        avg(run_value_mean) over last_6h as run_mean_6h,
        stddev_samp(run_value_mean) over last_6h as run_std_6h,
        -- a slope needs three hours at least; fewer give NULL, not NaN
        case
            when count(run_value_mean) over last_6h >= 3
                then regr_slope(run_value_mean, hour_number) over last_6h
        end as run_slope_6h,
        avg(run_value_mean) over last_24h as run_mean_24h,
        stddev_samp(run_value_mean) over last_24h as run_std_24h,
        case
            when count(run_value_mean) over last_24h >= 3
                then regr_slope(run_value_mean, hour_number) over last_24h
        end as run_slope_24h,
        (sum(spike_count + stuck_count + out_of_range_count) over last_24h)::bigint as flags_24h,
        source_ingested_at
    from sensor_hours
    window
        last_6h as (
            partition by machine_id, sensor order by hour_at
            range between interval 5 hour preceding and current row
        ),
        last_24h as (
            partition by machine_id, sensor order by hour_at
            range between interval 23 hour preceding and current row
        )

)

select final.*
from final
inner join spans
    on
        final.machine_id = spans.machine_id
        and final.hour_at >= spans.first_changed_at
