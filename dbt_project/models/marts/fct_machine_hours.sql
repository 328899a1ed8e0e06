{#
    One row per machine and UTC hour of the machine's active life, from its
    first file hour (not before it was installed) to the fleet's newest hour
    (not after it was retired): hours with no data are rows too
    (is_missing_hour). An hour with a file outside that span is kept, it is
    never a missing hour. A table rebuilt at every run: the per-hour work is
    done incrementally in int_machine_hours_aggregated, so this is a join of
    small per-hour tables, and a change of the registry (a machine retired)
    or a late file shows at once.
#}
with

file_hours as (

    select
        machine_id,
        hour_at,
        machine_model,
        firmware,
        sample_interval_s,
        clock_lead_s,
        has_partial_file,
        has_quarantined_file,
        has_superseded_file,
        rejected_rows,
        readings_received,
        run_readings,
        idle_readings,
        setup_readings,
        alarm_readings,
        maint_readings
    from {{ ref('int_machine_hours_aggregated') }}

),

machines as (

    select
        machine_id,
        in_service_from_at,
        in_service_until_at
    from {{ ref('dim_machines') }}

),

machine_span as (

    -- first hour: the first file's, or the installation day's if that is later;
    -- last hour: the fleet's newest, or the hour before the retirement day
    select
        file_hours.machine_id,
        greatest(
            min(file_hours.hour_at),
            max(machines.in_service_from_at)
        ) as first_hour_at,
        least(
            (select max(all_hours.hour_at) from file_hours as all_hours),
            max(machines.in_service_until_at) - interval 1 hour
        ) as last_hour_at
    from file_hours
    left join machines on file_hours.machine_id = machines.machine_id
    group by file_hours.machine_id

),

spine as (

    select
        machine_id,
        unnest(generate_series(first_hour_at, last_hour_at, interval 1 hour)) as hour_at
    from machine_span
    where first_hour_at <= last_hour_at

    union

    select
        machine_id,
        hour_at
    from file_hours

),

flags as (

    -- from the per-sensor mart: one row per machine, hour and sensor with at
    -- least one reading
    select
        machine_id,
        hour_at,
        count(distinct sensor) as sensors_reporting,
        sum(spike_count)::bigint as spike_count,
        sum(stuck_count)::bigint as stuck_count,
        sum(out_of_range_count)::bigint as out_of_range_count
    from {{ ref('fct_machine_hour_sensors') }}
    group by machine_id, hour_at

),

clock as (

    select
        machine_id,
        hour_at,
        -- the lead changed by more than 30 s since the machine's previous file:
        -- drift building up, or the resynchronisation that ends it
        coalesce(
            abs(clock_lead_s - lag(clock_lead_s) over (
                partition by machine_id order by hour_at
            )) > 30,
            false
        ) as is_clock_jump
    from file_hours

),

final as (

    select
        spine.machine_id,
        spine.hour_at,
        file_hours.machine_model,
        file_hours.firmware,
        coalesce(file_hours.readings_received, 0) as readings_received,
        coalesce(3600 // file_hours.sample_interval_s, 0) as readings_expected,
        -- an hour with no file has no readings: completeness 0
        case
            when file_hours.sample_interval_s is null then 0.0
            else least(
                file_hours.readings_received / (3600 // file_hours.sample_interval_s), 1.0
            )
        end as completeness,
        coalesce(file_hours.run_readings / nullif(file_hours.readings_received, 0), 0.0)
            as running_share,
        coalesce(file_hours.run_readings, 0) as run_readings,
        coalesce(file_hours.idle_readings, 0) as idle_readings,
        coalesce(file_hours.setup_readings, 0) as setup_readings,
        coalesce(file_hours.alarm_readings, 0) as alarm_readings,
        coalesce(file_hours.maint_readings, 0) as maint_readings,
        coalesce(flags.sensors_reporting, 0) as sensors_reporting,
        coalesce(flags.spike_count, 0) as spike_count,
        coalesce(flags.stuck_count, 0) as stuck_count,
        coalesce(flags.out_of_range_count, 0) as out_of_range_count,
        file_hours.clock_lead_s,
        coalesce(abs(file_hours.clock_lead_s) > 30, false) as is_clock_drift,
        coalesce(clock.is_clock_jump, false) as is_clock_jump,
        coalesce(file_hours.rejected_rows, 0) as rejected_rows,
        file_hours.machine_id is null as is_missing_hour,
        coalesce(file_hours.has_partial_file, false) as has_partial_file,
        coalesce(file_hours.has_quarantined_file, false) as has_quarantined_file,
        coalesce(file_hours.has_superseded_file, false) as has_superseded_file
    from spine
    left join file_hours
        on spine.machine_id = file_hours.machine_id and spine.hour_at = file_hours.hour_at
    left join flags
        on spine.machine_id = flags.machine_id and spine.hour_at = flags.hour_at
    left join clock
        on spine.machine_id = clock.machine_id and spine.hour_at = clock.hour_at

)

select * from final
