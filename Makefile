# Each target bootstraps .venv from pyproject.toml on a machine with only python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
# `make bench` needs only the runtime dependencies: on a fresh clone they install in less than
# half the time of the dev extras (the test tools: schemathesis, selenium, hypothesis, …),
# which `make test`, `make lint` and `make run` add on top.
RUNTIME := $(VENV)/.installed-runtime
STAMP   := $(VENV)/.installed

.PHONY: run test bench lint clean

$(RUNTIME): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	@touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(PIP) -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tradewire up

test: lint
	$(PY) -m pytest

bench: $(RUNTIME)
	$(PY) -m bench

# The layers (pyproject.toml's import-linter contracts) and ruff: `make test` runs these first.
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
