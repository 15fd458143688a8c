//! Train a gated U-Net on synthetic aerial scenes and measure it on held-out scenes.
//!
//! ```sh
//! cargo run --release --example train_synthetic -- --epochs 8 --train 2000 --valid 200
//! ```
//!
//! Options (all optional): `--epochs N`, `--train N` (scenes), `--valid N` (held-out scenes),
//! `--size PX`, `--base WIDTH`, `--depth N`, `--batch N`, `--lr RATE`, `--gate-l1 λ`, `--gate-lr-scale K`,
//! `--device flex|ndarray|wgpu`, `--run DIR` (checkpoints; an existing run resumes),
//! `--gates-only` (train only the gates of a frozen network).
//! The trained network is saved as `DIR/trained.prunus`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use prunus::data::{Metric, SyntheticConfig};
use prunus::models::UNetConfig;
use prunus::surgery::{ModelFile, Network};
use prunus::{LossConfig, SegmentationData, TrainConfig, TrainMode, evaluate, train};

#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "Train a gated U-Net on synthetic aerial scenes, measure it on held-out scenes")]
struct Args {
    /// Training epochs.
    #[arg(long, value_name = "N", default_value_t = 8)]
    epochs: usize,
    /// Synthetic training scenes.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    train: usize,
    /// Held-out validation scenes (another generator seed).
    #[arg(long, value_name = "N", default_value_t = 200)]
    valid: usize,
    /// Side of the square scenes, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 128)]
    size: usize,
    /// First-level filters of the U-Net.
    #[arg(long, value_name = "WIDTH", default_value_t = 16)]
    base: usize,
    /// Levels of the U-Net.
    #[arg(long, value_name = "N", default_value_t = 4)]
    depth: usize,
    /// Batch size.
    #[arg(long, value_name = "N", default_value_t = 8)]
    batch: usize,
    /// Learning rate.
    #[arg(long, value_name = "RATE", default_value_t = 2e-3)]
    lr: f64,
    /// λ of the L1 penalty on the gates.
    #[arg(long, value_name = "LAMBDA", default_value_t = 1e-4)]
    gate_l1: f64,
    /// The gates' learning rate as a multiple of the weights'.
    #[arg(long, value_name = "K", default_value_t = 10.0)]
    gate_lr_scale: f64,
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "default")]
    device: String,
    /// The run folder (checkpoints; an existing run resumes); the network is saved as
    /// `DIR/trained.prunus`.
    #[arg(long, value_name = "DIR", default_value = "runs/train_synthetic")]
    run: PathBuf,
    /// Train only the gates of a frozen network.
    #[arg(long)]
    gates_only: bool,
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
    let batch = args.batch;
    let lr = args.lr;
    let gate_l1 = args.gate_l1;
    let gate_lr_scale = args.gate_lr_scale;
    let device = prunus::device(&args.device)?;
    let run_dir = args.run;
    let gates_only = args.gates_only;

    let scenes = SyntheticConfig::new().with_size(size);
    let train_data = SegmentationData::synthetic(scenes.clone(), 0, n_train);
    // Held-out scenes: another seed, so no scene is shared with training.
    let valid_data = SegmentationData::synthetic(scenes.with_seed(1), 0, n_valid);

    let unet = UNetConfig::standard(3, 1, base, depth).init(&device)?;
    let config = TrainConfig::new()
        .with_epochs(epochs)
        .with_batch_size(batch)
        .with_learning_rate(lr)
        .with_gate_lr_scale(gate_lr_scale)
        .with_loss(LossConfig::new().with_gate_l1(gate_l1))
        .with_mode(if gates_only {
            TrainMode::GatesOnly
        } else {
            TrainMode::Joint
        });
    println!(
        "training U-Net base {base} depth {depth} on {n_train} synthetic {size}×{size} scenes, {epochs} epochs, device {}",
        prunus::device_label(&device)
    );
    let start = Instant::now();
    let trained = train(unet, &train_data, &valid_data, &run_dir, &config, &device)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(epoch) = trained.resumed_from {
        println!("resumed after epoch {epoch}");
    }

    let confusion = evaluate(&trained.model, &valid_data, batch, &device)?;
    println!(
        "held-out ({n_valid} scenes): IoU {:.4}, pixel accuracy {:.4}, Dice {:.4}, precision {:.4}, recall {:.4}",
        confusion.metric(Metric::Iou),
        confusion.metric(Metric::PixelAccuracy),
        confusion.metric(Metric::Dice),
        confusion.metric(Metric::Precision),
        confusion.metric(Metric::Recall),
    );
    println!(
        "training took {seconds:.1} s ({:.1} images/s including validation)",
        (epochs.saturating_sub(trained.resumed_from.unwrap_or(0)) * (n_train + n_valid)) as f64
            / seconds
    );

    // How far the L1 penalty pushed the gates apart: the pruning criterion ranks by them.
    let mut gates: Vec<f32> = prunus::layers::gates(&trained.model)
        .into_iter()
        .flat_map(|(_, g)| g.abs().into_data().try_to_vec::<f32>().unwrap_or_default())
        .collect();
    gates.sort_by(f32::total_cmp);
    if !gates.is_empty() {
        let q = |p: f64| gates[((gates.len() - 1) as f64 * p).round() as usize];
        println!(
            "gates |g|: {} in all, {} below 0.05; quartiles {:.3} {:.3} {:.3}, max {:.3}",
            gates.len(),
            gates.iter().filter(|g| **g < 0.05).count(),
            q(0.25),
            q(0.5),
            q(0.75),
            q(1.0)
        );
    }

    let network = Network::UNet(trained.model);
    let path = run_dir.join("trained.prunus");
    ModelFile::original(network, [size, size])?.save_replacing(&path)?;
    println!("saved {}", path.display());
    Ok(())
}
