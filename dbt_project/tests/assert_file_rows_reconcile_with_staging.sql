-- Every loaded or partial file that no later file of its machine-hour replaced:
-- the rows the ingestion says it loaded and rejected are exactly the readings
-- and rejects staging holds for its content.
with

files as (

    select
        file_path,
        content_sha256,
        rows_read,
        rows_loaded,
        rows_rejected
    from {{ ref('stg_landing__landing_files') }}
    where file_status in ('loaded', 'partial') and not is_superseded

),

readings as (

    select
        source_file_sha256,
        count(*) as readings
    from {{ ref('int_readings_deduplicated') }}
    group by source_file_sha256

),

rejects as (

    select
        source_file_sha256,
        count(*) as rejects
    from {{ ref('stg_landing__telemetry_rejects') }}
    group by source_file_sha256

)

select
    files.file_path,
    files.rows_read,
    files.rows_loaded,
    files.rows_rejected,
    coalesce(readings.readings, 0) as readings_in_staging,
    coalesce(rejects.rejects, 0) as rejects_in_staging
from files
left join readings on files.content_sha256 = readings.source_file_sha256
left join rejects on files.content_sha256 = rejects.source_file_sha256
where
    files.rows_read != files.rows_loaded + files.rows_rejected
    or files.rows_loaded != coalesce(readings.readings, 0)
    or files.rows_rejected != coalesce(rejects.rejects, 0)
