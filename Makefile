SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-secured install infra infra-down lint bench clean

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

## The system against a broker as production runs it (SASL_SSL, a principal per service, ACLs),
## started on its own ports (KAFKA_SECURED_PORT, KAFKA_SECURED_CONTROLLER_PORT). Not in `make test`.
test-secured: install
	KAFKA_SECURITY=sasl_ssl $(PY) -m pytest tests/secured $(PYTEST_ARGS)

infra: install
	bash infra/up.sh

infra-down:
	bash infra/down.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

clean: infra-down
	rm -rf .run
