{#
    The earliest hour among the machine-hours changed since `since`, as a
    literal ('infinity' when nothing changed): a lower bound that lets the
    raw readings' zone maps skip the history an incremental run does not
    touch. Readings are looked for from one day before it, so that a machine
    clock running behind its file's hour is still covered.
#}
{% macro changed_hours_start(since) %}
    {%- if execute -%}
        {{ timestamptz_literal(
            "select coalesce(min(hour_at), 'infinity'::timestamptz)::varchar from ("
            ~ changed_machine_hours(since) ~ ")"
        ) }}
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{% endmacro %}
