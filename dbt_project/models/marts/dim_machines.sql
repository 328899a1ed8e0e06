with

registry as (

    select * from {{ ref('stg_landing__machine_registry') }}

),

files as (

    -- every file outcome names a machine: one that only sent quarantined files
    -- is still a machine of the plant
    select
        machine_id,
        machine_model,
        firmware,
        first_reading_at,
        last_reading_at,
        file_hour_at,
        file_status in ('loaded', 'partial') as is_loaded
    from {{ ref('stg_landing__landing_files') }}
    where machine_id is not null and file_status in ('loaded', 'partial', 'quarantined')

),

firmware_history as (

    select
        machine_id,
        firmware,
        min(file_hour_at) as first_seen_at
    from files
    where is_loaded
    group by machine_id, firmware

),

observed as (

    select
        machine_id,
        arg_max(machine_model, file_hour_at) filter (where is_loaded) as observed_model,
        arg_max(firmware, file_hour_at) filter (where is_loaded) as current_firmware,
        min(first_reading_at) as first_data_at,
        max(last_reading_at) as last_data_at,
        count(*) filter (where is_loaded) as files_loaded
    from files
    group by machine_id

),

history as (

    select
        machine_id,
        string_agg(
            firmware || ' since ' || strftime(first_seen_at, '%Y-%m-%d %H:00'), '; '
            order by first_seen_at
        ) as firmware_history,
        count(*) as firmware_versions
    from firmware_history
    group by machine_id

),

final as (

    select
        coalesce(registry.machine_id, observed.machine_id) as machine_id,
        registry.machine_model as registered_model,
        observed.observed_model,
        coalesce(registry.machine_model, observed.observed_model) as machine_model,
        registry.production_line,
        registry.installed_on,
        registry.retired_on,
        registry.retired_on is null as is_in_service,
        -- the registry's days are UTC days: the service window every mart bounds a
        -- machine's hours with
        registry.installed_on::timestamp at time zone 'UTC' as in_service_from_at,
        registry.retired_on::timestamp at time zone 'UTC' as in_service_until_at,
        registry.rated_power_kw,
        observed.current_firmware,
        history.firmware_history,
        coalesce(history.firmware_versions, 0) as firmware_versions,
        observed.first_data_at,
        observed.last_data_at,
        coalesce(observed.files_loaded, 0) as files_loaded,
        registry.machine_id is not null as is_registered
    from registry
    full outer join observed on registry.machine_id = observed.machine_id
    left join history on coalesce(registry.machine_id, observed.machine_id) = history.machine_id

)

select * from final
