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
{% macro flagged_readings(groups, where_sql=none) %}
{%- set staged = ref('int_readings_deduplicated') -%}
{%- set all_sensors = sensor_columns(staged) -%}
{%- set sensors = slot_columns(groups) -%}
{{ readings_base(staged, sensors, groups, where_sql) }},

{{ out_of_range_ratings(all_sensors, sensors, groups) }},

{{ spike_margins(sensors) }},

{{ stuck_readings(sensors) }},

flagged_wide as (

    select
        steps.machine_id,
        steps.hour_at,
        steps.status,
        steps.rn,
        {% for s in sensors %}
            steps.{{ s }} as {{ s }}__value,
            {{ is_spike('steps', 'spike_margins', s) }} as {{ s }}__spike,
            coalesce(
                steps.{{ s }} < ratings.{{ s }}__min or steps.{{ s }} > ratings.{{ s }}__max, false
            ) as {{ s }}__out_of_range,
            coalesce(stuck_wide.{{ s }}, false) as {{ s }}__stuck{{ "," if not loop.last }}
        {% endfor %}
    from neighbour_steps as steps
    inner join spike_margins
        on steps.machine_id = spike_margins.machine_id and steps.hour_at = spike_margins.hour_at
    left join ratings on steps.machine_id = ratings.machine_id
    left join stuck_wide
        on
            steps.machine_id = stuck_wide.machine_id
            and steps.hour_at = stuck_wide.hour_at
            and steps.file_key = stuck_wide.file_key
            and steps.rn = stuck_wide.rn

)
{% endmacro %}
