-- sqlfluff:exclude_rules:LT02
-- (LT02: the subquery rendered from changed_machine_hours misleads the indent rule)
{#
    Pre-hook of an incremental model: delete the rows of the machine-hours this
    run rebuilds (those with a file ingested since the model's watermark), from
    `after_hours` hours after the earliest changed hour of each machine to that
    many hours after its latest. delete+insert alone deletes only the keys the
    new rows have: an hour that now yields no row (its new file has no reading)
    would keep its old rows.
#}
{% macro delete_rebuilt_hours(after_hours=0) %}
{%- if is_incremental() -%}
{%- set since = ingested_watermark() -%}
delete from {{ this }} as target
using (
    select
        machine_id,
        min(hour_at) as first_hour_at,
        max(hour_at) + interval {{ after_hours }} hour as last_hour_at
    from ({{ changed_machine_hours(since) }})
    group by machine_id
) as spans
where
    target.machine_id = spans.machine_id
    and target.hour_at between spans.first_hour_at and spans.last_hour_at
    {%- if after_hours == 0 %}
        and (target.machine_id, target.hour_at) in (
            {{ changed_machine_hours(since) }}
        )
    {%- endif %}
{%- else -%}
select 1
{%- endif -%}
{% endmacro %}
