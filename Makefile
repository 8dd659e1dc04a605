# Two commands for a fresh machine:
#   make demo   create .venv if missing, install datasov, run the demo
#   make test   create .venv if missing, install with test extras (and Debian's chromium for the browser
#               tests), run ruff, lint-imports, mypy and pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest workers (pytest-xdist); a test file stays on one worker (its module fixtures
# are built once), session fixtures (devnet, Hardhat) are built per worker on ports the kernel picks
PYTEST_WORKERS ?= auto

.PHONY: demo test lint typecheck pytest contracts contracts-check bench bench-peers clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/datasov demo

# Solidity toolchain (solc-js, OpenZeppelin, Hardhat for integration tests), pinned in contracts/package-lock.json
contracts/node_modules/.installed: contracts/package.json contracts/package-lock.json
	npm ci --prefix contracts --no-audit --no-fund --loglevel=error
	touch $@

contracts: contracts/node_modules/.installed
	npm --prefix contracts run --silent build

contracts-check: contracts/node_modules/.installed
	npm --prefix contracts run --silent check

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test contracts/node_modules/.installed
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=40

# Debian's Chromium for the browser tests (Playwright drives it; it cannot download browsers here)
CHROMIUM ?= /usr/bin/chromium
chromium: $(CHROMIUM)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "the browser tests need Chromium: run 'apt-get install -y chromium' as root" >&2; exit 1; fi; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: lint typecheck contracts-check chromium pytest

bench: $(VENV)/.installed
	$(BIN)/python -m bench.pipeline --quick

# Side by side with Tahoe-LAFS 1.20.0 (installed from PyPI into .venv-tahoe, pinned by
# bench/tahoe-constraints.txt): 256 MiB, 3-of-10, 10 storage nodes each, every node its own process on both
# sides; not part of `make test`
PEERS_ARGS ?= --size 256 -k 3 -n 10 --nodes 10 --rounds 2 --node-processes
bench-peers: $(VENV)/.installed
	$(BIN)/python -m bench.peers $(PEERS_ARGS)

clean:
	rm -rf $(VENV) .venv-tahoe build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
