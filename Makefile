# Pitwall: `make demo` runs it, `make test` tests it. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?= -n 2

.PHONY: install demo test test-sqlite test-postgres lint bench bench-long soak soak-ci clean migration eval

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,browser]'
	touch $@

demo: install
	$(BIN)/pitwall demo

test: install test-sqlite test-postgres

test-sqlite: install
	PITWALL_TEST_DATABASE_URL=sqlite $(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: install
	PITWALL_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check app integrations tests bench scripts migrations/env.py
	$(BIN)/ruff format --check app integrations tests bench scripts migrations/env.py
	$(BIN)/mypy app integrations
	$(BIN)/mypy --explicit-package-bases bench scripts
	$(BIN)/python scripts/check_imports.py

# Every benchmark, every round, sizes trimmed: 13-22 minutes on a shared 2-core VM; the table goes to
# bench/results/<date>-<commit>.json and .md (bench/results.md lists every kept run).
bench: install
	$(BIN)/pip install -q -e '.[test,browser,bench]'
	$(BIN)/python -m bench

# The same with the long sizes (a 600 s soak, 100,000 sends before it): ~30 minutes.
bench-long: install
	$(BIN)/pip install -q -e '.[test,browser,bench]'
	$(BIN)/python -m bench --long

# The intent model on the corpus's held-out test split, beside the old pattern table.
eval: install
	$(BIN)/pitwall intents eval

soak: install
	$(BIN)/python -m pytest -m soak tests/soak

# CI's share of the soaks (.ci/run): inbound while outbound sends, ~1-2 minutes a database.
soak-ci: install
	PITWALL_TEST_DATABASE_URL=sqlite $(BIN)/python -m pytest -p no:cacheprovider -m ci_soak tests/soak
	PITWALL_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -p no:cacheprovider -m ci_soak tests/soak

migration: install
	scripts/new_migration.sh "$(MSG)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache pitwall.db*
