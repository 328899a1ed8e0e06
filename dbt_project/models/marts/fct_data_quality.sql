with

files as (

    select
        machine_id,
        file_hour_at,
        file_status,
        rows_rejected
    from {{ ref('stg_landing__landing_files') }}
    where machine_id is not null and file_hour_at is not null

),

hours as (

    select
        machine_id,
        hour_at,
        completeness,
        is_missing_hour
    from {{ ref('fct_machine_hours') }}

),

file_days as (

    select
        machine_id,
        file_hour_at::date as data_date,
        count(distinct file_hour_at) filter (
            where file_status in ('loaded', 'partial')
        ) as files_received,
        count(*) filter (where file_status = 'partial') as files_partial,
        count(*) filter (where file_status = 'quarantined') as files_quarantined,
        count(*) filter (where file_status = 'duplicate') as files_duplicate,
        coalesce(sum(rows_rejected), 0)::bigint as rows_rejected
    from files
    group by machine_id, file_hour_at::date

),

hour_days as (

    select
        machine_id,
        hour_at::date as data_date,
        count(*) as files_expected,
        count(*) filter (where is_missing_hour) as hours_missing,
        avg(completeness) as completeness
    from hours
    group by machine_id, hour_at::date

),

final as (

    select
        hour_days.machine_id,
        hour_days.data_date,
        hour_days.files_expected,
        coalesce(file_days.files_received, 0) as files_received,
        coalesce(file_days.files_partial, 0) as files_partial,
        coalesce(file_days.files_quarantined, 0) as files_quarantined,
        coalesce(file_days.files_duplicate, 0) as files_duplicate,
        hour_days.hours_missing,
        coalesce(file_days.rows_rejected, 0) as rows_rejected,
        hour_days.completeness
    from hour_days
    left join file_days
        on hour_days.machine_id = file_days.machine_id and hour_days.data_date = file_days.data_date

)

select * from final
