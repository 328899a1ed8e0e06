-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTEs `ratings_by_sensor`, `ratings`: per machine, the rated range of each sensor (or
    slot) from its machine model's ratings (`registry`, `sensor_ratings`: the staged
    registry and rated ranges); a reading outside it is out of range.
#}
{% macro out_of_range_ratings(registry, sensor_ratings, all_sensors, sensors, groups) %}
ratings_by_sensor as (

    select
        machines.machine_id,
        {% for s in all_sensors %}
            max(ratings.rated_min) filter (where ratings.sensor = '{{ sensor_name(s) }}')
                as {{ s }}__min,
            max(ratings.rated_max) filter (where ratings.sensor = '{{ sensor_name(s) }}')
                as {{ s }}__max
            {{- "," if not loop.last }}
        {% endfor %}
    from {{ registry }} as machines
    inner join {{ sensor_ratings }} as ratings
        on machines.machine_model = ratings.machine_model
    group by machines.machine_id

),

ratings as (

    -- per machine, the rated range of each slot
    select
        machine_id,
        {% for s in sensors %}
            {{ slot_value(groups, loop.index, '@__min', 'machine_id') }} as {{ s }}__min,
            {{ slot_value(groups, loop.index, '@__max', 'machine_id') }} as {{ s }}__max
            {{- "," if not loop.last }}
        {% endfor %}
    from ratings_by_sensor

)
{% endmacro %}
