#!/usr/bin/env bash
# GPU (wgpu) timings in one run: does the latency grow with the input as the arithmetic does (the
# timing loop waits for the device), and what batched throughput (8×512²) does pruning buy?
#
#   bash benches/gpu.sh [OUT]          writes OUT/*.txt (default: gpu-bench), prints as it goes
#
# SIZES, BATCHES, BATCH_SIZE, LONG_SIZE (0: none), SPEED_BATCH and SPEED_ONLY change the cases (for a check on a CPU's
# Vulkan driver: SIZES=64 BATCHES=2 BATCH_SIZE=64 LONG_SIZE=64 SPEED_ONLY=unet16_256_cut90).
#
# Uses the quickstart's two model files (runs/quickstart/trained.prunus and
# runs/quickstart/prune/pruned.prunus: run `cargo run --release --example quickstart` first)
# and the bundled networks of `examples/speed.rs` pruned by 85% and 90% of their multiply-adds.
# PRUNUS, SPEED and MODELS override the binaries' and the model files' paths (for a machine
# that has the GPU but no Rust toolchain: build here, copy the two binaries there).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-bench}
mkdir -p "$out"
target=${CARGO_TARGET_DIR:-target}
if [ -z "${PRUNUS:-}" ]; then
  cargo build --quiet --release --example speed --bin prunus || exit 1
fi
prunus=${PRUNUS:-$target/release/prunus}
speed=${SPEED:-$target/release/examples/speed}
models=${MODELS:-runs/quickstart}
trained=$models/trained.prunus
pruned=$models/prune/pruned.prunus
[ -f "$pruned" ] || pruned=$models/pruned.prunus

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
  # GPU utilisation once a second for the whole run: a loop that only launched work would
  # leave the multiprocessors idle.
  nvidia-smi dmon -s uc -d 1 >"$out/dmon.txt" 2>&1 &
  dmon=$!
  trap 'kill $dmon 2>/dev/null' EXIT
fi

bench() { # label, bench options…
  local label=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  timeout "${BENCH_TIMEOUT:-150}" "$prunus" --device wgpu bench "$@" >"$out/bench.tmp" 2>&1
  t1=$(date +%s.%N)
  awk -v l="$label" -v s="$t0" -v e="$t1" '
    /^input/ {i=$2} /^latency/ {ms=$2} /^throughput/ {ips=$2} /^GFLOP/ {g=$2}
    END {printf "| %s | %s | %s | %s | %s | %.1f |\n", l, i, ms, ips, g, e - s}' "$out/bench.tmp"
  grep -v XDG_RUNTIME "$out/bench.tmp" | grep -i -B1 error
}

{
  echo "### The quickstart's networks, \`prunus --device wgpu bench\` (median of 20 passes)"
  echo
  echo "| model | input | ms per pass | images/s | GFLOP/s | command s |"
  echo "| --- | --- | ---: | ---: | ---: | ---: |"
  for size in ${SIZES:-512 2048 4096}; do
    bench unpruned --model "$trained" --size $size --runs 20
    bench pruned --model "$pruned" --size $size --runs 20
  done
  for batch in ${BATCHES:-8}; do
    bench unpruned --model "$trained" --size ${BATCH_SIZE:-512} --batch $batch --runs 20
    bench pruned --model "$pruned" --size ${BATCH_SIZE:-512} --batch $batch --runs 20
  done
  # The same command with 20 and with 60 passes, kernels already tuned: the extra 40 cost what
  # 40 passes cost if the loop waits for each one (the wall clock of the whole command,
  # independent of its timer).
  if [ "${LONG_SIZE:-2048}" != 0 ]; then
    bench "unpruned, 20 passes" --model "$trained" --size ${LONG_SIZE:-2048} --runs 20
    bench "unpruned, 60 passes" --model "$trained" --size ${LONG_SIZE:-2048} --runs 60
  fi
} | tee "$out/quickstart.txt"

{
  echo
  echo "### Bundled networks, \`speed --device wgpu --batch ${SPEED_BATCH:-8} --paired\` (median of 10)"
  echo
  "$speed" --device wgpu --batch ${SPEED_BATCH:-8} --only "${SPEED_ONLY:-_512}" --no-train \
    --paired --runs 10 2>&1
} | tee "$out/speed.txt"
