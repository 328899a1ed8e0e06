{#
    Lower bound of an hourly incremental run: the newest hour already built,
    minus var('lookback_hours') (late files and re-sent hours are re-computed).
    Rendered as a literal (looked up when the model runs), not a subquery, so
    that a filter on it reaches the raw table's scan (zone maps on reading_at)
    instead of being evaluated row by row after a full scan.
#}
{% macro incremental_start() %}
    {%- if execute -%}
        {%- set bound = run_query(
            "select coalesce(max(hour_at) - interval " ~ var('lookback_hours') ~ " hour,"
            ~ " '-infinity'::timestamptz)::varchar from " ~ this
        ).columns[0].values()[0] -%}
        '{{ bound }}'::timestamptz
    {%- else -%}
        (select max(existing.hour_at) - interval {{ var('lookback_hours') }} hour
        from {{ this }} as existing)
    {%- endif -%}
{% endmacro %}
