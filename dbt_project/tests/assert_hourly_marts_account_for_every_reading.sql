-- Every staged reading is counted in exactly one machine-hour, every machine-hour's
-- sensor readings are in fct_machine_hour_sensors, and every flag is counted: what
-- the marts leave out of their statistics is accounted for by flags, not dropped.
with

staged as (

    select count(*) as readings from {{ ref('stg_landing__telemetry_readings') }}

),

hours as (

    select
        sum(readings_received) as readings,
        sum(spike_count + stuck_count + out_of_range_count) as flags
    from {{ ref('fct_machine_hours') }}

),

long_readings as (

    select
        count(*) as sensor_readings,
        count(*) filter (where is_spike or is_stuck or is_out_of_range) as flagged,
        count(*) filter (where is_spike) + count(*) filter (where is_stuck)
        + count(*) filter (where is_out_of_range) as flags
    from {{ ref('int_readings_flagged') }}

),

sensor_hours as (

    select
        sum(readings) as sensor_readings,
        sum(readings - clean_readings) as flagged
    from {{ ref('fct_machine_hour_sensors') }}

)

select
    staged.readings as staged_readings,
    hours.readings as hour_readings,
    long_readings.sensor_readings,
    sensor_hours.sensor_readings as sensor_hour_readings
from staged
cross join hours
cross join long_readings
cross join sensor_hours
where
    staged.readings != hours.readings
    or long_readings.sensor_readings != sensor_hours.sensor_readings
    or long_readings.flagged != sensor_hours.flagged
    or long_readings.flags != hours.flags
