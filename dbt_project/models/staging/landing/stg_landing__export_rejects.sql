with

source as (

    select
        source_file,
        line_number,
        reason,
        source_file_sha256,
        ingested_at
    from {{ source('landing', 'export_rejects') }}

)

select
    ---------- ids
    source_file,
    source_file_sha256,
    line_number as source_line,
    ---------- what was wrong
    reason as reject_reason,
    line_number is null as is_whole_export,
    ---------- timestamps
    ingested_at
from source
