{#
    The sensor columns of a wide readings relation: every column that is not
    an identifier (macro non_sensor_columns), so a column a new firmware adds
    is a sensor with no SQL edited (the same rule as int_readings_unpivoted's
    UNPIVOT).
#}
{% macro sensor_columns(relation) %}
    {%- set not_sensors = non_sensor_columns() -%}
    {%- set sensors = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- if column.name | lower not in not_sensors -%}
                {%- do sensors.append(column.name) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(sensors) }}
{% endmacro %}


{# the identifier and lineage columns of the staged readings: all the others are sensors #}
{% macro non_sensor_columns() %}
    {{ return([
        'machine_id', 'reading_at', 'utc_offset_min', 'status', 'source_line',
        'source_file', 'source_file_sha256', 'ingested_at', 'load_id', 'hour_at',
    ]) }}
{% endmacro %}
