# Balance 360 — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
# axe-core for the browser tests, from package.json / package-lock.json (npm ci).
NODE_STAMP := node_modules/.installed-$(shell cat package.json package-lock.json | cksum | cut -d' ' -f1)
# mypy's Django plugin loads the settings, which insist on these; nothing connects to them.
TYPECHECK_ENV := DATABASE_URL=postgres://typecheck/none REDIS_URL=redis://typecheck:6379/0
# The test processes pytest-xdist runs side by side, each with servers of its own: one per core.
TEST_PROCESSES ?= auto

.PHONY: run test lint typecheck pytest bench mutate clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(NODE_STAMP)

## run: the whole service on this machine (embedded PostgreSQL/Redis unless URLs are set)
run: $(STAMP)
	.ci/system-packages run
	$(BIN)/python -m config.launcher

## test: lint, format check, type check, then the whole suite on real PostgreSQL, Redis and Celery
test: $(STAMP)
	.ci/system-packages test
	$(MAKE) --no-print-directory $(NODE_STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(TYPECHECK_ENV) $(BIN)/mypy

pytest: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest --durations=20 --numprocesses=$(TEST_PROCESSES) --dist=worksteal

## bench: the benchmarks in bench/, printing their figures
bench: $(STAMP)
	for script in bench/bench_*.py; do $(BIN)/python "$$script" || exit 1; done

## mutate: mutation testing of reports/scoring.py and feedback/answers.py against their fast tests (no database)
# mutmut keeps a verdict for every function it saw unchanged, even after the tests changed, so
# each run starts from a fresh copy; the score is then the current tests' score.
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 1
	@$(BIN)/mutmut results --all true | awk -F': ' ' \
		{ sub(/^ +/, "", $$1); split($$1, name, "."); file = name[1] "/" name[2] ".py" } \
		!(file in total) { files[++count] = file } \
		{ total[file]++ } \
		$$2 == "killed" { killed[file]++; next } \
		{ left[file] = left[file] sprintf("    %s: %s\n", $$1, $$2) } \
		END { for (i = 1; i <= count; i++) { file = files[i]; all += total[file]; dead += killed[file]; \
			printf "%s: %d / %d killed\n%s", file, killed[file], total[file], left[file] } \
			printf "mutation score: %d / %d killed\n", dead, all }'

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache mutants
