# The two commands a newcomer needs (README): `make demo` and `make test`.
# Both install everything they need (uv from PyPI, then the locked environment).
SHELL := /bin/bash
# uv from PATH, else the one pip installs as a module of this Python
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: demo test check check-static check-pytest lint typecheck pytest setup packages

# --compile-bytecode: PYTHONDONTWRITEBYTECODE is set on these machines, so without .pyc
# files every process re-compiles dbt, dlt and scikit-learn from source on import
# (what that costs: docs/design.md)
setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet --compile-bytecode

demo: setup
	$(UV) run shopfloor demo

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run sqlfluff lint --processes 2 dbt_project/models dbt_project/tests dbt_project/macros

typecheck: setup
	$(UV) run mypy

# the Debian packages the tests drive: headless Chromium (the docs-site test) and a real
# PostgreSQL (the serving-layer tests start their own server on 127.0.0.1, as the package's
# postgres user when run as root); one apt-get for whatever is missing (CI runs as root)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
packages:
	@missing=""; \
	  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	    missing="chromium"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  [ -z "$$missing" ] || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null)

pytest: setup packages
	$(UV) run pytest

# lint, types and the tests side by side (the checks end within the first minute, the
# tests print their progress as they go); a failure in any of them fails the target
test:
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest

# the everyday loop: lint and types beside every test that needs no fleet of its own or
# browser (the tests wait on dbt and DuckDB often enough to leave a core for the checks)
check: setup
	@$(MAKE) --no-print-directory -j2 check-static check-pytest

check-static:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

check-pytest:
	$(UV) run pytest -m "not slow and not browser"
