{#
    The machine-hours with a file ingested after `since` (macro
    ingested_watermark): one row per machine_id and hour_at, to be used as a
    subquery. Every file outcome counts (a quarantined or partial file changes
    its hour's quality figures too).
#}
{% macro changed_machine_hours(since) %}
    select distinct
        machine_id,
        file_hour_at as hour_at
    from {{ ref('stg_landing__landing_files') }}
    where
        ingested_at > {{ since }}
        and machine_id is not null
        and file_hour_at is not null
{% endmacro %}
