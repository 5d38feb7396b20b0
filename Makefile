# The two commands of the README, and a few helpers. Every target sets itself up first.
VENV := .venv
PY := $(VENV)/bin/python
# Empty SOURCE/ROOT: the embedded default (procedural rooms rendered and lifted on the fly).
SOURCE ?=
ROOT ?=
OUT ?= out/$(or $(SOURCE),procedural)
PYTEST_ARGS ?=

.PHONY: setup generate test lint bench train

setup:
	@bash scripts/setup.sh

# Main job: QA for one source, its summary, and a contact sheet of sample questions.
generate: setup
	$(VENV)/bin/jax-spatial generate $(if $(SOURCE),--source $(SOURCE)) $(if $(ROOT),--root $(ROOT)) --out $(OUT)

# Fine-tune tiny_vlm on a small procedural dataset (built first, scene-disjoint splits), then
# write its held-out predictions. A few minutes on 2 CPU cores; run again to resume.
TRAIN_OUT ?= out/train
TRAIN_STEPS ?= 300
train: setup
	$(VENV)/bin/jax-spatial build-data --data-dir $(TRAIN_OUT)/tfds --name train_demo --num-scenes 48
	$(VENV)/bin/jax-spatial train --config configs/train.py:steps=$(TRAIN_STEPS) \
		--workdir $(TRAIN_OUT)/run --data-dir $(TRAIN_OUT)/tfds --name spatial_qa/train_demo
	$(VENV)/bin/jax-spatial predict --workdir $(TRAIN_OUT)/run --data-dir $(TRAIN_OUT)/tfds \
		--name spatial_qa/train_demo --split test --out $(TRAIN_OUT)/run/predictions.jsonl

test: setup
	$(VENV)/bin/ruff check jax_spatial tests bench configs pipelines
	$(PY) -m pytest -q -n 2 --durations=15 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check jax_spatial tests bench configs pipelines

bench: setup
	$(PY) bench/relations.py
	$(PY) bench/lift.py
	$(PY) bench/overlays.py
	$(PY) bench/lift_agreement.py
	$(PY) bench/multi_view.py
