{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['machine_id', 'hour_at'],
        on_schema_change='append_new_columns',
    )
}}
{#
    One row per machine and UTC hour that has at least one file (loaded,
    partial or quarantined): the hour's file facts and reading counts.
    Incremental by ingestion, not by time: a run rebuilds exactly the
    machine-hours that received a file since the last build (macro
    changed_machine_hours), however far in the past they lie, so late and
    back-filled files reach fct_machine_hours like the newest hour does.
#}
{%- set since = ingested_watermark() -%}
{%- set start = changed_hours_start(since) if is_incremental() else none -%}

with

files as (

    select
        machine_id,
        file_hour_at as hour_at,
        file_path,
        file_status,
        sample_interval_s,
        firmware,
        machine_model,
        rows_rejected,
        is_superseded,
        ingested_at,
        -- how far the machine's clock ran ahead of (or behind) the hour the file covers
        epoch(first_reading_at) - epoch(file_hour_at) as clock_lead_s
    from {{ ref('stg_landing__landing_files') }}
    where
        file_status in ('loaded', 'partial', 'quarantined')
        and machine_id is not null
        and file_hour_at is not null
        {% if is_incremental() %}
            and (machine_id, file_hour_at) in ({{ changed_machine_hours(since) }})
        {% endif %}

),

readings as (

    select
        machine_id,
        hour_at,
        status
    from {{ ref('int_readings_deduplicated') }}
    {% if is_incremental() %}
        where
            reading_at >= {{ start }} - interval 1 day
            and source_file in (select files.file_path from files)
    {% endif %}

),

reading_counts as (

    select
        machine_id,
        hour_at,
        count(*) as readings_received,
        count(*) filter (where status = 'RUN') as run_readings,
        count(*) filter (where status = 'IDLE') as idle_readings,
        count(*) filter (where status = 'SETUP') as setup_readings,
        count(*) filter (where status = 'ALARM') as alarm_readings,
        count(*) filter (where status = 'MAINT') as maint_readings
    from readings
    group by machine_id, hour_at

),

hour_files as (

    select
        machine_id,
        hour_at,
        max(sample_interval_s) as sample_interval_s,
        max(firmware) as firmware,
        max(machine_model) as machine_model,
        bool_or(file_status = 'partial') as has_partial_file,
        bool_or(file_status = 'quarantined') as has_quarantined_file,
        max(clock_lead_s) filter (where file_status != 'quarantined') as clock_lead_s,
        bool_or(is_superseded) as has_superseded_file,
        coalesce(
            sum(rows_rejected) filter (where file_status != 'quarantined' and not is_superseded),
            0
        )::bigint as rejected_rows,
        max(ingested_at) as source_ingested_at
    from files
    group by machine_id, hour_at

),

final as (

    select
        hour_files.machine_id,
        hour_files.hour_at,
        hour_files.machine_model,
        hour_files.firmware,
        hour_files.sample_interval_s,
        hour_files.clock_lead_s,
        hour_files.has_partial_file,
        hour_files.has_quarantined_file,
        hour_files.has_superseded_file,
        hour_files.rejected_rows,
        coalesce(reading_counts.readings_received, 0) as readings_received,
        coalesce(reading_counts.run_readings, 0) as run_readings,
        coalesce(reading_counts.idle_readings, 0) as idle_readings,
        coalesce(reading_counts.setup_readings, 0) as setup_readings,
        coalesce(reading_counts.alarm_readings, 0) as alarm_readings,
        coalesce(reading_counts.maint_readings, 0) as maint_readings,
        hour_files.source_ingested_at
    from hour_files
    left join reading_counts
        on
            hour_files.machine_id = reading_counts.machine_id
            and hour_files.hour_at = reading_counts.hour_at

)

select * from final
