{#
    Slots: a machine reports about half of the sensor columns (the others belong to other
    machine models), so the flags and statistics are computed in slots. Slot k holds, for
    each machine group (macro sensor_groups), the k-th sensor its machines report.
#}

{#
    the slot columns for groups: sensor_slot_1 .. sensor_slot_<most sensors in a group>,
    and at least one (NULL throughout when no machine reports a sensor)
#}
{% macro slot_columns(groups) %}
    {%- set widths = groups | map(attribute='sensors') | map('length') | list -%}
    {%- set slots = [] -%}
    {%- for k in range(1, [widths | max, 1] | max + 1) -%}
        {%- do slots.append('sensor_slot_' ~ k) -%}
    {%- endfor -%}
    {{ return(slots) }}
{% endmacro %}


{#
    Slot k's expression: for each group with at least k sensors, `template`
    with @ replaced by the group's k-th sensor, chosen on `machine_column`
    (NULL for a machine of a group with fewer sensors). `template` must be a
    DOUBLE expression (sensor values and rated ranges are).
#}
{% macro slot_value(groups, k, template, machine_column) %}
    {%- set branches = [] -%}
    {%- for group in groups if group.sensors | length >= k and group.machines -%}
        {%- do branches.append(
            'when ' ~ machine_column ~ ' in (' ~ quoted_list(group.machines) ~ ') then '
            ~ template | replace('@', group.sensors[k - 1])
        ) -%}
    {%- endfor -%}
    {%- if branches -%}
        case {{ branches | join(' ') }} end
    {%- else -%}
        {#- no group reports k sensors (e.g. no rows at all): typed, for the marts' contract -#}
        null::double
    {%- endif -%}
{% endmacro %}


{# a CTE `slot_sensors` (machine_id, slot, sensor): which sensor a slot holds for a machine #}
{% macro slot_sensor_names(groups) %}
    {%- set rows = [] -%}
    {%- for group in groups -%}
        {%- for machine in group.machines -%}
            {%- for s in group.sensors -%}
                {%- do rows.append(
                    '(' ~ quoted_list([machine, 'sensor_slot_' ~ loop.index, sensor_name(s)]) ~ ')'
                ) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor %}
slot_sensors as (

    {% if rows -%}
        select * from (values {{ rows | join(', ') }}) as names (machine_id, slot, sensor)
    {%- else -%}
        select
            null::varchar as machine_id,
            null::varchar as slot,
            null::varchar as sensor
        where false
    {%- endif %}

)
{%- endmacro %}
