//! Shared by `inria_ternausnet` and `airs_unet`: train a gated network on real aerial tiles,
//! prune it to a tolerance, report and plot.

use std::path::PathBuf;

use prunus::data::{AerialCrops, Layout, Metric, Split, Tiling, airs_pairs, inria_pairs};
use prunus::surgery::{ModelFile, Network};
use prunus::{
    LossConfig, PruneConfig, SegmentationData, SegmentationTask, TrainConfig, WholeTiles, evaluate,
    plots, prune_to_tolerance, train,
};

/// The options `inria_ternausnet` and `airs_unet` share (flattened into each one's own).
#[derive(clap::Args, Debug)]
pub struct AerialArgs {
    /// The dataset's folder.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub device: String,
    /// Side of the square training, validation and test crops, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 256)]
    pub size: usize,
    /// Random training crops per epoch (a quarter of them fine-tune while pruning).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub train: usize,
    /// Validation grid crops, spread over every validation tile.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub valid: usize,
    /// Training epochs.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub epochs: usize,
    /// Batch size of training, fine-tuning and evaluation.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub batch: usize,
    /// Points of validation IoU the pruned network may lose.
    #[arg(long, value_name = "POINTS", default_value_t = 1.0)]
    pub tolerance: f64,
    /// Test grid crops, spread over every test tile (measured, never searched on).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub test: usize,
    /// The run folder (runs/inria or runs/airs); interrupted training and pruning resume.
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// Validate and test on whole tiles through the seamless tiling instead of on grid crops.
    #[arg(long)]
    pub whole_tiles: bool,
    /// The tiling's window with `--whole-tiles`, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 512)]
    pub window: usize,
}

/// Trains `network` on `layout`'s folder (`--data DIR`), prunes it and writes the run folder.
pub fn train_and_prune(
    args: &AerialArgs,
    layout: Layout,
    network: impl FnOnce(&burn::tensor::Device) -> Result<Network, Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = &args.data;
    let device = prunus::device(&args.device)?;
    let size = args.size;
    let n_train = args.train;
    let n_valid = args.valid;
    let epochs = args.epochs;
    let batch = args.batch;
    let tolerance = args.tolerance;
    let n_test = args.test;
    let name = match layout {
        Layout::Inria => "inria",
        Layout::Airs => "airs",
    };
    let run_dir = args
        .run
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{name}")));

    let pairs = |split| match layout {
        Layout::Inria => inria_pairs(root, split),
        Layout::Airs => airs_pairs(root, split),
    };
    let train_crops = AerialCrops::new(layout, pairs(Split::Train)?, size);
    let valid_crops = AerialCrops::new(layout, pairs(Split::Valid)?, size);
    let test_crops = AerialCrops::new(layout, pairs(Split::Test)?, size);
    println!(
        "{}: {} training, {} validation and {} test tiles, {size}×{size} crops",
        root.display(),
        train_crops.pairs().len(),
        valid_crops.pairs().len(),
        test_crops.pairs().len()
    );
    let train_data = SegmentationData::random_crops(train_crops, 0, n_train);
    // Grid crops spread over every tile (every city for Inria), not the first tiles' crops.
    let valid_data = SegmentationData::grid(valid_crops)?.spread(n_valid);
    let test_data = SegmentationData::grid(test_crops)?.spread(n_test);

    let net = network(&device)?;
    let config = TrainConfig::new()
        .with_epochs(epochs)
        .with_batch_size(batch)
        .with_learning_rate(1e-3)
        .with_loss(LossConfig::new().with_gate_l1(1e-4));
    let trained = train(
        net,
        &train_data,
        &valid_data,
        &run_dir.join("train"),
        &config,
        &device,
    )?;
    ModelFile::original(trained.model.clone(), [size, size])?
        .save_replacing(run_dir.join("trained.prunus"))?;
    let before = evaluate(&trained.model, &valid_data, batch, &device)?;
    println!(
        "trained: pixel accuracy {:.2}%, IoU {:.2}%",
        100.0 * before.metric(Metric::PixelAccuracy),
        100.0 * before.metric(Metric::Iou)
    );

    let tune = |epochs: usize| {
        TrainConfig::fine_tuning(epochs)
            .with_batch_size(batch)
            .with_learning_rate(5e-4)
    };
    let config = PruneConfig::new()
        .with_tolerance(tolerance)
        .with_fine_tune(Some(tune(1)))
        .with_final_fine_tune(Some(tune(2)))
        .with_run_dir(Some(run_dir.join("prune")));
    let tune_data = train_data.take(n_train / 4);
    // The tolerance is on IoU; the test tiles are measured before and after, never searched on.
    let mut task = SegmentationTask::new(tune_data, valid_data.clone()).with_test(test_data);
    if args.whole_tiles {
        // Validation and test on whole tiles through the seamless tiling, as `prunus infer`
        // segments them, instead of on grid crops.
        let tiling = Tiling::new(args.window, 64);
        task = task
            .with_whole_tiles(WholeTiles::new(layout, pairs(Split::Valid)?, tiling))
            .with_test_tiles(WholeTiles::new(layout, pairs(Split::Test)?, tiling));
    }
    let outcome = prune_to_tolerance(trained.model, &mut task, &config, &device)?;
    println!("{}", outcome.report.summary());
    std::fs::write(
        run_dir.join("metric_vs_flops.svg"),
        plots::metric_vs_flops(&outcome.report),
    )?;
    std::fs::write(run_dir.join("widths.svg"), plots::widths(&outcome.report))?;
    println!(
        "run folder {}: trained.prunus, prune/pruned.prunus, prune/report.json, metric_vs_flops.svg, widths.svg",
        run_dir.display()
    );
    Ok(())
}
