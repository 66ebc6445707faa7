# Two commands for a new user: `make run` and `make test`. Everything else is for maintainers.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSOLE_STAMP := $(VENV)/.console-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_ARGS ?=

# The production configuration of the integration tests: PostgreSQL and Redis on this machine.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/console_test
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
PRODUCTION_TESTS ?= tests/integration tests/hardening

.PHONY: run test test-production check-deploy bench install lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(CONSOLE_STAMP): $(PY) requirements/console.txt requirements/serving.txt
	$(PY) -m pip install -q -r requirements/console.txt
	touch $@

$(DEV_STAMP): $(CONSOLE_STAMP) requirements/dev.txt
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $@

install: $(CONSOLE_STAMP)

## run: install, migrate and start web, worker and beat at http://127.0.0.1:8000 (Ctrl-C stops)
run: $(CONSOLE_STAMP)
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py ensure_admin
	$(PY) manage.py runconsole

## test: install and run the whole test suite
test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## test-production: the integration and hardening tests on PostgreSQL + Redis (servers must run)
test-production: $(DEV_STAMP)
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_BROKER_URL=$(TEST_BROKER_URL) \
		$(PY) -m pytest $(PRODUCTION_TESTS) $(PYTEST_ARGS)

## check-deploy: Django's deployment checklist under the production settings (CONSOLE_HTTPS=true)
check-deploy: $(CONSOLE_STAMP)
	CONSOLE_HTTPS=true DEBUG=false ALLOWED_HOSTS=console.example.com \
		CONSOLE_VAR_DIR=$$(mktemp -d) SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))') \
		$(PY) manage.py check --deploy --tag security --fail-level WARNING

## bench: scale figures of the console on PostgreSQL (10,000 deployments, 50,000 events)
bench: $(DEV_STAMP)
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) bench/console.py

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var test-artifacts .pytest_cache
