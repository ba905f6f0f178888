# Both targets bootstrap .venv on their own: a fresh machine needs only python3.
# `make test` also needs PostgreSQL on 127.0.0.1:5432 (trust, database `test`): see README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tongban-installed

.PHONY: demo test test-fast lint bench clean browser promtool

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tongban demo

# Style, types and the house's layer rule (import-linter contracts in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The console's browser tests drive Debian's Chromium (never a browser Playwright downloads);
# the CJK fonts make their screenshots legible.
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
browser:
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver -a -f $(CJK_FONT) || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver fonts-noto-cjk)

# The alert rules' check needs promtool: Debian's prometheus package, installed when missing.
promtool:
	command -v promtool >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)

# The whole suite: what CI runs.
test: lint browser promtool
	$(BIN)/tongban check
	$(BIN)/tongban mapping test --all
	$(BIN)/pytest

# The inner loop: lint, unit and integration tests (no subprocess acceptance tests).
test-fast: lint
	$(BIN)/pytest -q tests/unit tests/integration tests/foreign

bench: $(STAMP)
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .import_linter_cache
