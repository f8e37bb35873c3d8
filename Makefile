SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-slow test-secured test-faults test-browser test-contract install infra infra-down lint bench clean

# pip without -q: each package it downloads is listed with its size (and a progress bar on a terminal).
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "[install] Python 3.11 or later is needed: $(PYTHON) is $$($(PYTHON) -V 2>&1 || echo missing)." \
	       "Install python3.11 (and python3.11-venv), then: make PYTHON=python3.11 $(MAKECMDGOALS)"; exit 1; }
	@echo "[install] 1/2: a virtual environment in $(VENV) with $$($(PYTHON) -V)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --upgrade pip
	@echo "[install] 2/2: the project and its dependencies (about 60 MB of downloads the first time; pip lists each one)"
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]'
	@echo "[install] done; the next runs skip this step until pyproject.toml changes"
	@touch $@

install: $(VENV)/.installed

## Start Kafka, PostgreSQL and the SMTP sink (unless configured), the services, and the seed's demo.
run: install
	$(PY) infra/run.py

## The whole suite, integration included, against real Kafka, PostgreSQL and SMTP.
## (infra/up.sh first, so its progress shows here: the tests would start it silently.)
test: install
	@echo "[test] 1/2: Kafka, PostgreSQL and the SMTP sink (infra/up.sh)"
	bash infra/up.sh
	@echo "[test] 2/2: pytest $(PYTEST_ARGS) (the percentage at the end of each line is how far it is)"
	$(PY) -m pytest $(PYTEST_ARGS)

## The tests marked `slow` (pytest --slow -m slow): the worker, the materializer and `make run`
## killed or restarted mid-run, the broker stopped under load. Not in `make test`.
test-slow: install
	bash infra/up.sh
	$(PY) -m pytest --slow -m slow $(PYTEST_ARGS)

## The system against a broker as production runs it (SASL_SSL, a principal per service, ACLs),
## started on its own ports (KAFKA_SECURED_PORT, KAFKA_SECURED_CONTROLLER_PORT). Not in `make test`.
test-secured: install
	KAFKA_SECURITY=sasl_ssl $(PY) -m pytest tests/secured $(PYTEST_ARGS)

## The fault suite: a three-node Kafka cluster (started on its own ports), kills under load.
test-faults: install
	$(PY) -m pytest --faults tests/faults $(PYTEST_ARGS)

## Each service's /docs page in headless Chromium, and the console driven by Selenium (Debian: apt-get install
## chromium chromium-driver; screenshots in .run/screenshots/). Not in `make test`.
test-browser: install
	$(PY) -m pytest --browser tests/browser $(PYTEST_ARGS)

## The API contract: Schemathesis's examples, coverage, fuzzing and stateful links over every
## declared operation of the four running services (about 5 minutes on two cores).
test-contract: install
	bash infra/up.sh
	$(PY) -m pytest --contract tests/contract $(PYTEST_ARGS)

infra: install
	bash infra/up.sh

infra-down:
	bash infra/down.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

clean: infra-down
	@# a checkout in a private folder keeps its PostgreSQL in /var/tmp (infra/postgres.sh)
	if [ -L .run/postgres ]; then rm -rf "$$(dirname "$$(readlink -f .run/postgres)")"; fi
	rm -rf .run
