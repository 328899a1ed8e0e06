with

source as (

    select
        source_file,
        source_file_sha256,
        machine_id,
        line_number,
        raw_line,
        reason,
        ingested_at
    from {{ source('landing', 'telemetry_rejects') }}

),

deduplicated as (

    select *
    from source
    qualify row_number() over (
        partition by source_file_sha256, line_number order by ingested_at
    ) = 1

)

select
    source_file,
    source_file_sha256,
    machine_id,
    line_number as source_line,
    raw_line,
    reason as reject_reason,
    case
        when reason like 'truncated%' then 'truncated'
        when reason like 'binary garbage%' then 'binary_garbage'
        when reason like 'wrong column count%' then 'wrong_column_count'
        when reason like 'non-numeric%' then 'non_numeric'
        else 'other'
    end as reject_class,
    ingested_at
from deduplicated
