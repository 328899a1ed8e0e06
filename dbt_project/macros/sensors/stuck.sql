-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTEs `repeats_wide` … `stuck_wide`: each reading is compared with the previous line of
    its file (the step macro spike_margins computed, from a self join on the line number,
    nothing sorted), and the repeats are grouped
    into runs. A run of at least var('stuck_min_samples') readings is stuck unless the
    sensor repeats so often in the rest of its file that a run that long would come by
    chance more often than var('stuck_chance_per_file') a file: a sensor written at its
    instrument's resolution (0.1 °C) repeats its value often, and a slowly moving one stays
    on a value for minutes. A missing or rejected line ends a run.

    Such sensors repeat on a good share of their lines, so not every repeat is unpivoted:
    the lines are cut into aligned blocks of half the minimum run, and a run that long
    covers at least one block whole. Only the repeats in or next to a block where the
    sensor holds one value go on to be grouped into runs; the sensor's repeats in the
    whole file are counted on the wide rows.
#}
{% macro stuck_readings(sensors) %}
{%- set block = ((var('stuck_min_samples') | int) + 1) // 2 -%}
repeats_wide as (

    -- true where a reading equals the one on the previous line of its file (macro
    -- spike_margins computed the step)
    select
        machine_id,
        hour_at,
        file_key,
        rn,
        {% for s in sensors %}
            case
                when {{ s }}__repeat then true
            end as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from neighbour_steps

),

blocks as (

    -- per block of {{ block }} lines and sensor: its repeats, and whether it holds one
    -- value (every line after the block's first repeats)
    select
        machine_id,
        hour_at,
        file_key,
        rn // {{ block }} as block,
        {% for s in sensors %}
            count_if({{ s }}) as {{ s }}__repeats,
            count_if({{ s }} and rn % {{ block }} != 0) = {{ block - 1 }} as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from repeats_wide
    group by machine_id, hour_at, file_key, rn // {{ block }}

),

near_steady_blocks as (

    -- true where the block or a neighbour holds one value: only there can a long run be
    select
        machine_id,
        hour_at,
        file_key,
        block,
        {% for s in sensors %}
            coalesce(
                {{ s }} or lag({{ s }}) over file_blocks or lead({{ s }}) over file_blocks, false
            ) as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from blocks
    window file_blocks as (partition by machine_id, hour_at, file_key order by block)

),

file_repeats as (

    -- the sensor's repeats in the whole file, one row per file and sensor
    unpivot (
        select
            machine_id,
            hour_at,
            file_key,
            {% for s in sensors %}
                sum({{ s }}__repeats) as {{ s }}{{ "," if not loop.last }}
            {% endfor %}
        from blocks
        group by machine_id, hour_at, file_key
    )
    on columns(* exclude (machine_id, hour_at, file_key))
    into name sensor value repeats

),

repeats as (

    -- the repeats that could be part of a long run, unpivoted
    unpivot (
        select
            repeats_wide.machine_id,
            repeats_wide.hour_at,
            repeats_wide.file_key,
            repeats_wide.rn,
            {% for s in sensors %}
                case
                    when repeats_wide.{{ s }} and near.{{ s }} then true
                end as {{ s }}{{ "," if not loop.last }}
            {% endfor %}
        from repeats_wide
        inner join near_steady_blocks as near
            on
                repeats_wide.machine_id = near.machine_id
                and repeats_wide.hour_at = near.hour_at
                and repeats_wide.file_key = near.file_key
                and repeats_wide.rn // {{ block }} = near.block
        where
            {% for s in sensors %}(repeats_wide.{{ s }} and near.{{ s }}) or {% endfor %}false
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

long_runs as (

    -- consecutive repeats form a run with the reading before the first one; the runs of
    -- at least var('stuck_min_samples') readings
    select *
    from (
        select
            machine_id,
            hour_at,
            file_key,
            sensor,
            min(rn) - 1 as first_rn,
            max(rn) as last_rn,
            count(*) as run_repeats
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
    ) as runs

),

stuck_runs as (

    -- p = the sensor's repeats per consecutive pair outside the run; a run of k repeats
    -- comes by chance somewhere in a file of n readings about n * p ^ k times (a sensor
    -- resting at a value, moving a step of its resolution now and then, has p near 1)
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
    inner join file_repeats
        on
            long_runs.machine_id = file_repeats.machine_id
            and long_runs.hour_at = file_repeats.hour_at
            and long_runs.file_key = file_repeats.file_key
            and long_runs.sensor = file_repeats.sensor
    where
        file_lines.readings * pow(
            (file_repeats.repeats - long_runs.run_repeats)
            / greatest(file_lines.readings - 1 - long_runs.run_repeats, 1),
            long_runs.run_repeats
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
