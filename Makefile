# deploy_assets — tags of the Go monorepo become releases. `make demo` and `make test` are all
# a fresh machine needs. Settings: misc/envs/local.env (env vars win), misc/configs/pipeline.yaml.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
CLI := $(BIN)/deploy-assets
export DAGSTER_HOME ?= $(CURDIR)/.local/dagster_home
export GOTOOLCHAIN := local
export GOPROXY := off
N ?= 20
# `make test` also installs the test-only Debian packages (postgresql, chromium, debootstrap).
export DEPLOY_ASSETS_TEST_DEPS ?= 0
test test-reliability: DEPLOY_ASSETS_TEST_DEPS = 1
# the monorepo checkout that the old-vocabulary targets work on
SOURCE ?= .

.PHONY: setup demo dev test test-unit test-engine test-reliability lint fmt bench stack-up stack-down clean \
        parse-ms-routes get-ms-names get-cli-names build-pipeline-ms build-pipeline-lambdas \
        build-pipeline push-ms-dockers push-cli-dockers

setup:
	@misc/scripts/setup.sh

# The venv alone, for the targets that need nothing else (unit tier, lint): once it is installed
# and pyproject.toml unchanged, they run without setup.sh's checks for Docker and git.
$(VENV)/.deploy-assets-installed: pyproject.toml
	@misc/scripts/setup.sh

demo: setup
	$(CLI) demo

stack-up: setup
	$(CLI) stack up

stack-down:
	@if [ -x $(CLI) ]; then $(CLI) stack down; fi

dev: setup stack-up
	@# the example monorepo when the source is the local one, and the instance the CLI uses
	@set -a; . misc/envs/local.env; set +a; $(BIN)/python -c "from deploy_assets.cli.demo import prepare_dev; prepare_dev()"
	set -a; . misc/envs/local.env; set +a; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Tests run in 3 workers (each test file stays on one worker); they share one Go compiler cache
# and the Docker engine, which is started once up front so workers never race to start it.
PYTEST := $(BIN)/python -m pytest -q -n 3 --dist loadfile
export DEPLOY_ASSETS_TEST_GOCACHE ?= $(CURDIR)/.local/test-gocache

test: setup test-engine
	$(PYTEST)

# The pure tier (well under a minute): decisions, rules, config and the Dagster contract, with no
# Docker, Go, git or servers. deploy_assets_tests/unit/conftest.py refuses process starts and socket
# connections in its tests; here nothing is reachable either: no PATH (no go, docker or git), a
# Docker socket and endpoints that do not exist. `make test` runs these tests too.
UNIT_ENV := env -u GOROOT -u GOBIN -u GOFLAGS -u DOCKER_CONTEXT PATH=/nonexistent \
	DOCKER_HOST=unix:///nonexistent DEPLOY_ASSETS_S3_ENDPOINT=http://127.0.0.1:9 \
	DEPLOY_ASSETS_REGISTRY=127.0.0.1:9 DEPLOY_ASSETS_GITHUB_API=http://127.0.0.1:9
test-unit: $(VENV)/.deploy-assets-installed
	$(UNIT_ENV) $(BIN)/python -m pytest -q deploy_assets_tests/unit

# ruff (pinned in pyproject.toml, configured there): `make lint` checks, `make fmt` rewrites.
lint: $(VENV)/.deploy-assets-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(VENV)/.deploy-assets-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-engine:
	@$(BIN)/python -c "from pathlib import Path; from deploy_assets.local.stack import ensure_docker_engine; ensure_docker_engine(Path('.local/stack'))"

test-reliability: setup test-engine
	$(PYTEST) -m reliability

bench: setup
	$(BIN)/python -m misc.bench.run --services $(N) $(BENCH_ARGS)

clean: stack-down
	rm -rf .local

# --- the old Makefile's vocabulary, on top of the same code -------------------------------------
parse-ms-routes: setup
	$(CLI) legacy parse-ms-routes --source "$(SOURCE)"
get-ms-names: setup
	@$(CLI) legacy get-ms-names --source "$(SOURCE)"
get-cli-names: setup
	@$(CLI) legacy get-cli-names --source "$(SOURCE)"
build-pipeline-ms: setup
	$(CLI) legacy build-pipeline-ms --source "$(SOURCE)"
build-pipeline-lambdas: setup
	$(CLI) legacy build-pipeline-lambdas --source "$(SOURCE)"
build-pipeline: setup
	$(CLI) legacy build-pipeline --source "$(SOURCE)"
push-ms-dockers: setup
	$(CLI) legacy push-ms-dockers --source "$(SOURCE)" --registry "$(ECR_REGISTRY)"
push-cli-dockers: setup
	$(CLI) legacy push-cli-dockers --source "$(SOURCE)" --registry "$(ECR_REGISTRY)"
