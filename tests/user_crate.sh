#!/usr/bin/env bash
# The README's dependency snippet, used as a user uses it: a throw-away crate outside the
# workspace depends on prunus by path (as the README says), and builds and runs the README's
# first Rust example. Fails if the snippet, the path or the example stops working.
#
#   bash tests/user_crate.sh
#   bash tests/user_crate.sh --unit-graph FILE   # what it would build, as JSON, building nothing
#
# It shares CARGO_TARGET_DIR with the workspace (set it as .ci/run does) and pins the same
# dependency versions (the workspace's Cargo.lock), so that a warm build reuses what it can.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The README's dependency lines, with the path pointing at this checkout.
deps="$(awk '/^## Using it/{u=1} u&&/^```toml/{t=1;next} t&&/^```/{exit} t' "$repo/README.md")"
grep -q '^prunus = { path = ' <<<"$deps" || { echo "user_crate: README has no path dependency on prunus" >&2; exit 1; }
deps="$(sed -E "s#^prunus = \\{ path = \"[^\"]*\" \\}#prunus = { path = \"$repo/crates/prunus\" }#" <<<"$deps")"

mkdir -p "$work/user/src"
cat >"$work/user/Cargo.toml" <<TOML
[package]
name = "prunus-user"
version = "0.0.0"
edition = "2024"
publish = false

$deps

# As the workspace builds its dependencies, so the build can be shared.
[profile.dev.package."*"]
opt-level = 3
TOML
# The first Rust block after "## Using it".
awk '/^## Using it/{u=1} u&&/^```rust$/{r=1;next} r&&/^```/{exit} r' "$repo/README.md" >"$work/user/src/main.rs"
test -s "$work/user/src/main.rs" || { echo "user_crate: README has no Rust example" >&2; exit 1; }
cp "$repo/Cargo.lock" "$work/user/Cargo.lock"

cd "$work/user"
if [ "${1:-}" = "--unit-graph" ]; then
  RUSTC_BOOTSTRAP=1 cargo build --unit-graph -Z unstable-options >"$2"
  exit
fi
echo "user_crate: building a crate outside the workspace that depends on $repo/crates/prunus"
cargo run
echo "user_crate: the README's example ran"
