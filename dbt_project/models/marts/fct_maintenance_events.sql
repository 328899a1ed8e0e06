with

work_orders as (

    select * from {{ ref('stg_landing__maintenance_log') }}

),

final as (

    select
        work_order_id,
        machine_id,
        maintenance_type,
        component,
        failure_mode,
        reported_at,
        started_at,
        ended_at,
        date_diff('minute', reported_at, started_at) as response_minutes,
        date_diff('minute', started_at, ended_at) as repair_minutes,
        date_diff('minute', reported_at, ended_at) as downtime_minutes,
        maintenance_type = 'corrective' as is_failure,
        is_open,
        technician_key
    from work_orders

)

select * from final
