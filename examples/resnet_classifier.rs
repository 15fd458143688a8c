//! Your own network and your own data through `prune_to_tolerance`: a small ResNet (residual
//! blocks, BatchNorm, projection shortcuts, global pooling, a linear head) trained on
//! scikit-learn's handwritten digits, pruned to lose at most one point of top-1 accuracy on the
//! validation split, and measured on a test split the search never saw.
//!
//! ```sh
//! cargo run --release --example resnet_classifier
//! ```
//!
//! Options: `--device NAME`, `--run DIR` (runs/resnet_classifier), `--epochs N` (30),
//! `--tolerance POINTS` (1), `--seed N` (0: the split and the shuffling). The network and the
//! data are in `examples/common/resnet.rs`: what makes the network prunable is 30 lines there
//! (17 statements; a loop over the blocks that names each residual stream's producers).
//! Run it again with the same folder and the pruning resumes where it stopped.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use prunus::data::Digits;
use prunus::surgery::ModelFile;
use prunus::{ClassificationTask, PruneConfig, Task, TrainConfig, prune_to_tolerance};

#[path = "common/cli.rs"]
mod cli;
#[path = "common/resnet.rs"]
mod resnet;

#[derive(Parser, Debug)]
#[command(about = "Your own network and data: a ResNet on digits, pruned to a top-1 tolerance")]
struct Args {
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "default")]
    device: String,
    /// The run folder; run again with the same folder and the pruning resumes.
    #[arg(long, value_name = "DIR", default_value = "runs/resnet_classifier")]
    run: PathBuf,
    /// Training epochs.
    #[arg(long, value_name = "N", default_value_t = 30)]
    epochs: usize,
    /// Points of validation top-1 accuracy the pruned network may lose.
    #[arg(long, value_name = "POINTS", default_value_t = 1.0)]
    tolerance: f64,
    /// Seed of the split and the shuffling.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
}

fn main() {
    cli::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = prunus::device(&args.device)?;
    let run_dir = args.run;
    let epochs = args.epochs;
    let tolerance = args.tolerance;
    let seed = args.seed;
    let start = Instant::now();

    // 1. Data: 60% training, 20% validation (the search's), 20% test (never seen by it).
    let [train, valid, test] = Digits::bundled().split([0.6, 0.2], seed);
    println!(
        "digits: {} training, {} validation, {} test (8×8, 10 classes)",
        train.len(),
        valid.len(),
        test.len()
    );
    let mut task = ClassificationTask::new(
        resnet::dataset(&train),
        resnet::dataset(&valid),
        resnet::DigitBatcher,
    );
    let test = resnet::dataset(&test);

    // 2. Train with the gates and their L1 penalty.
    let model = resnet::ResNet::new(1, &[32, 64, 128], 10, &device);
    println!("[1/2] training a ResNet ({epochs} epochs)");
    let training = TrainConfig::new()
        .with_epochs(epochs)
        .with_batch_size(32)
        .with_learning_rate(2e-3)
        .with_seed(seed);
    let trained = task.train(model, &training, &device)?;
    let train_seconds = start.elapsed().as_secs_f64();

    // 3. Prune to the tolerance, one fine-tuning epoch after each step, three at the end.
    println!("[2/2] pruning to a {tolerance}-point top-1 tolerance");
    let tune = |epochs: usize| TrainConfig::fine_tuning(epochs).with_batch_size(32);
    let config = PruneConfig::new()
        .with_tolerance(tolerance)
        .with_fine_tune(Some(tune(1)))
        .with_final_fine_tune(Some(tune(3)))
        .with_eval_batch_size(128)
        .with_latency_runs(50)
        .with_run_dir(Some(run_dir.join("prune")));
    let outcome = prune_to_tolerance(trained.clone(), &mut task, &config, &device)?;
    let report = &outcome.report;
    let test_before = task.accuracy(&trained, &test, 128, &device)?;
    let test_after = task.accuracy(&outcome.model, &test, 128, &device)?;
    let cost = task.cost(&trained, &device);

    println!();
    println!("| | before | after | |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| FLOPs (one 8×8 digit) | {:.2} M | {:.3} M | {:.1}% cut |",
        report.flops_before as f64 / 1e6,
        report.flops_after as f64 / 1e6,
        100.0 * report.flops_cut()
    );
    println!(
        "| parameters | {} | {} | {:.1}× smaller |",
        report.params_before,
        report.params_after,
        report.params_before as f64 / report.params_after.max(1) as f64
    );
    println!(
        "| latency ({}) | {:.3} ms | {:.3} ms | {:.2}× faster |",
        report.device,
        report.latency_ms_before,
        report.latency_ms_after,
        report.speedup()
    );
    println!(
        "| top-1, validation (searched) | {:.2}% | {:.2}% | drop {:.2} (tolerance {tolerance}) |",
        report.baseline, report.final_metric, report.drop
    );
    println!(
        "| top-1, test (never seen) | {test_before:.2}% | {test_after:.2}% | drop {:.2} |",
        test_before - test_after
    );
    println!();
    println!("widths (group: before → after):");
    for w in &report.widths {
        println!("  {:<20} {:>4} → {}", w.group, w.before, w.after);
    }
    // The pruned network as a file: it rebuilds with nothing but the file.
    let path = run_dir.join("prune").join("pruned.prunus");
    let file: ModelFile<resnet::ResNet> = ModelFile::load(&path, &device)?;
    println!(
        "pruned model: {} ({} bytes; loaded back: test top-1 {:.2}%)",
        path.display(),
        std::fs::metadata(&path)?.len(),
        task.accuracy(&file.network, &test, 128, &device)?
    );
    println!(
        "{} layers counted; training {train_seconds:.0} s, pruning {:.0} s ({} validation passes), total {:.0} s",
        cost.layers.len(),
        report.seconds,
        report.evaluations,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
