{#
    Rows where `flag_column` is true: a machine that has sent nothing for longer
    than var('silent_after_hours'). Meant for severity warn: the pipeline goes
    on, the maintenance team is told which machine went silent.
#}
{% test silent_machines(model, flag_column) %}

select *
from {{ model }}
where {{ flag_column }}

{% endtest %}
