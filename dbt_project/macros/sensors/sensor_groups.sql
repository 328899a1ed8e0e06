-- sqlfluff:exclude_rules:LT02
-- (LT02: the query built in a set block makes the indent rule read the jinja after it as SQL)
{#
    The machines to process together and the sensors they actually report
    (`readings`: the deduplicated wide readings; `registry`: the machine registry),
    looked up when the model runs: one group per machine model (a machine the
    registry does not know is a group of its own), with every sensor column
    that has at least one value for a machine of the group in the rows
    `where_sql` selects from the raw readings.

    A machine reports about half of the sensor columns (the others belong to
    other machine models), so flagged_readings() computes the flags and
    statistics in slots (slot k: the k-th sensor of each group), not on every
    column. Nothing is lost: a sensor with no value in the raw rows yields no
    sensor-hour anyway, and `where_sql` must select a superset of the rows
    the model reads. With no rows (or at parse time) there is one group with
    no machine: every sensor, nothing selected.
#}
{% macro sensor_groups(readings, registry, where_sql=none) %}
    {%- set sensors = sensor_columns(readings) -%}
    {%- set everything = [{'machines': [], 'sensors': sensors}] -%}
    {%- if not execute or not sensors -%}
        {{ return(everything) }}
    {%- endif -%}
    {%- set reported = [] -%}
    {%- for s in sensors -%}
        {%- do reported.append('count(readings.' ~ s ~ ') > 0 as ' ~ s) -%}
    {%- endfor -%}
    {%- set query -%}
        select
            coalesce(registry.machine_model, readings.machine_id) as machine_group,
            readings.machine_id,
            {{ reported | join(', ') }}
        from {{ readings }} as readings
        left join {{ registry }} as registry
            on readings.machine_id = registry.machine_id
        {% if where_sql %}where {{ where_sql }}{% endif %}
        group by all
        order by machine_group, readings.machine_id
    {%- endset -%}
    {%- set groups = {} -%}
    {%- for row in run_query(query).rows -%}
        {%- if row[0] not in groups -%}
            {%- do groups.update({row[0]: {'machines': [], 'sensors': []}}) -%}
        {%- endif -%}
        {%- set group = groups[row[0]] -%}
        {%- do group.machines.append(row[1]) -%}
        {%- for s in sensors -%}
            {%- if row[loop.index + 1] and s not in group.sensors -%}
                {%- do group.sensors.append(s) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set result = [] -%}
    {%- for name in groups | sort -%}
        {%- if groups[name].sensors -%}
            {#- keep the relation's column order -#}
            {%- do result.append({
                'machines': groups[name].machines,
                'sensors': sensors | select('in', groups[name].sensors) | list,
            }) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(result if result else everything) }}
{% endmacro %}


{# 'a', 'b', ... as SQL string literals #}
{% macro quoted_list(values) %}
    {%- set quoted = [] -%}
    {%- for v in values -%}
        {%- do quoted.append("'" ~ (v | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ return(quoted | join(', ')) }}
{% endmacro %}
