# Everything installs itself: `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The notebook alone (no torch): `pip install .` as a user without the trainers gets it.
LIGHT := .venv-light
LIGHT_STAMP := $(LIGHT)/.installed

.PHONY: install install-light demo test test-all test-light bench lint clean

install: $(STAMP)

install-light: $(LIGHT_STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

$(LIGHT_STAMP): requirements-light.txt
	rm -rf $(LIGHT)
	$(PYTHON) -m venv $(LIGHT)
	$(LIGHT)/bin/pip install --quiet --disable-pip-version-check -r requirements-light.txt
	touch $(LIGHT_STAMP)

demo: install
	$(BIN)/python -m lab.demo

# One pytest worker per core (pytest-xdist). `make test` runs each test once: the light ones in the light install
# (test-light), the rest here; tests marked slow (training long enough to learn) run in test-all only.
PYTEST := WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest -q -n auto --dist worksteal --durations=10

test: install test-light
	$(PYTEST) -m "not slow and not light"

test-all: install test-light
	$(PYTEST)

# The notebook's own tests in the light install: a torch import creeping into lab/ fails here. Run from tests/
# so that `lab` is the installed package, not the checkout.
test-light: install-light
	$(LIGHT)/bin/pip install --quiet --disable-pip-version-check --no-deps --force-reinstall .
	cd tests && WANDB_MODE=offline WANDB_SILENT=true ../$(LIGHT)/bin/python -m pytest -q -n auto --dist worksteal -m light -p no:cacheprovider lab

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check lab trainers models tests benchmarks

clean:
	rm -rf $(VENV) $(LIGHT) artefacts .pytest_cache
