# Front door of the project. `make demo` runs the pipeline on the local stack; `make test` passes the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install up down status demo test test-only lint bench lock clean

help:
	@echo "make demo    set up, start the local stack, run the whole pipeline and show the analytics"
	@echo "make test    set up, start the local stack, lint, run the whole test suite"
	@echo "make bench   set up, start the local stack, run the benchmarks (table + bench-results/)"
	@echo "make up | down | status | lint"
	@echo "make lock    freeze the venv's packages into constraints.txt (after installing a changed requirements.txt)"
	@echo "make clean   stop the stack and delete .venv and .stack: the lake, Kafka's data, Airflow's database, secrets"

# pyspark-client (required by the Spark provider; its newest release is older than our pyspark) ships pyspark's
# Python files too and overwrites them: reinstall the pinned pyspark over it.
PYSPARK_PIN := $(shell grep -E '^pyspark==' requirements.txt)

IS_PY311 := -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'

# A venv of another Python, or a broken one (no pip: `venv` stopped halfway, or ran without ensurepip), is made again.
$(VENV)/.installed: requirements.txt constraints.txt Makefile
	@$(PYTHON) $(IS_PY311) 2>/dev/null || { echo "Python 3.11 is needed and '$(PYTHON)' is not one (or is not" \
		"found): run make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)" >&2; exit 1; }
	@echo "==> creating $(VENV) and installing pinned Python dependencies (first time: ~3 min)"
	@{ $(PY) $(IS_PY311) && $(PY) -m pip --version; } >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$(PYSPARK_PIN)"
	@touch $@

install: $(VENV)/.installed
	@$(PY) -m devstack install

up: install
	@$(PY) -m devstack up

# Without a venv that can import the stack manager (none yet, or one half installed) nothing can stop the stack:
# fail, naming why and what to do, while a recorded process still runs.
down:
	@if why=$$($(PY) -c 'import devstack.__main__' 2>&1); then $(PY) -m devstack down; exit; fi; \
	running=$$(for f in .stack/pids/*.pid; do [ -e "$$f" ] && kill -0 "$$(cut -d' ' -f1 "$$f")" 2>/dev/null \
		&& echo "$$(basename "$$f" .pid) (pid $$(cut -d' ' -f1 "$$f"))"; done); \
	if [ -n "$$running" ]; then \
		echo "make down: $(PY) cannot run the stack manager ($$(echo "$$why" | tail -n 1)), so nothing was" \
			"stopped; still running:" $$running >&2; \
		echo "complete the venv with 'make $(VENV)/.installed', then run 'make down' again" >&2; exit 1; fi

status:
	@$(PY) -m devstack status

demo: up
	@$(PY) -m demo

lint: $(VENV)/.installed
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

test: up lint test-only

test-only:
	@$(VENV)/bin/pytest

bench: up
	@$(PY) -m benchmarks

# Freezes what the venv holds. After a version bump in requirements.txt, install it without the old constraints
# first (.venv/bin/pip install -r requirements.txt), then lock; the next make up installs from the new file.
lock:
	@$(PY) -m pip --version >/dev/null 2>&1 || { echo "make lock: no venv to freeze: run make install" >&2; exit 1; }
	@{ echo "# Full resolved dependency set for requirements.txt on Python 3.11 (pip freeze)."; \
	   echo "# Regenerate with: make lock"; $(VENV)/bin/pip freeze --exclude-editable; } > constraints.txt

clean: down
	rm -rf .stack $(VENV)
