# Every target bootstraps uv (into .tools/ when it is not on PATH) and syncs the workspace,
# so a fresh machine with only Python 3.11+ and make needs nothing else.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen
UNIT_TESTS = $(wildcard libs/*/tests/unit services/*/tests/unit)

.PHONY: up demo test test-unit lint fmt bench chaos token sync bootstrap clean

bootstrap: $(UV)

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

sync: bootstrap
	$(UV) sync --frozen --all-packages

up: sync
	$(RUN) coursemesh up $(ARGS)

token: sync
	@$(RUN) coursemesh token $(ARGS)

# Sample data on the stack `make up` runs (in another shell): an organization, a paid course
# bought through the sandbox payment page, a buyer with progress; prints tokens and curls.
demo: sync
	$(RUN) coursemesh demo $(ARGS)

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports

fmt: sync
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

test: lint
	$(RUN) pytest $(PYTEST_ARGS)

# The use cases and the domain against in-memory fakes of their ports: no database, no bus,
# no network; seconds, for the edit-test loop. `make test` runs them too.
test-unit: sync
	$(RUN) pytest $(UNIT_TESTS) $(PYTEST_ARGS)

bench: sync
	$(RUN) python -m bench $(ARGS)

# The kill -9 drill at full size (docs/chaos.md): 3 runs single + 3 with two replicas, 60 s each.
chaos: sync
	$(RUN) python -m bench chaos --runs 3 --replicas 1,2 --duration 60 $(ARGS)

clean:
	rm -rf .tools .venv
