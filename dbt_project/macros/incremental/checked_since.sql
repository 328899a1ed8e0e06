{#
    Since when the checks that would read every reading ever loaded look, as a
    timestamptz literal, or none for everything. `shopfloor run` sets
    SHOPFLOOR_TEST_SINCE to the start of the last run that passed its checks: a run
    then checks what was loaded since (and whatever that touches), and costs the same
    on a year of history as on a day. `shopfloor build`, plain dbt and CI check
    everything.
    Read at execution only: dbt re-parses every file whose env_var() value changed
    since the last parse, and this value changes with every run.
#}
{% macro checked_since() %}
    {%- set since = env_var('SHOPFLOOR_TEST_SINCE', '') if execute else '' -%}
    {{ return("'" ~ since ~ "'::timestamptz" if since else none) }}
{% endmacro %}


{#
    For a check on `model`: only the rows whose `recent_key` came with a load since the
    last checks passed (`where ...`), or nothing when everything is checked.
#}
{% macro recent_only(model, recent_key) %}
    {%- set since = checked_since() -%}
    {%- if recent_key and since -%}
        {{- return(
            'where ' ~ recent_key ~ ' in (select recent.' ~ recent_key ~ ' from ' ~ model
            ~ ' as recent where recent.ingested_at >= ' ~ since ~ ')'
        ) -}}
    {%- endif -%}
    {{- return('') -}}
{% endmacro %}
