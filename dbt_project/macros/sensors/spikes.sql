-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTEs `medians`, `mads`, `spike_bounds`: per machine, hour and status, the median and
    MAD of each sensor, two grouped aggregates over the wide rows (no window medians),
    turned into the bounds outside which a reading is a spike.
#}
{% macro spike_bounds(sensors) %}
medians as (

    select
        machine_id,
        hour_at,
        status,
        {% for s in sensors %}median({{ s }}) as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from base
    group by machine_id, hour_at, status

),

mads as (

    select
        base.machine_id,
        base.hour_at,
        base.status,
        {% for s in sensors %}
            median(abs(base.{{ s }} - medians.{{ s }})) as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from base
    inner join medians on {{ same_hour_and_status('base', 'medians') }}
    group by base.machine_id, base.hour_at, base.status

),

spike_bounds as (

    -- a reading is a spike outside median ± z × 1.4826 × MAD, i.e. its robust
    -- z-score is above z = var('spike_robust_z'); no bound where the MAD is 0.
    -- (Bounds per machine-hour and status, so the per-reading test is two
    -- comparisons.)
    select
        medians.machine_id,
        medians.hour_at,
        medians.status,
        {% for s in sensors %}
            medians.{{ s }}
            - {{ var('spike_robust_z') }} * 1.4826 * nullif(mads.{{ s }}, 0) as {{ s }}__low,
            medians.{{ s }}
            + {{ var('spike_robust_z') }} * 1.4826 * nullif(mads.{{ s }}, 0) as {{ s }}__high
            {{- "," if not loop.last }}
        {% endfor %}
    from medians
    inner join mads on {{ same_hour_and_status('medians', 'mads') }}

)
{% endmacro %}


{# the join of two per-reading or per-hour relations on machine, hour and status
   (a reading's status may be NULL: it still meets its hour's statistics) #}
{% macro same_hour_and_status(left, right) -%}
    {{ left }}.machine_id = {{ right }}.machine_id
    and {{ left }}.hour_at = {{ right }}.hour_at
    and {{ left }}.status is not distinct from {{ right }}.status
{%- endmacro %}
