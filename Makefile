# The two commands of the README quickstart. Both set everything up first (scripts/setup.sh).
VENV ?= .venv
GD := $(VENV)/bin/gendistill
RUN_DIR ?= runs

.PHONY: setup run test lint bench

setup:
	@VENV=$(VENV) bash scripts/setup.sh

# The main job on the embedded default (Fashion-MNIST): a random real subset at IPC 10, evaluated with the
# paper protocol (3 fresh ConvNet-3s, 300 epochs), then exported as PNGs.
run: setup
	$(GD) select --method random --dataset fashion-mnist --ipc 10 --out $(RUN_DIR)/random-ipc10 --force
	$(GD) evaluate $(RUN_DIR)/random-ipc10 --preset paper --runs 3
	$(GD) export $(RUN_DIR)/random-ipc10 --png $(RUN_DIR)/random-ipc10-png --force
	@echo "grid: $(RUN_DIR)/random-ipc10/grid.png  results: $(RUN_DIR)/random-ipc10/eval.json"

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/python benchmarks/bench_eval_trainer.py
	$(VENV)/bin/python benchmarks/run_baselines.py
