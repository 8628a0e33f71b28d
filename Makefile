# lagwatch developer commands. `make test` is what CI runs (.ci/run), `make run` is the quickest way to see it work.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092

.PHONY: setup run demo test test-deps lint typecheck unit integration bench lock kafka-start kafka-stop clean

$(VENV)/.installed: pyproject.toml requirements-dev.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv venv --quiet --allow-existing $(VENV)
	uv pip install --quiet -p $(VENV) -r requirements-dev.lock
	uv pip install --quiet -p $(VENV) --no-deps -e .
	@touch $@

setup: $(VENV)/.installed ## virtualenv with the locked dependencies and lagwatch itself

run: setup ## start a local Kafka (jars from Maven Central) and lagwatch against it
	scripts/kafka-local start --base-port $(KAFKA_PORT)
	$(VENV)/bin/lagwatch --bootstrap-servers 127.0.0.1:$(KAFKA_PORT)

demo: setup ## Kafka, the scenario workload, lagwatch, Prometheus and Alertmanager with the shipped rules
	VENV=$(VENV) KAFKA_PORT=$(KAFKA_PORT) scripts/demo

test: test-deps lint typecheck ## everything CI checks: lint, types, unit, integration and end-to-end tests
	$(PY) -m pytest -n 2 --dist loadfile

test-deps: ## Java, Maven, Prometheus, Alertmanager, openssl: installed when missing, or named
	scripts/install-test-deps

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/lint-imports --no-cache

typecheck: setup
	$(VENV)/bin/mypy --strict exporter/

unit: setup ## fast tests only (no Kafka)
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

bench: setup ## performance figures (see bench/README.md); starts the local Kafka on KAFKA_PORT for those that need one
	scripts/kafka-local start --base-port $(KAFKA_PORT) >/dev/null
	for b in bench/bench_*.py; do echo "== $$b"; KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT) $(PY) $$b || exit 1; done

lock: ## refresh the pinned versions from pyproject.toml's ranges
	uv pip compile --quiet --upgrade --generate-hashes pyproject.toml -o requirements.lock
	uv pip compile --quiet --upgrade --generate-hashes pyproject.toml --extra dev -o requirements-dev.lock

kafka-start:
	scripts/kafka-local start --base-port $(KAFKA_PORT)

kafka-stop: ## stop the local Kafka that `make kafka-start` (or `make run`) started on KAFKA_PORT
	scripts/kafka-local stop --base-port $(KAFKA_PORT)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
