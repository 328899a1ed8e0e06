{#
    The sensor columns of a wide readings relation: every column named
    s_<sensor> (the ingestion stores each file's sensor columns so, whatever
    the plant calls them), so a column a new firmware adds is a sensor with no
    SQL edited.
#}
{% macro sensor_columns(relation) %}
    {%- set sensors = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- if column.name.lower().startswith(sensor_prefix()) -%}
                {%- do sensors.append(column.name) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(sensors) }}
{% endmacro %}


{# the prefix of the raw sensor columns (ingestion/telemetry.py SENSOR_PREFIX) #}
{% macro sensor_prefix() %}
    {{ return('s_') }}
{% endmacro %}


{# the plant's name of a sensor column: s_pressao_oleo_bar -> pressao_oleo_bar #}
{% macro sensor_name(column) %}
    {{ return(column[sensor_prefix() | length:]) }}
{% endmacro %}


{# the same, as SQL on a column holding sensor column names #}
{% macro sensor_name_sql(expression) %}
    {{- return('substr(' ~ expression ~ ', ' ~ (sensor_prefix() | length + 1) ~ ')') -}}
{% endmacro %}
