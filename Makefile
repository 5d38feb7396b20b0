# The two commands of the README, and a few helpers. Every target sets itself up first.
VENV := .venv
PY := $(VENV)/bin/python
SOURCE ?= scannet
ROOT ?= ../shared/data/real/scannet_scene0000_00
OUT ?= out/$(SOURCE)
PYTEST_ARGS ?=

.PHONY: setup generate test lint bench

setup:
	@bash scripts/setup.sh

# Main job: QA for one source, its summary, and a contact sheet of sample questions.
generate: setup
	$(VENV)/bin/jax-spatial generate --source $(SOURCE) --root $(ROOT) --out $(OUT)
	$(VENV)/bin/jax-spatial draw --qa $(OUT)/qa.jsonl --root $(ROOT) --out $(OUT)/contact_sheet.png

test: setup
	$(VENV)/bin/ruff check jax_spatial tests bench configs pipelines
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check jax_spatial tests bench configs pipelines

bench: setup
	$(PY) bench/relations.py
