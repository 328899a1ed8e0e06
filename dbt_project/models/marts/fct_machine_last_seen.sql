{#
    Which machine went silent. Source freshness says whether the pipeline as a
    whole is fed; this says which machine stopped sending, measured against the
    newest data of the whole fleet (so that a replay of old files is judged
    on its own clock).
#}
with

machines as (

    select
        machine_id,
        in_service_from_at,
        in_service_until_at
    from {{ ref('dim_machines') }}

),

per_machine as (

    -- the files whose readings were loaded
    select
        machine_id,
        max(file_hour_at) + interval 1 hour as data_until,
        max(last_reading_at) as last_reading_at
    from {{ ref('stg_landing__landing_files') }}
    where file_status in ('loaded', 'partial')
    group by machine_id

),

fleet as (

    select max(data_until) as fleet_data_until from per_machine

),

final as (

    select
        machines.machine_id,
        per_machine.last_reading_at,
        per_machine.data_until,
        fleet.fleet_data_until,
        coalesce(
            date_diff('hour', per_machine.data_until, fleet.fleet_data_until),
            date_diff('hour', fleet.fleet_data_until - interval 1 hour, fleet.fleet_data_until)
        ) as hours_behind_fleet,
        -- a machine out of service (retired, or not installed yet) is never silent
        coalesce(
            machines.in_service_until_at <= fleet.fleet_data_until
            or machines.in_service_from_at >= fleet.fleet_data_until,
            false
        ) as is_out_of_service,
        not is_out_of_service and coalesce(
            date_diff('hour', per_machine.data_until, fleet.fleet_data_until)
            > {{ var('silent_after_hours') }},
            true
        ) as is_silent
    from machines
    cross join fleet
    left join per_machine on machines.machine_id = per_machine.machine_id

)

select * from final
