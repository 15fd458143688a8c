#!/usr/bin/env bash
# Bad inputs through the prunus binary: exit code and stderr of each, as the rows of the table
# in docs/reliability.md. Build first (`cargo build --workspace --bins`); P names the binary.
set -u
P=$(realpath "${P:-${CARGO_TARGET_DIR:-target}/debug/prunus}")
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT; cd "$D"
$P train --device flex --out m.prunus --base 4 --depth 2 --size 16 --epochs 1 --train-samples 8 --valid-samples 4 >/dev/null 2>&1 || echo "train failed"
echo "this is not a model file" > text.prunus
head -c 500 m.prunus > truncated.prunus
python3 - <<'P'
b=bytearray(open('m.prunus','rb').read()); b[-10]^=0xff; open('flipped.prunus','wb').write(b)
P
printf 'II*\0\x08\0\0\0\xff\xff' > bad.tif
printf '\x89PNG\r\n\x1a\nnot really' > bad.png
row() { # description, args...
  local what="$1"; shift
  local err; err=$($P "$@" 2>&1 >/dev/null); local code=$?
  err=$(echo "$err" | sed "s#$D/##g; s#$D##g" | sed ':a;N;$!ba;s/\n/<br>/g')
  echo "| $what | $code | $err |"
}
row "missing model" inspect --model missing.prunus
row "a text file as model" eval --model text.prunus
row "truncated model" bench --model truncated.prunus
row "one byte flipped" inspect --model flipped.prunus
row "corrupt TIFF" infer --model m.prunus --input bad.tif --output o.png
row "corrupt PNG" infer --model m.prunus --input bad.png --output o.png
row "missing data folder" train --out n.prunus --data inria:/nonexistent
row "unknown data source" train --out n.prunus --data mnist
row "size the network cannot take" eval --model m.prunus --size 7
row "unknown backend" bench --model m.prunus --device tpu
row "output exists" train --out m.prunus
$P prune --device flex --model m.prunus --out p.prunus --tolerance 50 --rate 0.3 --tune-samples 0 --valid-samples 8 --test-samples 0 >/dev/null 2>&1 || echo "prune failed"
row "run folder of other settings" prune --device flex --model m.prunus --out q.prunus --run p.prunus.run --tolerance 1 --tune-samples 0 --valid-samples 8 --test-samples 0
echo '{"fingerprint": 3' > p.prunus.run/search.json
row "corrupt run state" prune --device flex --model m.prunus --out p2.prunus --run p.prunus.run --tolerance 50 --rate 0.3 --tune-samples 0 --valid-samples 8 --test-samples 0
