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
      - and at least var('spike_min_steps') steps of the sensor's resolution, the
        smallest power of ten its hour's values are multiples of (0.1 for a sensor that
        writes one decimal), so a sensor resting at a value and moving in steps of its
        resolution is never spiky.
    The first and last line of a file, and a reading next to a missing line, have a
    missing neighbour and are never spikes.
#}
{% macro spike_margins(sensors) %}
neighbour_steps as (

    -- per reading and sensor, its difference from the previous and the next line
    select
        base.machine_id,
        base.hour_at,
        base.file_key,
        base.rn,
        {% for s in sensors %}
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

    -- per machine, hour and sensor: the median absolute step, and the decimals the
    -- values need (0-6; 6 for anything finer)
    select
        neighbour_steps.machine_id,
        neighbour_steps.hour_at,
        {% for s in sensors %}
            median(abs(neighbour_steps.{{ s }}__back)) as {{ s }}__step,
            max(
                case
                    when base.{{ s }} = round(base.{{ s }}) then 0
                    when base.{{ s }} = round(base.{{ s }}, 1) then 1
                    when base.{{ s }} = round(base.{{ s }}, 2) then 2
                    when base.{{ s }} = round(base.{{ s }}, 3) then 3
                    when base.{{ s }} = round(base.{{ s }}, 4) then 4
                    when base.{{ s }} = round(base.{{ s }}, 5) then 5
                    else 6
                end
            ) as {{ s }}__decimals{{ "," if not loop.last }}
        {% endfor %}
    from neighbour_steps
    inner join base
        on
            neighbour_steps.machine_id = base.machine_id
            and neighbour_steps.hour_at = base.hour_at
            and neighbour_steps.file_key = base.file_key
            and neighbour_steps.rn = base.rn
    group by neighbour_steps.machine_id, neighbour_steps.hour_at

),

spike_margins as (

    select
        machine_id,
        hour_at,
        {% for s in sensors %}
            greatest(
                {{ var('spike_robust_z') }} * 1.4826 * {{ s }}__step,
                {{ var('spike_min_steps') }} * pow(10, -{{ s }}__decimals)
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
