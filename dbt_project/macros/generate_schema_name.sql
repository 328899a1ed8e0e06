{#
    Models with a custom schema land in exactly that schema (`marts`, not
    `main_marts`), so the names BI tools point at never change with the target.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
