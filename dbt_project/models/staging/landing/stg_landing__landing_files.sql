with

source as (

    select
        relative_path,
        file_url,
        machine_id,
        size_bytes,
        modified_at,
        content_sha256,
        status,
        reason,
        rows_read,
        rows_loaded,
        rows_rejected,
        encoding,
        model,
        firmware,
        sample_interval_s,
        sensor_columns,
        first_reading_at,
        last_reading_at,
        duplicate_of,
        ingested_at
    from {{ source('landing', 'landing_files') }}

),

deduplicated as (

    -- one outcome per file version (a resumed load can write it twice)
    select *
    from source
    qualify row_number() over (
        partition by file_url, modified_at, content_sha256 order by ingested_at
    ) = 1

)

select
    relative_path as file_path,
    machine_id,
    size_bytes,
    modified_at,
    content_sha256,
    status as file_status,
    reason as status_reason,
    rows_read,
    rows_loaded,
    rows_rejected,
    encoding,
    model as machine_model,
    firmware,
    sample_interval_s,
    sensor_columns,
    first_reading_at,
    last_reading_at,
    duplicate_of,
    -- the UTC hour the file covers, from its name (<machine>_<yyyymmddThh>.txt)
    strptime(
        regexp_extract(relative_path, '_(\d{8}T\d{2})[^/]*\.txt$', 1), '%Y%m%dT%H'
    )::timestamp at time zone 'UTC' as file_hour_at,
    ingested_at
from deduplicated
