{#- the rows of every rebuilt hour are deleted first (pre-hook), whatever sensors the
    hour has now: a replacing file may lack one, or have no reading at all. A full
    refresh that `shopfloor` already made window by window is not made again by the
    build that follows it (SHOPFLOOR_BUILD_WINDOWS_DONE) -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['machine_id', 'hour_at'],
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_build_window_or_rebuilt_hours(after_hours=0) }}",
        full_refresh=(false if env_var('SHOPFLOOR_BUILD_WINDOWS_DONE', '') else none),
    )
}}
{#
    One row per machine, UTC hour and sensor: statistics of the hour's clean
    readings (not flagged as spike, stuck or out of range) and the flag counts,
    as declared once in macro sensor_statistics.
    The flags are computed here from the wide staged readings (macro
    flagged_readings), so an incremental run's filter reaches the raw scan,
    and the statistics
    are aggregated on the wide rows, then unpivoted (macro sensor_hour_stats).
    Each machine's sensors are processed in slots, only the ones its machine
    group reports (macro sensor_groups), and named again at the end.
    Long on purpose: a sensor a new firmware adds becomes new rows, and the
    contract stays fixed. Incremental by ingestion: a run rebuilds the
    machine-hours that received a file since the last build, however old
    (macros ingested_watermark, changed_machine_hours). A backlog too big for
    one query's memory is built in windows of whole days, one dbt run each
    (macro build_window): the window's hours are rebuilt whole.
#}
{#- the model's inputs: the readings, and the registry and rated ranges the flags use -#}
{%- set readings = ref('int_readings_deduplicated') -%}
{%- set registry = ref('stg_landing__machine_registry') -%}
{%- set sensor_ratings = ref('stg_landing__sensor_ratings') -%}
{%- set window = build_window() -%}
{%- set since = ingested_watermark() -%}
{#- incremental: the readings of the machine-hours that received a file since the last build -#}
{%- set changed_readings = none -%}
{%- if window -%}
    {%- set changed_readings = build_window_readings(window) -%}
{%- elif is_incremental() -%}
    {%- set changed_readings = 'reading_at >= ' ~ changed_hours_start(since) ~ ' - interval 1 day'
        ~ ' and source_file in (select file_path from ' ~ ref('stg_landing__landing_files')
        ~ ' where (machine_id, file_hour_at) in (' ~ changed_machine_hours(since) ~ '))' -%}
{%- endif -%}
{%- set groups = sensor_groups(readings, registry, where_sql=changed_readings) -%}

with

{{ flagged_readings(readings, registry, sensor_ratings, groups, where_sql=changed_readings) }},

{{ sensor_hour_stats(sensors=slot_columns(groups)) }},

{{ slot_sensor_names(groups) }},

hour_ingestions as (

    select
        machine_id,
        file_hour_at as hour_at,
        max(ingested_at) as source_ingested_at
    from {{ ref('stg_landing__landing_files') }}
    where machine_id is not null {{ build_window_hours(window, 'file_hour_at') }}
    group by machine_id, file_hour_at

),

final as (

    select
        sensor_hours.machine_id,
        sensor_hours.hour_at,
        slot_sensors.sensor,
        {% for stat in sensor_statistics() %}
            sensor_hours.{{ stat.name }}::{{ stat.type }} as {{ stat.name }},
        {% endfor %}
        hour_ingestions.source_ingested_at
    from sensor_hours
    inner join slot_sensors
        on
            sensor_hours.machine_id = slot_sensors.machine_id
            and sensor_hours.sensor = slot_sensors.slot
    left join hour_ingestions
        on
            sensor_hours.machine_id = hour_ingestions.machine_id
            and sensor_hours.hour_at = hour_ingestions.hour_at

)

select * from final
