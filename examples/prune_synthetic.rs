//! Prune a trained network to an error tolerance on synthetic aerial scenes.
//!
//! ```sh
//! cargo run --example train_synthetic -- --run runs/unet16        # writes runs/unet16/trained.prunus
//! cargo run --example prune_synthetic -- --model runs/unet16/trained.prunus --run runs/unet16-pruned
//! ```
//!
//! Options (all optional but `--model`): `--tolerance POINTS` (0.5), `--metric
//! accuracy|iou|dice`, `--criterion gate|l1|l2|bn-gamma|taylor|random`, `--step S` (0.5),
//! `--tune-scenes N` (scenes per fine-tuning epoch, 0 turns fine-tuning off), `--final-epochs N`,
//! `--valid N`, `--budget N` (validation passes), `--device NAME`, `--run DIR` (an interrupted run
//! resumes). The scenes are the same generator and seeds as `train_synthetic`'s.

use std::path::PathBuf;

use clap::Parser;
use prunus::data::{Metric, SyntheticConfig};
use prunus::plan::Criterion;
use prunus::surgery::{ModelFile, Network};
use prunus::{
    PruneConfig, SegmentationData, SegmentationTask, TrainConfig, evaluate, prune_to_tolerance,
};

#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "Prune a trained network to an error tolerance on synthetic aerial scenes")]
struct Args {
    /// The trained network's model file (`trained.prunus`, written by train_synthetic).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "default")]
    device: String,
    /// Points of the metric the pruned network may lose.
    #[arg(long, value_name = "POINTS", default_value_t = 0.5)]
    tolerance: f64,
    /// Share of the remaining prunable channels the first step removes, in (0, 1].
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    step: f64,
    /// Training scenes per fine-tuning epoch (0 turns fine-tuning off).
    #[arg(long, value_name = "N", default_value_t = 256)]
    tune_scenes: usize,
    /// Fine-tuning epochs after the last step (0: none).
    #[arg(long, value_name = "N", default_value_t = 2)]
    final_epochs: usize,
    /// Held-out validation scenes (the same generator and seed as train_synthetic's).
    #[arg(long, value_name = "N", default_value_t = 200)]
    valid: usize,
    /// The most validation passes of the search (unbounded without it).
    #[arg(long, value_name = "N")]
    budget: Option<usize>,
    /// The metric of the tolerance: accuracy, iou or dice.
    #[arg(long, value_name = "NAME", default_value = "accuracy")]
    metric: String,
    /// The pruning criterion: gate, l1, l2, bn-gamma, taylor or random.
    #[arg(long, value_name = "NAME", default_value = "gate")]
    criterion: String,
    /// The run folder; an interrupted run resumes.
    #[arg(long, value_name = "DIR", default_value = "runs/prune_synthetic")]
    run: PathBuf,
}

fn main() {
    cli::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let model_path = args.model;
    let device = prunus::device(&args.device)?;
    let tolerance = args.tolerance;
    let step = args.step;
    let tune_scenes = args.tune_scenes;
    let final_epochs = args.final_epochs;
    let n_valid = args.valid;
    let budget = args.budget;
    let metric = match args.metric.as_str() {
        "accuracy" => Metric::PixelAccuracy,
        "iou" => Metric::Iou,
        "dice" => Metric::Dice,
        other => return Err(format!("unknown metric {other}").into()),
    };
    let criterion = match args.criterion.as_str() {
        "gate" => Criterion::Gate,
        "l1" => Criterion::L1,
        "l2" => Criterion::L2,
        "bn-gamma" => Criterion::BatchNormGamma,
        "taylor" => Criterion::Taylor,
        "random" => Criterion::Random { seed: 0 },
        other => return Err(format!("unknown criterion {other}").into()),
    };
    let run_dir = args.run;

    let file = ModelFile::<Network>::load(&model_path, &device)?;
    let size = file.header.provenance.input_size[0];
    let scenes = SyntheticConfig::new().with_size(size);
    let train_data = SegmentationData::synthetic(scenes.clone(), 0, tune_scenes.max(1));
    let valid_data = SegmentationData::synthetic(scenes.with_seed(1), 0, n_valid);

    // Short fine-tunes: one epoch over `tune_scenes` after each step, more at the end, no gate
    // penalty (the gates have done their job).
    let tune = |epochs: usize| TrainConfig::fine_tuning(epochs);
    let config = PruneConfig::new()
        .with_tolerance(tolerance)
        .with_initial_step(step)
        .with_criterion(criterion)
        .with_max_evaluations(budget)
        .with_fine_tune((tune_scenes > 0).then(|| tune(1)))
        .with_final_fine_tune((tune_scenes > 0 && final_epochs > 0).then(|| tune(final_epochs)))
        .with_run_dir(Some(run_dir.clone()));

    println!(
        "pruning {} to a {tolerance}-point {metric:?} tolerance ({} criterion) on {n_valid} held-out scenes",
        model_path.display(),
        criterion.name()
    );
    let mut task = SegmentationTask::new(train_data, valid_data.clone()).with_metric(metric);
    let outcome = prune_to_tolerance(file.network, &mut task, &config, &device)?;
    println!("{}", outcome.report.summary());
    let iou = evaluate(&outcome.model, &valid_data, 16, &device)?.metric(Metric::Iou);
    println!("IoU after pruning: {iou:.4}");
    println!(
        "run folder: {} (report.json, pruned.prunus, a model file per accepted step)",
        run_dir.display()
    );
    Ok(())
}
