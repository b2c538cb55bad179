# Two commands on a fresh machine: `make run` serves the app, `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export DJANGO_SETTINGS_MODULE ?= healthguard.settings

.PHONY: run test test-litert lint typecheck check install venv migrate collectstatic messages bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## make run: development server on http://127.0.0.1:8000 (SQLite unless DATABASE_URL is set)
run: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py runserver 127.0.0.1:$${PORT:-8000}

## make test: the whole test suite (the same command CI runs)
test: install
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} $(PY) -m pytest $(PYTEST_ARGS)

## make test-litert: tests/ml again with ai-edge-litert (tflite-runtime's successor) in
## place of tflite-runtime, in a venv of its own
LITERT_VENV ?= .venv-litert
$(LITERT_VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(LITERT_VENV)
	grep -v '^tflite-runtime' requirements.txt > $(LITERT_VENV)/requirements.txt
	# "-r requirements.txt" inside it resolves beside it: to the filtered copy.
	cp requirements-dev.txt $(LITERT_VENV)/requirements-dev.txt
	$(LITERT_VENV)/bin/python -m pip install --quiet -r $(LITERT_VENV)/requirements-dev.txt \
		ai-edge-litert==2.3.0
	$(LITERT_VENV)/bin/python -m pip uninstall --quiet --yes tflite-runtime || true
	touch $@

test-litert: $(LITERT_VENV)/.installed
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} HEALTHGUARD_EXPECT_RUNTIME=ai_edge_litert \
		$(LITERT_VENV)/bin/python -m pytest tests/ml $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

typecheck: install
	SECRET_KEY=typecheck $(BIN)/mypy .

check: install
	SECRET_KEY=check $(PY) manage.py makemigrations --check --dry-run

## make bench: gunicorn + PostgreSQL as production runs them, three workloads, prints tables
## (BENCH_DATABASE_URL names a database the bench recreates; BENCH_ARGS e.g. --reps 1)
bench: install
	BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/bench} \
		$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache
