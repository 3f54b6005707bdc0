# One command per habit. Each target sets up .venv first (idempotent: pip runs again only
# when pyproject.toml, this Makefile or a lock file changed since the last successful setup).
#
# The setup installs the exact versions in requirements/lock.txt (hash-checked, no resolver),
# so a fresh machine gets what CI tested; pyproject.toml keeps compatible ranges for users.
# `make lock` refreshes the lock from pyproject.toml; `make test-latest` runs the fast tests
# on the newest versions pyproject.toml allows, in a temporary venv, without the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.agentcore-installed
LOCK := requirements/lock.txt
MODELS_LOCK := requirements/models.txt
PIP_VERSION := 26.3
# the lock is resolved for the machines the project is tested on (Linux x86_64, CPython 3.11)
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
ARGS ?=

.PHONY: setup chat test test-fast test-latest lint format bench llamacpp serve lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile $(LOCK) $(MODELS_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(MODELS_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m agentcore.core.native  # compiles the native kernels once (~40 s); says if they run
	@touch $(STAMP)

chat: setup
	@$(BIN)/agentcore chat $(ARGS)

# CI runs this (.ci/run): the gates a reviewer applies (ruff, format, mypy), then every test.
test: lint
	$(BIN)/python -m pytest $(ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

# The newest versions pyproject.toml allows, without the lock, in a throw-away venv: a
# deprecation in a new release fails here (warnings are errors) before it reaches users.
test-latest:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && set -e && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip && \
	"$$tmp/venv/bin/python" -m pip install --quiet "torch==2.13.0" && \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]" && \
	"$$tmp/venv/bin/python" -m pip install --quiet --require-hashes --no-deps -r $(MODELS_LOCK) && \
	"$$tmp/venv/bin/python" -m pip list --format=freeze \
		| grep -iE '^(transformers|chromadb|textual|pydantic|httpx|llguidance)==' && \
	"$$tmp/venv/bin/python" -m pytest -m "not slow" -p no:cacheprovider $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `make bench ARGS="streaming --quick"` (or NAME=streaming ARGS=--quick); alone, the list
bench: setup
	$(BIN)/agentcore bench $(if $(NAME),$(NAME) $(ARGS),$(or $(ARGS),list))

# llama.cpp next to the core in `agentcore bench speed` (benchmarks only; not in the setup):
# the pinned source, built for this CPU
llamacpp: setup
	CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
		$(BIN)/python -m pip install --quiet --no-deps --no-binary llama-cpp-python \
		--require-hashes -r requirements/llamacpp.txt

serve: setup
	$(BIN)/agentcore serve $(ARGS)

# Refresh the locks from pyproject.toml and requirements/models.in (needs the package index).
lock: setup
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes $(LOCK_TARGET) \
		$(FIND_LINKS) --override requirements/torch-cpu.txt --quiet -o $(LOCK)
	$(BIN)/uv pip compile requirements/models.in --no-deps --generate-hashes $(LOCK_TARGET) \
		--quiet -o $(MODELS_LOCK)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
