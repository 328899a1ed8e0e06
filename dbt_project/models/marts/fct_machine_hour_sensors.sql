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
    Long on purpose: a sensor a new firmware adds becomes new rows, and the
    contract stays fixed.
#}
with

{{ flagged_readings(
    where_sql=(
        'reading_at >= ' ~ incremental_start() ~ ' and hour_at >= ' ~ incremental_start()
    ) if is_incremental() else none
) }},

{{ sensor_hour_stats() }},

final as (

    select
        machine_id,
        hour_at,
        sensor,
        readings,
        clean_readings,
        value_mean,
        value_std,
        value_min,
        value_max,
        value_p95,
        run_value_mean,
        spike_count::bigint as spike_count,
        stuck_count::bigint as stuck_count,
        out_of_range_count::bigint as out_of_range_count
    from sensor_hours

)

select * from final
