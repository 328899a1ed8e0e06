-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTEs `repeats_wide` … `stuck_wide`: each reading is compared with the previous line of
    its file (a self join on the line number, nothing sorted); the rare repeats are
    unpivoted and grouped into runs, and the readings in runs of at least
    var('stuck_min_samples') are flagged. A missing or rejected line ends a run.
#}
{% macro stuck_readings(sensors) %}
repeats_wide as (

    -- true where a reading equals the one on the previous line of its file
    select
        base.machine_id,
        base.hour_at,
        base.file_key,
        base.rn,
        {% for s in sensors %}
            case
                when base.{{ s }} = previous.{{ s }} and base.{{ s }} != 0 then true
            end as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from base
    inner join base as previous
        on
            base.machine_id = previous.machine_id
            and base.hour_at = previous.hour_at
            and base.file_key = previous.file_key
            and base.rn - 1 = previous.rn

),

repeats as (

    -- only the readings with a repeat (few) are unpivoted
    unpivot (
        select *
        from repeats_wide
        where {% for s in sensors %}{{ s }} or {% endfor %}false
    )
    on columns(* exclude (machine_id, hour_at, file_key, rn))
    into name sensor value is_repeat

),

stuck_runs as (

    -- consecutive repeats form a run with the reading before the first one
    select
        machine_id,
        hour_at,
        file_key,
        sensor,
        min(rn) - 1 as first_rn,
        max(rn) as last_rn
    from (
        select
            *,
            rn - row_number() over (
                partition by machine_id, hour_at, file_key, sensor order by rn
            ) as island
        from repeats
    ) as numbered
    group by machine_id, hour_at, file_key, sensor, island
    having count(*) + 1 >= {{ var('stuck_min_samples') }}

),

stuck_wide as (

    -- the readings inside a stuck run, one row per reading, a flag per sensor
    -- (few rows: stuck runs are rare)
    select
        machine_id,
        hour_at,
        file_key,
        rn,
        {% for s in sensors %}
            bool_or(sensor = '{{ s }}') as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from (
        select
            machine_id,
            hour_at,
            file_key,
            sensor,
            unnest(generate_series(first_rn, last_rn)) as rn
        from stuck_runs
    ) as stuck_readings
    group by machine_id, hour_at, file_key, rn

)
{% endmacro %}
