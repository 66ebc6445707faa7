# Two commands for a new user: `make run` and `make test`. Everything else is for maintainers.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSOLE_STAMP := $(VENV)/.console-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_ARGS ?=

.PHONY: run test install lint format clean

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

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var test-artifacts .pytest_cache
