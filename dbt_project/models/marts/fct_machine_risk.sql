{#
    The maintenance team's table: one row per machine with its current risk from
    the newest model version, a recommended action and the top reasons, and its
    newest health score (fct_machine_health, no model needed). A machine never
    scored (no model yet, or silent since before the first score) still has a
    row, with NULL risk and the action to say so.
#}
with

machines as (

    select
        machine_id,
        machine_model
    from {{ ref('dim_machines') }}

),

scores as (

    select * from {{ ref('stg_ml__machine_hour_scores') }}

),

reasons as (

    select * from {{ ref('stg_ml__machine_risk_reasons') }}

),

health as (

    select
        machine_id,
        hour_at,
        health_score,
        most_deviated_sensor
    from {{ ref('fct_machine_health') }}
    where health_score is not null
    qualify row_number() over (partition by machine_id order by hour_at desc) = 1

),

last_seen as (

    select
        machine_id,
        is_silent
    from {{ ref('fct_machine_last_seen') }}

),

current_model as (

    select model_version
    from scores
    order by scored_at desc, model_version desc
    limit 1

),

latest as (

    select scores.*
    from scores
    inner join current_model on scores.model_version = current_model.model_version
    qualify row_number() over (partition by scores.machine_id order by scores.hour_at desc) = 1

),

top_reasons as (

    select
        reasons.machine_id,
        string_agg(
            -- values to four significant digits, whatever the sensor's scale
            reasons.feature
            || ' = ' || format('{:.4g}', reasons.feature_value)
            || ' (typical ' || format('{:.4g}', reasons.reference_value)
            || ', +' || format('{:.1f}', 100 * reasons.risk_contribution) || ' pts)',
            '; ' order by reasons.reason_rank
        ) as top_reasons
    from reasons
    inner join latest
        on
            reasons.machine_id = latest.machine_id
            and reasons.model_version = latest.model_version
            and reasons.hour_at = latest.hour_at
    group by reasons.machine_id

),

final as (

    select
        machines.machine_id,
        machines.machine_model,
        latest.hour_at as scored_hour_at,
        latest.risk,
        latest.alert_threshold,
        coalesce(latest.is_alert, false) as is_alert,
        latest.watch_threshold,
        coalesce(latest.on_watch_list, false) as on_watch_list,
        case
            when latest.risk is null then 'unknown'
            when latest.is_alert then 'high'
            when latest.risk >= latest.alert_threshold / 2 then 'elevated'
            else 'low'
        end as risk_band,
        case
            when latest.risk is null then 'No score yet: train and score the model'
            when latest.is_alert
                then
                    'Schedule preventive maintenance within '
                    || {{ var('label_horizon_hours') }} || ' h'
            when latest.risk >= latest.alert_threshold / 2 then 'Inspect at the next shift change'
            else 'No action'
        end as recommended_action,
        case
            when latest.risk is null then null
            else coalesce(
                top_reasons.top_reasons, 'none: every feature is at or below its typical value'
            )
        end as top_reasons,
        health.health_score,
        health.hour_at as health_hour_at,
        health.most_deviated_sensor,
        coalesce(last_seen.is_silent, true) as is_silent,
        latest.model_version,
        latest.scored_at
    from machines
    left join latest on machines.machine_id = latest.machine_id
    left join top_reasons on machines.machine_id = top_reasons.machine_id
    left join health on machines.machine_id = health.machine_id
    left join last_seen on machines.machine_id = last_seen.machine_id

)

select * from final
