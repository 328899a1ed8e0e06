with

source as (

    select
        machine_id,
        model,
        line,
        installed_on,
        retired_on,
        rated_power_kw
    from {{ source('landing', 'machine_registry') }}

)

select
    ---------- ids
    machine_id,
    model as machine_model,
    line as production_line,
    ---------- lifecycle (UTC days)
    installed_on::date as installed_on,
    retired_on::date as retired_on,
    ---------- ratings
    rated_power_kw::double as rated_power_kw
from source
