{#
    Wide readings to long: one row per machine, reading and sensor. The sensor
    set is whatever the raw table has: a column a new firmware adds becomes new
    rows here with no SQL edited. A missing reading (NULL) has no row.
#}
with

readings as (

    select * exclude (utc_offset_min, source_file_sha256, ingested_at, load_id)
    from {{ ref('stg_landing__telemetry_readings') }}

),

unpivoted as (

    unpivot readings
    on columns('^{{ sensor_prefix() }}')
    into name sensor value sensor_value

)

select
    machine_id,
    reading_at,
    hour_at,
    status,
    {{ sensor_name_sql('sensor') }} as sensor,
    sensor_value::double as sensor_value,
    source_file,
    source_line
from unpivoted
