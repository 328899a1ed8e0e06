-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTEs `neighbour_steps`, `step_scales`, `spike_margins`, `jumps`, `spike_wide`: a spike
    is an isolated reading, one that leaves both of its neighbours in its file in the same
    direction by more than a margin: a jump away from the previous line and a jump back on
    the next one. A sustained shift (a step, a drift, a fault that lasts) is never a spike: at
    its edges one neighbour is on the same side. The margin, per machine, hour and sensor:
      - var('spike_robust_z') robust deviations of the hour's line-to-line steps
        (1.4826 × their median absolute value), so a noisy hour needs a larger jump;
      - and at least var('spike_min_steps') steps of the sensor's resolution, its
        smallest line-to-line change in the hour (0.1 for a sensor that writes one
        decimal), so a sensor resting at a value and moving in steps of its resolution
        is never spiky. (A sensor that holds one value all hour but for a single reading
        has that reading's jump as its only step: such a lone excursion is not flagged.)
    The first and last line of a file, and a reading next to a missing line, have a
    missing neighbour and are never spikes.
#}
{% macro spike_margins(sensors) %}
neighbour_steps as materialized (

    -- per reading and sensor: its difference from the previous line of its file (null on
    -- the first line and after a missing one), and whether it repeats that line's non-zero
    -- value; the one self join the flags share (stuck runs use the repeats). Keys and
    -- steps only: the values stay in `base`
    select
        base.machine_id,
        base.hour_at,
        base.file_key,
        base.rn,
        {% for s in sensors %}
            base.{{ s }} - previous.{{ s }} as {{ s }}__back,
            base.{{ s }} = previous.{{ s }} and base.{{ s }} != 0
                as {{ s }}__repeat{{ "," if not loop.last }}
        {% endfor %}
    from base
    left join base as previous
        on
            base.machine_id = previous.machine_id
            and base.hour_at = previous.hour_at
            and base.file_key = previous.file_key
            and base.rn - 1 = previous.rn

),

step_scales as (

    -- per machine, hour and sensor: the median absolute step, and the smallest step
    -- (the sensor's resolution: 0.1 for a sensor that writes one decimal)
    select
        machine_id,
        hour_at,
        {% for s in sensors %}
            median(abs({{ s }}__back)) as {{ s }}__step,
            min(case when {{ s }}__back != 0 then abs({{ s }}__back) end)
                as {{ s }}__resolution{{ "," if not loop.last }}
        {% endfor %}
    from neighbour_steps
    group by machine_id, hour_at

),

spike_margins as (

    select
        machine_id,
        hour_at,
        {% for s in sensors %}
            greatest(
                {{ var('spike_robust_z') }} * 1.4826 * {{ s }}__step,
                {{ var('spike_min_steps') }} * {{ s }}__resolution
            ) as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from step_scales

),

jumps as (

    -- the readings that leave their previous line by more than the margin, one row per
    -- reading and sensor with the jump's direction (few rows: ordinary steps are smaller)
    unpivot (
        select
            steps.machine_id,
            steps.hour_at,
            steps.file_key,
            steps.rn,
            {% for s in sensors %}
                case
                    when abs(steps.{{ s }}__back) > spike_margins.{{ s }}
                        then sign(steps.{{ s }}__back)
                end as {{ s }}{{ "," if not loop.last }}
            {% endfor %}
        from neighbour_steps as steps
        inner join spike_margins
            on steps.machine_id = spike_margins.machine_id and steps.hour_at = spike_margins.hour_at
        where
            {% for s in sensors %}abs(steps.{{ s }}__back) > spike_margins.{{ s }} or {% endfor %}false
    )
    on columns(* exclude (machine_id, hour_at, file_key, rn))
    into name sensor value direction

),

spike_wide as (

    -- a spike: a jump away from the previous line, then a jump back on the next line
    -- (one row per reading with a spike, a flag per sensor)
    select
        away.machine_id,
        away.hour_at,
        away.file_key,
        away.rn,
        {% for s in sensors %}
            bool_or(away.sensor = '{{ s }}') as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from jumps as away
    inner join jumps as back_again
        on
            away.machine_id = back_again.machine_id
            and away.hour_at = back_again.hour_at
            and away.file_key = back_again.file_key
            and away.rn + 1 = back_again.rn
            and away.sensor = back_again.sensor
            and away.direction = -back_again.direction
    group by away.machine_id, away.hour_at, away.file_key, away.rn

)
{% endmacro %}
