{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['machine_id', 'hour_at', 'sensor'],
        on_schema_change='append_new_columns',
    )
}}
{#
    One row per machine, UTC hour and sensor: statistics of the hour's clean
    readings (not flagged as spike, stuck or out of range) and the flag counts.
    The flags are computed here from the wide staged readings (macro
    flagged_readings, the same rules as int_readings_flagged), so an
    incremental run's hour filter reaches the raw scan.
    Long on purpose: a sensor a new firmware adds becomes new rows, and the
    contract stays fixed.
#}
with

{{ flagged_readings(
    where_sql=(
        'reading_at >= ' ~ incremental_start() ~ ' and hour_at >= ' ~ incremental_start()
    ) if is_incremental() else none
) }},

readings as (

    select
        machine_id,
        hour_at,
        sensor,
        status,
        sensor_value,
        is_spike,
        is_stuck,
        is_out_of_range,
        not(is_spike or is_stuck or is_out_of_range) as is_clean
    from flagged_long

),

final as (

    select
        machine_id,
        hour_at,
        sensor,
        count(*) as readings,
        count(*) filter (where is_clean) as clean_readings,
        avg(sensor_value) filter (where is_clean) as value_mean,
        stddev_samp(sensor_value) filter (where is_clean) as value_std,
        min(sensor_value) filter (where is_clean) as value_min,
        max(sensor_value) filter (where is_clean) as value_max,
        quantile_cont(sensor_value, 0.95) filter (where is_clean) as value_p95,
        avg(sensor_value) filter (where is_clean and status = 'RUN') as run_value_mean,
        count(*) filter (where is_spike) as spike_count,
        count(*) filter (where is_stuck) as stuck_count,
        count(*) filter (where is_out_of_range) as out_of_range_count
    from readings
    group by machine_id, hour_at, sensor

)

select * from final
