{#
    The one value `query` returns (a timestamptz cast to varchar), as a SQL
    literal: looked up when the model runs, so that a filter on it reaches the
    scans' zone maps instead of being a subquery evaluated row by row.
#}
{% macro timestamptz_literal(query) %}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {{- return("'" ~ value ~ "'::timestamptz") -}}
{% endmacro %}
