//! `prunus`: train, prune, evaluate, run, benchmark and inspect segmentation networks from the
//! command line. `prunus --help` and `prunus <command> --help` list every option.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use clap::{Args, Parser, Subcommand, ValueEnum};
use prunus::data::{AerialCrops, Layout, Metric, Split, SyntheticConfig, airs_pairs, inria_pairs};
use prunus::models::{Costed, TernausNetConfig, UNetConfig};
use prunus::plan::{Constraint, Criterion, Tolerance};
use prunus::surgery::{Architecture, ModelFile, Network, Prunable, write_atomic};
use prunus::{
    Examples, LossConfig, PruneConfig, SegmentationData, SegmentationTask, TrainConfig,
    TrainDisplay, WholeTiles, evaluate, measure_latency, prune_to_tolerance, train_on,
};

mod checks;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A command that cannot run as given (exit code 2, as for an option clap refuses).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A [`Usage`] error.
fn usage(message: impl Into<String>) -> Box<dyn std::error::Error> {
    Box::new(Usage(message.into()))
}

/// The exit code for `error`: 2 usage, 3 input (a file or folder), 130 interrupted, 1 anything
/// else ([`prunus::ErrorKind`]).
fn exit_code(error: &(dyn std::error::Error + 'static)) -> i32 {
    if error.is::<Usage>() {
        return prunus::ErrorKind::Usage.exit_code();
    }
    prunus::error_kind(error).exit_code()
}

/// `println!` that returns an error instead of panicking when stdout is closed
/// (`prunus inspect | head -1`).
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

mod infer;

/// Importance-weight filter pruning to an error tolerance.
#[derive(Parser)]
#[command(name = "prunus", version, about, long_about = None)]
struct Cli {
    /// Backend: flex, ndarray, wgpu or default (BURN_DEVICE if set, else flex).
    #[arg(long, global = true, default_value = "default")]
    device: String,
    /// Several devices, comma-separated (flex,flex or wgpu:0,wgpu:1), instead of --device:
    /// `train` and the fine-tuning in `prune` run on all of them at once (burn-train's
    /// multi-device strategy), `infer` segments a folder's images on all of them; measuring
    /// runs on the first.
    #[arg(long, global = true)]
    devices: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a gated network and save it as a model file.
    Train(TrainArgs),
    /// Prune a model file to a tolerance (or a rate or FLOPs target) and save the result.
    Prune(PruneArgs),
    /// Measure a model file on validation data.
    Eval(EvalArgs),
    /// Segment an image (PNG or TIFF/GeoTIFF, any size) into a mask file.
    Infer(infer::InferArgs),
    /// Latency and cost of a model file on a device.
    Bench(BenchArgs),
    /// Architecture, widths, cost and provenance of a model file.
    Inspect(InspectArgs),
}

/// Where the data comes from.
#[derive(Args)]
struct DataArgs {
    /// `synthetic`, `inria:DIR` (Inria Aerial Image Labeling) or `airs:DIR`.
    #[arg(long, default_value = "synthetic")]
    data: String,
    /// Side of a scene or crop in pixels (a model file's own size by default where there is one).
    #[arg(long)]
    size: Option<usize>,
    /// Training scenes or random crops per epoch.
    #[arg(long, default_value_t = 800)]
    train_samples: usize,
    /// Validation scenes or grid crops (at most; crops spread over every validation tile).
    #[arg(long, default_value_t = 200)]
    valid_samples: usize,
    /// Held-out test scenes or grid crops (at most), measured before and after pruning but
    /// never seen by the search: synthetic scenes of another generator seed, Inria's tiles 6–8
    /// of every city, AIRS's `test/`; 0: none.
    #[arg(long, default_value_t = 200)]
    test_samples: usize,
    /// Inria/AIRS: measure validation (and test) on whole tiles, each segmented through the
    /// seamless tiling as `prunus infer` does, instead of on grid crops.
    #[arg(long)]
    whole_tiles: bool,
    /// With --whole-tiles: side of a window in pixels.
    #[arg(long, default_value_t = 512, value_parser = checks::positive)]
    window: usize,
    /// With --whole-tiles: pixels by which neighbouring windows overlap (at most half a window).
    #[arg(long, default_value_t = 64)]
    window_overlap: usize,
}

impl DataArgs {
    /// `--data` as its kind and folder: `inria:DIR` → `("inria", Some("DIR"))`.
    fn source(&self) -> (&str, Option<&str>) {
        self.data
            .split_once(':')
            .map_or((self.data.as_str(), None), |(k, d)| (k, Some(d)))
    }

    /// The whole tiles of `split` when `--whole-tiles` asks for them, windows padded to
    /// `align` pixels.
    fn whole(&self, split: Split, align: usize) -> Result<Option<WholeTiles>> {
        if !self.whole_tiles {
            return Ok(None);
        }
        let tiling = checks::tiling(
            ["--window", "--window-overlap"],
            self.window,
            self.window_overlap,
        )?;
        let (kind, dir) = self.source();
        let dir = dir.ok_or_else(|| {
            usage(format!(
                "--whole-tiles needs Inria or AIRS tiles (--data inria:DIR or airs:DIR), not {kind}"
            ))
        })?;
        let (layout, pairs) = match kind {
            "inria" => (Layout::Inria, inria_pairs(dir, split)?),
            "airs" => (Layout::Airs, airs_pairs(dir, split)?),
            other => {
                return Err(usage(format!(
                    "--whole-tiles: unknown data source {other:?}"
                )));
            }
        };
        Ok(Some(
            WholeTiles::new(layout, pairs, tiling).with_align(align),
        ))
    }

    /// The held-out test split, when it is asked for (`--test-samples` above 0): synthetic
    /// scenes of a third generator seed, or a grid spread over Inria's or AIRS's test tiles.
    fn test(&self, default_size: usize) -> Result<Option<SegmentationData>> {
        if self.test_samples == 0 {
            return Ok(None);
        }
        let size = self.size.unwrap_or(default_size);
        let (kind, dir) = self.source();
        let tiles = |layout: Layout| -> Result<Option<SegmentationData>> {
            let dir = dir.ok_or_else(|| usage(format!("--data {kind}:DIR needs a folder")))?;
            let pairs = match layout {
                Layout::Inria => inria_pairs(dir, Split::Test)?,
                Layout::Airs => airs_pairs(dir, Split::Test)?,
            };
            let crops = AerialCrops::new(layout, pairs, size);
            Ok(Some(
                SegmentationData::grid(crops)?.spread(self.test_samples),
            ))
        };
        match kind {
            "inria" => tiles(Layout::Inria),
            "airs" => tiles(Layout::Airs),
            _ => {
                let scenes = SyntheticConfig::new().with_size(size).with_seed(2);
                Ok(Some(SegmentationData::synthetic(
                    scenes,
                    0,
                    self.test_samples,
                )))
            }
        }
    }

    fn load(&self, default_size: usize) -> Result<(SegmentationData, SegmentationData)> {
        let size = self.size.unwrap_or(default_size);
        if size == 0 {
            return Err(usage("--size must be at least 1"));
        }
        let (kind, dir) = self.source();
        let aerial = |layout: Layout| -> Result<(SegmentationData, SegmentationData)> {
            let dir = dir.ok_or_else(|| usage(format!("--data {kind}:DIR needs a folder")))?;
            let pairs = |split| match layout {
                Layout::Inria => inria_pairs(dir, split),
                Layout::Airs => airs_pairs(dir, split),
            };
            let train = AerialCrops::new(layout, pairs(Split::Train)?, size);
            let valid = AerialCrops::new(layout, pairs(Split::Valid)?, size);
            Ok((
                SegmentationData::random_crops(train, 0, self.train_samples),
                SegmentationData::grid(valid)?.spread(self.valid_samples),
            ))
        };
        match kind {
            "synthetic" => {
                let scenes = SyntheticConfig::new().with_size(size);
                Ok((
                    SegmentationData::synthetic(scenes.clone(), 0, self.train_samples),
                    SegmentationData::synthetic(scenes.with_seed(1), 0, self.valid_samples),
                ))
            }
            "inria" => aerial(Layout::Inria),
            "airs" => aerial(Layout::Airs),
            other => Err(usage(format!(
                "unknown data source {other:?}: use synthetic, inria:DIR or airs:DIR"
            ))),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Arch {
    Unet,
    Ternausnet,
}

#[derive(Args)]
struct TrainArgs {
    /// The model file to write (must not exist yet unless --force).
    #[arg(long, short)]
    out: PathBuf,
    /// Network family.
    #[arg(long, value_enum, default_value = "unet")]
    arch: Arch,
    /// U-Net: filters of the first level; TernausNet: decoder filters (32 in the paper).
    #[arg(long)]
    base: Option<usize>,
    /// U-Net levels.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// TernausNet: torchvision VGG11 weights (.pth) for the encoder.
    #[arg(long)]
    vgg11: Option<PathBuf>,
    /// Start from this model file instead of --arch/--base/--depth: its weights (a pruned
    /// network trained further), or with --fresh only its architecture and widths.
    #[arg(long, conflicts_with_all = ["base", "vgg11"])]
    from: Option<PathBuf>,
    /// With --from: new random weights in the model file's widths (a pruned architecture
    /// trained from scratch).
    #[arg(long, requires = "from")]
    fresh: bool,
    #[arg(long, default_value_t = 5)]
    /// Epochs.
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 8, value_parser = checks::positive)]
    batch: usize,
    /// Learning rate (Adam, cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Weight λ of the gates' L1 penalty.
    #[arg(long, default_value_t = 1e-4)]
    gate_l1: f64,
    /// Share of the training, in [0, 1), before the gates' penalty applies (0.5 for a network
    /// without BatchNorm such as TernausNet: a penalty from the start can close its deep
    /// layers before they learn).
    #[arg(long, default_value_t = 0.0)]
    penalty_start: f64,
    /// Checkpoint folder (an interrupted run resumes); next to --out by default.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MetricArg {
    Iou,
    Accuracy,
    Dice,
    Precision,
    Recall,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::Accuracy => Metric::PixelAccuracy,
            MetricArg::Iou => Metric::Iou,
            MetricArg::Dice => Metric::Dice,
            MetricArg::Precision => Metric::Precision,
            MetricArg::Recall => Metric::Recall,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum CriterionArg {
    Gate,
    GateNorm,
    L1,
    L2,
    BnGamma,
    Taylor,
    Random,
}

#[derive(Args)]
struct PruneArgs {
    /// The model file to prune (never modified).
    #[arg(long, short)]
    model: PathBuf,
    /// The pruned model file to write.
    #[arg(long, short)]
    out: PathBuf,
    /// Largest allowed drop of the metric, in points (or a share with --relative).
    #[arg(long, default_value_t = 0.5)]
    tolerance: f64,
    /// Read --tolerance as a share of the baseline metric.
    #[arg(long)]
    relative: bool,
    /// Also stop once this share of the prunable channels is removed.
    #[arg(long)]
    rate: Option<f64>,
    /// Also stop once this share of the FLOPs is removed.
    #[arg(long)]
    flops: Option<f64>,
    /// The metric the tolerance applies to.
    #[arg(long, value_enum, default_value = "iou")]
    metric: MetricArg,
    /// A further metric with its own tolerance in points, `METRIC=POINTS` (e.g.
    /// `accuracy=0.5`); repeat for more. A step is kept only when every one holds.
    #[arg(long, value_parser = checks::also)]
    also: Vec<(MetricArg, f64)>,
    /// Keep a step only when the upper end of its drop's confidence interval (bootstrap over
    /// the validation scenes) is within the tolerance.
    #[arg(long)]
    conservative: bool,
    /// Bootstrap resamples behind each step's confidence interval; 0: no intervals.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the run (fine-tuning order, bootstrap resamples).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How filters are ranked.
    #[arg(long, value_enum, default_value = "gate")]
    criterion: CriterionArg,
    /// Share of the remaining channels the first step removes.
    #[arg(long, default_value_t = 0.5)]
    step: f64,
    /// The step doubles again (up to --step) after this many accepted steps in a row; 0 only
    /// halves it.
    #[arg(long, default_value_t = 2)]
    grow_after: usize,
    /// Most validation passes.
    #[arg(long)]
    budget: Option<usize>,
    /// Training samples per fine-tuning epoch after each step; 0 turns fine-tuning off.
    #[arg(long, default_value_t = 256)]
    tune_samples: usize,
    /// Fine-tuning epochs at the end.
    #[arg(long, default_value_t = 2)]
    final_epochs: usize,
    /// Fit the fine-tunings' learning rate to the network first: the unpruned network is
    /// fine-tuned at 1e-3 and √10 smaller rates until one costs at most half the tolerance.
    #[arg(long)]
    calibrate_fine_tune: bool,
    /// Fold the gates into the weights of the result.
    #[arg(long)]
    fold: bool,
    /// Run folder (report.json, a model file per accepted step; an interrupted run resumes);
    /// `<out>.run` by default.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
struct EvalArgs {
    /// The model file.
    #[arg(long, short)]
    model: PathBuf,
    /// Batch size.
    #[arg(long, default_value_t = 16, value_parser = checks::positive)]
    batch: usize,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// The model file.
    #[arg(long, short)]
    model: PathBuf,
    /// Input side in pixels (the model file's own size by default).
    #[arg(long)]
    size: Option<usize>,
    /// Timed forward passes (the median is reported).
    #[arg(long, default_value_t = 20, value_parser = checks::positive)]
    runs: usize,
    /// Images per forward pass (throughput is images per second at this batch).
    #[arg(long, default_value_t = 1, value_parser = checks::positive)]
    batch: usize,
}

#[derive(Args)]
struct InspectArgs {
    /// The model file.
    #[arg(long, short)]
    model: PathBuf,
    /// Print the header as JSON instead.
    #[arg(long)]
    json: bool,
}

fn main() {
    prunus::keep_freed_memory();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // A reader that stopped reading (`prunus inspect | head -1`) is not an error.
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
        // The error, then each cause on its own line.
        let messages = prunus::error_messages(e.as_ref());
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "error: {}", messages[0]);
        for cause in &messages[1..] {
            let _ = writeln!(stderr, "caused by: {cause}");
        }
        std::process::exit(exit_code(e.as_ref()));
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect(a) => inspect(&a),
        command => {
            let devices = match &cli.devices {
                Some(list) => prunus::devices(list)?,
                None => vec![prunus::device(&cli.device)?],
            };
            let device = &devices[0];
            match command {
                Command::Train(a) => train_cmd(&a, &devices),
                Command::Prune(a) => prune_cmd(&a, &devices),
                Command::Eval(a) => eval_cmd(&a, device),
                Command::Infer(a) => infer::infer_cmd(&a, &devices),
                Command::Bench(a) => bench_cmd(&a, device),
                Command::Inspect(_) => unreachable!("handled above"),
            }
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn run_dir_for(out: &Path, run: Option<&PathBuf>) -> PathBuf {
    run.cloned().unwrap_or_else(|| {
        let mut name = out.as_os_str().to_owned();
        name.push(".run");
        PathBuf::from(name)
    })
}

fn train_cmd(a: &TrainArgs, devices: &[Device]) -> Result<()> {
    let device = &devices[0];
    checks::output(&a.out, a.force, "--out")?;
    if let Some(from) = &a.from
        && same_file(from, &a.out)
    {
        return Err(usage(format!(
            "--out {} is the --from model; prunus never overwrites it",
            a.out.display()
        )));
    }
    // From a model file: its architecture, its weights (unless --fresh) and its input size.
    let (architecture, from, default_size) = match &a.from {
        Some(path) => {
            let file = ModelFile::<Network>::load(path, device)?;
            let from = (!a.fresh).then_some(file.network);
            let size = file.header.provenance.input_size[0];
            (file.header.architecture, from, size)
        }
        None => {
            let base = a.base.unwrap_or(match a.arch {
                Arch::Unet => 16,
                Arch::Ternausnet => 32,
            });
            let architecture = match a.arch {
                Arch::Unet => Architecture::UNet(UNetConfig::standard(3, 1, base, a.depth)),
                Arch::Ternausnet => Architecture::TernausNet(TernausNetConfig::standard(1, base)),
            };
            (architecture, None, 64)
        }
    };
    let size = a.data.size.unwrap_or(default_size);
    checks::fits("training", &architecture, size, a.batch, true)?;
    let (train_data, valid_data) = a.data.load(size)?;
    let network = match from {
        Some(network) => network,
        None => match architecture.init(device)? {
            Network::TernausNet(net) => Network::TernausNet(match &a.vgg11 {
                Some(path) => net.load_vgg11_encoder(path)?,
                None => net,
            }),
            unet => unet,
        },
    };
    let config = TrainConfig::new()
        .with_epochs(a.epochs)
        .with_batch_size(a.batch)
        .with_learning_rate(a.lr)
        .with_loss(LossConfig::new().with_gate_l1(a.gate_l1))
        .with_penalty_start(a.penalty_start)
        .with_display(TrainDisplay::Plain);
    let run_dir = run_dir_for(&a.out, a.run.as_ref());
    let start = Instant::now();
    let trained = train_on(
        network,
        &train_data,
        &valid_data,
        &run_dir,
        &config,
        devices,
    )?;
    if let Some(epoch) = trained.resumed_from {
        out!(
            "resumed the run in {} after epoch {epoch}",
            run_dir.display()
        );
    }
    let confusion = evaluate(&trained.model, &valid_data, a.batch, device)?;
    ModelFile::original(trained.model, [size, size])?.save_replacing(&a.out)?;
    out!(
        "trained in {:.1} s; validation pixel accuracy {:.2}%, IoU {:.2}%",
        start.elapsed().as_secs_f64(),
        100.0 * confusion.metric(Metric::PixelAccuracy),
        100.0 * confusion.metric(Metric::Iou)
    );
    out!("saved {}", a.out.display());
    Ok(())
}

fn prune_cmd(a: &PruneArgs, devices: &[Device]) -> Result<()> {
    let device = &devices[0];
    if same_file(&a.model, &a.out) {
        return Err(usage(format!(
            "--out {} is the input model; prunus never overwrites it",
            a.out.display()
        )));
    }
    checks::output(&a.out, a.force, "--out")?;
    let file = ModelFile::<Network>::load(&a.model, device)?;
    let size = a.data.size.unwrap_or(file.header.provenance.input_size[0]);
    let tune = |epochs: usize| TrainConfig::fine_tuning(epochs).with_display(TrainDisplay::Quiet);
    let tuning = a.tune_samples > 0;
    let batch = tune(1).batch_size;
    checks::fits("pruning", &file.header.architecture, size, batch, tuning)?;
    let (train_data, valid_data) = a.data.load(size)?;
    let run_dir = run_dir_for(&a.out, a.run.as_ref());
    let config = PruneConfig::new()
        .with_tolerance(a.tolerance)
        .with_relative(a.relative)
        .with_target_rate(a.rate)
        .with_target_flops(a.flops)
        .with_initial_step(a.step)
        .with_grow_after((a.grow_after > 0).then_some(a.grow_after))
        .with_max_evaluations(a.budget)
        .with_criterion(match a.criterion {
            CriterionArg::Gate => Criterion::Gate,
            CriterionArg::GateNorm => Criterion::GateNorm,
            CriterionArg::L1 => Criterion::L1,
            CriterionArg::L2 => Criterion::L2,
            CriterionArg::BnGamma => Criterion::BatchNormGamma,
            CriterionArg::Taylor => Criterion::Taylor,
            CriterionArg::Random => Criterion::Random { seed: 0 },
        })
        .with_fine_tune(tuning.then(|| tune(1)))
        .with_final_fine_tune((tuning && a.final_epochs > 0).then(|| tune(a.final_epochs)))
        .with_calibrate_fine_tune(a.calibrate_fine_tune)
        .with_fold(a.fold)
        .with_also(
            a.also
                .iter()
                .map(|&(m, points)| Constraint {
                    metric: Metric::from(m).to_string(),
                    tolerance: Tolerance::Points(points),
                    higher_is_better: true,
                })
                .collect(),
        )
        .with_conservative(a.conservative)
        .with_bootstrap(a.bootstrap)
        .with_seed(a.seed)
        .with_run_dir(Some(run_dir.clone()));
    let tune_data = train_data.take(a.tune_samples.max(1));
    let mut task = SegmentationTask::new(tune_data, valid_data)
        .with_metric(a.metric.into())
        .with_devices(devices.to_vec());
    let align = checks::alignment(&file.header.architecture);
    if let Some(valid) = a.data.whole(Split::Valid, align)? {
        task = task.with_whole_tiles(valid);
    }
    if a.data.test_samples > 0 {
        task = match a.data.whole(Split::Test, align)? {
            Some(tiles) => task.with_test_tiles(tiles),
            None => match a.data.test(size)? {
                Some(crops) => task.with_test(crops),
                None => task,
            },
        };
    }
    let outcome = prune_to_tolerance(file.network, &mut task, &config, device)?;
    out!("{}", outcome.report.summary());
    let pruned = run_dir.join("pruned.prunus");
    let bytes = std::fs::read(&pruned).map_err(|source| prunus::Error::Io {
        path: pruned.clone(),
        source,
    })?;
    write_atomic(&a.out, &bytes)?;
    out!(
        "saved {} (report: {})",
        a.out.display(),
        run_dir.join("report.json").display()
    );
    Ok(())
}

fn eval_cmd(a: &EvalArgs, device: &Device) -> Result<()> {
    let file = ModelFile::<Network>::load(&a.model, device)?;
    let size = a.data.size.unwrap_or(file.header.provenance.input_size[0]);
    let batch = a.batch.min(a.data.valid_samples.max(1));
    checks::fits("evaluation", &file.header.architecture, size, batch, false)?;
    let align = checks::alignment(&file.header.architecture);
    // Whole tiles through the tiling, or crops (scenes) in batches; the same five metrics.
    let (what, count, metrics) = match a.data.whole(Split::Valid, align)? {
        Some(tiles) => {
            let count = tiles.len();
            let m = tiles.with_batch(a.batch).measure(&file.network, device)?;
            ("tiles", count, m.metrics)
        }
        None => {
            let (_, valid_data) = a.data.load(size)?;
            let c = evaluate(&file.network, &valid_data, a.batch, device)?;
            let counts = Examples::segmentation(vec![[c.tp, c.fp, c.fn_, c.tn]]);
            ("samples", valid_data.len(), counts.metrics_of([0]))
        }
    };
    out!("{what:<15} {count}");
    for metric in [
        Metric::PixelAccuracy,
        Metric::Iou,
        Metric::Dice,
        Metric::Precision,
        Metric::Recall,
    ] {
        let name = metric.to_string();
        out!("{name:<15} {:.2}%", metrics[&name]);
    }
    Ok(())
}

fn bench_cmd(a: &BenchArgs, device: &Device) -> Result<()> {
    let file = ModelFile::<Network>::load(&a.model, device)?;
    let size = a.size.unwrap_or(file.header.provenance.input_size[0]);
    let b = a.batch;
    let cost = checks::fits("the benchmark", &file.header.architecture, size, b, false)?;
    let input = Tensor::<4>::random([b, 3, size, size], Distribution::Default, device);
    let ms = measure_latency(&file.network, &input, a.runs, |net, x| net.forward(x))?;
    let flops = b as f64 * cost.flops() as f64;
    out!("device      {}", prunus::device_label(device));
    out!("input       {b}×3×{size}×{size}");
    out!(
        "latency     {ms:.3} ms per pass (median of {} runs)",
        a.runs
    );
    out!("throughput  {:.1} images/s", b as f64 * 1e3 / ms);
    out!("FLOPs       {:.4} G per image", cost.flops() as f64 / 1e9);
    out!("parameters  {}", cost.params());
    out!("GFLOP/s     {:.2}", flops / 1e9 / (ms / 1e3));
    Ok(())
}

fn inspect(a: &InspectArgs) -> Result<()> {
    // Widths and cost need only the header, but loading checks the whole file.
    let device = prunus::device("flex")?;
    let file = ModelFile::<Network>::load(&a.model, &device)?;
    let h = &file.header;
    if a.json {
        out!("{}", serde_json::to_string_pretty(h)?);
        return Ok(());
    }
    let size = h.provenance.input_size;
    let cost = h.architecture.cost(size)?;
    let orig = &h.provenance.original_cost;
    out!("file          {}", a.model.display());
    out!("architecture  {}", h.architecture.family());
    out!("written by    {}", h.writer);
    out!(
        "folded        gates {}, BatchNorm {}",
        h.folded,
        h.norms_folded
    );
    out!("input size    {}×{}", size[0], size[1]);
    out!(
        "FLOPs         {:.4} G (original {:.4} G, {:.1}% removed)",
        cost.flops() as f64 / 1e9,
        2.0 * orig.macs as f64 / 1e9,
        100.0 * (1.0 - cost.flops() as f64 / (2.0 * orig.macs as f64).max(1.0))
    );
    out!(
        "parameters    {} (original {}, {:.1}× smaller)",
        cost.params(),
        orig.params,
        orig.params as f64 / cost.params().max(1) as f64
    );
    out!("gates         {}", cost.gates());
    out!("widths (channel group: kept / original)");
    // The original widths come from building the original network: refuse one too large.
    let original_cost = h.provenance.original.cost(size)?;
    prunus::check_memory("inspecting the original network", &original_cost, 1, false)?;
    let original_groups = h.provenance.original.init(&device)?.channel_groups();
    for g in file.channel_groups() {
        let before = original_groups
            .iter()
            .find(|o| o.name == g.name)
            .map_or(g.size, |o| o.size);
        out!("  {:<28} {:>5} / {:<5}", g.name, g.size, before);
    }
    Ok(())
}
