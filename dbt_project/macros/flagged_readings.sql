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
        over the wide rows, turned into spike bounds per hour and joined back
        (no window medians);
      - stuck: each reading is compared with the previous line of its file
        (a file is a machine-hour; a self join on the line number, nothing
        sorted); the rare repeats are unpivoted and grouped into runs, and
        the runs of at least var('stuck_min_samples') are joined back. A
        missing or rejected line ends a run;
      - out of range: the machine model's ratings, one column per sensor.
    The sensor set is read from the staged relation (macro sensor_columns):
    a column a new firmware adds flows through with no SQL edited.

    With `groups` (macro sensor_groups) the sensors are processed in slots:
    slot k holds, for each machine group, the k-th sensor its machines report
    (`sensor_slot_<k>`, macro slot_value). A machine reports about half of
    the sensor columns, so this halves the work; the `sensor` column of
    flagged_long then holds the slot, and macro slot_sensor_names maps it
    back per machine.
#}
{% macro flagged_readings(where_sql=none, detail=false, groups=none) %}
{%- set staged = ref('stg_landing__telemetry_readings') -%}
{%- set all_sensors = sensor_columns(staged) -%}
{#- no sensor column at all (an empty landing area): one empty slot keeps the SQL whole -#}
{%- if groups is none and not all_sensors -%}
    {%- set groups = [{'machines': [], 'sensors': []}] -%}
{%- endif -%}
{%- set sensors = slot_columns(groups) if groups is not none else all_sensors -%}
{%- set detail_columns = ['reading_at', 'source_file', 'source_line'] if detail else [] -%}
base as materialized (

    -- a reading's position is its line in its file (one file per
    -- machine-hour; file_key tells apart two versions of the same hour)
    select
        staged.machine_id,
        staged.hour_at,
        staged.status,
        {% for column in detail_columns %}staged.{{ column }},
        {% endfor -%}
        hash(staged.source_file_sha256) as file_key,
        staged.source_line as rn,
        {% for s in sensors -%}
            {%- if groups is not none -%}
                {{ slot_value(groups, loop.index, 'staged.@::double', 'staged.machine_id') }}
            {%- else -%}
                staged.{{ s }}::double
            {%- endif %} as {{ s }}{{ "," if not loop.last }}
        {% endfor %}
    from {{ staged }} as staged
    {% if where_sql %}where {{ where_sql }}{% endif %}

),

ratings_by_sensor as (

    select
        machines.machine_id,
        {% for s in all_sensors %}
            max(ratings.rated_min) filter (where ratings.sensor = '{{ sensor_name(s) }}')
                as {{ s }}__min,
            max(ratings.rated_max) filter (where ratings.sensor = '{{ sensor_name(s) }}')
                as {{ s }}__max
            {{- "," if not loop.last }}
        {% endfor %}
    from {{ ref('stg_landing__machine_registry') }} as machines
    inner join {{ ref('stg_landing__sensor_ratings') }} as ratings
        on machines.machine_model = ratings.machine_model
    group by machines.machine_id

),

ratings as (

    -- per machine, the rated range of each sensor (or slot)
    select
        machine_id,
        {% for s in sensors %}
            {%- if groups is not none %}
                {{ slot_value(groups, loop.index, '@__min', 'machine_id') }} as {{ s }}__min,
                {{ slot_value(groups, loop.index, '@__max', 'machine_id') }} as {{ s }}__max
            {%- else %}
                {{ s }}__min,
                {{ s }}__max
            {%- endif %}{{ "," if not loop.last }}
        {% endfor %}
    from ratings_by_sensor

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
    inner join mads
        on
            medians.machine_id = mads.machine_id
            and medians.hour_at = mads.hour_at
            and medians.status is not distinct from mads.status

),

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
                base.{{ s }} < spike_bounds.{{ s }}__low or base.{{ s }} > spike_bounds.{{ s }}__high,
                false
            ) as {{ s }}__spike,
            coalesce(
                base.{{ s }} < ratings.{{ s }}__min or base.{{ s }} > ratings.{{ s }}__max, false
            ) as {{ s }}__out_of_range,
            coalesce(stuck_wide.{{ s }}, false) as {{ s }}__stuck{{ "," if not loop.last }}
        {% endfor %}
    from base
    inner join spike_bounds
        on
            base.machine_id = spike_bounds.machine_id
            and base.hour_at = spike_bounds.hour_at
            and base.status is not distinct from spike_bounds.status
    left join ratings on base.machine_id = ratings.machine_id
    left join stuck_wide
        on
            base.machine_id = stuck_wide.machine_id
            and base.hour_at = stuck_wide.hour_at
            and base.file_key = stuck_wide.file_key
            and base.rn = stuck_wide.rn

),

flagged_long as (

    -- one row per reading and sensor, four value columns; a missing reading
    -- (NULL value) is filtered out. sqlfluff cannot parse a multi-column
    -- UNPIVOT, hence the noqa.
    select *
    from (
        unpivot flagged_wide  -- noqa: PRS
        on
            {% for s in sensors %}
                ({{ s }}__value, {{ s }}__spike, {{ s }}__out_of_range, {{ s }}__stuck)
                as {{ s }}{{ "," if not loop.last }}
            {% endfor %}
        into name sensor value sensor_value, is_spike, is_out_of_range, is_stuck
    ) as unpivoted
    where sensor_value is not null

)
{% endmacro %}


{#
    Per machine, hour and sensor: the statistics of fct_machine_hour_sensors,
    as CTEs after flagged_readings(), ending in `sensor_hours`. Aggregated on
    the wide flagged rows (one aggregate per sensor and statistic, one pass),
    then unpivoted: the long per-reading rows (one per reading and sensor,
    ~36 per reading) are never built. A sensor with no reading in the hour
    gets no row. `sensors`: the slot columns when flagged_readings() ran with
    groups (macro slot_columns).
#}
{% macro sensor_hour_stats(sensors=none) %}
{%- set sensors = sensors if sensors is not none
    else sensor_columns(ref('stg_landing__telemetry_readings')) -%}
{%- set stats = sensor_statistic_names() -%}
clean_wide as (

    -- per sensor, the value if no flag is raised, and that clean value while running
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
            end as {{ s }}__clean{{ "," if not loop.last }}
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
