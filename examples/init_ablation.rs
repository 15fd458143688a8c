//! Gate-initialisation ablation: train the same U-Net with each `GateInit`, prune each to the same
//! tolerance with the gate criterion, and print a table (FLOPs cut, metric drop, validation
//! passes). A random-criterion row on the `Ones` network, given the same number of validation
//! passes as the gate row, is the baseline.
//!
//! ```sh
//! cargo run --example init_ablation -- --epochs 4 --train 768 --size 64
//! ```
//!
//! Options: `--epochs N`, `--train N`, `--valid N`, `--size PX`, `--base WIDTH`, `--depth N`,
//! `--tolerance POINTS`, `--tune-scenes N` (0: no fine-tuning while pruning), `--device NAME`,
//! `--run DIR`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use prunus::data::SyntheticConfig;
use prunus::layers::GateInit;
use prunus::models::UNetConfig;
use prunus::plan::Criterion;
use prunus::{
    PruneConfig, SegmentationData, SegmentationTask, TrainConfig, TrainDisplay, prune_to_tolerance,
    train,
};

#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "Gate-initialisation ablation: a U-Net per GateInit, each pruned to a tolerance")]
struct Args {
    /// Training epochs of every network.
    #[arg(long, value_name = "N", default_value_t = 4)]
    epochs: usize,
    /// Synthetic training scenes.
    #[arg(long, value_name = "N", default_value_t = 768)]
    train: usize,
    /// Held-out validation scenes (the search's).
    #[arg(long, value_name = "N", default_value_t = 200)]
    valid: usize,
    /// Side of the square scenes, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 64)]
    size: usize,
    /// First-level filters of the U-Net.
    #[arg(long, value_name = "WIDTH", default_value_t = 16)]
    base: usize,
    /// Levels of the U-Net.
    #[arg(long, value_name = "N", default_value_t = 4)]
    depth: usize,
    /// Points of pixel accuracy the pruned networks may lose.
    #[arg(long, value_name = "POINTS", default_value_t = 0.5)]
    tolerance: f64,
    /// Training scenes per fine-tuning epoch while pruning (0: no fine-tuning).
    #[arg(long, value_name = "N", default_value_t = 256)]
    tune_scenes: usize,
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "default")]
    device: String,
    /// The run folder: a training and pruning folder per initialisation.
    #[arg(long, value_name = "DIR", default_value = "runs/init_ablation")]
    run: PathBuf,
}

fn main() {
    cli::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let epochs = args.epochs;
    let n_train = args.train;
    let n_valid = args.valid;
    let size = args.size;
    let base = args.base;
    let depth = args.depth;
    let tolerance = args.tolerance;
    let tune_scenes = args.tune_scenes;
    let device = prunus::device(&args.device)?;
    let root = args.run;

    let scenes = SyntheticConfig::new().with_size(size);
    let train_data = SegmentationData::synthetic(scenes.clone(), 0, n_train);
    let valid_data = SegmentationData::synthetic(scenes.with_seed(1), 0, n_valid);
    let inits = [
        ("Ones", GateInit::Ones),
        ("Constant 0.5", GateInit::Constant { value: 0.5 }),
        (
            "Uniform [0.5, 1.5)",
            GateInit::Uniform {
                low: 0.5,
                high: 1.5,
            },
        ),
        (
            "Normal (1, 0.2)",
            GateInit::Normal {
                mean: 1.0,
                std: 0.2,
            },
        ),
        ("FilterNorm", GateInit::FilterNorm),
    ];
    let train_config = TrainConfig::new()
        .with_epochs(epochs)
        .with_batch_size(8)
        .with_learning_rate(2e-3)
        .with_display(TrainDisplay::Plain);
    // The same fine-tunes as `prune_synthetic`: one epoch after each step, two at the end.
    let tune = |epochs: usize| TrainConfig::fine_tuning(epochs);
    let tune_data = train_data.take(tune_scenes.max(1));

    let mut rows = Vec::new();
    for (i, (name, init)) in inits.iter().enumerate() {
        let dir = root.join(format!("init-{i}"));
        let unet = UNetConfig::standard(3, 1, base, depth)
            .with_gate_init(init.clone())
            .init(&device)?;
        println!("== {name}: training");
        let trained = train(
            unet,
            &train_data,
            &valid_data,
            &dir.join("train"),
            &train_config,
            &device,
        )?;
        let mut criteria = vec![("gate", Criterion::Gate)];
        if i == 0 {
            criteria.push(("random", Criterion::Random { seed: 0 }));
        }
        // The random row gets the gate row's number of validation passes: a comparison at equal
        // search cost (unbounded, random creeps on one channel at a time for hundreds of passes).
        let mut gate_passes = None;
        for (label, criterion) in criteria {
            let config = PruneConfig::new()
                .with_max_evaluations(gate_passes)
                .with_tolerance(tolerance)
                .with_criterion(criterion)
                .with_fine_tune((tune_scenes > 0).then(|| tune(1)))
                .with_final_fine_tune((tune_scenes > 0).then(|| tune(2)))
                .with_run_dir(Some(dir.join(format!("prune-{label}"))));
            let start = Instant::now();
            let mut task = SegmentationTask::new(tune_data.clone(), valid_data.clone());
            let outcome = prune_to_tolerance(trained.model.clone(), &mut task, &config, &device)?;
            let r = outcome.report;
            gate_passes.get_or_insert(r.evaluations);
            rows.push(format!(
                "| {name} | {label} | {:.2} | {:.2} | {:.3} | {:.1}% | {:.2}× | {} | {:.0} s |",
                r.baseline,
                r.final_metric,
                r.drop,
                100.0 * r.flops_cut(),
                r.params_before as f64 / r.params_after.max(1) as f64,
                r.evaluations,
                start.elapsed().as_secs_f64(),
            ));
        }
    }
    println!(
        "\nU-Net base {base} depth {depth}, {n_train} synthetic {size}² scenes × {epochs} epochs, \
         tolerance {tolerance} points of pixel accuracy on {n_valid} held-out scenes\n"
    );
    println!(
        "| gate init | criterion | accuracy before | after | drop | FLOPs cut | params smaller | passes | prune time |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
