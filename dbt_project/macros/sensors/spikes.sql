-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    CTEs `neighbour_steps`, `step_scales`, `spike_margins`: a spike is an isolated reading,
    one that leaves both of its neighbours in its file in the same direction by more than
    a margin. A sustained shift (a step, a drift, a fault that lasts) is never a spike: at
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

    -- per reading: its values, and per sensor its difference from the previous and the
    -- next line of its file (the one self join the flags share: stuck runs use it too)
    select
        base.machine_id,
        base.hour_at,
        base.status,
        base.file_key,
        base.rn,
        {% for s in sensors %}
            base.{{ s }},
            base.{{ s }} - previous.{{ s }} as {{ s }}__back,
            base.{{ s }} - following.{{ s }} as {{ s }}__ahead{{ "," if not loop.last }}
        {% endfor %}
    from base
    left join base as previous
        on
            base.machine_id = previous.machine_id
            and base.hour_at = previous.hour_at
            and base.file_key = previous.file_key
            and base.rn - 1 = previous.rn
    left join base as following
        on
            base.machine_id = following.machine_id
            and base.hour_at = following.hour_at
            and base.file_key = following.file_key
            and base.rn + 1 = following.rn

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

)
{% endmacro %}


{# true where the reading leaves both neighbours the same way by more than the margin #}
{% macro is_spike(steps, margins, s) -%}
    coalesce(
        sign({{ steps }}.{{ s }}__back) = sign({{ steps }}.{{ s }}__ahead)
        and least(abs({{ steps }}.{{ s }}__back), abs({{ steps }}.{{ s }}__ahead))
        > {{ margins }}.{{ s }},
        false
    )
{%- endmacro %}
