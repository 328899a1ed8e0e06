-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    Per machine, hour and sensor: the statistics of fct_machine_hour_sensors,
    as CTEs after flagged_readings(), ending in `sensor_hours`. Aggregated on
    the wide flagged rows (one aggregate per sensor and statistic, one pass),
    then unpivoted: the long per-reading rows (one per reading and sensor,
    ~36 per reading) are never built. A sensor with no reading in the hour
    gets no row. `sensors`: the slot columns flagged_readings() ran with
    (macro slot_columns). The statistics: macro sensor_statistics.
#}
{% macro sensor_hour_stats(sensors) %}
{%- set stats = sensor_statistic_names() -%}
clean_wide as (

    -- per sensor, the value if no flag is raised, and it in millionths
    select
        machine_id,
        hour_at,
        {% for s in sensors %}
            {{ s }}__value,
            {{ s }}__spike,
            {{ s }}__stuck,
            {{ s }}__out_of_range,
            case
                when not ({{ s }}__spike or {{ s }}__stuck or {{ s }}__out_of_range)
                    then {{ s }}__value
            end as {{ s }}__clean,
            -- the clean value in millionths, for exact sums (macro sensor_statistics)
            case
                when
                    not ({{ s }}__spike or {{ s }}__stuck or {{ s }}__out_of_range)
                    and abs({{ s }}__value) <= 1e7
                    then round({{ s }}__value * 1000000)::hugeint
            end as {{ s }}__micro,
            case
                when abs({{ s }}__value) <= 1e7 then round({{ s }}__value * 1000000)::hugeint
            end as {{ s }}__all_micro{{ "," if not loop.last }}
        {% endfor %},
        status = 'RUN' as is_running
    from flagged_wide

),

hours_wide as (

    -- CASE, not FILTER: with hundreds of aggregates DuckDB evaluates FILTER
    -- clauses far slower (docs/design.md).
    -- A flag is only ever raised on a non-NULL value, so count_if counts values.
    select
        machine_id,
        hour_at,
        {% for s in sensors %}
            {% for stat in sensor_statistics() %}
                {{ stat.sql | replace('@', s) }} as {{ s }}__{{ stat.name }}
                {{- "," if not loop.last }}
            {% endfor %}{{ "," if not loop.last }}
        {% endfor %}
    from clean_wide
    group by machine_id, hour_at

),

sensor_hours as (

    -- the SQL-standard UNPIVOT form: only it takes INCLUDE NULLS, and a
    -- multi-column UNPIVOT otherwise drops a row when one of its values is NULL
    -- (e.g. run_value_mean of an hour the machine never ran)
    select *
    from hours_wide
    unpivot include nulls (  -- noqa: PRS
        ({{ stats | join(', ') }}) for sensor in (
            {% for s in sensors %}
                ({% for stat in stats %}{{ s }}__{{ stat }}{{ ", " if not loop.last }}{% endfor %})
                as {{ s }}{{ "," if not loop.last }}
            {% endfor %}
        )
    )
    where readings > 0

)
{% endmacro %}
