#!/usr/bin/env bash
# One build of Burn for every command (issue 15): compares the dependency units (package,
# features, profile) that cargo would build for each command, without building anything, and
# fails when a command would compile a dependency differently from the tests (debug) or from the
# quickstart (release) — a second build of Burn, ~25 min on two cores. A crate outside the
# workspace that depends on prunus (tests/user_crate.sh) must build what `prunus` builds.
#
#   bash tests/one_build.sh
#
# The unit graph is an unstable cargo output (`--unit-graph -Z unstable-options`), read here
# with RUSTC_BOOTSTRAP=1 from the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
graph() { # name, cargo arguments…
  local name=$1
  shift
  RUSTC_BOOTSTRAP=1 cargo "$@" --unit-graph -Z unstable-options >"$work/$name.json"
}
graph test test --workspace --no-run
graph bins build --workspace --bins
graph examples build --workspace --examples
graph quickstart build --release --example quickstart
graph bin build --release --bin prunus
graph release_examples build --release --workspace --examples
graph benches bench --workspace --no-run
# A crate outside the workspace that depends on prunus, as the README shows (with the
# workspace's `opt-level = 3` for dependencies).
bash tests/user_crate.sh --unit-graph "$work/user.json" >/dev/null
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]

def units(name):
    """(package, target, kind) -> set of (features, profile) of every dependency unit."""
    out = {}
    for u in json.load(open(f"{work}/{name}.json"))["units"]:
        if u["pkg_id"].startswith("path+"):
            continue  # our own crates: built per command anyway
        profile = dict(u["profile"])
        profile.pop("name", None)
        # Cargo hashes a strip setting by its value, resolved or deferred alike.
        profile["strip"] = next(iter(profile["strip"].values()))
        key = (u["pkg_id"].split("#")[-1], u["target"]["name"], tuple(u["target"]["kind"]))
        out.setdefault(key, set()).add((tuple(u["features"]), json.dumps(profile, sort_keys=True)))
    return out

failed = False
for command, reference in [("bins", "test"), ("examples", "test"), ("user", "bins"),
                           ("bin", "quickstart"), ("release_examples", "quickstart"),
                           ("benches", "quickstart")]:
    a, b = units(command), units(reference)
    extra = [(k, a[k] - b[k]) for k in sorted(a) if k in b and not a[k] <= b[k]]
    for key, variants in extra:
        failed = True
        print(f"{command} builds {key[0]} ({key[1]}) unlike {reference}: {sorted(variants)}")
    print(f"one_build: {command} vs {reference}: {len(extra)} dependency units differ")
sys.exit(1 if failed else 0)
EOF
