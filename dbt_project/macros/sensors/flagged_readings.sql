-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    The cleaning flags of the readings, as CTEs ending in `flagged_wide`: one row per
    reading, and per sensor its value and three flags (`<sensor>__value`, `__spike`,
    `__stuck`, `__out_of_range`). Used by fct_machine_hour_sensors, whose incremental
    filter reaches the raw scan (`where_sql`, applied to the staged wide readings).

    Work is done on the wide readings and on small per-hour tables; nothing sorts long rows:
      - spike: an isolated reading, far from both neighbours in its file (macro
        spike_margins);
      - stuck: part of a run of at least var('stuck_min_samples') identical non-zero
        consecutive readings that the sensor's repeats in the rest of its file do not
        make likely (macro stuck_readings);
      - out of range: outside the machine model's rated range (macro out_of_range_ratings).
    The sensor set is read from the staged relation (macro sensor_columns): a column a new
    firmware adds flows through with no SQL edited. The sensors are processed in slots of
    `groups` (macros sensor_groups, slot_value); macro slot_sensor_names maps a slot back to
    its sensor per machine.
#}
{% macro flagged_readings(readings, registry, sensor_ratings, groups, where_sql=none) %}
{%- set staged = readings -%}
{%- set all_sensors = sensor_columns(staged) -%}
{%- set sensors = slot_columns(groups) -%}
{{ readings_base(staged, sensors, groups, where_sql) }},

{{ out_of_range_ratings(registry, sensor_ratings, all_sensors, sensors, groups) }},

{{ spike_margins(sensors) }},

{{ stuck_readings(sensors) }},

flagged_wide as (

    select
        base.machine_id,
        base.hour_at,
        base.status,
        base.rn,
        {% for s in sensors %}
            base.{{ s }} as {{ s }}__value,
            coalesce(spike_wide.{{ s }}, false) as {{ s }}__spike,
            coalesce(
                base.{{ s }} < ratings.{{ s }}__min or base.{{ s }} > ratings.{{ s }}__max, false
            ) as {{ s }}__out_of_range,
            coalesce(stuck_wide.{{ s }}, false) as {{ s }}__stuck{{ "," if not loop.last }}
        {% endfor %}
    from base
    left join ratings on base.machine_id = ratings.machine_id
    left join spike_wide
        on
            base.machine_id = spike_wide.machine_id
            and base.hour_at = spike_wide.hour_at
            and base.file_key = spike_wide.file_key
            and base.rn = spike_wide.rn
    left join stuck_wide
        on
            base.machine_id = stuck_wide.machine_id
            and base.hour_at = stuck_wide.hour_at
            and base.file_key = stuck_wide.file_key
            and base.rn = stuck_wide.rn

)
{% endmacro %}
