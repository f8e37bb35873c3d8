SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-faults install infra infra-down lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Start Kafka, PostgreSQL and the SMTP sink (unless configured), the services, and the seed's demo.
run: install
	$(PY) infra/run.py

## The whole suite, integration included, against real Kafka, PostgreSQL and SMTP.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

## The fault suite: a three-node Kafka cluster (started on its own ports), kills under load.
test-faults: install
	$(PY) -m pytest --faults tests/faults $(PYTEST_ARGS)

infra: install
	bash infra/up.sh

infra-down:
	bash infra/down.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

clean: infra-down
	rm -rf .run
