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
	@echo "make up | down | status | lint | lock | clean"

# pyspark-client (required by the Spark provider; its newest release is older than our pyspark) ships pyspark's
# Python files too and overwrites them: reinstall the pinned pyspark over it.
PYSPARK_PIN := $(shell grep -E '^pyspark==' requirements.txt)

$(VENV)/.installed: requirements.txt constraints.txt Makefile
	@echo "==> creating $(VENV) and installing pinned Python dependencies (first time: ~3 min)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$(PYSPARK_PIN)"
	@touch $@

install: $(VENV)/.installed
	@$(PY) -m devstack install

up: install
	@$(PY) -m devstack up

down:
	@if [ -x $(PY) ]; then $(PY) -m devstack down; fi

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

lock: $(VENV)/.installed
	@{ echo "# Full resolved dependency set for requirements.txt on Python 3.11 (pip freeze)."; \
	   echo "# Regenerate with: make lock"; $(VENV)/bin/pip freeze --exclude-editable; } > constraints.txt

clean: down
	rm -rf .stack $(VENV)
