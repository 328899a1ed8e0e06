-- sqlfluff:exclude_rules:AM04,ST06,LT02
-- (LT02: the jinja loops generate per-sensor expressions that the indent rule cannot
-- lay out consistently, and `sqlfluff fix` does not converge on them)
{#
    The cleaning flags of int_readings_flagged, as CTEs ending in
    `flagged_long` (one row per reading and non-NULL sensor). Shared by the
    int_readings_flagged view and fct_machine_hour_sensors, so that the rules
    live in one place and an incremental run can filter the raw scan
    (`where_sql`, applied to the staged wide readings).

    Work is done on the wide readings (one row per reading) and on small
    per-hour tables; nothing sorts the long rows:
      - median and MAD per machine, hour and status: two grouped aggregates
        over the wide rows, joined back (no window medians);
      - stuck: each reading is compared with the previous reading of its
        machine-hour (a join on the row number, computed on the key columns
        only); the rare repeats are unpivoted and grouped into runs, and the
        runs of at least var('stuck_min_samples') are joined back;
      - out of range: the machine model's ratings, one column per sensor.
    The sensor set is read from the staged relation (macro sensor_columns):
    a column a new firmware adds flows through with no SQL edited.
#}
{% macro flagged_readings(where_sql=none, detail=false) %}
{%- set staged = ref('stg_landing__telemetry_readings') -%}
{%- set sensors = sensor_columns(staged) -%}
{%- set detail_columns = ['reading_at', 'source_file', 'source_line'] if detail else [] -%}
ordered as (

    -- position of each reading in its machine-hour; key columns only, so the
    -- sort stays narrow
    select
        source_file_sha256,
        source_line,
        row_number() over (
            partition by machine_id, hour_at order by reading_at, source_line
        ) as rn
    from {{ staged }}
    {% if where_sql %}where {{ where_sql }}{% endif %}

),

base as materialized (

    select
        staged.machine_id,
        staged.hour_at,
        staged.status,
        {% for column in detail_columns %}staged.{{ column }},
        {% endfor -%}
        ordered.rn,
        {% for s in sensors %}staged.{{ s }}::double as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from {{ staged }} as staged
    inner join ordered
        on
            staged.source_file_sha256 = ordered.source_file_sha256
            and staged.source_line = ordered.source_line
    {% if where_sql %}where {{ where_sql }}{% endif %}

),

ratings as (

    select
        machines.machine_id,
        {% for s in sensors %}
            max(ratings.rated_min) filter (where ratings.sensor = '{{ s }}') as {{ s }}__min,
            max(ratings.rated_max) filter (where ratings.sensor = '{{ s }}') as {{ s }}__max
            {{- "," if not loop.last }}
        {% endfor %}
    from {{ ref('stg_landing__machine_registry') }} as machines
    inner join {{ ref('stg_landing__sensor_ratings') }} as ratings
        on machines.machine_model = ratings.machine_model
    group by machines.machine_id

),

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
    inner join medians
        on
            base.machine_id = medians.machine_id
            and base.hour_at = medians.hour_at
            and base.status is not distinct from medians.status
    group by base.machine_id, base.hour_at, base.status

),

repeats_wide as (

    -- true where a reading equals the previous one of its machine-hour
    select
        base.machine_id,
        base.hour_at,
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
            and base.rn - 1 = previous.rn

),

repeats as (

    unpivot repeats_wide
    on columns(* exclude (machine_id, hour_at, rn))
    into name sensor value is_repeat

),

stuck_runs as (

    -- consecutive repeats form a run with the reading before the first one
    select
        machine_id,
        hour_at,
        sensor,
        min(rn) - 1 as first_rn,
        max(rn) as last_rn
    from (
        select
            *,
            rn - row_number() over (
                partition by machine_id, hour_at, sensor order by rn
            ) as island
        from repeats
    ) as numbered
    group by machine_id, hour_at, sensor, island
    having count(*) + 1 >= {{ var('stuck_min_samples') }}

),

flagged_wide as (

    select
        base.machine_id,
        base.hour_at,
        base.status,
        {% for column in detail_columns %}base.{{ column }},
        {% endfor -%}
        base.rn,
        {% for s in sensors %}
            base.{{ s }} as {{ s }}__value,
            coalesce(
                abs(base.{{ s }} - medians.{{ s }}) / nullif(1.4826 * mads.{{ s }}, 0)
                > {{ var('spike_robust_z') }},
                false
            ) as {{ s }}__spike,
            coalesce(
                base.{{ s }} < ratings.{{ s }}__min or base.{{ s }} > ratings.{{ s }}__max, false
            ) as {{ s }}__out_of_range{{ "," if not loop.last }}
        {% endfor %}
    from base
    inner join medians
        on
            base.machine_id = medians.machine_id
            and base.hour_at = medians.hour_at
            and base.status is not distinct from medians.status
    inner join mads
        on
            base.machine_id = mads.machine_id
            and base.hour_at = mads.hour_at
            and base.status is not distinct from mads.status
    left join ratings on base.machine_id = ratings.machine_id

),

unpivoted as (

    -- one row per reading and sensor, three value columns; a missing reading
    -- (NULL value) is filtered below. sqlfluff cannot parse a multi-column
    -- UNPIVOT, hence the noqa.
    unpivot flagged_wide  -- noqa: PRS
    on
        {% for s in sensors %}
            ({{ s }}__value, {{ s }}__spike, {{ s }}__out_of_range) as {{ s }}
            {{- "," if not loop.last }}
        {% endfor %}
    into name sensor value sensor_value, is_spike, is_out_of_range

),

flagged_long as (

    select
        unpivoted.*,
        stuck_runs.sensor is not null as is_stuck
    from unpivoted
    left join stuck_runs
        on
            unpivoted.machine_id = stuck_runs.machine_id
            and unpivoted.hour_at = stuck_runs.hour_at
            and unpivoted.sensor = stuck_runs.sensor
            and unpivoted.rn between stuck_runs.first_rn and stuck_runs.last_rn
    where unpivoted.sensor_value is not null

)
{% endmacro %}
