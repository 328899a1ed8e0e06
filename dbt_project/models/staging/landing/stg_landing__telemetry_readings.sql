{#
    The raw readings as loaded, one column per sensor as the files declare them
    (s_<sensor>, discovered, never listed). A reading a crashed load left twice is
    still here twice: int_readings_deduplicated keeps one.
#}
with

source as (

    select * from {{ source('landing', 'telemetry_readings') }}

)

select
    * exclude (_dlt_load_id),
    _dlt_load_id as load_id
from source
