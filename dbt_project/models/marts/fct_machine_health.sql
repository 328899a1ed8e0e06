{#
    A health score for every machine-hour from the first days, with no failure
    and no model needed: how far the machine's sensors are from its own healthy
    behaviour, added to how long it has run since its last maintenance.

    Healthy behaviour: a sensor's 24 h running mean (run_mean_24h) in the hours
    up to var('health_reference_hours') after a maintenance, or after the
    machine's first hour when no maintenance is known yet; its reference is the
    median of those hours so far (look-back only). A sensor's deviation is the
    relative distance of its 24 h mean from that reference; the hour's is the
    mean of its three largest. Both parts are divided by their fleet median so
    far (at least var('health_min_deviation') for the deviations: below it a
    deviation is noise), so a typical hour scores about 2. Measured on the demo fleet in
    docs/decisions/0012-health-score.md.
#}
with

sensor_hours as (

    select
        machine_id,
        hour_at,
        sensor,
        run_mean_24h
    from {{ ref('fct_machine_hour_sensor_features') }}

),

machine_hours as (

    select
        machine_id,
        hour_at,
        machine_model,
        -- before the first known maintenance, the clock runs from the machine's first hour
        coalesce(
            hours_since_maintenance,
            date_diff('minute', min(hour_at) over (partition by machine_id), hour_at) / 60.0
        ) as hours_in_service
    from {{ ref('fct_machine_hour_features') }}

),

referenced as (

    select
        sensor_hours.machine_id,
        sensor_hours.hour_at,
        sensor_hours.sensor,
        sensor_hours.run_mean_24h,
        median(sensor_hours.run_mean_24h) filter (
            where machine_hours.hours_in_service <= {{ var('health_reference_hours') }}
        ) over reference_so_far as reference_mean,
        count(sensor_hours.run_mean_24h) filter (
            where machine_hours.hours_in_service <= {{ var('health_reference_hours') }}
        ) over reference_so_far as reference_hours
    from sensor_hours
    inner join machine_hours
        on
            sensor_hours.machine_id = machine_hours.machine_id
            and sensor_hours.hour_at = machine_hours.hour_at
    window reference_so_far as (
        partition by sensor_hours.machine_id, sensor_hours.sensor
        order by sensor_hours.hour_at
        rows between unbounded preceding and current row
    )

),

deviations as (

    select
        machine_id,
        hour_at,
        sensor,
        abs(run_mean_24h / nullif(reference_mean, 0) - 1) as deviation
    from referenced
    where reference_hours >= {{ var('health_min_reference_hours') }}

),

hour_deviations as (

    select
        machine_id,
        hour_at,
        list_avg(list_slice(list_sort(list(deviation), 'DESC'), 1, 3)) as sensor_deviation,
        -- a sensor named only when it moved by at least the noise floor; ties (and the
        -- last-bit differences of another summing order) go to the first name
        first(sensor order by round(deviation, 9) desc, sensor) filter (
            where deviation >= {{ var('health_min_deviation') }}
        ) as most_deviated_sensor,
        max(deviation) as most_deviated_sensor_deviation,
        count(*) as sensors_referenced
    from deviations
    where deviation is not null
    group by machine_id, hour_at

),

scaled as (

    select
        machine_hours.machine_id,
        machine_hours.hour_at,
        machine_hours.machine_model,
        machine_hours.hours_in_service,
        hour_deviations.sensor_deviation,
        hour_deviations.most_deviated_sensor,
        hour_deviations.most_deviated_sensor_deviation,
        coalesce(hour_deviations.sensors_referenced, 0) as sensors_referenced,
        median(machine_hours.hours_in_service) over fleet_so_far as fleet_hours_in_service,
        median(hour_deviations.sensor_deviation) over fleet_so_far as fleet_sensor_deviation
    from machine_hours
    left join hour_deviations
        on
            machine_hours.machine_id = hour_deviations.machine_id
            and machine_hours.hour_at = hour_deviations.hour_at
    window fleet_so_far as (
        order by machine_hours.hour_at range between unbounded preceding and current row
    )

),

final as (

    select
        machine_id,
        hour_at,
        machine_model,
        hours_in_service,
        sensor_deviation,
        most_deviated_sensor,
        most_deviated_sensor_deviation,
        sensors_referenced,
        case
            when sensor_deviation is null then null
            else
                coalesce(hours_in_service / nullif(fleet_hours_in_service, 0), 0)
                + sensor_deviation
                / greatest(fleet_sensor_deviation, {{ var('health_min_deviation') }})
        end as health_score
    from scaled

)

select * from final
