//! What the tests of the `prunus` binary share.

use std::path::Path;

/// `p` as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `prune` without fine-tuning (so that two runs take the same decisions) into `out`.
pub fn prune_args<'a>(model: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "prune",
        "--device",
        "flex",
        "--model",
        model,
        "--out",
        out,
        "--tolerance",
        "1",
        "--tune-samples",
        "0",
        "--valid-samples",
        "96",
        "--step",
        "0.2",
    ]
}
