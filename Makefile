# Each target bootstraps .venv from pyproject.toml on a machine with only python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tradewire up

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

# The layers (pyproject.toml's import-linter contracts) and ruff: `make test` runs these first.
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
