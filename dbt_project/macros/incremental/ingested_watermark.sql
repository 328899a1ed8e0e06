{#
    The newest ingestion an incremental model has already processed: the
    largest source_ingested_at in its own table ('-infinity' when it is empty
    or not incremental). Files ingested after it are what an incremental run
    must (re)process, whatever hours they cover: a late file or a back-fill of
    last month is picked up like the newest hour. Rendered as a literal so
    that filters built on it reach the raw scans.
#}
{% macro ingested_watermark() %}
    {%- if execute and is_incremental() -%}
        {{ timestamptz_literal(
            "select coalesce(max(source_ingested_at), '-infinity'::timestamptz)::varchar"
            ~ " from " ~ this
        ) }}
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{% endmacro %}
