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

use prunus::data::{Metric, SyntheticConfig};
use prunus::plan::Criterion;
use prunus::surgery::{ModelFile, Network};
use prunus::{
    PruneConfig, SegmentationData, SegmentationTask, TrainConfig, evaluate, prune_to_tolerance,
};

#[path = "common/args.rs"]
mod args;

fn main() {
    args::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = args::Args::from_env();
    let get = |name: &str| args.get(name);
    let num = |name: &str, default: f64| args.num(name, default);
    let model_path = get("--model").ok_or("--model FILE is required (see train_synthetic)")?;
    let device = prunus::device(&get("--device").unwrap_or_else(|| "default".into()))?;
    let tolerance = num("--tolerance", 0.5)?;
    let step = num("--step", 0.5)?;
    let tune_scenes = num("--tune-scenes", 256.0)? as usize;
    let final_epochs = num("--final-epochs", 2.0)? as usize;
    let n_valid = num("--valid", 200.0)? as usize;
    let budget = get("--budget").map(|v| v.parse::<usize>()).transpose()?;
    let metric = match get("--metric").as_deref().unwrap_or("accuracy") {
        "accuracy" => Metric::PixelAccuracy,
        "iou" => Metric::Iou,
        "dice" => Metric::Dice,
        other => return Err(format!("unknown metric {other}").into()),
    };
    let criterion = match get("--criterion").as_deref().unwrap_or("gate") {
        "gate" => Criterion::Gate,
        "l1" => Criterion::L1,
        "l2" => Criterion::L2,
        "bn-gamma" => Criterion::BatchNormGamma,
        "taylor" => Criterion::Taylor,
        "random" => Criterion::Random { seed: 0 },
        other => return Err(format!("unknown criterion {other}").into()),
    };
    let run_dir = PathBuf::from(get("--run").unwrap_or_else(|| "runs/prune_synthetic".into()));

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
        "pruning {model_path} to a {tolerance}-point {metric:?} tolerance ({} criterion) on {n_valid} held-out scenes",
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
