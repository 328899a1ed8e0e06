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
    incremental run's hour filter reaches the raw scan, and the statistics
    are aggregated on the wide rows, then unpivoted (macro sensor_hour_stats).
    Each machine's sensors are processed in slots, only the ones its machine
    group reports (macro sensor_groups), and named again at the end.
    Long on purpose: a sensor a new firmware adds becomes new rows, and the
    contract stays fixed.
#}
{%- set since = incremental_start() if is_incremental() else none -%}
{%- set groups = sensor_groups(where_sql=('reading_at >= ' ~ since) if since else none) -%}

with

{{ flagged_readings(
    where_sql=('reading_at >= ' ~ since ~ ' and hour_at >= ' ~ since) if since else none,
    groups=groups,
) }},

{{ sensor_hour_stats(sensors=slot_columns(groups)) }},

{{ slot_sensor_names(groups) }},

final as (

    select
        sensor_hours.machine_id,
        sensor_hours.hour_at,
        slot_sensors.sensor,
        sensor_hours.readings,
        sensor_hours.clean_readings,
        sensor_hours.value_mean,
        sensor_hours.value_std,
        sensor_hours.value_min,
        sensor_hours.value_max,
        sensor_hours.value_p95,
        sensor_hours.run_value_mean,
        sensor_hours.spike_count::bigint as spike_count,
        sensor_hours.stuck_count::bigint as stuck_count,
        sensor_hours.out_of_range_count::bigint as out_of_range_count
    from sensor_hours
    inner join slot_sensors
        on
            sensor_hours.machine_id = slot_sensors.machine_id
            and sensor_hours.sensor = slot_sensors.slot

)

select * from final
