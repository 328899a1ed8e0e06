with

source as (

    select
        machine_id,
        model,
        line,
        installed_on,
        rated_power_kw
    from {{ source('landing', 'machine_registry') }}

)

select
    machine_id,
    model as machine_model,
    line as production_line,
    installed_on::date as installed_on,
    rated_power_kw::double as rated_power_kw
from source
