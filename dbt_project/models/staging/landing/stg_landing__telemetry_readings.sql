{#
    Readings, one row each, with the UTC hour of the file they came from
    (hour_at: the machine-hour they belong to, whatever the machine's clock
    said). A crash inside dlt's load step can leave a reading
    twice in raw; a reading is identified by the content of the file it came
    from and its line. reading_at and machine_id are part of the window's
    partition so that filters on them still reach the raw table.
#}
with

source as (

    select * from {{ source('landing', 'telemetry_readings') }}

),

file_hours as (

    -- the UTC hour a file covers, from its name (<machine>_<yyyymmddThh>.txt)
    select distinct
        relative_path,
        strptime(
            regexp_extract(relative_path, '_(\d{8}T\d{2})[^/]*\.txt$', 1), '%Y%m%dT%H'
        )::timestamp at time zone 'UTC' as file_hour_at
    from {{ source('landing', 'landing_files') }}

),

deduplicated as (

    select *
    from source
    qualify row_number() over (
        partition by machine_id, reading_at, source_file_sha256, source_line
        order by _dlt_load_id
    ) = 1

)

select
    deduplicated.* exclude (_dlt_load_id),  -- noqa: RF02
    deduplicated._dlt_load_id as load_id,
    file_hours.file_hour_at as hour_at
from deduplicated
left join file_hours on deduplicated.source_file = file_hours.relative_path
