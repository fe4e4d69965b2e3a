# lew: every job has one target. `make` (or `make help`) lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EVENT ?= events/s3-put.json
ENV_VARS ?= events/env.json
STACK ?= lew
# Empty: the region samconfig.toml deploys STACK to (as `sam deploy` and `lew --stack` use).
REGION ?=
IMAGE ?= lew-worker
TAG ?= latest

# The launcher's runtime is python3.12, and `sam build` refuses to build it with another interpreter.
# Look for one on PATH, then in pyenv; scripts/find-python312 fails with a clear message if there is none.
PY312_DIR = $(shell scripts/find-python312 --dir)

.PHONY: help install lint format typecheck pytest test test-unit test-faults validate build invoke deploy \
        deploy-prod image push demo bench bench-smoke lock clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements/dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "lew needs Python 3.11 or newer as '$(PYTHON)'; try: make PYTHON=python3.12 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP) ## Create .venv with the pinned dev dependencies and the `lew` command

lint: $(STAMP) ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict on launcher, worker and lew
	$(BIN)/mypy

pytest: $(STAMP) ## pytest: unit, integration, template, end-to-end and fault tests
	$(BIN)/pytest

test-unit: $(STAMP) ## Only the fast unit tests
	$(BIN)/pytest tests/unit

test-faults: $(STAMP) ## Only the reliability fault matrix (also part of `make test`)
	$(BIN)/pytest -m faults

validate: $(STAMP) ## sam validate --lint (cfn-lint) and checkov on template.yaml
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

build: $(STAMP) ## sam build only: the launcher's bundle in .aws-sam/ (needs a python3.12, on PATH or in pyenv)
	@test -n "$(PY312_DIR)" || { scripts/find-python312 --dir; exit 1; }
	PATH="$(PY312_DIR):$$PATH" $(BIN)/sam build --template template.yaml

test: lint typecheck pytest validate build ## Everything CI runs: lint, types, tests, template checks, sam build

invoke: build ## sam local invoke the launcher with EVENT (default events/s3-put.json); needs Docker
	$(BIN)/sam local invoke LauncherFunction --event $(EVENT) --env-vars $(ENV_VARS)

# A deploy checks the template first (cfn-lint and checkov), so that a broken or insecure change never reaches
# CloudFormation; then it builds, and `sam deploy` shows the change set and waits for a yes.
deploy: validate build ## validate, build, sam deploy with samconfig.toml's default environment (stack lew)
	$(BIN)/sam deploy --config-env default

deploy-prod: validate build ## validate, build, sam deploy with samconfig.toml's prod environment (stack lew-prod)
	$(BIN)/sam deploy --config-env prod

image: ## docker build the worker image (needs Docker)
	docker build --platform linux/amd64 --tag $(IMAGE):$(TAG) worker

# The stack's repository is looked up first (in samconfig.toml's region for STACK, or REGION=...), so that a
# missing credential, an unreachable AWS or a missing stack is one line before a long docker build. The ECR
# login uses the repository's own region, read from its URI (<account>.dkr.ecr.<region>.amazonaws.com/<name>).
push: $(STAMP) ## Build the worker image and push it to the stack's ECR repository (STACK=lew, REGION=samconfig's)
	@uri=$$($(BIN)/python -m lew.stack_output $(STACK) RepositoryUri $(if $(REGION),--region $(REGION))) || exit 1; \
	registry=$${uri%%/*}; region=$$(echo "$$registry" | cut -d. -f4); \
	echo "pushing $(IMAGE):$(TAG) to $$uri:$(TAG) ($$region)"; \
	$(MAKE) --no-print-directory image && \
	aws ecr get-login-password --region "$$region" | docker login --username AWS --password-stdin "$$registry" && \
	docker tag $(IMAGE):$(TAG) "$$uri:$(TAG)" && docker push "$$uri:$(TAG)"

demo: $(STAMP) ## Run the whole pipeline locally on the bundled samples (lew demo)
	$(BIN)/lew demo

bench: $(STAMP) ## The full benchmark suite; writes BENCHMARKS.md
	$(BIN)/python -m bench --write BENCHMARKS.md

bench-smoke: $(STAMP) ## A tiny-N run of every benchmark, to keep the suite working
	$(BIN)/python -m bench --smoke

lock: ## Re-resolve requirements/dev.in into the pinned requirements/dev.txt
	$(BIN)/uv pip compile requirements/dev.in --python-version 3.11 -o requirements/dev.txt

clean: ## Remove the venv, build output and caches
	rm -rf $(VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
