-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTE `base`: the staged wide readings the flags are computed on, one row per reading,
    a column per slot (macro slot_value), filtered by `where_sql`. A reading's
    position is its line in its file (one file per machine-hour; file_key tells apart two
    versions of the same hour).
#}
{% macro readings_base(staged, sensors, groups, where_sql) %}
base as materialized (

    select
        staged.machine_id,
        staged.hour_at,
        staged.status,
        hash(staged.source_file_sha256) as file_key,
        staged.source_line as rn,
        {% for s in sensors -%}
            {{ slot_value(groups, loop.index, 'staged.@::double', 'staged.machine_id') }}
            as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from {{ staged }} as staged
    {% if where_sql %}where {{ where_sql }}{% endif %}

)
{% endmacro %}
