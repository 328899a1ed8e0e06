{#
    Cleaning rules as flags, never deletes (rules: macro flagged_readings,
    shared with fct_machine_hour_sensors). All work is per machine and hour,
    so a filter on the hour reaches the raw table.
      is_spike         robust z-score (median / MAD of the hour's readings in
                       the same status) above var('spike_robust_z')
      is_stuck         part of a run of at least var('stuck_min_samples')
                       identical consecutive readings (a missing reading ends
                       a run)
      is_out_of_range  outside the machine model's rated range
#}
with

{{ flagged_readings(detail=true) }}

select
    machine_id,
    reading_at,
    hour_at,
    status,
    {{ sensor_name_sql('sensor') }} as sensor,
    sensor_value,
    source_file,
    source_line,
    is_spike,
    is_stuck,
    is_out_of_range
from flagged_long
