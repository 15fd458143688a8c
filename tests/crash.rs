//! Crash safety of the `prunus` binary, tested by killing it: `train` and `prune` killed with
//! SIGKILL at random moments resume when run again and finish with a valid output (for `prune`,
//! the same result as an uninterrupted run); an output is never visible half-written; an
//! output folder that cannot be written, or that fills up during the run, is an error that
//! leaves the input untouched.
//!
//! The moments come from a seeded generator: `PRUNUS_CRASH_SEED=n` replays a run, and
//! `PRUNUS_CRASH_KILLS=n` sets how many kills each test makes (3 by default).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use prunus::data::RgbImage;
use prunus::surgery::{ModelFile, Network};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::SplitMix64;

#[path = "binary.rs"]
mod binary;

use binary::{prune_args, s};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn command(binary: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command.args(args).env_remove("BURN_DEVICE");
    command
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_prunus"))
}

/// Runs `args` to its end; returns its stdout, or panics with its stderr.
fn finish(args: &[&str]) -> (String, Duration) {
    let start = Instant::now();
    let out = command(&binary(), args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "prunus {args:?}:\n{stderr}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        start.elapsed(),
    )
}

/// `out` is absent or a complete model file, never anything in between.
fn complete_or_absent(out: &Path) {
    if out.exists()
        && let Err(e) = ModelFile::<Network>::load(out, &Device::flex())
    {
        panic!("{} is visible but incomplete: {e}", out.display());
    }
}

/// Starts `args`, checks every few milliseconds that `out` is absent or complete, and SIGKILLs
/// the process after `after` unless it ended first. Returns whether it ended on its own (then
/// successfully: a run never fails because an earlier one was killed).
fn run_then_kill(args: &[&str], out: &Path, after: Duration) -> bool {
    let mut child = command(&binary(), args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < after {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(status.success(), "a restarted run failed:\n{stderr}");
            return true;
        }
        complete_or_absent(out);
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    complete_or_absent(out);
    false
}

/// Kills `args` at `kills` random moments within `span`, then lets it finish.
fn kill_at_random_moments(args: &[&str], out: &Path, span: Duration, seed: u64) {
    let mut rng = SplitMix64::seed_from_u64(seed);
    let kills = env_number("PRUNUS_CRASH_KILLS", 3);
    for kill in 0..kills {
        let after = span.mul_f64(rng.random_range(0.05..0.9));
        eprintln!("kill {kill}: after {} ms", after.as_millis());
        if run_then_kill(args, out, after) || out.exists() {
            return;
        }
    }
    finish(args);
}

fn seed() -> u64 {
    let seed = env_number("PRUNUS_CRASH_SEED", 1);
    eprintln!("PRUNUS_CRASH_SEED={seed}");
    seed
}

fn train_args<'a>(out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--device",
        "flex",
        "--out",
        out,
        "--base",
        "4",
        "--depth",
        "2",
        "--size",
        "32",
        "--epochs",
        epochs,
        "--train-samples",
        "48",
        "--valid-samples",
        "8",
    ]
}

#[test]
fn train_killed_at_random_moments_resumes_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.prunus");
    let (_, span) = finish(&train_args(s(&whole), "6"));
    let killed = dir.path().join("killed.prunus");
    kill_at_random_moments(&train_args(s(&killed), "6"), &killed, span, seed());
    let file = ModelFile::<Network>::load(&killed, &Device::flex()).unwrap();
    let reference = ModelFile::<Network>::load(&whole, &Device::flex()).unwrap();
    assert_eq!(file.header.architecture, reference.header.architecture);
    // The checkpoints of the last run say how far it trained: all six epochs.
    let checkpoints = dir.path().join("killed.prunus.run/checkpoint");
    assert!(checkpoints.join("model-6.bpk").is_file(), "{checkpoints:?}");
}

/// Accepted flags and removed channels of every step, and the widths, of a finished run.
fn outcome(run: &Path) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let steps: Vec<_> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["accepted"].clone(), s["removed"].clone()))
        .collect();
    serde_json::json!({ "steps": steps, "widths": report["widths"] })
}

fn model(dir: &Path) -> PathBuf {
    let path = dir.join("model.prunus");
    // A network that takes several steps to prune: --base 8 at 64².
    let mut args = train_args(s(&path), "1");
    for (flag, value) in [("--base", "8"), ("--size", "64")] {
        let at = args.iter().position(|&a| a == flag).unwrap();
        args[at + 1] = value;
    }
    finish(&args);
    path
}

#[test]
fn prune_killed_at_random_moments_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let input = std::fs::read(&model).unwrap();
    let whole = dir.path().join("whole.prunus");
    let (_, span) = finish(&prune_args(s(&model), s(&whole)));
    let expected = outcome(&dir.path().join("whole.prunus.run"));
    let killed = dir.path().join("killed.prunus");
    kill_at_random_moments(
        &prune_args(s(&model), s(&killed)),
        &killed,
        span,
        seed() + 1,
    );
    assert_eq!(outcome(&dir.path().join("killed.prunus.run")), expected);
    ModelFile::<Network>::load(&killed, &Device::flex()).unwrap();
    assert_eq!(
        std::fs::read(&model).unwrap(),
        input,
        "the input model is untouched"
    );
}

/// Runs `prunus` as `args` and returns its exit code and stderr.
fn code_and_stderr(out: Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_read_only_or_full_output_folder_is_an_error_that_keeps_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let input = std::fs::read(&model).unwrap();

    // Read-only: permissions do not stop root, so as root the check runs as `nobody`, with a
    // copy of the binary it may execute (the build folder may be private).
    let folder = dir.path().join("read-only");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    let root = std::fs::metadata(&model).unwrap().uid() == 0;
    let out_path = folder.join("small.prunus");
    let args = prune_args(s(&model), s(&out_path));
    let output = if root {
        let public = dir.path().join("public");
        std::fs::create_dir(&public).unwrap();
        let copy = public.join("prunus");
        std::fs::copy(binary(), &copy).unwrap();
        for (path, mode) in [
            (dir.path(), 0o755),
            (public.as_path(), 0o755),
            (copy.as_path(), 0o755),
            (model.as_path(), 0o644),
        ] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::process::CommandExt::uid(&mut command(&copy, &args), 65534)
            .current_dir(&public)
            .output()
            .unwrap()
    } else {
        command(&binary(), &args).output().unwrap()
    };
    let (code, stderr) = code_and_stderr(output);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("small.prunus"), "{stderr}");
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    assert_eq!(std::fs::read(&model).unwrap(), input);

    // Full: a file-size limit of 8 KiB (16 blocks) makes every larger write fail as on a full disk (EFBIG,
    // with SIGXFSZ ignored), after the output checks have passed.
    let full = dir.path().join("full.prunus");
    let script = r#"trap '' XFSZ; ulimit -f 16; exec "$0" "$@""#;
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(binary())
        .args(prune_args(s(&model), s(&full)))
        .env_remove("BURN_DEVICE")
        .output()
        .unwrap();
    let (code, stderr) = code_and_stderr(output);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(!full.exists(), "no partial output");
    assert_eq!(std::fs::read(&model).unwrap(), input);
    // Nothing half-written is left beside the outputs either.
    for entry in walk(dir.path()) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "a temporary file was left: {entry:?}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Every mask in `dir` (hidden files aside) is complete — it decodes whole, at `size` — and is
/// identified by its (inode, modification time): a mask written again would change both.
fn complete_masks(dir: &Path, size: usize) -> BTreeMap<String, (u64, i64, i64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    let mut masks = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let meta = entry.metadata().unwrap();
        let image = RgbImage::open(entry.path())
            .unwrap_or_else(|e| panic!("{name} is visible but incomplete: {e}"));
        assert_eq!((image.width, image.height), (size, size), "{name}");
        masks.insert(name, (meta.ino(), meta.mtime(), meta.mtime_nsec()));
    }
    masks
}

/// `prunus infer` over a folder, SIGKILLed at random moments and restarted: at every moment the
/// masks visible are complete; a restart keeps every mask already written (same inode and
/// time) and segments only the rest; the masks end equal to an uninterrupted run's.
#[test]
fn infer_over_a_folder_killed_at_random_moments_resumes_without_redoing_masks() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.prunus");
    finish(&train_args(s(&model), "1"));
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let size = 320;
    for i in 0..8 {
        let pixels: Vec<u8> = (0..size * size * 3)
            .map(|p| ((p as u64 * (2 * i + 1) * 2_654_435_761) >> 11) as u8)
            .collect();
        prunus::data::write_png(images.join(format!("tile{i}.png")), size, size, 3, &pixels)
            .unwrap();
    }
    let args = |out: &Path| -> Vec<String> {
        let flags = ["infer", "--device", "flex", "--model", s(&model), "--input"];
        let mut args: Vec<String> = flags.map(String::from).to_vec();
        for a in [
            s(&images),
            "--output",
            s(out),
            "--tile",
            "64",
            "--overlap",
            "16",
        ] {
            args.push(a.into());
        }
        args
    };
    let reference = dir.path().join("reference");
    let reference_args = args(&reference);
    let (_, span) = finish(
        &reference_args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let masks = dir.path().join("masks");
    let killed_args = args(&masks);
    let killed_args: Vec<&str> = killed_args.iter().map(String::as_str).collect();
    let mut rng = SplitMix64::seed_from_u64(seed() + 2);
    let mut kept = BTreeMap::new();
    for kill in 0..env_number("PRUNUS_CRASH_KILLS", 3) {
        let after = span.mul_f64(rng.random_range(0.05..0.9));
        let mut child = command(&binary(), &killed_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut ended = false;
        while start.elapsed() < after && !ended {
            ended = child.try_wait().unwrap().is_some();
            complete_masks(&masks, size);
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let now = complete_masks(&masks, size);
        eprintln!(
            "kill {kill}: after {} ms, {} masks",
            after.as_millis(),
            now.len()
        );
        for (name, id) in &kept {
            assert_eq!(now.get(name), Some(id), "{name} was written again");
        }
        kept = now;
    }
    // The last kill may have left a mask being written: the restart writes it whole.
    let (stdout, _) = finish(&killed_args);
    assert!(
        stdout.contains(&format!("{} skipped", kept.len())),
        "{stdout}"
    );
    let done = complete_masks(&masks, size);
    assert_eq!(done.len(), 8);
    for (name, id) in &kept {
        assert_eq!(done.get(name), Some(id), "{name} was written again");
    }
    for name in done.keys() {
        let got = RgbImage::open(masks.join(name)).unwrap();
        let expected = RgbImage::open(reference.join(name)).unwrap();
        assert!(
            got == expected,
            "{name} differs from the uninterrupted run's"
        );
    }
    let left: Vec<_> = walk(&masks)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
