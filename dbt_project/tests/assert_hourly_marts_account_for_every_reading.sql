-- Every staged reading is counted in exactly one machine-hour, every non-NULL
-- sensor value of the staged readings is counted in fct_machine_hour_sensors, and
-- every flag is counted in both marts: what the marts leave out of their
-- statistics is accounted for by flags, not dropped. Count-based: one scan of the
-- wide staged readings, no long rows (count(columns(...)) covers every sensor
-- column, whatever the firmware added).
with

staged as (

    select count(*) as readings from {{ ref('stg_landing__telemetry_readings') }}

),

staged_sensor_counts as (

    select
        count(
            columns(* exclude (
                machine_id, reading_at, utc_offset_min, status, source_line, source_file,
                source_file_sha256, ingested_at, load_id, hour_at
            ))
        )
    from {{ ref('stg_landing__telemetry_readings') }}

),

staged_values as (

    select sum(per_sensor.sensor_values) as sensor_readings
    from (
        unpivot staged_sensor_counts
        on columns(*)
        into name sensor value sensor_values
    ) as per_sensor

),

hours as (

    select
        sum(readings_received) as readings,
        sum(spike_count + stuck_count + out_of_range_count) as flags
    from {{ ref('fct_machine_hours') }}

),

sensor_hours as (

    select
        sum(readings) as sensor_readings,
        sum(readings - clean_readings) as flagged,
        sum(spike_count + stuck_count + out_of_range_count) as flags
    from {{ ref('fct_machine_hour_sensors') }}

)

select
    staged.readings as staged_readings,
    hours.readings as hour_readings,
    staged_values.sensor_readings,
    sensor_hours.sensor_readings as sensor_hour_readings
from staged
cross join staged_values
cross join hours
cross join sensor_hours
where
    staged.readings != hours.readings
    or staged_values.sensor_readings != sensor_hours.sensor_readings
    or sensor_hours.flags != hours.flags
    -- a flagged reading carries one to three flags
    or sensor_hours.flagged > sensor_hours.flags
    or sensor_hours.flagged * 3 < sensor_hours.flags
