# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
SYNCED := $(VENV)/.synced
LEAFLET := portal/static/vendor/leaflet/leaflet.js
PACKAGES := infra tenants onboarding training permits geofence scoring portal
BABEL_KEYWORDS := -k N_ -k InvalidInput:3 -k Conflict:3 -k NotFound:1 -k AuthenticationFailed:1 -k DomainError:1

.PHONY: demo serve test bench lint format i18n system-deps-demo system-deps-test system-deps-bench services

# A machine may tell Python not to cache compiled modules; then every process (each test worker,
# server, CLI run and Celery worker of the suite, and the demo) compiles all of its imports
# again, seconds per start on two cores. The caches go to __pycache__ folders, which git ignores.
unexport PYTHONDONTWRITEBYTECODE

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

$(LEAFLET): scripts/vendor-assets.sh
	scripts/vendor-assets.sh

system-deps-demo:
	scripts/system-deps.sh demo

system-deps-test:
	scripts/system-deps.sh test

system-deps-bench:
	scripts/system-deps.sh bench

services:
	scripts/ensure-services.sh

demo: $(SYNCED) system-deps-demo $(LEAFLET)
	$(BIN)/portal demo

serve: $(SYNCED) $(LEAFLET)
	$(BIN)/portal serve

test: $(SYNCED) system-deps-test $(LEAFLET) services
	scripts/run-tests.sh $(BIN)/pytest -n 2 --dist loadscope --no-loadscope-reorder

bench: $(SYNCED) system-deps-bench $(LEAFLET) services
	$(BIN)/pytest tests/benchmarks -m benchmark -p no:randomly -s

lint: $(SYNCED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(SYNCED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Refresh the message catalogs after changing user-facing text; translate the new entries in
# infra/translations/zh_CN/LC_MESSAGES/messages.po (English msgids translate to themselves).
i18n: $(SYNCED)
	$(BIN)/pybabel -q extract -F babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output \
		--no-wrap --project contractor-portal -o infra/translations/messages.pot .
	$(BIN)/pybabel -q update --no-wrap --no-fuzzy-matching -i infra/translations/messages.pot -d infra/translations
