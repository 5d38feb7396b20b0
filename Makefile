# The two commands of the README, and a few helpers. Every target sets itself up first.
VENV := .venv
PY := $(VENV)/bin/python
# Empty SOURCE/ROOT: the embedded default (procedural rooms rendered and lifted on the fly).
SOURCE ?=
ROOT ?=
OUT ?= out/$(or $(SOURCE),procedural)
PYTEST_ARGS ?=

.PHONY: setup generate test lint bench

setup:
	@bash scripts/setup.sh

# Main job: QA for one source, its summary, and a contact sheet of sample questions.
generate: setup
	$(VENV)/bin/jax-spatial generate $(if $(SOURCE),--source $(SOURCE)) $(if $(ROOT),--root $(ROOT)) --out $(OUT)

test: setup
	$(VENV)/bin/ruff check jax_spatial tests bench configs pipelines
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check jax_spatial tests bench configs pipelines

bench: setup
	$(PY) bench/relations.py
	$(PY) bench/lift.py
	$(PY) bench/overlays.py
	$(PY) bench/lift_agreement.py
