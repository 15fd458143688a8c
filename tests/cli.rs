//! The `prunus` binary, run as a user runs it, on tiny networks and data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prunus::data::{RgbImage, write_png};

fn prunus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prunus"))
        .args(args)
        .env_remove("BURN_DEVICE")
        .output()
        .expect("the prunus binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = prunus(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "prunus {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a command that must fail; returns its stderr, checked to be one `error:` line.
fn fails(args: &[&str]) -> String {
    let out = prunus(args);
    assert_eq!(out.status.code(), Some(1), "prunus {args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one readable line: {stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tiny trained U-Net (base 4, depth 2) on 16×16 synthetic scenes.
fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.prunus");
    let out = ok(&[
        "train",
        "--device",
        "flex",
        "--out",
        s(&path),
        "--base",
        "4",
        "--depth",
        "2",
        "--size",
        "16",
        "--epochs",
        "1",
        "--train-samples",
        "16",
        "--valid-samples",
        "8",
    ]);
    assert!(out.contains("saved"), "{out}");
    path
}

#[test]
fn train_writes_a_model_file_and_never_replaces_one_silently() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    assert!(model.is_file());
    let before = std::fs::read(&model).unwrap();
    let err = fails(&["train", "--out", s(&model), "--size", "16", "--epochs", "1"]);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn inspect_prints_widths_and_cost() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = ok(&["inspect", "--model", s(&model)]);
    assert!(out.contains("architecture  unet"), "{out}");
    assert!(out.contains("input size    16×16"), "{out}");
    assert!(out.contains("FLOPs") && out.contains("parameters"), "{out}");
    // Base 4, depth 2: the first encoder level has 4 filters, kept / original = 4 / 4.
    let widths: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("widths"))
        .skip(1)
        .collect();
    assert!(!widths.is_empty(), "{out}");
    assert!(
        widths
            .iter()
            .any(|l| l.contains("encoder.0.conv1") && l.contains("4 / 4")),
        "{out}"
    );
    let json = ok(&["inspect", "--model", s(&model), "--json"]);
    let header: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(header["architecture"]["family"], "unet");
}

#[test]
fn eval_prints_metrics_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = ok(&["eval", "--model", s(&model), "--valid-samples", "8"]);
    let accuracy: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("pixel accuracy"))
        .and_then(|v| v.trim().trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {out}"));
    assert!((0.0..=100.0).contains(&accuracy), "{out}");
    assert!(out.contains("samples         8"), "{out}");
}

#[test]
fn prune_stops_at_a_flops_target_and_keeps_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let input = std::fs::read(&model).unwrap();
    let out_path = dir.path().join("pruned.prunus");
    // A tolerance nothing breaks: the FLOPs target alone ends the search.
    let out = ok(&[
        "prune",
        "--model",
        s(&model),
        "--out",
        s(&out_path),
        "--tolerance",
        "100",
        "--flops",
        "0.3",
        "--tune-samples",
        "0",
        "--valid-samples",
        "4",
    ]);
    assert!(out.contains("saved"), "{out}");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        input,
        "the input model is untouched"
    );
    let inspect = ok(&["inspect", "--model", s(&out_path)]);
    let removed: f64 = inspect
        .lines()
        .find(|l| l.starts_with("FLOPs"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|v| v.split('%').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no FLOPs line in {inspect}"));
    assert!(removed >= 30.0, "{inspect}");
    assert!(dir.path().join("pruned.prunus.run/report.json").is_file());

    let err = fails(&["prune", "--model", s(&model), "--out", s(&model)]);
    assert!(err.contains("never overwrites"), "{err}");
    let err = fails(&[
        "prune",
        "--model",
        s(&model),
        "--out",
        s(&dir.path().join("x.prunus")),
        "--tolerance",
        "NaN",
    ]);
    assert!(err.contains("tolerance"), "{err}");
}

#[test]
fn infer_segments_a_large_image_into_a_mask_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let (w, h) = (2000, 2000);
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
    let input = dir.path().join("big.png");
    write_png(&input, w, h, 3, &pixels).unwrap();
    let mask = dir.path().join("mask.png");
    let out = ok(&[
        "infer",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&mask),
        "--tile",
        "512",
        "--overlap",
        "32",
    ]);
    assert!(out.contains("2000×2000"), "{out}");
    let read = RgbImage::open(&mask).unwrap();
    assert_eq!((read.width, read.height), (w, h));
    assert!(read.data.iter().all(|&v| v == 0.0 || v == 1.0));

    let tif = dir.path().join("mask.tif");
    ok(&[
        "infer",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&tif),
        "--tile",
        "256",
    ]);
    assert_eq!(RgbImage::open(&tif).unwrap().width, w);

    let err = fails(&[
        "infer",
        "--model",
        s(&model),
        "--input",
        s(&dir.path().join("none.png")),
        "--output",
        s(&mask),
    ]);
    assert!(err.contains("none.png"), "{err}");
}

#[test]
fn bench_reports_latency_and_cost() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = ok(&["bench", "--model", s(&model), "--size", "32", "--runs", "3"]);
    assert!(out.contains("input       1×3×32×32"), "{out}");
    let ms: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("latency"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no latency in {out}"));
    assert!(ms > 0.0, "{out}");
    assert!(out.contains("FLOPs") && out.contains("parameters"), "{out}");
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&["inspect", "--model", s(&dir.path().join("missing.prunus"))]);
    assert!(err.contains("missing.prunus"), "{err}");
    let corrupt = dir.path().join("corrupt.prunus");
    std::fs::write(&corrupt, b"this is not a model file").unwrap();
    let err = fails(&["bench", "--model", s(&corrupt)]);
    assert!(err.contains("corrupt.prunus"), "{err}");
    let err = fails(&["eval", "--model", s(&corrupt)]);
    assert!(err.contains("corrupt.prunus"), "{err}");
    let err = fails(&[
        "train",
        "--out",
        s(&dir.path().join("m.prunus")),
        "--data",
        "mnist",
    ]);
    assert!(err.contains("mnist"), "{err}");
    let err = fails(&[
        "train",
        "--out",
        s(&dir.path().join("m.prunus")),
        "--data",
        "inria:/nonexistent",
    ]);
    assert!(err.contains("/nonexistent"), "{err}");
    let err = fails(&["bench", "--model", s(&corrupt), "--device", "tpu"]);
    assert!(err.contains("tpu"), "{err}");
}
