# The two commands of the README quickstart. Both set everything up first (scripts/setup.sh).
VENV ?= .venv
GD := $(VENV)/bin/gendistill
RUN_DIR ?= runs

.PHONY: setup run test lint bench

setup:
	@VENV=$(VENV) bash scripts/setup.sh

# The main job on the embedded default (Fashion-MNIST): distribution matching (DM) at 10 images per class,
# 100 iterations from real images, then a quick evaluation (3 fresh ConvNet-3s, 100 epochs with DSA) and
# the images exported as PNGs. Under 10 minutes on a 2-core CPU.
MAIN := $(RUN_DIR)/dm-ipc10
run: setup
	@mkdir -p $(RUN_DIR)
	$(GD) distill --method dm --dataset fashion-mnist --ipc 10 --iterations 100 --out $(MAIN) --force
	$(GD) evaluate $(MAIN) --preset quick --runs 3
	$(GD) export $(MAIN) --png $(MAIN)-png --force
	@echo "grid: $(MAIN)/grid.png  results: $(MAIN)/eval.json"

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/python benchmarks/bench_eval_trainer.py
	$(VENV)/bin/python benchmarks/run_baselines.py
	$(VENV)/bin/python benchmarks/bench_dm.py
	$(VENV)/bin/python benchmarks/run_methods.py
	$(VENV)/bin/python benchmarks/run_latent.py
