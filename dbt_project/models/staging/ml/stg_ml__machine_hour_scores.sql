with

source as (

    select
        machine_id,
        hour_at,
        model_version,
        risk,
        threshold,
        is_alert,
        watch_threshold,
        on_watch_list,
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
    -- scores written before the watch list: its default cut, 0.5 (ml/evaluate.py)
    coalesce(watch_threshold, 0.5) as watch_threshold,
    coalesce(on_watch_list, risk >= 0.5) as on_watch_list,
    scored_at
from source
