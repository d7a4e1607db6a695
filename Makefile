# musictag — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the musicnn library's wheel (its four TensorFlow models), unpacked for the tests of the musicnn import
MUSICNN := $(VENV)/musicnn-0.1.0
export WANDB_SILENT ?= true

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-gpu demo bench lint presets clean

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

demo: install ## train and test the demo Short-chunk CNN on the built-in synthetic corpus (CPU)
	$(BIN)/musictag fit --config experiments/demo.yaml
	$(BIN)/musictag test --config experiments/demo.yaml --ckpt_path best

bench: install ## throughput of every architecture (samples/s), cache preparation and loading on this machine
	$(BIN)/musictag bench --data $(BENCH_ARGS)

lint: install ## ruff (lint and format) and mypy (types of musictag/)
	$(BIN)/ruff check musictag datamodules tests
	$(BIN)/ruff format --check musictag datamodules tests
	$(BIN)/mypy musictag

presets: install ## rewrite experiments/models/*.yaml and experiments/<corpus>/*.yaml from the Python presets
	$(BIN)/python -m musictag.models.export experiments/models

clean: ## remove the virtualenv, caches and run folders
	rm -rf $(VENV) runs .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
