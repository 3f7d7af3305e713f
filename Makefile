# convcheck — two-command quick start: `make matrix`, `make test`. Both set up .venv first if needed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-running setup is a no-op unless the dependency declarations changed.
STAMP := $(VENV)/.setup-done
MATRIX_ARGS ?=
# This machine's pip configuration names local indexes that do not all exist; drop that noise only.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: setup matrix test test-fast browser fuzz clean help

help:
	@echo "make matrix     set up if needed, run the default matrix (whole zoo x every route available here)"
	@echo "make test       set up if needed, run the test suite"
	@echo "make test-fast  set up if needed, run the pure-Python tier only (no framework, fault or slow test; under a minute)"
	@echo "make setup      create .venv: torch 2.13.0 CPU first (no CUDA download), then .[all,test]"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# The CPU wheel first: once torch==2.13.0 is installed, the `torch` range in the extras is satisfied
	@# and pip never pulls the multi-GB CUDA build from the registry.
	set -o pipefail; $(BIN)/pip install --quiet --disable-pip-version-check "torch==2.13.0" 2>&1 | $(QUIET_PIP)
	set -o pipefail; $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,test]" 2>&1 | $(QUIET_PIP)
	@# pip's exit code is not proof that every framework imports (typing-extensions downgrades break tvm):
	$(BIN)/convcheck doctor
	@touch $(STAMP)

# Exit 1 means the matrix ran and some cells failed: those are findings about the converters, shown in
# the table and results.json, not a broken make. Exit 2 (a usage error) still stops make.
matrix: setup
	@$(BIN)/convcheck matrix $(MATRIX_ARGS); rc=$$?; \
	if [ $$rc -eq 1 ]; then echo "make matrix: some cells failed (findings above; see results.json)"; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

# The HTML report is tested in a real headless browser: Debian's chromium, installed here when missing
# (needs root and apt; elsewhere install it yourself: the test skips without it, and fails under CI=true).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the HTML report test (apt-get)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and cannot apt-get it here: the browser test will skip"; fi; }

test: setup browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The logic tier: registry, routes, parity maths, reports, lock-in, audit, diff, store, CLI usage errors.
# CONVCHECK_TEST_TIER=fast makes tests/conftest.py fail any test of it that imports an ML framework.
FAST_TIER := not framework and not fault and not slow
test-fast: setup
	CONVCHECK_TEST_TIER=fast $(BIN)/python -m pytest -m "$(FAST_TIER)" $(PYTEST_ARGS)

# A longer fuzz run than CI's (random, not derandomised): FUZZ_EXAMPLES mutated files per format.
FUZZ_EXAMPLES ?= 200
fuzz: setup
	CONVCHECK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/hardening/test_fuzz.py -q

clean:
	rm -rf $(VENV) runs build dist *.egg-info .pytest_cache
