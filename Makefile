# The two commands of the README quickstart. Both set everything up first (scripts/setup.sh).
VENV ?= .venv
GD := $(VENV)/bin/gendistill
RUN_DIR ?= runs

.PHONY: setup run test lint bench

setup:
	@VENV=$(VENV) bash scripts/setup.sh

# The main job on the embedded default (Fashion-MNIST): H-GLaD at 10 images per class with the shipped
# StyleGAN prior, distribution matching (DM), 100 iterations walked over the prior's 7 feature maps from the
# latent space toward pixels, each layer's lowest-CRFD snapshot kept; then a quick evaluation (3 fresh
# ConvNet-3s, 100 epochs with DSA) and the images exported as PNGs. Under 10 minutes on a 2-core CPU.
MAIN := $(RUN_DIR)/hglad-ipc10
run: setup
	@mkdir -p $(RUN_DIR)
	$(GD) distill --method dm --param hglad --select crfd --dataset fashion-mnist --ipc 10 --iterations 100 \
		--out $(MAIN) --force
	$(GD) evaluate $(MAIN) --preset quick --runs 3
	$(GD) export $(MAIN) --png $(MAIN)-png --force
	@echo "grid: $(MAIN)/grid.png  results: $(MAIN)/eval.json"

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/python -m pytest

# The benchmark suites (each cell made and evaluated once, then cached in the result store), the HTML report
# of the store, and the generated parts of README.md and docs/. Cells the store holds are skipped; the
# suites not listed (paper.yaml: the published budgets, for a GPU) run by name: gendistill bench FILE.
SUITES := committed protocols baselines methods latent dcgm diffusion
bench: setup
	@for s in $(SUITES); do $(GD) bench benchmarks/suites/$$s.yaml || exit 1; done
	$(GD) report benchmarks/results/store.jsonl --out benchmarks/results/report --force
	$(VENV)/bin/python benchmarks/update_readme.py
