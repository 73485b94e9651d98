# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/simdb run quickstart

lint: $(STAMP)
	$(BIN)/ruff format --check simdb tests benchmarks
	$(BIN)/ruff check simdb tests benchmarks

test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --nbmake --doctest-modules simdb tests notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_staleness.py
	$(BIN)/python benchmarks/bench_replications.py
	$(BIN)/python benchmarks/bench_analytic.py

clean:
	rm -rf $(VENV) runs .pytest_cache
