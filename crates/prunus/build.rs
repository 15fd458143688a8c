//! Records the git commit prunus is built from (when built from a checkout) for reports:
//! `PRUNUS_COMMIT`, read by `prunus::version()`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let git = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    if !git.exists() {
        return;
    }
    // A new commit moves HEAD or a branch; only paths that exist are watched (a missing one
    // would rerun this script on every build).
    for watched in ["HEAD", "refs/heads", "packed-refs"] {
        let path = git.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=PRUNUS_COMMIT={}", commit.trim());
    }
}
