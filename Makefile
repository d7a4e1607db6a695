# musictag — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the musicnn library's wheel (its four TensorFlow models), unpacked for the tests of the musicnn import
MUSICNN := $(VENV)/musicnn-0.1.0
export WANDB_SILENT ?= true

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-gpu gpu-wheels demo bench lint docs presets clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) $(MUSICNN)/.unpacked ## create .venv, install musictag editable with the dev extra, fetch the musicnn models for tests (no-op when up to date)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# Not fatal: without the network the musicnn tests skip, and fail where MUSICTAG_REQUIRE_REFERENCE=1 (CI).
$(MUSICNN)/.unpacked: | $(STAMP)
	@$(BIN)/python -m pip download -q --no-deps musicnn==0.1.0 -d $(MUSICNN) \
	  && $(BIN)/python -m zipfile -e $(MUSICNN)/musicnn-0.1.0-py3-none-any.whl $(MUSICNN) \
	  && touch $@ \
	  || echo "note: could not fetch the musicnn 0.1.0 wheel; the tests of its models will skip"

test: install ## run the fast test suite (no network, W&B disabled; not the slow or GPU tests)
	WANDB_MODE=disabled $(BIN)/python -m pytest -q -m "not slow and not gpu"

test-slow: install ## run the slow tests (multi-process DDP, kill/resume, notebook)
	WANDB_MODE=disabled $(BIN)/python -m pytest -q -m "slow and not gpu"

test-gpu: install ## run the CUDA tests (tests/gpu, marker gpu; they skip without a GPU)
	WANDB_MODE=disabled $(BIN)/python -m pytest -q -m "gpu"

# What tools/gpu-check.sh needs on a GPU machine whose Python 3.12 already holds torch, torchaudio,
# lightning, torchmetrics, numpy, pandas, matplotlib, pyyaml and tqdm (and cannot reach a package index):
# the rest of musictag's dependencies, one version each (those of .venv), and theirs. wandb is left out:
# musictag imports it only for a W&B logger, and the check runs with WANDB_MODE=disabled.
GPU_WHEELS := soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 omegaconf==2.4.0 \
	jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0
GPU_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64
REFERENCE ?= $(or $(MUSICTAG_REFERENCE),../shared/reference)

gpu-wheels: ## fill .whl/ for tools/gpu-check.sh on a GPU machine: cp312 wheels it lacks, the published checkpoints
	@rm -rf .whl.partial && mkdir -p .whl.partial
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  $(addprefix --platform ,$(GPU_PLATFORMS)) -d .whl.partial $(GPU_WHEELS)
	@if [ -d "$(REFERENCE)/sota/models" ]; then mkdir -p .whl.partial/reference && cp -r "$(REFERENCE)/sota" .whl.partial/reference/ && chmod -R u+w .whl.partial/reference; \
	  else echo "note: no reference data at $(REFERENCE): the GPU tests of the published checkpoints will skip"; fi
	@rm -rf .whl && mv .whl.partial .whl && du -sh .whl

demo: install ## train and test the demo Short-chunk CNN on the built-in synthetic corpus (CPU)
	$(BIN)/musictag fit --config experiments/demo.yaml
	$(BIN)/musictag test --config experiments/demo.yaml --ckpt_path best

bench: install ## throughput of every architecture (samples/s), cache preparation and loading on this machine
	$(BIN)/musictag bench --data $(BENCH_ARGS)

lint: install ## ruff (lint and format) and mypy (types of musictag/)
	$(BIN)/ruff check musictag datamodules tests
	$(BIN)/ruff format --check musictag datamodules tests
	$(BIN)/mypy musictag

docs: install ## build the documentation site into site/ (mkdocs, warnings as errors)
	$(BIN)/mkdocs build --strict --quiet

presets: install ## rewrite experiments/models/*.yaml from the Python presets (the recipes are hand-written)
	$(BIN)/python -m musictag.models.export experiments/models

clean: ## remove the virtualenv, caches and run folders
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
