{#
    The combination of `columns` is unique in the model (a composite key).
    Written here because the dbt package hub (dbt_utils) is out of reach.
#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
