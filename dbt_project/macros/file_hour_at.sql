{#
    The UTC hour a telemetry file covers, from its name
    (<machine>_<yyyymmddThh>[ (n)].txt); NULL for a name that does not say
    one, or says an impossible one (the ingestion quarantines those files).
#}
{% macro file_hour_at(path_column) %}
    try_strptime(
        regexp_extract({{ path_column }}, '_(\d{8}T\d{2})[^/]*\.txt$', 1), '%Y%m%dT%H'
    )::timestamp at time zone 'UTC'
{%- endmacro %}
