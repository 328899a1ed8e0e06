with

source as (

    select
        load_id,
        started_at,
        ended_at,
        status,
        files_listed,
        files_new,
        files_loaded,
        files_partial,
        files_quarantined,
        files_duplicate,
        rows_read,
        rows_loaded,
        rows_rejected,
        bytes_read,
        duration_s,
        error
    from {{ source('landing', 'ingest_runs') }}

)

select
    load_id,
    started_at,
    ended_at,
    status as run_status,
    files_listed,
    files_new,
    files_loaded,
    files_partial,
    files_quarantined,
    files_duplicate,
    rows_read,
    rows_loaded,
    rows_rejected,
    bytes_read,
    duration_s,
    -- only the kind of error leaves raw: its text may quote an input line (a name)
    nullif(regexp_extract(error, '^([A-Za-z_.]+(Error|Exception))', 1), '') as run_error_kind,
    error is not null as has_error
from source
