# Thin wrappers over the `hearth` CLI and npm. Every entry point runs `setup` first;
# setup is idempotent and takes about a second when nothing changed (stamp files).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HEARTH := $(VENV)/bin/hearth
PY_STAMP := $(VENV)/.hearth-installed
NPM_STAMP := sdk/node_modules/.hearth-installed
SDK_STAMP := sdk/dist/.hearth-built
SDK_SOURCES := $(shell find sdk/src -type f 2>/dev/null) sdk/tsconfig.json

.PHONY: packages setup system python node sdk runtime doctor lint test test-py test-sdk demo demo-models demo-app compile bench clean

setup: system python node sdk runtime

system:
	@bash scripts/setup_system.sh

python: $(PY_STAMP)
$(PY_STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "setup: pip install -e .[eval,serve,demo,dev] (pinned deps; torch 2.13.0 CPU)"
	@$(VENV)/bin/pip install -q --disable-pip-version-check -e ".[eval,serve,demo,dev]" 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import tvm, hearth" && touch $@

node: $(NPM_STAMP)
$(NPM_STAMP): sdk/package.json sdk/package-lock.json
	@echo "setup: npm ci (sdk)"
	@cd sdk && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

sdk: $(SDK_STAMP)
$(SDK_STAMP): $(NPM_STAMP) $(SDK_SOURCES)
	@echo "setup: building @hearth/sdk"
	@cd sdk && npm run --silent build
	@touch $@

runtime: python
	@$(HEARTH) runtime build >/dev/null

doctor: setup
	@$(HEARTH) doctor

# Lint: ruff (Python lint + format check; config in pyproject.toml), the SDK's strict TypeScript and its
# dependency rules (a cycle or an import against the layer order fails; docs/architecture.md).
PY_LINT := compile tests bench scripts demo_rag/tools
lint: python node
	$(VENV)/bin/ruff check $(PY_LINT)
	$(VENV)/bin/ruff format --check $(PY_LINT)
	cd sdk && npx tsc --noEmit -p . && npx tsc --noEmit -p tsconfig.test.json
	cd sdk && npm run --silent check:deps
	cd sdk && npm run --silent lint

# The SDK and browser node tests run the f32 smoke case end to end (HEARTH_CASE_DIR);
# pytest runs every case through both harnesses and natively.
SMOKE_CASE = $$($(CURDIR)/$(HEARTH) smoke --case mlp-f32 2>/dev/null | tail -n 1)

# Compiled packages the SDK, browser and WebGPU tests load (cached; see scripts/build_packages.py).
packages: setup
	@$(PY) scripts/build_packages.py --tests

test: setup packages demo-app lint
	$(PY) -m pytest
	cd sdk && HEARTH_CASE_DIR=$(SMOKE_CASE) npm test
	cd sdk && node --import tsx --test ../demo_rag/test/*.test.ts
	HEARTH_CASE_DIR=$(SMOKE_CASE) node --test --test-concurrency=1 tests/browser/

test-py: setup
	$(PY) -m pytest

test-sdk: setup packages
	cd sdk && HEARTH_CASE_DIR=$(SMOKE_CASE) npm test
	cd sdk && node --import tsx --test ../demo_rag/test/*.test.ts
	HEARTH_CASE_DIR=$(SMOKE_CASE) node --test --test-concurrency=1 tests/browser/

# The main job: compile the default packages (cached), build the web app, serve it.
PORT ?= 8000
DEMO_STAMP := demo_rag/node_modules/.hearth-installed
DEMO_SOURCES := $(shell find demo_rag/src demo_rag/public demo_rag/tools -type f 2>/dev/null) demo_rag/index.html demo_rag/vite.config.ts $(wildcard demo_rag/tsconfig*.json)

$(DEMO_STAMP): demo_rag/package.json demo_rag/package-lock.json
	@cd demo_rag && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo_rag/dist/index.html: $(DEMO_STAMP) $(SDK_STAMP) $(DEMO_SOURCES)
	@echo "setup: building the demo app"
	@cd demo_rag && npm run --silent build

demo-app: setup demo_rag/dist/index.html

demo-models: setup
	@$(PY) scripts/build_packages.py --demo

# NATIVE_API=1: also the optional native fallback endpoints (/v1/*; docs/demo.md)
demo: demo-models demo-app
	$(HEARTH) serve --app demo_rag/dist --dist dist --port $(PORT)$(if $(filter-out 0,$(NATIVE_API)), --native-api)

# make compile MODEL=<hf folder, .gguf file or hub id> [QUANT=q4f16_1] [TARGET="webgpu llvm"] [MODEL_ID=name]
QUANT ?= q4f16_1
TARGET ?= webgpu
comma := ,
compile: setup
	@test -n "$(MODEL)" || { echo 'usage: make compile MODEL=<hf folder, .gguf file or hub id> [QUANT=q4f16_1] [TARGET="webgpu llvm"]' >&2; exit 2; }
	$(HEARTH) compile "$(MODEL)" --quant $(QUANT) $(foreach t,$(subst $(comma), ,$(TARGET)),--target $(t)) $(if $(MODEL_ID),--model-id $(MODEL_ID))

# make bench [BENCH=quick]: LLM, build and embeddings suites on this machine (docs/benchmarks.md);
# numbers on stdout, compact JSON in bench/results/, plots in docs/images/. The H200 run is
# bench/gpu/ (device tool). matplotlib is a bench-only dependency, installed here once.
BENCH ?= full
bench: setup packages
	@$(PY) -c "import matplotlib" 2>/dev/null || $(VENV)/bin/pip install -q --disable-pip-version-check matplotlib
	@$(PY) bench/run.py $(if $(filter quick,$(BENCH)),--quick,)

clean:
	rm -rf dist sdk/dist $(PY_STAMP) $(NPM_STAMP)
