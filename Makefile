# Two commands do everything: `make demo` and `make test`.
# `make demo` installs only what the blotter needs; `make test` adds the test tools.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench install install-demo install-test clean test-tools

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

# Test set-up (dead man's switch, tests/cli/test_tmux_hangup.py): a real tmux and GNU screen.
# Installed with apt-get when missing and we are root; otherwise those tests skip, saying why.
test-tools:
	@missing=""; for t in tmux screen; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1; }; } || \
	  echo "note:$$missing missing and cannot be installed here (needs root and apt-get): their tests will skip"

# The suite in parallel (pytest-xdist): most tests wait on loopback I/O, so more workers
# than cores; tests marked xdist_group run on one worker, one after the other.
PYTEST_WORKERS ?= 4
test: lint test-tools
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info
