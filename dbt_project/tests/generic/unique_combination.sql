{#
    The combination of `columns` is unique in the model (a composite key).
    Written here because the dbt package hub (dbt_utils) is out of reach.
    With `recent_key` (a column of the model, which also has `ingested_at`), the hourly
    run checks only the combinations whose `recent_key` value came with a load since
    the last run that passed its checks (macro checked_since): a duplicate can only
    come with a new load, and the check costs the same on a year of history as on a day.
#}
{% test unique_combination(model, columns, recent_key=none) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }} {{ recent_only(model, recent_key) }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
