-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTEs `repeats_wide` … `stuck_wide`: each reading is compared with the previous line of
    its file (a self join on the line number, nothing sorted); the repeats are unpivoted
    and grouped into runs. A run of at least var('stuck_min_samples') readings is stuck
    unless the sensor repeats so often in the rest of its file that a run that long would
    come by chance more often than var('stuck_chance_per_file') a file: a sensor written
    at its instrument's resolution (0.1 °C) repeats its value often, and a slowly moving
    one stays on a value for minutes. A missing or rejected line ends a run.
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

    -- only the readings with a repeat are unpivoted
    unpivot (
        select *
        from repeats_wide
        where {% for s in sensors %}{{ s }} or {% endfor %}false
    )
    on columns(* exclude (machine_id, hour_at, file_key, rn))
    into name sensor value is_repeat

),

file_lines as (

    select
        machine_id,
        hour_at,
        file_key,
        count(*) as readings
    from base
    group by machine_id, hour_at, file_key

),

runs as (

    -- consecutive repeats form a run with the reading before the first one
    select
        machine_id,
        hour_at,
        file_key,
        sensor,
        min(rn) - 1 as first_rn,
        max(rn) as last_rn,
        count(*) as repeats
    from (
        select
            *,
            rn - row_number() over (
                partition by machine_id, hour_at, file_key, sensor order by rn
            ) as island
        from repeats
    ) as numbered
    group by machine_id, hour_at, file_key, sensor, island

),

long_runs as (

    -- runs of at least var('stuck_min_samples') readings, with the sensor's repeats in
    -- the file's other runs (its background) and in all long runs
    select *
    from (
        select
            *,
            sum(
                case when repeats + 1 < {{ var('stuck_min_samples') }} then repeats else 0 end
            ) over same_sensor as background_repeats,
            sum(
                case when repeats + 1 >= {{ var('stuck_min_samples') }} then repeats else 0 end
            ) over same_sensor as long_repeats
        from runs
        window same_sensor as (partition by machine_id, hour_at, file_key, sensor)
    ) as judged
    where repeats + 1 >= {{ var('stuck_min_samples') }}

),

stuck_runs as (

    -- p = the background's repeats per consecutive pair outside the long runs; a run of
    -- k repeats comes by chance somewhere in a file of n readings about n * p ^ k times
    select
        long_runs.machine_id,
        long_runs.hour_at,
        long_runs.file_key,
        long_runs.sensor,
        long_runs.first_rn,
        long_runs.last_rn
    from long_runs
    inner join file_lines
        on
            long_runs.machine_id = file_lines.machine_id
            and long_runs.hour_at = file_lines.hour_at
            and long_runs.file_key = file_lines.file_key
    where
        file_lines.readings * pow(
            long_runs.background_repeats
            / greatest(file_lines.readings - 1 - long_runs.long_repeats, 1),
            long_runs.repeats
        ) < cast('{{ var("stuck_chance_per_file") }}' as double)

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
