{#
    The export is a full snapshot each time; the latest snapshot of a work
    order wins (an open work order gets its end time in a later export).
    Technician names were pseudonymised and notes dropped at ingestion.
#}
with

source as (

    select
        work_order,
        machine_id,
        reported_at,
        started_at,
        ended_at,
        maintenance_type,
        component,
        failure_mode,
        technician_key,
        has_notes,
        source_line,
        ingested_at
    from {{ source('landing', 'maintenance_log') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by work_order order by ingested_at desc, source_line desc
    ) = 1

)

select
    work_order as work_order_id,
    machine_id,
    reported_at,
    started_at,
    ended_at,
    maintenance_type,
    component,
    failure_mode,
    technician_key,
    has_notes,
    ended_at is null as is_open,
    ingested_at
from latest
