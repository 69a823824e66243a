#!/usr/bin/env bash
# Set up gendistill on a fresh Debian/Ubuntu machine: a virtual environment, torch, the package, and the
# Fashion-MNIST data. Safe to run again: each step is skipped when already done.
#
#   VENV=.venv             where the environment goes
#   PYTHON=python3.11      the interpreter to build it from (falls back to python3)
#   TORCH_SPEC=...         pip requirement for torch (default: the CPU build 2.13.0 where there is no CUDA)
#   TORCH_INDEX_URL=...    extra index for torch wheels, e.g. PyTorch's CPU-only index
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
say() { printf '[setup] %s\n' "$*" >&2; }
source scripts/apt.sh  # apt_install

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    say "python venv module missing; installing python3-venv"
    apt_install python3-venv || { say "install python3-venv, then run again"; exit 1; }
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

if ! "$PY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    spec=${TORCH_SPEC:-torch>=2.2}
  else
    spec=${TORCH_SPEC:-torch==2.13.0}
  fi
  say "installing $spec"
  "${PIP[@]}" "$spec" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}
fi

stamp="$VENV/.gendistill-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing gendistill and its dependencies"
  "${PIP[@]}" -e ".[dev]"
  touch "$stamp"
fi

# Fashion-MNIST: Debian's dataset-fashion-mnist package, when apt can be used and the data is not found.
if ! "$VENV/bin/gendistill" datasets 2>/dev/null | grep -q '^fashion-mnist  *found'; then
  say "Fashion-MNIST not found; installing Debian's dataset-fashion-mnist"
  apt_install dataset-fashion-mnist ||
    say "apt is not usable here: put Fashion-MNIST's IDX files in ~/.cache/gendistill/fashion-mnist"
fi
say "ready: $VENV/bin/gendistill"
