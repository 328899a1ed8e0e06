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
        file_hour_at,
        ingested_at
    from {{ source('landing', 'landing_files') }}

),

deduplicated as (

    -- one outcome per file version, the newest: a resumed load can write it twice, and
    -- a quarantined file read again (`shopfloor reprocess`) gets a new one; raw keeps
    -- every outcome, the history of its reasons
    select *
    from source
    qualify row_number() over (
        partition by relative_path, size_bytes, modified_at
        order by ingested_at desc
    ) = 1

),

versions as (

    -- of the readable files of one machine-hour (a re-export, a complete upload
    -- after a truncated one, a second file under another name), the one
    -- with the most readings is the hour's data, and of those the one delivered
    -- last (a cut re-send, even cut at a line end, or a re-export whose rows were
    -- all rejected never replaces a complete hour); the others are superseded
    select
        *,
        status in ('loaded', 'partial')
        and row_number() over (
            partition by
                machine_id,
                file_hour_at,
                status in ('loaded', 'partial')
            order by
                rows_loaded desc,
                status = 'loaded' desc,
                modified_at desc,
                ingested_at desc,
                relative_path desc
        ) > 1 as is_superseded
    from deduplicated

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
    file_hour_at,
    is_superseded,
    ingested_at
from versions
