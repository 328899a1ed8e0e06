with

source as (

    select
        model_version,
        window_start,
        window_end,
        feature,
        psi,
        hours,
        computed_at
    from {{ source('ml', 'feature_drift') }}

)

select
    model_version,
    window_start as window_start_at,
    window_end as window_end_at,
    feature,
    psi,
    hours as hours_measured,
    computed_at
from source
