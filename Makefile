# Everything starts from a fresh machine: the venv is created and filled on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PAIRS := cifar10-alexnet cifar10-vgg16 cifar10-resnet50 cifar100-alexnet cifar100-vgg16 cifar100-resnet50
# Knobs: GPUS=0,1,2,3 shares those GPUs out (default: all visible), WORKERS=N runs N at a time (default: one
# per GPU, else 1).
SWEEP_FLAGS = $(if $(WORKERS),--workers $(WORKERS)) $(if $(GPUS),--gpus $(GPUS))
# The run whose per-layer sparsity is plotted next to the tables.
LAYERS_RUN = $*-weightmom-s0.9-seed0

.PHONY: install quickstart test test-fast data gpu-wheels clean reproduce reproduce-fashion-mnist reproduce-digits-compare $(addprefix reproduce-,$(PAIRS) digits)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/wmprune train --config configs/quickstart.yaml --out results/runs/quickstart --overwrite
	$(BIN)/wmprune eval --run results/runs/quickstart

# One pytest worker per core (pytest-xdist); a module's tests stay on one worker, so a module-scoped sweep is
# trained once. Every test uses one thread (tests/conftest.py).
XDIST := -n auto --dist loadscope

test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST)

# The suite without the tests marked slow (real trainings, child processes): under a minute, for every edit.
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "not slow"

# Real Fashion-MNIST (Xiao et al. 2017, arXiv 1708.07747). As root with apt: Debian's package (files in
# /usr/share/datasets/fashion-mnist/; apt-get update only if the package is not yet known). Where that is
# not possible or fails, the next line downloads the four official files into data/fashion-mnist/ and
# checks their md5; either way it then checks that the files read.
data: $(STAMP)
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y dataset-fashion-mnist || \
		{ apt-get update && apt-get install -y dataset-fashion-mnist; } || true; \
	fi
	$(BIN)/python -m wmprune.data fashion-mnist --download --root data

# grid → runs → tables → figures. Resumable: a second call skips finished runs and resumes interrupted ones.
# A study's runs live in results/<study>/runs/; their small files are committed (docs/experiments.md).
$(addprefix reproduce-,$(PAIRS) digits): reproduce-%: $(STAMP)
	$(BIN)/wmprune sweep --grid configs/grids/$*.yaml --out results/$*/runs $(SWEEP_FLAGS)
	$(BIN)/wmprune report results/$*/runs --out results/$*/tables
	$(BIN)/wmprune plot results/$*/tables --out results/$*/figures \
		--run "$$(ls -d results/$*/runs/$(LAYERS_RUN)-* | head -n 1)"

reproduce: $(addprefix reproduce-,$(PAIRS))

# The Fashion-MNIST study on CPU (docs/results-fashion-mnist.md): VGG16 and AlexNet, every method tuned alike
# on validation, then WeightMom's ablation and the sparse momentum check (docs/method.md); committed runs
# skipped. Many hours on 2 cores; resumable.
reproduce-fashion-mnist: WORKERS ?= 2
reproduce-fashion-mnist: $(STAMP)
	$(BIN)/wmprune sweep --grid configs/grids/fashion-mnist-vgg16.yaml --out results/fashion-mnist/runs $(SWEEP_FLAGS)
	$(BIN)/wmprune sweep --grid configs/grids/fashion-mnist-alexnet.yaml --out results/fashion-mnist/runs $(SWEEP_FLAGS)
	$(BIN)/wmprune report results/fashion-mnist/runs --out results/fashion-mnist/tables
	$(BIN)/wmprune plot results/fashion-mnist/tables --out results/fashion-mnist/figures
	$(BIN)/wmprune sweep --grid configs/grids/fashion-mnist-ablation.yaml --out results/fashion-mnist-ablation/runs $(SWEEP_FLAGS)
	$(BIN)/wmprune report results/fashion-mnist-ablation/runs --out results/fashion-mnist-ablation/tables --reference momentum-weightmom
	$(BIN)/wmprune plot results/fashion-mnist-ablation/tables --out results/fashion-mnist-ablation/figures
	$(BIN)/wmprune sweep --grid configs/grids/fashion-mnist-sparse-momentum-reselected.yaml --out results/fashion-mnist-reselected/runs $(SWEEP_FLAGS)
	$(BIN)/wmprune report results/fashion-mnist-reselected/runs --out results/fashion-mnist-reselected/tables --reference sparse_momentum-keep
	$(BIN)/wmprune plot results/fashion-mnist-reselected/tables --out results/fashion-mnist-reselected/figures

# Study stage 6: the digits comparison under the Fashion-MNIST protocol (docs/results-digits.md), ~75 min on 2 cores.
reproduce-digits-compare: WORKERS ?= 2
reproduce-digits-compare: $(STAMP)
	$(BIN)/wmprune sweep --grid configs/grids/digits-compare.yaml --out results/digits-compare/runs $(SWEEP_FLAGS)
	$(BIN)/wmprune report results/digits-compare/runs --out results/digits-compare/tables
	$(BIN)/wmprune plot results/digits-compare/tables --out results/digits-compare/figures

# CPU-sized worked example on real digits (results/digits/ in the repository): a few minutes on 2 cores.
reproduce-digits: WORKERS ?= 2
reproduce-digits: LAYERS_RUN = digits-vgg16-weightmom-s0.9-seed0

# Wheels for scripts/gpu_check.sh on a GPU machine without network (Python 3.12, x86-64 Linux): pydantic at
# this venv's version, and pytest, each with its dependencies. Run here, then send the tree with gpu-wheels/.
gpu-wheels: $(STAMP)
	$(BIN)/pip download --quiet --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
		-d gpu-wheels "pydantic==$$($(BIN)/python -c 'import pydantic; print(pydantic.VERSION)')" pytest

clean:
	rm -rf $(VENV) results/runs .pytest_cache
