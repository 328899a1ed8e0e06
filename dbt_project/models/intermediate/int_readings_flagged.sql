{#
    Cleaning rules as flags, never deletes. All windows are per machine,
    sensor and hour, so a filter on the hour reaches the raw table.
      is_spike         robust z-score (median / MAD of the hour's readings in
                       the same status) above var('spike_robust_z')
      is_stuck         part of a run of at least var('stuck_min_samples')
                       identical consecutive readings
      is_out_of_range  outside the machine model's rated range
#}
with

readings as (

    select * from {{ ref('int_readings_unpivoted') }}

),

machines as (

    select
        machine_id,
        machine_model
    from {{ ref('stg_landing__machine_registry') }}

),

ratings as (

    select
        machine_model,
        sensor,
        rated_min,
        rated_max
    from {{ ref('stg_landing__sensor_ratings') }}

),

hour_medians as (

    select
        *,
        median(sensor_value) over hour_status as hour_median
    from readings
    window hour_status as (partition by machine_id, sensor, hour_at, status)

),

deviations as (

    select
        *,
        median(abs(sensor_value - hour_median)) over hour_status as hour_mad,
        coalesce(sensor_value = lag(sensor_value) over ordered, false) as is_repeat
    from hour_medians
    window
        hour_status as (partition by machine_id, sensor, hour_at, status),
        ordered as (partition by machine_id, sensor, hour_at order by reading_at, source_line)

),

runs as (

    select
        *,
        sum(case when is_repeat then 0 else 1 end) over (
            partition by machine_id, sensor, hour_at
            order by reading_at, source_line
            rows between unbounded preceding and current row
        ) as run_id
    from deviations

),

run_lengths as (

    select
        *,
        count(*) over (partition by machine_id, sensor, hour_at, run_id) as run_length
    from runs

),

flagged as (

    select
        run_lengths.machine_id,
        run_lengths.reading_at,
        run_lengths.hour_at,
        run_lengths.status,
        run_lengths.sensor,
        run_lengths.sensor_value,
        run_lengths.source_file,
        run_lengths.source_line,
        coalesce(
            abs(run_lengths.sensor_value - run_lengths.hour_median)
            / nullif(1.4826 * run_lengths.hour_mad, 0) > {{ var('spike_robust_z') }},
            false
        ) as is_spike,
        run_lengths.run_length >= {{ var('stuck_min_samples') }}
        and run_lengths.sensor_value != 0 as is_stuck,  -- a stopped axis reads 0 legitimately
        coalesce(
            run_lengths.sensor_value < ratings.rated_min
            or run_lengths.sensor_value > ratings.rated_max,
            false
        ) as is_out_of_range
    from run_lengths
    left join machines on run_lengths.machine_id = machines.machine_id
    left join ratings
        on
            machines.machine_model = ratings.machine_model
            and run_lengths.sensor = ratings.sensor

)

select * from flagged
