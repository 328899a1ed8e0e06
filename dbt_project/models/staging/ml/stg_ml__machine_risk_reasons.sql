with

source as (

    select
        machine_id,
        hour_at,
        model_version,
        reason_rank,
        feature,
        feature_value,
        reference_value,
        contribution,
        scored_at
    from {{ source('ml', 'machine_risk_reasons') }}

)

select
    machine_id,
    hour_at,
    model_version,
    reason_rank,
    feature,
    feature_value,
    reference_value,
    contribution as risk_contribution,
    scored_at
from source
