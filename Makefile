# Syncline: the newcomer's interface. `make demo` and `make test` work on a fresh machine with
# Python 3.11 and make: they create .venv and install the pinned requirements on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CDK := npx --yes aws-cdk@2.1148.1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install demo up test lint format typecheck unit integration e2e infra bench chaos audit schemas synth bundle deploy clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(BIN)/python requirements.txt requirements-dev.txt pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

install: $(INSTALLED) ## Create .venv and install the pinned requirements

demo: $(INSTALLED) ## Run the demo scenario on the local stack and print a summary
	$(BIN)/syncline demo

up: $(INSTALLED) ## Start the local stack in the foreground (Ctrl-C stops it)
	$(BIN)/syncline local up

lint: $(INSTALLED) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(INSTALLED) ## mypy (strict) on functions/, infra/ and app.py
	$(BIN)/mypy

unit: $(INSTALLED) ## Unit tests only (no network)
	$(BIN)/pytest tests/unit

integration: $(INSTALLED) ## Integration tests: moto server over HTTP, real PostgreSQL
	$(BIN)/pytest tests/integration

e2e: $(INSTALLED) ## End-to-end scenarios on the local stack
	$(BIN)/pytest tests/e2e

test: lint typecheck ## ruff, mypy and the whole suite (what CI runs)
	$(BIN)/pytest

bench: $(INSTALLED) ## Benchmarks: figures in bench/results/, see docs/PERFORMANCE.md
	$(BIN)/python bench/backfill.py --rows 500000
	$(BIN)/python bench/incremental.py --changes 10000 --rate 150
	$(BIN)/python bench/engine.py --batches 20
	$(BIN)/python bench/webhook.py --seconds 60
	$(BIN)/python bench/summary.py

SEED ?= 1
CHANGES ?= 2000

chaos: $(INSTALLED) ## Fault-injection convergence run (make chaos SEED=1 CHANGES=2000): bench/results/chaos.json, docs/RELIABILITY.md
	$(BIN)/python bench/chaos.py --seed $(SEED) --changes $(CHANGES)

audit: $(INSTALLED) ## Vulnerability audit of the pinned runtime packages (needs PyPI's vulnerability service; beside make test, not in it)
	$(BIN)/pip-audit --strict --progress-spinner off -r requirements.txt \
		$(shell sed -e 's/#.*//' audit-accepted.txt | awk 'NF {print "--ignore-vuln", $$1}')

infra: $(INSTALLED) ## CDK assertions, cdk-nag and cfn-lint on the synthesized stack
	$(BIN)/pytest tests/infra

schemas: $(INSTALLED) ## Publish the canonical event JSON Schemas to schemas/v1 (refuses a breaking change)
	$(BIN)/python -m syncline.canonical.schemas

synth: $(INSTALLED) ## Synthesise the CDK app into cdk.out/ (no Node CDK CLI needed)
	$(BIN)/python app.py

bundle: $(INSTALLED) ## Build build/lambda: functions/ + runtime wheels for python3.12 ARM64 (needs the package index)
	$(BIN)/python -m infra.bundling

deploy: bundle ## Deploy with the pinned CDK CLI (needs AWS credentials, a bootstrapped account, Node)
	$(CDK) deploy --require-approval broadening

clean: ## Remove build output and caches (keeps .venv)
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
