{#
    The raw readings as loaded, one column per sensor as the files declare them
    (s_<sensor>, discovered, never listed), as doubles. On a lake a sensor's values
    are stored as exact decimals, and a value a decimal cannot hold in the variant
    column beside it (<column>__v_double, ingestion's load_files.exact_decimals):
    here they are one column again. A reading a crashed load left twice is still
    here twice: int_readings_deduplicated keeps one.
#}
{%- set raw = source('landing', 'telemetry_readings') -%}
{%- set variant = '__v_double' -%}
{%- set sensors = [] -%}
{%- set variants = [] -%}
{%- for column in sensor_columns(raw) -%}
    {%- if column.lower().endswith(variant) -%}
        {%- do variants.append(column) -%}
    {%- else -%}
        {%- do sensors.append(column) -%}
    {%- endif -%}
{%- endfor -%}

with

source as (

    select * from {{ raw }}

)

select
    * exclude (
        _dlt_load_id
        {%- for column in sensors + variants %}, {{ column }}{% endfor %}
    ),
    {% for s in sensors -%}
        {%- if (s ~ variant) in variants -%}
            coalesce({{ s }}::double, {{ s ~ variant }}) as {{ s }},
        {%- else -%}
            {{ s }}::double as {{ s }},
        {%- endif %}
    {% endfor -%}
    _dlt_load_id as load_id
from source
