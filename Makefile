# The two commands a newcomer needs (README): `make demo` and `make test`.
# Both install everything they need (uv from PyPI, then the locked environment).
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: demo test lint typecheck pytest setup

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

setup: $(UV)
	$(UV) sync --frozen --quiet

demo: setup
	$(UV) run shopfloor demo

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run sqlfluff lint dbt_project/models dbt_project/tests dbt_project/macros

typecheck: setup
	$(UV) run mypy

pytest: setup
	$(UV) run pytest

test: lint typecheck pytest
