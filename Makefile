# ChargeDesk: `make run` serves a demo network, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
FUZZ_SECONDS ?= 60

.PHONY: install run test fuzz lint fmt check-deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} CHARGEDESK_UNKNOWN_CHARGERS_OPERATOR=$${CHARGEDESK_UNKNOWN_CHARGERS_OPERATOR:-voltway} \
		$(BIN)/python manage.py serve --host $(HOST) --port $(PORT) \
		--simulate voltway,northgrid --simulate-skip VW-UTR-06,VW-RTM-05 \
		--simulate-id-tags 04A2C81B7F5E80,04B93D2A6C1F80

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The long fuzz runs: hypothesis' "fuzz" profile over tests/fuzz, then FUZZ_SECONDS of atheris
# (coverage-guided) on the OCPP frame path (bench/fuzz_ocpp_atheris.py; crash inputs in var/fuzz/).
fuzz: install
	@$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]' || \
		echo "make fuzz: could not install the fuzz extra (atheris) on $$($(BIN)/python -V); running hypothesis only" >&2
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)
	@if $(BIN)/python -c 'import atheris' 2>/dev/null; then \
		echo "$(BIN)/python bench/fuzz_ocpp_atheris.py -max_total_time=$(FUZZ_SECONDS)"; \
		$(BIN)/python bench/fuzz_ocpp_atheris.py -max_total_time=$(FUZZ_SECONDS); \
	else \
		echo "make fuzz: atheris SKIPPED: it is not installed for $$($(BIN)/python -V) (pip install 'atheris==3.0.0' failed above)" >&2; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-deploy: install
	CHARGEDESK_PRODUCTION=1 DJANGO_SECRET_KEY=$$(openssl rand -hex 32) DJANGO_ALLOWED_HOSTS=chargedesk.example \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
