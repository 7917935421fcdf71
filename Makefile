# Balance 360 — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
# mypy's Django plugin loads the settings, which insist on these; nothing connects to them.
TYPECHECK_ENV := DATABASE_URL=postgres://typecheck/none REDIS_URL=redis://typecheck:6379/0

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## run: the whole service on this machine (embedded PostgreSQL/Redis unless URLs are set)
run: $(STAMP)
	.ci/system-packages run
	$(BIN)/python -m config.launcher

## test: lint, format check, type check, then the whole suite on real PostgreSQL, Redis and Celery
test: $(STAMP)
	.ci/system-packages test
	$(MAKE) --no-print-directory lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(TYPECHECK_ENV) $(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## bench: the benchmarks in bench/, printing their figures
bench: $(STAMP)
	for script in bench/bench_*.py; do $(BIN)/python "$$script" || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
