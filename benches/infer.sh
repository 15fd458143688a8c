#!/usr/bin/env bash
# Throughput (pixels/s) and peak memory (max RSS) of `prunus infer` on a synthetic GeoTIFF the
# size of an Inria tile (5000×5000), unpruned against pruned by 85% of the FLOPs, for U-Net
# (base 16 and 64) and TernausNet, in one run. Prints a markdown table.
#
#   bash benches/infer.sh [SIZE [DEVICE]]        defaults: 5000 flex
#
# The networks are briefly trained on synthetic scenes and pruned to the FLOPs target without
# fine-tuning: their speed depends on their widths, not on how well they segment.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-5000}
device=${2:-flex}
work=${INFER_BENCH_DIR:-${TMPDIR:-/tmp}/prunus-infer-bench}
mkdir -p "$work"
target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release --example synthetic_geotiff
cargo build --quiet --release --bin prunus
prunus=$target/release/prunus
tile=$work/tile-$size.tif
[ -f "$tile" ] || "$target/release/examples/synthetic_geotiff" --out "$tile" --size "$size" >&2

model() { # name, train options…
  local name=$1
  shift
  [ -f "$work/$name.prunus" ] || "$prunus" --device "$device" train --out "$work/$name.prunus" \
    --epochs 1 --train-samples 32 --valid-samples 8 --size 64 "$@" >&2
  [ -f "$work/$name-85.prunus" ] || "$prunus" --device "$device" prune \
    --model "$work/$name.prunus" --out "$work/$name-85.prunus" --run "$work/$name-85.run" \
    --flops 0.85 --tolerance 100 --tune-samples 0 --final-epochs 0 --valid-samples 8 \
    --bootstrap 0 --size 64 >&2
}
model unet16 --base 16
model unet64 --base 64
model ternausnet --arch ternausnet

echo "| network | FLOPs per 512² window (G) | seconds | Mpixel/s | speed-up | peak memory (MiB) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for name in unet16 unet64 ternausnet; do
  base=""
  for file in "$name" "$name-85"; do
    flops=$("$prunus" --device "$device" bench --model "$work/$file.prunus" --size 512 --runs 1 |
      awk '/^FLOPs/ {print $2}')
    # GNU time: elapsed seconds and max RSS in KiB.
    read -r seconds rss < <(/usr/bin/time -f "%e %M" "$prunus" --device "$device" infer \
      --model "$work/$file.prunus" --input "$tile" --output "$work/mask.tif" --force \
      --tile 512 --overlap 64 --batch 4 2>&1 >/dev/null | tail -1)
    rate=$(awk -v s="$seconds" -v n="$size" 'BEGIN {printf "%.2f", n * n / s / 1e6}')
    [ -n "$base" ] || base=$seconds
    speedup=$(awk -v b="$base" -v s="$seconds" 'BEGIN {printf "%.2f", b / s}')
    mib=$(awk -v k="$rss" 'BEGIN {printf "%.0f", k / 1024}')
    echo "| $file | $flops | $seconds | $rate | ${speedup}× | $mib |"
  done
done
