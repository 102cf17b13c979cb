# Everything installs itself: `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: install
	$(BIN)/python -m lab.demo

test: install
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest -q --durations=10

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check lab trainers models tests benchmarks

clean:
	rm -rf $(VENV) artefacts .pytest_cache
