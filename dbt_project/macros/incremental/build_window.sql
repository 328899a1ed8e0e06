{#
    The window of hours a batched build processes, or none. `shopfloor build` and
    `shopfloor run` split a backlog of raw readings bigger than the setting
    build_batch_readings into windows of whole UTC days and build
    fct_machine_hour_sensors once per window (shopfloor/pipeline/batches.py,
    docs/decisions/0008-bounded-build-batches.md). The window comes from the
    environment, not a var, and is read at execution only: a value read while dbt
    parses would make dbt re-parse the model for every window.
    Returns {'start': literal, 'end': literal} (timestamptz SQL literals).
#}
{% macro build_window() %}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = env_var('SHOPFLOOR_BUILD_WINDOW_START', '') -%}
    {%- set end = env_var('SHOPFLOOR_BUILD_WINDOW_END', '') -%}
    {%- if start and end -%}
        {{ return({
            'start': "'" ~ start ~ "'::timestamptz",
            'end': "'" ~ end ~ "'::timestamptz",
        }) }}
    {%- endif -%}
    {{ return(none) }}
{% endmacro %}


{#
    The readings of a window's machine-hours, as a filter on the staged readings: by
    the hour of the file they came from, and by their own time within a day of it (a
    machine clock that runs behind or ahead of its file's hour), so that the raw scan
    skips the rest of the history by its zone maps.
#}
{% macro build_window_readings(window) %}
    {{- return(
        'hour_at >= ' ~ window.start ~ ' and hour_at < ' ~ window.end
        ~ ' and reading_at >= ' ~ window.start ~ ' - interval 1 day'
        ~ ' and reading_at < ' ~ window.end ~ ' + interval 1 day'
    ) -}}
{% endmacro %}


{# `and <column> in the window`, or nothing outside a batched build #}
{% macro build_window_hours(window, column) %}
    {%- if window -%}
        {{- return(
            'and ' ~ column ~ ' >= ' ~ window.start ~ ' and ' ~ column ~ ' < ' ~ window.end
        ) -}}
    {%- endif -%}
    {{- return('') -}}
{% endmacro %}


{#
    Pre-hook of a batched model: a window is rebuilt whole, so its rows go first
    (whatever hours and sensors it had before). Outside a batch, the model's own
    incremental pre-hook (macro delete_rebuilt_hours).
#}
{% macro delete_build_window_or_rebuilt_hours(after_hours=0) %}
    {%- set window = build_window() -%}
    {%- if window and is_incremental() -%}
        delete from {{ this }}
        where hour_at >= {{ window.start }} and hour_at < {{ window.end }}
    {%- else -%}
        {{ delete_rebuilt_hours(after_hours=after_hours) }}
    {%- endif -%}
{% endmacro %}
