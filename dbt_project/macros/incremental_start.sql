{#
    Lower bound of an hourly incremental run: the newest hour already built,
    minus var('lookback_hours') (late files and re-sent hours are re-computed).
#}
{% macro incremental_start() %}
    (select max(existing.hour_at) - interval {{ var('lookback_hours') }} hour
    from {{ this }} as existing)
{% endmacro %}
