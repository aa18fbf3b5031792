# The two commands of the README: `make lab` and `make test`. Both prepare the
# machine first (Debian packages, .venv, dockerd), so they work on a fresh one.
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: lab lab-down test unit lint check proto

lab:
	bash deploy/lab.sh

lab-down:
	$(VENV)/bin/swarmd lab down

test:
	bash deploy/prepare.sh
	$(VENV)/bin/ruff check .
	VENV=$(VENV) bash deploy/check.sh
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

unit:
	$(VENV)/bin/pytest -q -m "not integration" $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .
	VENV=$(VENV) bash deploy/check.sh

# The layer contracts (lint-imports) and the type check (mypy); see deploy/check.sh.
check:
	VENV=$(VENV) bash deploy/check.sh

proto:
	$(VENV)/bin/python proto/generate.py
