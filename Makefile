# One command to set up and run, one to set up and test (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS ?= sgd,adam

.PHONY: run test test-fast lint format bench clean docs-tables

$(BIN)/gdbench: pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

run: $(BIN)/gdbench
	$(BIN)/gdbench run --plugins $(PLUGINS)

test: $(BIN)/gdbench
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

test-fast: $(BIN)/gdbench
	$(BIN)/python -m pytest -m "not slow"

lint: $(BIN)/gdbench
	$(BIN)/ruff check .

format: $(BIN)/gdbench
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/gdbench
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,stddev,rounds

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache .mypy_cache

docs-tables: $(BIN)/gdbench
	$(BIN)/python -m gdbench.results docs/usage.md
