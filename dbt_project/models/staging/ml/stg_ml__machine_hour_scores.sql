with

source as (

    select
        machine_id,
        hour_at,
        model_version,
        risk,
        threshold,
        is_alert,
        scored_at
    from {{ source('ml', 'machine_hour_scores') }}

)

select
    machine_id,
    hour_at,
    model_version,
    risk,
    threshold as alert_threshold,
    is_alert,
    scored_at
from source
