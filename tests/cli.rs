//! The `prunus` binary, run as a user runs it, on tiny networks and data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prunus::data::{Layout, RgbImage, Split, Tiling, inria_pairs, write_png};

#[path = "binary.rs"]
mod binary;
mod common;

use binary::{prune_args, s};

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

/// Runs a command that must fail on its input or usage (exit code 3 or 2, never 1, which is
/// left to failures of the computation); returns its stderr, checked to be an `error:` line
/// followed by its causes, one `caused by:` line each.
fn fails(args: &[&str]) -> String {
    let (code, stderr) = failure(args);
    assert!(
        code == 2 || code == 3,
        "prunus {args:?}: exit code {code}: {stderr}"
    );
    stderr
}

/// Runs a command that must fail with exit code `code`; returns its stderr.
fn fails_with(code: i32, args: &[&str]) -> String {
    let (got, stderr) = failure(args);
    assert_eq!(got, code, "prunus {args:?}: {stderr}");
    stderr
}

fn failure(args: &[&str]) -> (i32, String) {
    let out = prunus(args);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let code = out.status.code().expect("an exit code, not a signal");
    assert_ne!(code, 0, "prunus {args:?} should fail");
    let mut lines = stderr.lines();
    assert!(
        lines.next().is_some_and(|l| l.starts_with("error: ")),
        "{stderr}"
    );
    assert!(lines.all(|l| l.starts_with("caused by: ")), "{stderr}");
    (code, stderr)
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
        "--test-samples",
        "6",
        "--also",
        "accuracy=100",
    ]);
    assert!(out.contains("saved"), "{out}");
    // The tolerance is on IoU by default; the held-out test scenes are measured apart.
    assert!(out.contains("IoU: "), "{out}");
    assert!(out.contains("pixel accuracy within 100"), "{out}");
    assert!(
        out.contains("test (never seen by the search): IoU"),
        "{out}"
    );
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

    // The fine-tunings' rate fitted to the network first: at a tolerance of 100 the first
    // rate tried passes.
    let calibrated = dir.path().join("calibrated.prunus");
    let out = ok(&[
        "prune",
        "--model",
        s(&model),
        "--out",
        s(&calibrated),
        "--tolerance",
        "100",
        "--flops",
        "0.3",
        "--tune-samples",
        "4",
        "--final-epochs",
        "0",
        "--valid-samples",
        "4",
        "--test-samples",
        "0",
        "--calibrate-fine-tune",
    ]);
    assert!(
        out.contains(
            "fine-tuning calibrated: learning rate 1.0e-3 (drop of a fine-tune alone at 1.0e-3: "
        ),
        "{out}"
    );
    assert!(
        dir.path()
            .join("calibrated.prunus.run/calibration.json")
            .is_file()
    );
    let y = dir.path().join("y.prunus");
    let nothing_to_calibrate = [
        "prune",
        "--model",
        s(&model),
        "--out",
        s(&y),
        "--tune-samples",
        "0",
        "--calibrate-fine-tune",
    ];
    let err = fails_with(2, &nothing_to_calibrate);
    assert!(err.contains("calibrate_fine_tune"), "{err}");

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
    for (also, word) in [
        ("accuracy", "METRIC=POINTS"),
        ("bogus=1", "bogus"),
        ("iou=-1", "≥ 0"),
    ] {
        let args = [
            "prune",
            "--model",
            s(&model),
            "--out",
            "x.prunus",
            "--also",
            also,
        ];
        let err = usage_error(&args, "--also");
        assert!(err.contains(word), "{also}: {err}");
    }
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
        "--force",
    ]);
    assert!(err.contains("none.png"), "{err}");
    assert_eq!(
        RgbImage::open(&mask).unwrap().width,
        w,
        "the mask is untouched"
    );
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

    // A batch: the pass takes three images, and images/s counts all three.
    let out = ok(&[
        "bench",
        "--model",
        s(&model),
        "--size",
        "32",
        "--runs",
        "3",
        "--batch",
        "3",
    ]);
    assert!(out.contains("input       3×3×32×32"), "{out}");
    let figure = |name: &str| -> f64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let (ms, images) = (figure("latency"), figure("throughput"));
    let expected = 3.0 * 1e3 / ms;
    assert!((images - expected).abs() <= 0.01 * expected + 0.1, "{out}");
}

#[test]
fn bad_inputs_are_errors_with_their_causes_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // Input (3): a missing or corrupt model, with the cause on its own line.
    let err = fails_with(
        3,
        &["inspect", "--model", s(&dir.path().join("missing.prunus"))],
    );
    assert!(err.contains("error: cannot read model file"), "{err}");
    assert!(err.contains("\ncaused by: No such file"), "{err}");
    let corrupt = dir.path().join("corrupt.prunus");
    std::fs::write(&corrupt, b"this is not a model file").unwrap();
    for command in ["eval", "bench"] {
        let err = fails_with(3, &[command, "--model", s(&corrupt)]);
        assert!(err.contains("corrupt.prunus"), "{err}");
        assert!(
            err.contains("\ncaused by: not a prunus model file"),
            "{err}"
        );
    }
    // `train` into a fresh file with `extra` options.
    let out = dir.path().join("m.prunus");
    let train = |extra: &[&'static str]| [&["train", "--out", s(&out)][..], extra].concat();
    let err = fails_with(3, &train(&["--data", "inria:/nonexistent"]));
    assert!(err.contains("/nonexistent"), "{err}");
    // Usage (2): an unknown backend, an unknown data source, a size the network cannot take,
    // an option clap refuses.
    let err = fails_with(2, &["bench", "--model", s(&corrupt), "--device", "tpu"]);
    assert!(err.contains("tpu"), "{err}");
    let err = fails_with(2, &train(&["--data", "mnist"]));
    assert!(err.contains("mnist"), "{err}");
    fails_with(2, &train(&["--size", "7", "--depth", "2"]));
    let out = prunus(&train(&["--batch", "0"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn train_from_a_pruned_model_keeps_its_widths() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let pruned = dir.path().join("pruned.prunus");
    ok(&[
        "prune",
        "--model",
        s(&model),
        "--out",
        s(&pruned),
        "--tolerance",
        "100",
        "--flops",
        "0.5",
        "--tune-samples",
        "0",
        "--valid-samples",
        "4",
        "--test-samples",
        "0",
    ]);
    let widths = |path: &Path| -> Vec<String> {
        let out = ok(&["inspect", "--model", s(path)]);
        out.lines()
            .skip_while(|l| !l.starts_with("widths"))
            .skip(1)
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let pruned_widths = widths(&pruned);
    assert!(!pruned_widths.is_empty());
    for (name, fresh) in [("further.prunus", false), ("fresh.prunus", true)] {
        let out_path = dir.path().join(name);
        let mut args = vec![
            "train",
            "--out",
            s(&out_path),
            "--from",
            s(&pruned),
            "--epochs",
            "1",
            "--train-samples",
            "8",
            "--valid-samples",
            "4",
        ];
        if fresh {
            args.push("--fresh");
        }
        let out = ok(&args);
        assert!(out.contains("saved"), "{out}");
        // Trained in the pruned network's widths, at its input size.
        assert_eq!(widths(&out_path), pruned_widths, "{name}");
        let inspect = ok(&["inspect", "--model", s(&out_path)]);
        assert!(inspect.contains("input size    16×16"), "{inspect}");
    }
    usage_error(
        &["train", "--out", s(&dir.path().join("x.prunus")), "--fresh"],
        "--from",
    );
    let err = fails(&[
        "train",
        "--out",
        s(&pruned),
        "--from",
        s(&pruned),
        "--force",
    ]);
    assert!(err.contains("never overwrites"), "{err}");
}

#[test]
fn eval_measures_whole_tiles_through_the_tiling() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let data = dir.path().join("inria");
    common::write_tile(&data, "austin1", 40, 36, 1);
    common::write_tile(&data, "austin2", 27, 50, 2);
    common::write_tile(&data, "austin9", 16, 16, 9);
    let out = ok(&[
        "eval",
        "--device",
        "flex",
        "--model",
        s(&model),
        "--data",
        &format!("inria:{}", s(&data)),
        "--whole-tiles",
        "--window",
        "16",
        "--window-overlap",
        "4",
    ]);
    assert!(out.contains("tiles           2"), "{out}");
    // The same figures as the library's whole-tile measurement of the same file.
    let device = burn::tensor::Device::flex();
    let file =
        prunus::surgery::ModelFile::<prunus::surgery::Network>::load(&model, &device).unwrap();
    let pairs = inria_pairs(&data, Split::Valid).unwrap();
    let m = prunus::WholeTiles::new(Layout::Inria, pairs, Tiling::new(16, 4))
        .with_align(4)
        .measure(&file.network, &device)
        .unwrap();
    for name in ["pixel accuracy", "IoU", "precision"] {
        let line = format!("{name:<15} {:.2}%", m.metrics[name]);
        assert!(out.contains(&line), "{line} not in {out}");
    }
    let err = fails(&["eval", "--model", s(&model), "--whole-tiles"]);
    assert!(
        err.contains("--whole-tiles") && err.contains("synthetic"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Regression tests for the bugs of issue 19, each named after its bug.

/// Runs a command clap must refuse (exit 2) and returns its stderr, which names `flag`.
fn usage_error(args: &[&str], flag: &str) -> String {
    let out = prunus(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "prunus {args:?}: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(flag),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A U-Net (base 8, depth 2) on 64×64 scenes: pruning it takes a few seconds, long enough to
/// be interrupted.
fn slower_model(dir: &Path) -> PathBuf {
    let path = dir.join("slower.prunus");
    ok(&[
        "train",
        "--device",
        "flex",
        "--out",
        s(&path),
        "--base",
        "8",
        "--depth",
        "2",
        "--size",
        "64",
        "--epochs",
        "1",
        "--train-samples",
        "16",
        "--valid-samples",
        "8",
    ]);
    path
}

/// Accepted flags, removed channels and widths of a finished run.
fn run_outcome(run: &Path) -> (Vec<(bool, u64)>, serde_json::Value) {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let steps = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["accepted"].as_bool().unwrap(),
                s["removed"].as_u64().unwrap(),
            )
        })
        .collect();
    (steps, report["widths"].clone())
}

/// Starts `args`, waits for the first progress line on stderr, then SIGKILLs the process.
fn kill_after_first_step(args: &[&str]) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_prunus"))
        .args(args)
        .env_remove("BURN_DEVICE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        if line.unwrap().contains("passes") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

#[test]
fn bug1_prune_resumes_in_a_new_process_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let model = slower_model(dir.path());
    let whole = dir.path().join("whole.prunus");
    ok(&prune_args(s(&model), s(&whole)));
    let expected = run_outcome(&dir.path().join("whole.prunus.run"));
    assert!(
        expected.0.len() >= 3,
        "a run of several steps: {:?}",
        expected.0
    );

    let killed = dir.path().join("killed.prunus");
    kill_after_first_step(&prune_args(s(&model), s(&killed)));
    assert!(!killed.exists(), "no output before the run ends");
    let out = prunus(&prune_args(s(&model), s(&killed)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming the run in"), "{stderr}");
    assert_eq!(run_outcome(&dir.path().join("killed.prunus.run")), expected);

    // A --force rerun after a finished run, with an explicit --run: resumes, same result.
    let mut again = prune_args(s(&model), s(&whole));
    let run = dir.path().join("whole.prunus.run");
    again.extend(["--force", "--run", s(&run)]);
    let out = prunus(&again);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("search finished"), "{stderr}");
    assert_eq!(run_outcome(&run), expected);
}

#[test]
fn bug8_two_prune_runs_in_one_run_folder_are_locked_out() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let model = slower_model(dir.path());
    let run = dir.path().join("shared.run");
    let mut first = prune_args(s(&model), "a.prunus");
    first.extend(["--run", s(&run)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_prunus"))
        .current_dir(dir.path())
        .args(&first)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap(); // the first step: the run holds its folder
    let b = dir.path().join("b.prunus");
    let mut second = prune_args(s(&model), s(&b));
    second.extend(["--run", s(&run)]);
    let out = prunus(&second);
    let err = String::from_utf8_lossy(&out.stderr);
    let finished = child.try_wait().unwrap().is_some();
    if !finished {
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("in use by another prunus run"), "{err}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A little-endian TIFF of `bands` 8-bit samples per pixel whose header claims
/// 100000×100000 pixels in one strip that the file does not hold.
fn lying_tiff(bands: u16) -> Vec<u8> {
    let entries: Vec<(u16, u16, u32, u32)> = vec![
        (256, 4, 1, 100_000),                        // ImageWidth
        (257, 4, 1, 100_000),                        // ImageLength
        (258, 3, 1, 8),                              // BitsPerSample (8 for all)
        (259, 3, 1, 1),                              // no compression
        (262, 3, 1, if bands == 1 { 1 } else { 2 }), // grey or RGB
        (273, 4, 1, 200),                            // StripOffsets
        (277, 3, 1, u32::from(bands)),               // SamplesPerPixel
        (278, 4, 1, 100_000),                        // RowsPerStrip
        (279, 4, 1, 10_000_000 * u32::from(bands)),  // StripByteCounts (a lie)
    ];
    let mut b = b"II*\0".to_vec();
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&value.to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b
}

/// CRC-32 (IEEE) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 65-byte PNG whose header claims 100000×100000 RGB pixels.
fn lying_png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |b: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        b.extend_from_slice(&body);
        b.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut b, b"IHDR", &ihdr);
    chunk(
        &mut b,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut b, b"IEND", &[]);
    b
}

#[test]
fn bug2_tiny_files_claiming_100000_squared_are_errors_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let png = lying_png();
    let files = [
        ("grey.tif", lying_tiff(1)),
        ("rgb.tif", lying_tiff(3)),
        ("huge.png", png),
    ];
    for (name, bytes) in files {
        let input = dir.path().join(name);
        std::fs::write(&input, bytes).unwrap();
        let mask = dir.path().join(format!("{name}-mask.png"));
        let err = fails(&[
            "infer",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--output",
            s(&mask),
        ]);
        assert!(err.contains(name) && err.contains("100000×100000"), "{err}");
        assert!(!mask.exists());
    }
}

#[test]
fn bug3_unchecked_infer_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let input = dir.path().join("in.png");
    write_png(&input, 40, 40, 3, &[100; 40 * 40 * 3]).unwrap();
    let mask = dir.path().join("mask.png");
    let base = [
        "infer",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&mask),
    ];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    usage_error(&with(&["--tile", "0"]), "--tile");
    for t in ["2", "-1", "NaN", "0", "1"] {
        let arg = format!("--threshold={t}");
        let args = [&base[..], &[arg.as_str()]].concat();
        usage_error(&args, "--threshold");
    }
    let err = fails(&with(&["--tile", "64", "--overlap", "64"]));
    assert!(
        err.contains("--overlap 64 must be at most half of --tile 64"),
        "{err}"
    );
    let err = fails(&with(&["--tile", "64", "--overlap", "40"]));
    assert!(err.contains("at most half"), "{err}");
    let err = fails(&with(&["--tile", "2", "--overlap", "0"]));
    assert!(
        err.contains("smaller than this network's down-sampling"),
        "{err}"
    );
    assert!(!mask.exists(), "no mask from a refused command");
}

#[test]
fn bug4_a_size_the_network_cannot_take_is_an_error_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path()); // depth 2: multiples of 4
    let err = fails(&["eval", "--model", s(&model), "--size", "7"]);
    assert!(
        err.contains("--size 7") && err.contains("multiple of 4"),
        "{err}"
    );
    let out = dir.path().join("t.prunus");
    let err = fails(&["train", "--out", s(&out), "--size", "7", "--depth", "2"]);
    assert!(
        err.contains("--size 7") && err.contains("multiple of 4"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--out",
        s(&out),
        "--size",
        "48",
        "--arch",
        "ternausnet",
    ]);
    assert!(err.contains("multiple of 32"), "{err}");
    let err = fails(&["bench", "--model", s(&model), "--size", "7"]);
    assert!(err.contains("multiple of 4"), "{err}");
    let err = fails(&[
        "prune",
        "--model",
        s(&model),
        "--out",
        s(&out),
        "--size",
        "7",
    ]);
    assert!(err.contains("multiple of 4"), "{err}");
    assert!(!out.exists());
}

#[test]
fn bug5_sizes_beyond_the_machine_are_refused_with_an_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = dir.path().join("t.prunus");
    let err = fails(&["eval", "--model", s(&model), "--size", "100000"]);
    assert!(err.contains("evaluation would need about"), "{err}");
    let err = fails(&["train", "--out", s(&out), "--size", "100000"]);
    assert!(err.contains("training would need about"), "{err}");
    let err = fails(&["train", "--out", s(&out), "--base", "100000"]);
    assert!(
        err.contains("100000") && err.contains("above the limit"),
        "{err}"
    );
    let err = fails(&["train", "--out", s(&out), "--depth", "40"]);
    assert!(err.contains("depth 40 is above the limit"), "{err}");
    let err = fails(&["train", "--out", s(&out), "--base", "20000", "--depth", "1"]);
    assert!(err.contains("would need about"), "{err}");
    assert!(!out.exists());
    // A batch larger than the data is only as large as the data.
    let stdout = ok(&[
        "eval",
        "--model",
        s(&model),
        "--batch",
        "1000000",
        "--valid-samples",
        "8",
    ]);
    assert!(stdout.contains("samples         8"), "{stdout}");
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Rewrites a model file's header through `edit`, with lengths and checksum recomputed.
fn edit_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let len = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let (header, weights) = bytes[36..].split_at(len(12));
    let mut value: serde_json::Value = serde_json::from_slice(header).unwrap();
    edit(&mut value);
    let header = serde_json::to_vec(&value).unwrap();
    let sum = prunus::surgery::checksum(&[&header, weights]);
    let mut out = bytes[..12].to_vec();
    for n in [header.len() as u64, weights.len() as u64, sum] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    [out, header, weights.to_vec()].concat()
}

#[test]
fn bug6_model_file_headers_are_checked_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(tiny_model(dir.path())).unwrap();
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: [(&str, Edit, &str); 2] = [
        (
            "wide.prunus",
            Box::new(|h| {
                h["architecture"]["config"]["encoder"] =
                    serde_json::json!([[20000, 20000], [20000, 20000], [20000, 20000]]);
            }),
            "header describes",
        ),
        (
            "far.prunus",
            Box::new(|h| h["provenance"]["input_size"] = serde_json::json!([1_000_000_000u64, 16])),
            "input size 1000000000×16",
        ),
    ];
    for (name, edit, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, edit_header(&bytes, edit)).unwrap();
        for command in ["bench", "eval", "inspect"] {
            let err = fails(&[command, "--model", s(&path)]);
            assert!(err.contains(name) && err.contains(want), "{command}: {err}");
        }
    }
}

#[test]
fn bug7_outputs_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let input = dir.path().join("in.png");
    write_png(&input, 40, 40, 3, &[100; 40 * 40 * 3]).unwrap();
    let infer = |output: &Path, force: bool| -> Vec<String> {
        let mut args = vec![
            "infer",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--output",
        ];
        args.push(s(output));
        if force {
            args.push("--force");
        }
        args.into_iter().map(str::to_owned).collect()
    };
    let call_fails = |args: Vec<String>| fails(&strs(&args));

    // An existing mask is kept without --force, replaced with it.
    let mask = dir.path().join("mask.png");
    std::fs::write(&mask, b"keep me").unwrap();
    let err = call_fails(infer(&mask, false));
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&mask).unwrap(), b"keep me");
    ok(&strs(&infer(&mask, true)));
    assert_eq!(RgbImage::open(&mask).unwrap().width, 40);

    // A symbolic link (dangling or not) is not replaced without --force.
    let link = dir.path().join("link.png");
    std::os::unix::fs::symlink(dir.path().join("target.png"), &link).unwrap();
    let err = call_fails(infer(&link, false));
    assert!(err.contains("symbolic link"), "{err}");

    // A missing folder is an error about writing, before the work.
    let missing = dir.path().join("no/such/folder/mask.png");
    let err = call_fails(infer(&missing, false));
    assert!(
        err.contains("does not exist") && err.contains("no/such/folder"),
        "{err}"
    );

    // train and prune refuse an --out that is a folder before training or pruning.
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let err = fails(&["train", "--out", s(&folder), "--force"]);
    assert!(err.contains("is a folder"), "{err}");
    let err = fails(&[
        "prune",
        "--model",
        s(&model),
        "--out",
        s(&folder),
        "--force",
    ]);
    assert!(err.contains("is a folder"), "{err}");
}

#[test]
fn bug8_a_closed_pipe_and_zero_counts_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // `prunus inspect | head -0`: the reader is gone before the first line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_prunus"))
        .args(["inspect", "--model", s(&model)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    usage_error(&["eval", "--model", s(&model), "--batch", "0"], "--batch");
    usage_error(&["bench", "--model", s(&model), "--runs", "0"], "--runs");
    usage_error(&["bench", "--model", s(&model), "--batch", "0"], "--batch");
    usage_error(&["train", "--out", "x.prunus", "--batch", "0"], "--batch");
}

#[test]
fn infer_keeps_a_geotiffs_georeferencing_on_its_mask() {
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag;
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // A 40×24 RGB GeoTIFF placed in UTM zone 18N (EPSG:32618) with 0.3 m pixels.
    let input = dir.path().join("tile.tif");
    let mut encoder = TiffEncoder::new(std::fs::File::create(&input).unwrap()).unwrap();
    let mut image = encoder.new_image::<colortype::RGB8>(40, 24).unwrap();
    let tags = image.encoder();
    tags.write_tag(Tag::ModelPixelScaleTag, &[0.3, 0.3, 0.0][..])
        .unwrap();
    tags.write_tag(
        Tag::ModelTiepointTag,
        &[0.0, 0.0, 0.0, 583_000.5, 4_507_400.25, 0.0][..],
    )
    .unwrap();
    let keys: [u16; 12] = [1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 32618];
    tags.write_tag(Tag::GeoKeyDirectoryTag, &keys[..]).unwrap();
    tags.write_tag(Tag::GdalNodata, "0").unwrap();
    let pixels: Vec<u8> = (0..40 * 24 * 3).map(|i| (i * 13 % 256) as u8).collect();
    image.write_data(&pixels).unwrap();

    let mask = dir.path().join("mask.tif");
    ok(&[
        "infer",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&mask),
    ]);
    let expected = prunus::data::Georeferencing::read(&input).unwrap().unwrap();
    assert_eq!(expected.key_directory.as_deref(), Some(&keys[..]));
    assert_eq!(
        prunus::data::Georeferencing::read(&mask).unwrap(),
        Some(expected)
    );
    assert_eq!(RgbImage::open(&mask).unwrap().width, 40);
    // A PNG mask cannot carry it: written, with a note.
    let png = dir.path().join("mask.png");
    let out = prunus(&[
        "infer",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&png),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("georeferenced"));
}

/// An RGB GeoTIFF of `width × height` pixels written a strip at a time (never whole in memory),
/// placed in UTM zone 18N (EPSG:32618) with 0.3 m pixels as GDAL writes one: pixel scale,
/// tiepoint, key directory with its double and ASCII params, nodata.
fn write_geotiff(path: &Path, width: u32, height: u32) -> prunus::data::Georeferencing {
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag;
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = TiffEncoder::new(file).unwrap();
    let mut image = encoder.new_image::<colortype::RGB8>(width, height).unwrap();
    let tags = image.encoder();
    tags.write_tag(Tag::ModelPixelScaleTag, &[0.3, 0.3, 0.0][..])
        .unwrap();
    tags.write_tag(
        Tag::ModelTiepointTag,
        &[0.0, 0.0, 0.0, 583_000.5, 4_507_400.25, 0.0][..],
    )
    .unwrap();
    let keys: [u16; 20] = [
        1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32618, 1026, 34737, 22, 0,
    ];
    tags.write_tag(Tag::GeoKeyDirectoryTag, &keys[..]).unwrap();
    tags.write_tag(Tag::GeoDoubleParamsTag, &[298.257_223_563, 6_378_137.0][..])
        .unwrap();
    tags.write_tag(Tag::GeoAsciiParamsTag, "WGS 84 / UTM zone 18N|")
        .unwrap();
    tags.write_tag(Tag::GdalNodata, "0").unwrap();
    image.rows_per_strip(16).unwrap();
    let row = |y: u32| -> Vec<u8> {
        (0..width * 3)
            .map(|i| {
                (((i / 3) ^ y).wrapping_mul(2_654_435_761) >> 24) as u8 / 2 + (i % 3) as u8 * 40
            })
            .collect()
    };
    for y0 in (0..height).step_by(16) {
        let strip: Vec<u8> = (y0..(y0 + 16).min(height)).flat_map(row).collect();
        image.write_strip(&strip).unwrap();
    }
    image.finish().unwrap();
    drop(encoder); // flushes the file
    prunus::data::Georeferencing::read(path).unwrap().unwrap()
}

/// Runs `prunus` as `args`, sampling its peak resident memory (VmHWM) until it ends; returns its
/// stdout and that peak in MiB.
fn ok_with_peak_memory(args: &[&str]) -> (String, f64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prunus"))
        .args(args)
        .env_remove("BURN_DEVICE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        let hwm = text.lines().find_map(|l| l.strip_prefix("VmHWM:"));
        let kib = hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        peak_kib = peak_kib.max(kib.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "prunus {args:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, peak_kib as f64 / 1024.0)
}

/// Issue 18's acceptance: a 5000×5000 GeoTIFF segments into a tiled GeoTIFF mask with the same
/// georeferencing, band by band: the whole image as `f32` RGB alone would be 286 MiB, its
/// probabilities 95 MiB more; the process stays far below that (docs/benchmarks.md states the
/// figures).
#[test]
fn a_5000_squared_geotiff_segments_to_a_georeferenced_mask_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let input = dir.path().join("tile.tif");
    let geo = write_geotiff(&input, 5000, 5000);
    let mask = dir.path().join("mask.tif");
    let (out, peak_mib) = ok_with_peak_memory(&[
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
    eprintln!("{out}peak memory {peak_mib:.0} MiB");
    assert!(out.contains("5000×5000"), "{out}");
    assert_eq!(
        prunus::data::Georeferencing::read(&mask).unwrap(),
        Some(geo)
    );
    let mut decoder = tiff::decoder::Decoder::new(std::fs::File::open(&mask).unwrap()).unwrap();
    assert_eq!(decoder.dimensions().unwrap(), (5000, 5000));
    assert_eq!(decoder.chunk_dimensions(), (256, 256));
    // Bounded by the band (512 rows of 5000 pixels), not the image: whole-image inference held
    // ~22 bytes a pixel (525 MiB here).
    assert!(
        peak_mib > 0.0 && peak_mib < 250.0,
        "peak memory {peak_mib:.0} MiB"
    );
}

/// The (inode, modification time) of each mask in `dir`, hidden files aside.
fn mask_ids(dir: &Path) -> std::collections::BTreeMap<String, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let m = e.metadata().unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, (m.ino(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

#[test]
fn infer_over_a_folder_or_pattern_writes_a_mask_per_image_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let images = dir.path().join("images");
    std::fs::create_dir_all(images.join("sub")).unwrap();
    let geo = write_geotiff(&images.join("a.tif"), 70, 50);
    let pixels: Vec<u8> = (0..40 * 30 * 3).map(|i| (i * 31 % 256) as u8).collect();
    write_png(images.join("b.png"), 40, 30, 3, &pixels).unwrap();
    write_geotiff(&images.join("c.TIFF"), 33, 65);
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();
    write_png(images.join("sub/d.png"), 40, 30, 3, &pixels).unwrap();
    let masks = dir.path().join("masks");
    let infer = |input: &Path, output: &Path, extra: &[&str]| {
        let mut args = vec!["infer", "--model", s(&model), "--input", s(input)];
        args.extend(["--output", s(output), "--tile", "32", "--overlap", "8"]);
        args.extend(extra);
        ok(&args)
    };
    let out = infer(&images, &masks, &[]);
    assert!(out.contains("[3/3] c.TIFF: 33×65"), "{out}");
    assert!(out.contains("done: 3 segmented, 0 skipped"), "{out}");
    let first = mask_ids(&masks);
    let names: Vec<_> = first.keys().cloned().collect();
    assert_eq!(names, ["a.tif", "b.png", "c.TIFF"]);
    assert_eq!(
        prunus::data::Georeferencing::read(masks.join("a.tif")).unwrap(),
        Some(geo)
    );
    let b = RgbImage::open(masks.join("b.png")).unwrap();
    assert_eq!((b.width, b.height), (40, 30));

    // Run again: nothing is redone.
    let out = infer(&images, &masks, &[]);
    assert!(out.contains("done: 0 segmented, 3 skipped"), "{out}");
    assert_eq!(mask_ids(&masks), first);
    // A mask missing and what a killed run left of it: only that image is segmented, the
    // leftover removed.
    std::fs::remove_file(masks.join("b.png")).unwrap();
    std::fs::write(masks.join(".b.png.4242.tmp"), "half a mask").unwrap();
    let out = infer(&images, &masks, &[]);
    assert!(out.contains("done: 1 segmented, 2 skipped"), "{out}");
    assert!(!masks.join(".b.png.4242.tmp").exists());
    let now = mask_ids(&masks);
    assert_eq!(
        (now["a.tif"], now["c.TIFF"]),
        (first["a.tif"], first["c.TIFF"])
    );
    // While another infer holds the folder's lock, a second is refused and writes nothing.
    let held = prunus::lock_folder_with(&masks, ".prunus-infer.lock").unwrap();
    let args = [
        "infer",
        "--model",
        s(&model),
        "--input",
        s(&images),
        "--output",
        s(&masks),
    ];
    let err = fails_with(2, &[&args[..], &["--force"]].concat());
    assert!(
        err.contains("another prunus infer is writing masks into"),
        "{err}"
    );
    assert_eq!(mask_ids(&masks), now);
    drop(held);
    // --force segments every image again.
    let out = infer(&images, &masks, &["--force"]);
    assert!(out.contains("done: 3 segmented, 0 skipped"), "{out}");
    assert_ne!(mask_ids(&masks)["a.tif"], first["a.tif"]);

    // Patterns: * and ? in file and folder names.
    let pattern = images.join("*.tif");
    let out = infer(&pattern, &dir.path().join("tifs"), &[]);
    assert!(out.contains("done: 1 segmented"), "{out}");
    assert_eq!(mask_ids(&dir.path().join("tifs")).len(), 1);
    let pattern = dir.path().join("imag?s/s*/*");
    let out = infer(&pattern, &dir.path().join("sub"), &[]);
    assert!(
        out.contains("[1/1] d.png") && out.contains("done: 1 segmented"),
        "{out}"
    );

    // A corrupt image: the others are segmented, the run says which failed and exits with 3.
    std::fs::write(images.join("bad.tif"), b"II*\0 not a tiff").unwrap();
    std::fs::remove_file(masks.join("c.TIFF")).unwrap();
    let mut args = vec!["infer", "--model", s(&model), "--input", s(&images)];
    args.extend(["--output", s(&masks), "--tile", "32", "--overlap", "8"]);
    let out = prunus(&args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("done: 1 segmented, 2 skipped"), "{stdout}");
    assert!(
        stderr.contains("bad.tif") && stderr.contains("1 of 4 images"),
        "{stderr}"
    );
    assert!(masks.join("c.TIFF").is_file() && !masks.join("bad.tif").exists());
    std::fs::remove_file(images.join("bad.tif")).unwrap();

    // Refused: masks over the images, two images of one name, an output that is a file, a
    // folder with no images.
    let args = |input: &Path, output: &Path| -> Vec<String> {
        [
            "infer",
            "--model",
            s(&model),
            "--input",
            s(input),
            "--output",
            s(output),
        ]
        .map(String::from)
        .to_vec()
    };
    let err = fails_with(2, &strs(&args(&images, &images)));
    assert!(err.contains("holds the images themselves"), "{err}");
    let both = dir.path().join("*/b.png");
    let err = fails_with(2, &strs(&args(&both, &dir.path().join("m2"))));
    assert!(err.contains("two images are named b.png"), "{err}");
    let err = fails_with(2, &strs(&args(&images, &masks.join("a.tif"))));
    assert!(err.contains("is a file"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = fails_with(3, &strs(&args(&empty, &masks)));
    assert!(
        err.contains("empty") && err.contains("no .png, .tif or .tiff images"),
        "{err}"
    );
}

/// `--devices flex,flex`: `train` and the fine-tuning of `prune` run on two devices (burn-train's
/// multi-device strategy), `infer` shares a folder's images between them with the masks of one
/// device; a list that names no device is refused.
#[test]
fn devices_train_prune_and_infer_on_two_devices() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("two.prunus");
    let mut train: Vec<&str> = vec!["train", "--devices", "flex,flex", "--out", s(&model)];
    train.extend([
        "--base", "4", "--depth", "2", "--size", "16", "--epochs", "2",
    ]);
    train.extend(["--train-samples", "16", "--valid-samples", "8"]);
    let out = ok(&train);
    assert!(out.contains("saved"), "{out}");
    let pruned = dir.path().join("pruned.prunus");
    let mut prune = prune_args(s(&model), s(&pruned));
    let tune = prune.iter().position(|&a| a == "--tune-samples").unwrap();
    prune[tune + 1] = "16";
    prune.extend(["--devices", "flex,flex", "--final-epochs", "1"]);
    ok(&prune);
    assert!(pruned.is_file());

    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..4 {
        let pixels: Vec<u8> = (0..48 * 40 * 3)
            .map(|p| ((p * (i + 3)) % 256) as u8)
            .collect();
        write_png(images.join(format!("{i}.png")), 48, 40, 3, &pixels).unwrap();
    }
    let infer = |devices: &str, out: &Path| {
        let mut args = vec!["infer", "--devices", devices, "--model", s(&model)];
        args.extend([
            "--input",
            s(&images),
            "--output",
            s(out),
            "--tile",
            "32",
            "--overlap",
            "8",
        ]);
        ok(&args)
    };
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    infer("flex", &one);
    let out = infer("flex,flex", &two);
    assert!(out.contains("done: 4 segmented"), "{out}");
    for i in 0..4 {
        let name = format!("{i}.png");
        assert!(
            RgbImage::open(one.join(&name)).unwrap() == RgbImage::open(two.join(&name)).unwrap(),
            "{name}"
        );
    }
    let err = fails_with(
        2,
        &[
            "infer",
            "--devices",
            " ",
            "--model",
            s(&model),
            "--input",
            s(&images),
            "--output",
            s(&two),
        ],
    );
    assert!(err.contains("unknown device"), "{err}");
}
