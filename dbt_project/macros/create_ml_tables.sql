{#
    The ML step's output tables, created empty when missing (on-run-start), so
    the marts that read them build before any model is trained. ml/score.py
    only inserts into them; their shape is declared here once. A DuckLake has
    no primary keys: there the data tests on the staging models guard the keys.
#}
{% macro create_ml_tables() %}
    create schema if not exists {{ target.database }}.ml;
    create table if not exists {{ target.database }}.ml.machine_hour_scores (
        machine_id varchar not null,
        hour_at timestamptz not null,
        model_version varchar not null,
        risk double not null,
        threshold double not null,
        is_alert boolean not null,
        scored_at timestamptz not null,
        watch_threshold double,
        on_watch_list boolean{{ primary_key_unless_lake('machine_id, hour_at, model_version') }}
    );
    -- a warehouse whose scores table predates the watch list
    alter table {{ target.database }}.ml.machine_hour_scores
        add column if not exists watch_threshold double;
    alter table {{ target.database }}.ml.machine_hour_scores
        add column if not exists on_watch_list boolean;
    create table if not exists {{ target.database }}.ml.machine_risk_reasons (
        machine_id varchar not null,
        hour_at timestamptz not null,
        model_version varchar not null,
        reason_rank integer not null,
        feature varchar not null,
        feature_value double,
        reference_value double,
        contribution double not null,
        scored_at timestamptz not null{{ primary_key_unless_lake('machine_id, model_version, reason_rank') }}
    );
    create table if not exists {{ target.database }}.ml.feature_drift (
        model_version varchar not null,
        window_start timestamptz not null,
        window_end timestamptz not null,
        feature varchar not null,
        psi double not null,
        hours integer not null,
        computed_at timestamptz not null{{ primary_key_unless_lake('model_version, window_end, feature') }}
    );
{% endmacro %}

{# a DuckLake (the `lake` target) has no primary keys #}
{% macro primary_key_unless_lake(columns) -%}
    {%- if target.name != 'lake' %}, primary key ({{ columns }}){% endif -%}
{%- endmacro %}
