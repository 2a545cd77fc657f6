# Two commands from nothing but python3 and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run reset test check lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Also builds and serves examples/react at APP_URL when Node.js 20.19+ and npm are present.
run: $(STAMP)
	$(BIN)/python main.py dev

# Wipes the local SQLite database and the emulator's saved state together (stop `make run` first).
reset: $(STAMP)
	$(BIN)/python main.py reset

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

test: check
	$(BIN)/pytest

# PostgreSQL too when TEST_DATABASE_URL is set; bench/entitlement.py needs wrk (apt-get install wrk).
bench: $(STAMP)
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || true
	$(BIN)/python bench/emulator_roundtrip.py
	$(BIN)/python bench/entitlement.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/live.py

clean:
	rm -rf $(VENV) billing.db billing.db-wal billing.db-shm billing.db-locks billing.db-claims billing.emulator.json .pytest_cache .mypy_cache .ruff_cache
	rm -rf examples/react/node_modules examples/react/dist examples/react/src/gql
