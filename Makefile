# Both targets bootstrap .venv on their own: a fresh machine needs only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tongban-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tongban demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/tongban check
	$(BIN)/tongban mapping test --all
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
