{#
    How each model version's lists turned out, per week, as the labels mature: one row
    per model version and week (Monday, UTC) in which it scored hours. Hour level: the
    act-now list (is_alert) and the watch list (on_watch_list) against the label
    (a failure within the horizon; NULL while the future is not yet observed). Failure
    level: the failures that came in the week after hours the version scored, and whether
    its act-now list or watch list named the machine in the horizon before.
#}
with

scores as (

    select * from {{ ref('stg_ml__machine_hour_scores') }}

),

labels as (

    select
        machine_id,
        hour_at,
        will_fail_within_horizon,
        next_failure_at
    from {{ ref('fct_machine_hour_features') }}

),

scored as (

    select
        scores.model_version,
        scores.machine_id,
        scores.hour_at,
        scores.is_alert,
        scores.on_watch_list,
        labels.will_fail_within_horizon as fails_within_horizon,
        labels.next_failure_at
    from scores
    left join labels
        on scores.machine_id = labels.machine_id and scores.hour_at = labels.hour_at

),

hour_figures as (

    select
        model_version,
        date_trunc('week', hour_at at time zone 'UTC')::date as week_start,
        count(*) as hours_scored,
        count(fails_within_horizon) as labelled_hours,
        count_if(fails_within_horizon)::bigint as failure_hours,
        count_if(is_alert)::bigint as alert_hours,
        count_if(is_alert and fails_within_horizon)::bigint as alert_hours_confirmed,
        count_if(is_alert and fails_within_horizon is not null)::bigint as alert_hours_labelled,
        count_if(on_watch_list)::bigint as watch_hours,
        count_if(on_watch_list and fails_within_horizon)::bigint as watch_hours_confirmed,
        count_if(on_watch_list and fails_within_horizon is not null)::bigint as watch_hours_labelled
    from scored
    group by model_version, date_trunc('week', hour_at at time zone 'UTC')::date

),

failures as (

    -- each failure within the horizon of hours the version scored
    select
        model_version,
        machine_id,
        next_failure_at as failure_at,
        bool_or(is_alert) as was_alerted,
        bool_or(on_watch_list) as was_on_watch_list
    from scored
    where fails_within_horizon
    group by model_version, machine_id, next_failure_at

),

failure_figures as (

    select
        model_version,
        date_trunc('week', failure_at at time zone 'UTC')::date as week_start,
        count(*) as failures,
        count_if(was_alerted)::bigint as failures_alerted,
        count_if(was_on_watch_list)::bigint as failures_on_watch_list
    from failures
    group by model_version, date_trunc('week', failure_at at time zone 'UTC')::date

),

drift as (

    -- the week's last drift measurement of the version: its largest PSI and where
    select
        model_version,
        date_trunc('week', (window_end_at - interval 1 hour) at time zone 'UTC')::date
            as week_start,
        feature as most_drifted_feature,
        psi as max_feature_psi
    from {{ ref('stg_ml__feature_drift') }}
    qualify row_number() over (
        partition by
            model_version,
            date_trunc('week', (window_end_at - interval 1 hour) at time zone 'UTC')::date
        order by window_end_at desc, psi desc
    ) = 1

),

final as (

    select
        hour_figures.model_version,
        hour_figures.week_start,
        hour_figures.hours_scored,
        hour_figures.labelled_hours,
        hour_figures.failure_hours,
        hour_figures.alert_hours,
        hour_figures.alert_hours_confirmed
        / nullif(hour_figures.alert_hours_labelled, 0) as alert_precision,
        hour_figures.alert_hours_confirmed
        / nullif(hour_figures.failure_hours, 0) as alert_recall,
        hour_figures.watch_hours,
        hour_figures.watch_hours_confirmed
        / nullif(hour_figures.watch_hours_labelled, 0) as watch_precision,
        hour_figures.watch_hours_confirmed
        / nullif(hour_figures.failure_hours, 0) as watch_recall,
        coalesce(failure_figures.failures, 0) as failures,
        coalesce(failure_figures.failures_alerted, 0) as failures_alerted,
        coalesce(failure_figures.failures - failure_figures.failures_alerted, 0)
            as failures_missed,
        coalesce(failure_figures.failures_on_watch_list, 0) as failures_on_watch_list,
        drift.max_feature_psi,
        drift.most_drifted_feature
    from hour_figures
    left join failure_figures
        on
            hour_figures.model_version = failure_figures.model_version
            and hour_figures.week_start = failure_figures.week_start
    left join drift
        on
            hour_figures.model_version = drift.model_version
            and hour_figures.week_start = drift.week_start

)

select * from final
