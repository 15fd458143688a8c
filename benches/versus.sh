#!/usr/bin/env bash
# prunus vs PyTorch on the same CPU, in one run: forward passes of TernausNet and U-Net (base 64
# and 16) at 256² and 512², unpruned and pruned by 85% and 90% of their multiply-adds, and one
# training step of TernausNet (1×256²) and U-Net base 16 (4×256²). Prints ratios as markdown.
#
#   bash benches/versus.sh [speed options…]      e.g. --only unet16 --runs 9 --no-train
#
# PyTorch comes from the Python package registry into a virtual environment (PYTHON=… to use
# another interpreter that has torch). Nothing in the test suite needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-}
if [ -z "$python" ]; then
  venv=${VERSUS_VENV:-${TMPDIR:-/tmp}/prunus-versus-venv}
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "installing PyTorch into $venv (once)…" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch numpy
  fi
  python=$venv/bin/python
fi
cases=$(mktemp --suffix=.json)
trap 'rm -f "$cases"' EXIT
cargo build --quiet --release --example speed
speed=${CARGO_TARGET_DIR:-target}/release/examples/speed
"$speed" --list --json "$cases" "$@" >/dev/null
# Each case timed by prunus, then at once by PyTorch: both halves of a ratio see the same machine.
runs=7
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--runs" ]; then j=$((i + 1)); runs=${!j}; fi
done
"$python" benches/versus.py "$cases" --speed "$speed" --runs "$runs"
