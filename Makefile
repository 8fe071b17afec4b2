# Two commands do everything: `make demo` and `make test`.
# `make demo` installs only what the blotter needs; `make test` adds the test tools.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench install install-demo install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

$(TEST_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install-demo: $(DEMO_STAMP)

install-test: $(TEST_STAMP)

install: install-test

demo: $(DEMO_STAMP)
	$(BIN)/blotter demo

# The gates: lint, format, types, layering. `make test` runs them before the suite.
lint: $(TEST_STAMP)
	$(BIN)/ruff check blotter tests bench
	$(BIN)/ruff format --check blotter tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info
