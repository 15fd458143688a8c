//! The whole method in one command: synthetic aerial scenes → a gated U-Net trained on them →
//! pruned to lose at most 1 point of IoU on the validation scenes → fine-tuned → measured on
//! held-out test scenes the search never saw.
//!
//! ```sh
//! cargo run --release --example quickstart                  # CPU (flex)
//! cargo run --release --example quickstart -- --device wgpu # GPU
//! ```
//!
//! Options: `--device NAME`, `--run DIR` (runs/quickstart), `--size PX` (64), `--train N` (800
//! scenes), `--valid N` (200), `--test N` (200), `--epochs N` (5), `--tolerance POINTS` (1, of
//! IoU), `--seed N` (0: the initial weights, the training order and the run; the scenes stay). Writes to the run
//! folder: `trained.prunus`, `prune/pruned.prunus`, `prune/report.json`, `metric_vs_flops.svg`,
//! `widths.svg`, `predictions.png` (image, truth, unpruned, pruned). Run it again with the same
//! folder and it resumes where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use prunus::data::{Metric, RgbImage, SyntheticConfig, Tiling};
use prunus::models::UNetConfig;
use prunus::surgery::{ModelFile, Network};
use prunus::{
    LossConfig, PruneConfig, SegmentationData, SegmentationTask, TrainConfig, plots, predict_image,
    prune_to_tolerance, train,
};

#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "The whole method: train a gated U-Net, prune it to an IoU tolerance, test it")]
struct Args {
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "default")]
    device: String,
    /// The run folder; run again with the same folder and it resumes where it stopped.
    #[arg(long, value_name = "DIR", default_value = "runs/quickstart")]
    run: PathBuf,
    /// Side of the square scenes, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 64)]
    size: usize,
    /// Training scenes.
    #[arg(long, value_name = "N", default_value_t = 800)]
    train: usize,
    /// Validation scenes (the search's).
    #[arg(long, value_name = "N", default_value_t = 200)]
    valid: usize,
    /// Test scenes (never seen by the search).
    #[arg(long, value_name = "N", default_value_t = 200)]
    test: usize,
    /// Training epochs.
    #[arg(long, value_name = "N", default_value_t = 5)]
    epochs: usize,
    /// Points of validation IoU the pruned network may lose.
    #[arg(long, value_name = "POINTS", default_value_t = 1.0)]
    tolerance: f64,
    /// Seed of the initial weights, the training order and the run (the scenes stay).
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
}

fn main() {
    cli::main_with(run);
}

/// `1942577` → `1,942,577`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn file_size(path: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    Ok(std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = prunus::device(&args.device)?;
    let run_dir = args.run;
    let size = args.size;
    let n_train = args.train;
    let n_valid = args.valid;
    let n_test = args.test;
    let epochs = args.epochs;
    let tolerance = args.tolerance;
    let seed = args.seed;
    let start = Instant::now();

    // 1. Data: synthetic aerial scenes in three splits from three generator seeds: training,
    //    the search's validation, and a test split the search never sees.
    let scenes = SyntheticConfig::new().with_size(size);
    let split = |i: u64, n| SegmentationData::synthetic(scenes.clone().with_seed(i), 0, n);
    let (train_data, valid_data, test_data) =
        (split(0, n_train), split(1, n_valid), split(2, n_test));

    // 2. Train a U-Net with a gate on every filter; λ·Σ|g| pushes unneeded gates to zero.
    println!(
        "[1/3] training a gated U-Net on {n_train} synthetic {size}×{size} scenes ({epochs} epochs, {})",
        prunus::device_label(&device)
    );
    device.seed(seed);
    let unet = UNetConfig::standard(3, 1, 16, 4).init(&device)?;
    let config = TrainConfig::new()
        .with_seed(seed)
        .with_epochs(epochs)
        .with_batch_size(8)
        .with_learning_rate(2e-3)
        .with_loss(LossConfig::new().with_gate_l1(1e-4));
    let trained = train(
        unet,
        &train_data,
        &valid_data,
        &run_dir.join("train"),
        &config,
        &device,
    )?;
    let train_seconds = start.elapsed().as_secs_f64();
    let network = Network::UNet(trained.model);
    let trained_path = run_dir.join("trained.prunus");
    ModelFile::original(network.clone(), [size, size])?.save_replacing(&trained_path)?;

    // 3. Prune to the tolerance, with a short fine-tune after each step and at the end.
    println!("[2/3] pruning to a {tolerance}-point IoU tolerance");
    let tune = |epochs: usize| TrainConfig::fine_tuning(epochs);
    let prune_dir = run_dir.join("prune");
    let config = PruneConfig::new()
        .with_tolerance(tolerance)
        .with_fine_tune(Some(tune(1)))
        .with_final_fine_tune(Some(tune(2)))
        .with_seed(seed)
        .with_run_dir(Some(prune_dir.clone()));
    let tune_data = train_data.take(256);
    let mut task = SegmentationTask::new(tune_data, valid_data.clone())
        .with_metric(Metric::Iou)
        .with_test(test_data.clone());
    let outcome = prune_to_tolerance(network.clone(), &mut task, &config, &device)?;
    let report = &outcome.report;

    // 4. Plots.
    println!("[3/3] plotting");
    std::fs::write(
        run_dir.join("metric_vs_flops.svg"),
        plots::metric_vs_flops(report),
    )?;
    std::fs::write(run_dir.join("widths.svg"), plots::widths(report))?;
    // The four scenes with the most buildings among the first 64 test scenes.
    let mut shown: Vec<_> = (0..64.min(n_test))
        .map(|i| test_data.sample(i))
        .collect::<Result<_, _>>()?;
    shown.sort_by(|a, b| b.building_fraction().total_cmp(&a.building_fraction()));
    shown.truncate(4);
    let predict = |model: &Network| -> Result<Vec<Vec<f32>>, prunus::Error> {
        shown
            .iter()
            .map(|s| {
                let image = RgbImage {
                    width: size,
                    height: size,
                    data: s.image.clone(),
                };
                predict_image(model, &image, Tiling::new(size, 0), 16, 1, &device)
            })
            .collect()
    };
    plots::predictions_png(
        run_dir.join("predictions.png"),
        &shown,
        &predict(&network)?,
        &predict(&outcome.model)?,
    )?;

    let mb =
        |p: &Path| -> Result<f64, Box<dyn std::error::Error>> { Ok(file_size(p)? as f64 / 1e6) };
    let (size_before, size_after) = (mb(&trained_path)?, mb(&prune_dir.join("pruned.prunus"))?);
    println!();
    println!("| | before | after | |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| FLOPs (one {size}×{size} image) | {:.3} G | {:.4} G | {:.1}% cut |",
        report.flops_before as f64 / 1e9,
        report.flops_after as f64 / 1e9,
        100.0 * report.flops_cut()
    );
    println!(
        "| parameters | {} | {} | {:.1}× smaller |",
        thousands(report.params_before),
        thousands(report.params_after),
        report.params_before as f64 / report.params_after.max(1) as f64
    );
    println!(
        "| model file | {size_before:.2} MB | {size_after:.3} MB | {:.1}× smaller |",
        size_before / size_after
    );
    println!(
        "| latency ({}) | {:.2} ms | {:.2} ms | {:.2}× faster |",
        report.device,
        report.latency_ms_before,
        report.latency_ms_after,
        report.speedup()
    );
    let ci =
        |c: Option<&[f64; 2]>| c.map_or(String::new(), |[lo, hi]| format!(" [{lo:+.2}, {hi:+.2}]"));
    let [lo, hi] = report.drop_interval.unwrap_or([f64::NAN; 2]);
    println!(
        "| IoU, validation (searched on) | {:.2}% | {:.2}% | drop {:.2}, 95% interval [{lo:.2}, {hi:.2}] (tolerance {tolerance}) |",
        report.baseline, report.final_metric, report.drop
    );
    if let Some(test) = &report.test {
        for m in Metric::ALL {
            let name = m.to_string();
            let (b, a) = (test.before[&name], test.after[&name]);
            println!(
                "| {name}, test (held out) | {b:.2}% | {a:.2}% | change {:+.2}{} |",
                a - b,
                ci(test.changes.get(&name))
            );
        }
    }
    println!();
    println!(
        "training {train_seconds:.0} s, pruning {:.0} s ({} validation passes), total {:.0} s",
        report.seconds,
        report.evaluations,
        start.elapsed().as_secs_f64()
    );
    println!(
        "run folder {}: trained.prunus, prune/pruned.prunus, prune/report.json, metric_vs_flops.svg, widths.svg, predictions.png",
        run_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(1_942_577), "1,942,577");
    }
}
