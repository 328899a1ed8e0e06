{#
    The ML table, one row per machine and UTC hour: machine-level features that
    only look back, and the label. The label says whether a corrective failure
    starts within the var('label_horizon_hours') hours after the hour; it is NULL
    (unknown, not false) where those hours are not yet observed (past the
    fleet's newest data or the machine's retirement) and for hours with no
    data at all. Per-sensor
    window features are in fct_machine_hour_sensor_features.
#}
with

hours as (

    select
        machine_id,
        hour_at,
        machine_model,
        completeness,
        running_share,
        alarm_readings,
        maint_readings,
        spike_count,
        stuck_count,
        out_of_range_count,
        is_clock_jump,
        is_clock_drift,
        rejected_rows,
        is_missing_hour
    from {{ ref('fct_machine_hours') }}

),

machines as (

    select
        machine_id,
        machine_model,
        in_service_until_at
    from {{ ref('dim_machines') }}

),

events as (

    select
        machine_id,
        maintenance_type,
        reported_at,
        ended_at
    from {{ ref('fct_maintenance_events') }}

),

failures as (

    select
        machine_id,
        reported_at as failure_at
    from events
    where maintenance_type = 'corrective'

),

maintenance_ends as (

    select
        machine_id,
        ended_at
    from events
    where ended_at is not null

),

fleet_observed as (

    select max(hour_at) + interval 1 hour as observed_until from hours

),

observed as (

    -- what is known about a machine ends with the fleet's data or its retirement
    select
        machines.machine_id,
        least(
            fleet_observed.observed_until,
            machines.in_service_until_at
        ) as observed_until
    from machines
    cross join fleet_observed

),

next_failure as (

    select
        hours.machine_id,
        hours.hour_at,
        min(failures.failure_at) as next_failure_at
    from hours
    left join failures
        on
            hours.machine_id = failures.machine_id
            and failures.failure_at >= hours.hour_at + interval 1 hour
    group by hours.machine_id, hours.hour_at

),

last_maintenance as (

    select
        hours.machine_id,
        hours.hour_at,
        maintenance_ends.ended_at as last_maintenance_ended_at
    from hours
    asof left join maintenance_ends
        on
            hours.machine_id = maintenance_ends.machine_id
            and hours.hour_at >= maintenance_ends.ended_at

),

last_failure as (

    select
        hours.machine_id,
        hours.hour_at,
        failures.failure_at as last_failure_at
    from hours
    asof left join failures
        on
            hours.machine_id = failures.machine_id
            and hours.hour_at >= failures.failure_at

),

windows as (

    select
        *,
        (sum(alarm_readings) over last_24h)::bigint as alarm_readings_24h,
        (sum(spike_count) over last_24h)::bigint as spike_count_24h,
        (sum(stuck_count) over last_24h)::bigint as stuck_count_24h,
        (sum(out_of_range_count) over last_24h)::bigint as out_of_range_count_24h,
        avg(running_share) over last_24h as running_share_24h,
        avg(completeness) over last_24h as completeness_24h
    from hours
    window last_24h as (
        partition by machine_id order by hour_at
        range between interval 23 hour preceding and current row
    )

),

final as (

    select
        windows.machine_id,
        windows.hour_at,
        coalesce(windows.machine_model, machines.machine_model) as machine_model,
        windows.completeness,
        windows.running_share,
        windows.alarm_readings,
        windows.maint_readings,
        windows.spike_count,
        windows.stuck_count,
        windows.out_of_range_count,
        windows.is_clock_jump,
        windows.is_clock_drift,
        windows.rejected_rows,
        windows.is_missing_hour,
        windows.alarm_readings + windows.maint_readings > 0 as is_down,
        windows.alarm_readings_24h,
        windows.spike_count_24h,
        windows.stuck_count_24h,
        windows.out_of_range_count_24h,
        windows.running_share_24h,
        windows.completeness_24h,
        date_diff('minute', last_maintenance.last_maintenance_ended_at, windows.hour_at)
        / 60.0 as hours_since_maintenance,
        date_diff('minute', last_failure.last_failure_at, windows.hour_at)
        / 60.0 as hours_since_failure,
        next_failure.next_failure_at,
        case
            -- no data, no label: an hour with no file says nothing about the machine
            when windows.is_missing_hour then null
            when
                next_failure.next_failure_at
                < windows.hour_at + interval 1 hour
                + to_hours({{ var('label_horizon_hours') }})
                then true
            when
                windows.hour_at + interval 1 hour + to_hours({{ var('label_horizon_hours') }})
                > coalesce(observed.observed_until, fleet_observed.observed_until)
                then null
            else false
        end as will_fail_within_horizon,
        -- the horizon the label was built with: the ML step reads it from here
        {{ var('label_horizon_hours') }}::integer as label_horizon_hours
    from windows
    cross join fleet_observed
    left join machines on windows.machine_id = machines.machine_id
    left join observed on windows.machine_id = observed.machine_id
    left join next_failure
        on
            windows.machine_id = next_failure.machine_id
            and windows.hour_at = next_failure.hour_at
    left join last_maintenance
        on
            windows.machine_id = last_maintenance.machine_id
            and windows.hour_at = last_maintenance.hour_at
    left join last_failure
        on
            windows.machine_id = last_failure.machine_id
            and windows.hour_at = last_failure.hour_at

)

select * from final
