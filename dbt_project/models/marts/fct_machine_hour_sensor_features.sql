{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['machine_id', 'hour_at', 'sensor'],
        on_schema_change='append_new_columns',
    )
}}
{#
    Per machine, hour and sensor: look-back windows over the hourly means of
    the sensor while the machine ran (6 h and 24 h mean, standard deviation and
    slope per hour). Windows only look back. Long, like fct_machine_hour_sensors:
    a new sensor becomes new rows with no SQL edited.
    Incremental: an hourly run rebuilds the hours from incremental_start() on,
    reading the 23 hours before them for the windows.
#}
{%- set since = incremental_start() if is_incremental() else none -%}

with

sensor_hours as (

    select
        machine_id,
        hour_at,
        sensor,
        value_mean,
        value_std,
        value_p95,
        run_value_mean,
        spike_count,
        stuck_count,
        out_of_range_count,
        epoch(hour_at) / 3600.0 as hour_number
    from {{ ref('fct_machine_hour_sensors') }}
    {% if since %}where hour_at >= {{ since }} - interval 23 hour{% endif %}

),

final as (

    select
        machine_id,
        hour_at,
        sensor,
        value_mean,
        value_std,
        value_p95,
        run_value_mean,
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
        (sum(spike_count + stuck_count + out_of_range_count) over last_24h)::bigint as flags_24h
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

select * from final
{% if since %}where hour_at >= {{ since }}{% endif %}
