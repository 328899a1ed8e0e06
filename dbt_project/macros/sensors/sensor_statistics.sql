{#
    The statistics of a sensor's hour: the one declaration that builds
    fct_machine_hour_sensors (aggregate, unpivot, columns) and, for those with
    `features`, the columns fct_machine_hour_sensor_features carries to the
    model (ml/features.py takes every column it finds there). None has it today:
    the model takes the look-back windows over run_value_mean, and the hour's
    own statistics ranked no better as features (docs/decisions/0009).

    `sql` aggregates one sensor over an hour's wide flagged rows: `@` stands
    for the sensor's columns, `@__value` (the reading), `@__clean` (the reading
    when no flag is raised), `@__micro` and `@__all_micro` (below), `@__spike`, `@__stuck`, `@__out_of_range` (the
    flags), and `is_running` is the machine's RUN status. A new statistic is
    one line here plus its column (type and description) in
    models/marts/fct_machine_hour_sensors.yml, and with `features` in
    fct_machine_hour_sensor_features.yml (a doc block can describe it for both).

    Means and deviations are summed exactly, on integers: `@__micro` is the
    clean reading in millionths as a HUGEINT, where |reading| <= 1e7 (`@__all_micro`
    every reading). DuckDB
    aggregates in parallel, and doubles summed in parallel differ in their last
    bits from build to build (and a model trained on them with them); integer sums
    do not. An hour with a reading beyond 1e7 falls back to the double aggregate.
#}
{% macro sensor_statistics() %}
    {#- the exact mean of micro (millionths) where every clean value has one -#}
    {%- set exact_mean = 'case when count(M) = count(C) then sum(M) / count(M) / 1e6'
        ~ ' else avg(C) end' -%}
    {%- set running = 'case when is_running then @__X end' -%}
    {{ return([
        {'name': 'readings', 'sql': 'count(@__value)', 'type': 'bigint'},
        {'name': 'clean_readings', 'sql': 'count(@__clean)', 'type': 'bigint'},
        {'name': 'value_mean', 'sql': exact_mean | replace('M', '@__micro') | replace('C', '@__clean'), 'type': 'double'},
        {'name': 'value_std', 'sql': 'case when count(@__micro) < count(@__clean) then stddev_samp(@__clean) when count(@__micro) > 1 then sqrt((count(@__micro) * sum(@__micro * @__micro) - sum(@__micro) * sum(@__micro)) / (count(@__micro) * (count(@__micro) - 1))) / 1e6 end', 'type': 'double'},
        {'name': 'value_min', 'sql': 'min(@__clean)', 'type': 'double'},
        {'name': 'value_max', 'sql': 'max(@__clean)', 'type': 'double'},
        {'name': 'value_p95', 'sql': 'quantile_cont(@__clean, 0.95)', 'type': 'double'},
        {'name': 'run_value_mean', 'sql': exact_mean | replace('M', running | replace('X', 'micro')) | replace('C', running | replace('X', 'clean')), 'type': 'double'},
        {'name': 'raw_value_mean', 'sql': exact_mean | replace('M', '@__all_micro') | replace('C', '@__value'), 'type': 'double'},
        {'name': 'spike_count', 'sql': 'count_if(@__spike)', 'type': 'bigint'},
        {'name': 'stuck_count', 'sql': 'count_if(@__stuck)', 'type': 'bigint'},
        {'name': 'out_of_range_count', 'sql': 'count_if(@__out_of_range)', 'type': 'bigint'},
    ]) }}
{% endmacro %}


{# the names of the statistics, those carried to the features mart only if `features` #}
{% macro sensor_statistic_names(features=false) %}
    {%- set names = [] -%}
    {%- for stat in sensor_statistics() if stat.features or not features -%}
        {%- do names.append(stat.name) -%}
    {%- endfor -%}
    {{ return(names) }}
{% endmacro %}
