# Stonks Overwatch — developer entry points.
#
#   make run    set up .venv, migrate (SQLite by default), sync plugins, create admin/admin,
#               serve http://127.0.0.1:8000/
#   make test   ruff, mypy and pytest (SQLite by default; set DATABASE_URL for PostgreSQL)
#
# Settings come from the environment (and .env if present); see .env.example.

SHELL := /bin/bash

VENV     := .venv
VENV_BIN := $(VENV)/bin
PY       := $(VENV_BIN)/python
MANAGE   := $(PY) manage.py
STAMP    := $(VENV)/.installed

# Python used to create the venv: python3.11 if present, else python3 (checked to be >= 3.11).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)

# Two workers: the machines have two cores; the suite runs in about half the time.
PYTEST_ARGS ?= -n 2

ADMIN_USERNAME := admin
ADMIN_PASSWORD := admin
ADMIN_EMAIL    := admin@example.com
RUN_ADDR       := 127.0.0.1:8000

.DEFAULT_GOAL := help
.PHONY: help venv run test lint fmt bench mutate clean compose-check messages

help:
	@echo "make run            set up, migrate, sync plugins, create admin/admin, serve http://$(RUN_ADDR)/"
	@echo "make test           ruff check, ruff format --check, mypy stonks_plugins, pytest (PYTEST_ARGS=...)"
	@echo "make lint           ruff check + ruff format --check"
	@echo "make fmt            ruff format + ruff check --fix"
	@echo "make bench          run every benchmarks/*.py"
	@echo "make mutate         mutation testing of the core modules; prints the score (docs/mutation.md)"
	@echo "make compose-check  validate docker-compose.yml"
	@echo "make clean          remove .venv, db.sqlite3 and caches"
	@echo "make messages       update the nl/es translation catalogs from the sources and compile them"

# -- virtualenv -------------------------------------------------------------------------------
venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: no python3.11 or python3 on PATH; install Python 3.11+ (or pass PYTHON=/path/to/python3.11)" >&2; \
		exit 1; \
	fi
	@"$(PYTHON)" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
		echo "error: $(PYTHON) is Python $$("$(PYTHON)" -c 'import platform; print(platform.python_version())'); Stonks Overwatch needs Python 3.11 or newer (pass PYTHON=/path/to/python3.11)" >&2; \
		exit 1; \
	}
	"$(PYTHON)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# -- run the embedded default (SQLite, eager Celery) ------------------------------------------
# runserver --insecure: serve static files (admin CSS/JS) even when DEBUG is off (the default);
# the server only listens on the loopback interface.
run: venv
	$(MANAGE) migrate --noinput
	@rc=0; $(MANAGE) plugins sync || rc=$$?; \
	if [ $$rc -eq 1 ]; then \
		echo "warning: 'plugins sync' reported failing plugins; see 'python manage.py plugins list'" >&2; \
	elif [ $$rc -ne 0 ]; then \
		exit $$rc; \
	fi
	@out=$$(DJANGO_SUPERUSER_USERNAME='$(ADMIN_USERNAME)' DJANGO_SUPERUSER_PASSWORD='$(ADMIN_PASSWORD)' \
		DJANGO_SUPERUSER_EMAIL='$(ADMIN_EMAIL)' $(MANAGE) createsuperuser --noinput 2>&1); rc=$$?; \
	if [ $$rc -eq 0 ]; then \
		echo "Created superuser '$(ADMIN_USERNAME)'."; \
	elif grep -qiE 'already (exists|taken)' <<<"$$out"; then \
		echo "Superuser '$(ADMIN_USERNAME)' already exists."; \
	else \
		echo "$$out" >&2; exit $$rc; \
	fi
	@echo
	@echo "==> Log in at http://$(RUN_ADDR)/ as $(ADMIN_USERNAME)/$(ADMIN_PASSWORD) (change the password at http://$(RUN_ADDR)/admin/password_change/)."
	@echo
	$(MANAGE) runserver --insecure $(RUN_ADDR)

# -- quality gates ----------------------------------------------------------------------------
# Every step runs even if an earlier one failed, so one run shows all problems; the target
# fails if any step failed. pytest's exit code 5 (no tests collected) counts as a failure.
test: venv
	@failed=""; \
	echo "==> ruff check ."; $(VENV_BIN)/ruff check . || failed="$$failed ruff-check"; \
	echo "==> ruff format --check ."; $(VENV_BIN)/ruff format --check . || failed="$$failed ruff-format"; \
	echo "==> mypy stonks_plugins"; $(VENV_BIN)/mypy stonks_plugins || failed="$$failed mypy"; \
	echo "==> pytest $(PYTEST_ARGS)"; rc=0; $(VENV_BIN)/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	if [ $$rc -ne 0 ]; then failed="$$failed pytest(exit=$$rc)"; fi; \
	if [ -n "$$failed" ]; then echo "==> FAILED:$$failed" >&2; exit 1; fi; \
	echo "==> all checks passed"

lint: venv
	@failed=""; \
	$(VENV_BIN)/ruff check . || failed="$$failed ruff-check"; \
	$(VENV_BIN)/ruff format --check . || failed="$$failed ruff-format"; \
	if [ -n "$$failed" ]; then echo "==> FAILED:$$failed" >&2; exit 1; fi

fmt: venv
	$(VENV_BIN)/ruff format .
	$(VENV_BIN)/ruff check --fix .

# Runs each benchmarks/*.py script (helpers named _*.py are skipped); fails if any fails.
bench: venv
	@shopt -s nullglob; files=(benchmarks/[!_]*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "no benchmarks found in benchmarks/"; exit 0; fi; \
	failed=""; \
	for f in "$${files[@]}"; do \
		echo "==> $$f"; \
		PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" $(PY) "$$f" || failed="$$failed $$f"; \
	done; \
	if [ -n "$$failed" ]; then echo "==> FAILED:$$failed" >&2; exit 1; fi

# Mutation testing (docs/mutation.md): mutmut plants one small bug at a time in the modules
# [tool.mutmut] in pyproject.toml names, in a copy (mutants/), and runs the tests that reach
# it; then prints the score and every mutant no test caught. CPU heavy (MUTATE_JOBS workers).
# Starts afresh each time: mutmut reuses copied files it finds in mutants/.
MUTATE_JOBS ?= 2
MUTATE_FAIL_UNDER ?= 85
mutate: venv
	rm -rf mutants && mkdir mutants
	@echo "mutmut run (log: mutants/run.log); this takes a while"
	$(VENV_BIN)/mutmut run --max-children $(MUTATE_JOBS) >mutants/run.log 2>&1 \
		|| { tail -c 3000 mutants/run.log >&2; exit 1; }
	$(PY) tools/mutation_score.py --fail-under $(MUTATE_FAIL_UNDER)

compose-check:
	docker-compose -f docker-compose.yml config -q

# The translation catalogs (README "Languages"): stonks_plugins/locale/ for the console, API
# and CLI, locale/ for the host's pages. Needs GNU gettext; translate the new empty entries in
# the .po files, then run it again to compile (the .mo files are committed).
MESSAGE_ARGS := -l nl -l es
messages: venv
	$(MANAGE) makemessages $(MESSAGE_ARGS) --add-location=file --no-obsolete \
		--ignore=mutants --ignore=plugins --ignore=tests --ignore=benchmarks --ignore=docs --ignore=static
	$(MANAGE) compilemessages $(MESSAGE_ARGS) --ignore=.venv --ignore=mutants --ignore=plugins --ignore=tests

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-journal db.sqlite3-wal db.sqlite3-shm mutants \
		.pytest_cache .mypy_cache .ruff_cache htmlcov .coverage build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
