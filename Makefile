# The two commands a newcomer needs (README): `make demo` and `make test`.
# Both install everything they need (uv from PyPI, then the locked environment).
SHELL := /bin/bash
# uv from PATH, else the one pip installs as a module of this Python
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: demo test lint typecheck pytest setup

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
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
