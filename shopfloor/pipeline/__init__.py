"""The hourly run and what it orchestrates: the stages (`run`), dbt in-process (`dbt`),
a backlog built in bounded batches (`batches`) and the record of the last build
(`build_state`)."""
