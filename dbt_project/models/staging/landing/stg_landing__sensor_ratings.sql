with

source as (

    select
        model,
        sensor,
        unit,
        rated_min,
        rated_max
    from {{ source('landing', 'sensor_ratings') }}

)

select
    model as machine_model,
    sensor,
    unit,
    rated_min::double as rated_min,
    rated_max::double as rated_max
from source
