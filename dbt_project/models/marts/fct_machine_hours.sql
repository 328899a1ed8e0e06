{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['machine_id', 'hour_at'],
        on_schema_change='append_new_columns',
    )
}}
{#
    One row per machine and UTC hour, from the machine's first file hour to the
    fleet's newest: hours with no data are rows too (is_missing_hour).
    Incremental: an hourly run re-computes only the last var('lookback_hours')
    hours and the new ones.
#}
with

files as (

    select
        machine_id,
        file_hour_at,
        file_status,
        sample_interval_s,
        firmware,
        machine_model,
        -- how far the machine's clock ran ahead of (or behind) the hour the file covers
        epoch(first_reading_at) - epoch(file_hour_at) as clock_lead_s
    from {{ ref('stg_landing__landing_files') }}
    where file_status in ('loaded', 'partial', 'quarantined')

),

machine_span as (

    select
        machine_id,
        min(file_hour_at) as first_hour_at,
        (select max(all_files.file_hour_at) from files as all_files) as last_hour_at
    from files
    group by machine_id

),

spine as (

    select
        machine_id,
        unnest(generate_series(first_hour_at, last_hour_at, interval 1 hour)) as hour_at
    from machine_span

),

readings as (

    select
        machine_id,
        reading_at,
        hour_at,
        status,
        source_file,
        source_line
    from {{ ref('stg_landing__telemetry_readings') }}
    {% if is_incremental() %}
        -- a file's readings are never before its hour: this filter reaches raw
        where
            reading_at >= {{ incremental_start() }}
            and hour_at >= {{ incremental_start() }}
    {% endif %}

),

reading_counts as (

    select
        machine_id,
        hour_at,
        count(*) as readings_received,
        count(*) filter (where status = 'RUN') as run_readings,
        count(*) filter (where status = 'IDLE') as idle_readings,
        count(*) filter (where status = 'SETUP') as setup_readings,
        count(*) filter (where status = 'ALARM') as alarm_readings,
        count(*) filter (where status = 'MAINT') as maint_readings
    from readings
    group by machine_id, hour_at

),

flags as (

    -- from the per-sensor mart (built first), not from the long readings: one
    -- row per machine, hour and sensor with at least one reading
    select
        machine_id,
        hour_at,
        count(distinct sensor) as sensors_reporting,
        sum(spike_count)::bigint as spike_count,
        sum(stuck_count)::bigint as stuck_count,
        sum(out_of_range_count)::bigint as out_of_range_count
    from {{ ref('fct_machine_hour_sensors') }}
    {% if is_incremental() %}
        where hour_at >= {{ incremental_start() }}
    {% endif %}
    group by machine_id, hour_at

),

rejects as (

    select
        files.machine_id,
        files.file_hour_at as hour_at,
        count(*) as rejected_rows
    from {{ ref('stg_landing__telemetry_rejects') }} as rejects
    inner join {{ ref('stg_landing__landing_files') }} as files
        on rejects.source_file = files.file_path
    group by files.machine_id, files.file_hour_at

),

hour_files as (

    select
        machine_id,
        file_hour_at as hour_at,
        max(sample_interval_s) as sample_interval_s,
        max(firmware) as firmware,
        max(machine_model) as machine_model,
        bool_or(file_status = 'partial') as has_partial_file,
        bool_or(file_status = 'quarantined') as has_quarantined_file,
        max(clock_lead_s) filter (where file_status != 'quarantined') as clock_lead_s
    from files
    group by machine_id, file_hour_at

),

clock as (

    select
        machine_id,
        hour_at,
        clock_lead_s,
        -- the lead changed by more than 30 s since the machine's previous file:
        -- drift building up, or the resynchronisation that ends it
        coalesce(
            abs(clock_lead_s - lag(clock_lead_s) over (
                partition by machine_id order by hour_at
            )) > 30,
            false
        ) as is_clock_jump
    from hour_files

),

final as (

    select
        spine.machine_id,
        spine.hour_at,
        hour_files.machine_model,
        hour_files.firmware,
        coalesce(reading_counts.readings_received, 0) as readings_received,
        coalesce(3600 // hour_files.sample_interval_s, 0) as readings_expected,
        coalesce(
            least(
                reading_counts.readings_received / (3600 // hour_files.sample_interval_s), 1.0
            ),
            0.0
        ) as completeness,
        coalesce(reading_counts.run_readings / reading_counts.readings_received, 0.0)
            as running_share,
        coalesce(reading_counts.run_readings, 0) as run_readings,
        coalesce(reading_counts.idle_readings, 0) as idle_readings,
        coalesce(reading_counts.setup_readings, 0) as setup_readings,
        coalesce(reading_counts.alarm_readings, 0) as alarm_readings,
        coalesce(reading_counts.maint_readings, 0) as maint_readings,
        coalesce(flags.sensors_reporting, 0) as sensors_reporting,
        coalesce(flags.spike_count, 0) as spike_count,
        coalesce(flags.stuck_count, 0) as stuck_count,
        coalesce(flags.out_of_range_count, 0) as out_of_range_count,
        clock.clock_lead_s,
        coalesce(abs(clock.clock_lead_s) > 30, false) as is_clock_drift,
        coalesce(clock.is_clock_jump, false) as is_clock_jump,
        coalesce(rejects.rejected_rows, 0) as rejected_rows,
        hour_files.machine_id is null as is_missing_hour,
        coalesce(hour_files.has_partial_file, false) as has_partial_file,
        coalesce(hour_files.has_quarantined_file, false) as has_quarantined_file
    from spine
    left join hour_files
        on spine.machine_id = hour_files.machine_id and spine.hour_at = hour_files.hour_at
    left join reading_counts
        on
            spine.machine_id = reading_counts.machine_id
            and spine.hour_at = reading_counts.hour_at
    left join flags
        on spine.machine_id = flags.machine_id and spine.hour_at = flags.hour_at
    left join rejects
        on spine.machine_id = rejects.machine_id and spine.hour_at = rejects.hour_at
    left join clock
        on spine.machine_id = clock.machine_id and spine.hour_at = clock.hour_at
    {% if is_incremental() %}
        where spine.hour_at >= {{ incremental_start() }}
    {% endif %}

)

select * from final
