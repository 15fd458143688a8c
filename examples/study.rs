//! Pruning methods compared at equal budget over several seeds, measured on held-out test
//! scenes: what a reviewer asks before believing that one criterion beats another.
//!
//! ```sh
//! cargo run --release --example study -- --seeds 3                 # U-Net base 16, 64² scenes
//! cargo run --release --example study -- --seeds 3 --curve 0.5,0.8,0.9,0.95
//! cargo run --release --example study -- --net ternausnet --size 256 --base 32 --narrow 8 --seeds 3
//! ```
//!
//! For every seed the networks start from the same initial weights and are trained with the
//! same recipe (epochs, learning rate, order), each under its method's regime: with λ·Σ|g| on
//! the gates (the method), with λ·Σ|γ| on the BatchNorm scales (Network Slimming), or plainly
//! (the classic criteria, as their papers prune ordinarily trained networks). The scenes are
//! the same for every seed. Every method then prunes with the same search, tolerance (IoU points
//! on the validation scenes), budget of validation passes, per-step and final fine-tuning and
//! seed; the figures that count are on the test scenes, which the search never sees. Methods
//! (`--methods`, comma-separated):
//! - `gate` — |g| (|g·γ| with a BatchNorm), the method's criterion; `gate-norm` — the gate on
//!   the effective filter's scale (|g|·‖W_f‖ / layer mean where no BatchNorm carries the scale);
//! - `l1` — filter L1 norm (Li et al. 2017), ranked globally after per-layer normalisation;
//! - `taylor` — first-order Taylor on the gate, (g·∂L/∂g)² (Molchanov et al. 2019), averaged over
//!   16 training batches of 16;
//! - `random` — random scores;
//! - `uniform` — every layer cut by the same share, by L1 within the layer;
//!   (these four on the plainly trained network)
//! - `slimming` — Network Slimming (Liu et al. 2017): a second network trained with an L1
//!   penalty on the BatchNorm scales instead of the gates', pruned by |γ| (U-Net only: TernausNet
//!   has no BatchNorm);
//! - `scratch` — the widths `gate` found, trained from a fresh start with the training recipe;
//!   `scratch-long` — the same for as many training scenes as the pruned network saw in all (its
//!   training, plus one fine-tuning epoch after every step of the search and two at the end).
//!
//! Options: `--seeds N` (3), `--methods LIST` (all of the above), `--net unet|ternausnet`,
//! `--base N` (U-Net 16, TernausNet 8), `--narrow N` (TernausNet's every width, VGG11's
//! included, divided by N; 1), `--size PX` (64), `--train N` (800), `--valid N` (200),
//! `--test N` (200), `--epochs N` (5), `--lr X` (2e-3 U-Net, 2e-4 TernausNet), `--tolerance
//! POINTS` (1), `--budget N` (25 validation passes a search), `--tune N` (256 training scenes
//! a fine-tuning epoch), `--tune-lr X` (1e-3, the fine-tunings' learning rate), `--calibrate` (fit that rate to
//! each network first: `PruneConfig::calibrate_fine_tune`; curve points then fine-tune at the
//! rate their method's tolerance search chose), `--gate-l1 X` (1e-4, λ of the gated
//! trainings), `--penalty-start S` (0, the share of training before the penalties apply),
//! `--conservative`, `--curve TARGETS` (also prune every method to these shares
//! of FLOPs removed, whatever the drop, for the IoU-vs-FLOPs plot), `--out DIR` (runs/study),
//! `--device NAME`. Writes `DIR/study.json` (every run), `DIR/study.md` (mean ± sd per method)
//! and, with `--curve`, `DIR/iou_vs_flops.svg`. Finished runs are read back, so an interrupted
//! study continues where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use clap::Parser;
use prunus::data::{Metric, SyntheticConfig};
use prunus::models::{Costed, TernausNetConfig, UNetConfig};
use prunus::plan::{Criterion, PlannerConfig, Ranking};
use prunus::surgery::{ModelFile, Network, PruningPlan, prune};
use prunus::{
    LossConfig, PruneConfig, Report, SegmentationData, SegmentationTask, Task, TrainConfig,
    TrainDisplay, plots, prune_to_tolerance, train,
};
use serde::{Deserialize, Serialize};

#[path = "common/cli.rs"]
mod cli;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser, Debug)]
#[command(about = "Pruning methods compared at equal budget over seeds, measured on test scenes")]
struct Args {
    /// Seeds: every one trains the networks anew from its own initial weights.
    #[arg(long, value_name = "N", default_value_t = 3)]
    seeds: u64,
    /// The methods, comma-separated: gate, gate-norm, l1, taylor, random, uniform, slimming,
    /// scratch, scratch-long (slimming is left out for TernausNet).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "gate,gate-norm,l1,taylor,random,uniform,slimming,scratch,scratch-long"
    )]
    methods: String,
    /// The network: unet or ternausnet.
    #[arg(long, value_name = "NAME", default_value = "unet")]
    net: String,
    /// U-Net: first-level filters (16); TernausNet: the decoder width, `num_filters` (8).
    #[arg(long, value_name = "N")]
    base: Option<usize>,
    /// TernausNet's every width, VGG11's included, divided by this (at least 1).
    #[arg(long, value_name = "N", default_value_t = 1)]
    narrow: usize,
    /// Side of the square scenes, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 64)]
    size: usize,
    /// Training scenes.
    #[arg(long, value_name = "N", default_value_t = 800)]
    train: usize,
    /// Validation scenes (the searches').
    #[arg(long, value_name = "N", default_value_t = 200)]
    valid: usize,
    /// Test scenes (never seen by the searches).
    #[arg(long, value_name = "N", default_value_t = 200)]
    test: usize,
    /// Training epochs.
    #[arg(long, value_name = "N", default_value_t = 5)]
    epochs: usize,
    /// Training learning rate (U-Net 2e-3, TernausNet 2e-4).
    #[arg(long, value_name = "X")]
    lr: Option<f64>,
    /// Points of validation IoU a search may lose.
    #[arg(long, value_name = "POINTS", default_value_t = 1.0)]
    tolerance: f64,
    /// The most validation passes of every search (the equal budget).
    #[arg(long, value_name = "N", default_value_t = 25)]
    budget: usize,
    /// Training scenes of every fine-tuning epoch.
    #[arg(long, value_name = "N", default_value_t = 256)]
    tune: usize,
    /// The fine-tunings' learning rate.
    #[arg(long, value_name = "X", default_value_t = 1e-3)]
    tune_lr: f64,
    /// Fit the fine-tunings' learning rate to every network before its search (from --tune-lr
    /// down by √10 steps, the largest whose fine-tune alone costs at most half the tolerance).
    #[arg(long)]
    calibrate: bool,
    /// λ of the gates' L1 penalty in the gated trainings (gate, gate-norm, scratch).
    #[arg(long, value_name = "X", default_value_t = 1e-4)]
    gate_l1: f64,
    /// Share of the training before the gates' (and BatchNorm scales') penalty applies.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    penalty_start: f64,
    /// Keep a step only when the upper end of its drop's interval is within the tolerance.
    #[arg(long)]
    conservative: bool,
    /// Also prune every method to these shares of FLOPs removed, comma-separated, whatever the
    /// drop (for `iou_vs_flops.svg`).
    #[arg(long, value_name = "TARGETS")]
    curve: Option<String>,
    /// The output folder: `study.json`, `study.md`, every run's files; a study resumes.
    #[arg(long, value_name = "DIR", default_value = "runs/study")]
    out: PathBuf,
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "default")]
    device: String,
}

fn main() {
    cli::main_with(run);
}

/// One pruned (or retrained) network of one seed and method.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    seed: u64,
    method: String,
    /// The FLOPs target of a curve point; `None` for the tolerance search.
    target: Option<f64>,
    flops_cut: f64,
    params_after: u64,
    /// Validation IoU (what the search saw) before and after.
    valid_before: f64,
    valid_after: f64,
    /// Every test metric before and after.
    test_before: BTreeMap<String, f64>,
    test_after: BTreeMap<String, f64>,
    passes: usize,
    seconds: f64,
    /// The fine-tunings' learning rate when it was calibrated.
    #[serde(default)]
    tune_lr: Option<f64>,
}

/// How a network is trained before it is pruned.
#[derive(Debug, Clone, Copy)]
enum Regime {
    /// λ·Σ|g| on the gates (the method).
    Gated,
    /// λ·Σ|γ| on the BatchNorm scales (Network Slimming).
    Slimming,
    /// No penalty: the gates are free scales, the network an ordinary one (L1, Taylor, random,
    /// uniform start from it, as their papers prune ordinarily trained networks).
    Plain,
}

impl Regime {
    fn file(self) -> &'static str {
        match self {
            Self::Gated => "trained.prunus",
            Self::Slimming => "trained-slimming.prunus",
            Self::Plain => "trained-plain.prunus",
        }
    }
}

/// Everything the runs share.
struct Study {
    device: Device,
    out: PathBuf,
    net: String,
    base: usize,
    /// TernausNet's widths (encoder and decoder) divided by this (1: the paper's network).
    narrow: usize,
    size: usize,
    epochs: usize,
    lr: f64,
    tolerance: f64,
    conservative: bool,
    /// The most validation passes of every search (the equal budget).
    budget: usize,
    /// Training scenes of every fine-tuning epoch.
    tune: usize,
    /// The fine-tunings' learning rate.
    tune_lr: f64,
    calibrate: bool,
    gate_l1: f64,
    penalty_start: f64,
    train: SegmentationData,
    valid: SegmentationData,
    test: SegmentationData,
}

fn run() -> Res<()> {
    let args = Args::parse();
    let net = args.net;
    let ternaus = match net.as_str() {
        "unet" => false,
        "ternausnet" => true,
        other => return Err(format!("--net {other}: use unet or ternausnet").into()),
    };
    let size = args.size;
    let scenes = SyntheticConfig::new().with_size(size);
    let split =
        |seed: u64, n: usize| SegmentationData::synthetic(scenes.clone().with_seed(seed), 0, n);
    let study = Study {
        device: prunus::device(&args.device)?,
        out: args.out,
        base: args.base.unwrap_or(if ternaus { 8 } else { 16 }),
        narrow: args.narrow.max(1),
        size,
        epochs: args.epochs,
        lr: args.lr.unwrap_or(if ternaus { 2e-4 } else { 2e-3 }),
        tolerance: args.tolerance,
        conservative: args.conservative,
        budget: args.budget,
        tune: args.tune,
        tune_lr: args.tune_lr,
        calibrate: args.calibrate,
        gate_l1: args.gate_l1,
        penalty_start: args.penalty_start,
        train: split(0, args.train),
        valid: split(1, args.valid),
        test: split(2, args.test),
        net,
    };
    let seeds = args.seeds;
    let methods: Vec<String> = args
        .methods
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !(ternaus && m == "slimming"))
        .collect();
    let targets: Vec<f64> = match args.curve {
        Some(list) => list
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<f64>()
                    .map_err(|e| format!("--curve {t}: {e}"))
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    std::fs::create_dir_all(&study.out)?;
    // Every seed's tolerance searches first, then the curves' fixed-FLOPs cuts: a study cut
    // short keeps the table complete.
    let mut rows = Vec::new();
    for seed in 0..seeds {
        rows.extend(study.seed(seed, &methods)?);
        write_outputs(&study, &rows, &methods, &targets)?;
    }
    for seed in (0..seeds).filter(|_| !targets.is_empty()) {
        rows.extend(study.curve(seed, &methods, &targets)?);
        write_outputs(&study, &rows, &methods, &targets)?;
    }
    println!("{}", std::fs::read_to_string(study.out.join("study.md"))?);
    Ok(())
}

impl Study {
    /// The network a method starts from for `seed`: the gated training for the gate criteria,
    /// Network Slimming's for slimming, plain training (no penalty) for the classic criteria.
    fn start(&self, seed: u64, method: &str) -> Res<Network> {
        let dir = self.out.join(format!("seed-{seed}"));
        let regime = match method {
            "gate" | "gate-norm" | "scratch" | "scratch-long" => Regime::Gated,
            "slimming" => Regime::Slimming,
            _ => Regime::Plain,
        };
        self.trained(seed, &dir.join(regime.file()), regime)
    }

    /// Every method cut to each FLOPs target for one seed.
    fn curve(&self, seed: u64, methods: &[String], targets: &[f64]) -> Res<Vec<Row>> {
        let mut rows = Vec::new();
        for method in methods.iter().filter(|m| !is_scratch(m)) {
            let from = self.start(seed, method)?;
            for &t in targets {
                let dir = self.out.join(format!("seed-{seed}/{method}/{t}"));
                let report = self.prune(seed, method, from.clone(), Some(t), &dir)?;
                rows.push(row(seed, method, Some(t), &report));
            }
        }
        Ok(rows)
    }

    /// Every method's tolerance search for one seed, and the scratch baseline.
    fn seed(&self, seed: u64, methods: &[String]) -> Res<Vec<Row>> {
        let dir = self.out.join(format!("seed-{seed}"));
        let gated = self.start(seed, "gate")?;
        let mut rows = Vec::new();
        for method in methods.iter().filter(|m| !is_scratch(m)) {
            let from = self.start(seed, method)?;
            let report = self.prune(seed, method, from, None, &dir.join(method))?;
            rows.push(row(seed, method, None, &report));
        }
        for method in methods.iter().filter(|m| is_scratch(m)) {
            let gate = rows
                .iter()
                .position(|r| r.method == "gate" && r.target.is_none())
                .ok_or("the scratch baselines take the gate criterion's widths: add gate")?;
            let report = read_report(&dir.join("gate"))?;
            let long = method == "scratch-long";
            let row = self.scratch(seed, &gated, &report, &rows[gate], &dir, long)?;
            rows.push(row);
        }
        Ok(rows)
    }

    /// The trained network of `seed` (read back when `path` exists), trained under `regime`
    /// from the same initial weights.
    fn trained(&self, seed: u64, path: &Path, regime: Regime) -> Res<Network> {
        if path.exists() {
            return Ok(ModelFile::<Network>::load(path, &self.device)?.network);
        }
        println!("seed {seed}: training {} ({regime:?})", self.net);
        self.device.seed(seed);
        let net = self.fresh()?;
        let loss = match regime {
            Regime::Gated => LossConfig::new().with_gate_l1(self.gate_l1),
            Regime::Slimming => LossConfig::new().with_gate_l1(0.0).with_bn_l1(1e-4),
            Regime::Plain => LossConfig::new().with_gate_l1(0.0),
        };
        let trained = self.fit(net, loss, seed, &path.with_extension("run"), self.epochs)?;
        ModelFile::original(trained.clone(), [self.size, self.size])?.save_replacing(path)?;
        Ok(trained)
    }

    fn fresh(&self) -> Res<Network> {
        Ok(if self.net == "ternausnet" {
            let mut config = TernausNetConfig::standard(1, self.base);
            let narrow = |w: usize| (w / self.narrow).max(1);
            config.encoder = config.encoder.map(narrow);
            config.decoder = config.decoder.map(|block| block.map(narrow));
            config.dec1 = narrow(config.dec1);
            Network::TernausNet(config.init(&self.device)?)
        } else {
            Network::UNet(UNetConfig::standard(3, 1, self.base, 4).init(&self.device)?)
        })
    }

    /// The training recipe every trained network of the study gets.
    fn fit(
        &self,
        net: Network,
        loss: LossConfig,
        seed: u64,
        dir: &Path,
        epochs: usize,
    ) -> Res<Network> {
        let config = TrainConfig::new()
            .with_epochs(epochs)
            .with_batch_size(8)
            .with_learning_rate(self.lr)
            .with_seed(seed)
            .with_loss(loss)
            .with_penalty_start(self.penalty_start)
            .with_display(TrainDisplay::Quiet);
        let model = train(net, &self.train, &self.valid, dir, &config, &self.device)?.model;
        let _ = std::fs::remove_dir_all(dir);
        Ok(model)
    }

    fn task(&self) -> SegmentationTask {
        SegmentationTask::new(self.train.take(self.tune), self.valid.clone())
            .with_metric(Metric::Iou)
            .with_test(self.test.clone())
    }

    /// One search (or, with a FLOPs target, a cut to that target whatever the drop).
    fn prune(
        &self,
        seed: u64,
        method: &str,
        from: Network,
        target: Option<f64>,
        dir: &Path,
    ) -> Res<Report> {
        if let Ok(report) = read_report(dir) {
            return Ok(report);
        }
        let (criterion, ranking) = match method {
            "gate" => (Criterion::Gate, Ranking::Global),
            "gate-norm" => (Criterion::GateNorm, Ranking::Global),
            "l1" => (Criterion::L1, Ranking::Global),
            "taylor" => (Criterion::Taylor, Ranking::Global),
            "random" => (Criterion::Random { seed }, Ranking::Global),
            "uniform" => (Criterion::L1, Ranking::PerLayer),
            "slimming" => (Criterion::BatchNormGamma, Ranking::Global),
            other => return Err(format!("unknown method {other}").into()),
        };
        // A curve point cuts whatever the drop, so a calibration against its tolerance would
        // keep any rate: it fine-tunes at the rate the method's tolerance search calibrated.
        let calibrated = match target {
            Some(_) if self.calibrate => {
                let searched = self.out.join(format!("seed-{seed}/{method}"));
                let report = read_report(&searched)
                    .map_err(|e| format!("a curve point takes the tolerance search's rate: {e}"))?;
                report.calibration.map(|c| c.learning_rate)
            }
            _ => None,
        };
        let tune_lr = calibrated.unwrap_or(self.tune_lr);
        let tune = |epochs| {
            TrainConfig::fine_tuning(epochs)
                .with_seed(seed)
                .with_learning_rate(tune_lr)
        };
        let config = PruneConfig::new()
            .with_tolerance(if target.is_some() {
                100.0
            } else {
                self.tolerance
            })
            .with_target_flops(target)
            .with_criterion(criterion)
            .with_planner(PlannerConfig {
                ranking,
                ..PlannerConfig::default()
            })
            .with_fine_tune(Some(tune(1)))
            .with_final_fine_tune(Some(tune(2)))
            .with_calibrate_fine_tune(self.calibrate && target.is_none())
            .with_conservative(self.conservative)
            .with_max_evaluations(Some(self.budget))
            .with_taylor_batches(16)
            .with_seed(seed)
            .with_progress(false)
            .with_run_dir(Some(dir.to_path_buf()));
        println!(
            "seed {seed}: {method}{}",
            target.map_or(String::new(), |t| format!(
                " to {:.0}% FLOPs cut",
                100.0 * t
            ))
        );
        let outcome = prune_to_tolerance(from, &mut self.task(), &config, &self.device)?;
        Ok(outcome.report)
    }

    /// The gate run's widths trained from a fresh start with the training recipe — for as many
    /// epochs, or (`long`) for as many training scenes as the pruned network saw in all: its
    /// training plus every fine-tuning of the search.
    fn scratch(
        &self,
        seed: u64,
        gated: &Network,
        gate: &Report,
        gate_row: &Row,
        dir: &Path,
        long: bool,
    ) -> Res<Row> {
        let method = if long { "scratch-long" } else { "scratch" };
        let path = dir.join(format!("{method}.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(serde_json::from_str(&text)?);
        }
        // One fine-tuning epoch on `tune` scenes after every step, two at the end.
        let steps = gate_row.passes.saturating_sub(1);
        let tuned = (steps + 2) * self.tune.min(self.train.len());
        let epochs = if long {
            self.epochs + tuned.div_ceil(self.train.len().max(1))
        } else {
            self.epochs
        };
        println!("seed {seed}: {method} (the gate's widths from a fresh start, {epochs} epochs)");
        let start = std::time::Instant::now();
        let mut plan = PruningPlan::new();
        for w in &gate.widths {
            plan.set_keep(w.group.clone(), 0..w.after);
        }
        self.device.seed(seed + 1000);
        let slim = prune(self.fresh()?, &plan)?;
        let loss = LossConfig::new().with_gate_l1(self.gate_l1);
        let run = dir.join(format!("{method}.run"));
        let trained = self.fit(slim, loss, seed + 1000, &run, epochs)?;
        let mut task = self.task();
        let iou = |m: &prunus::Measurement| m.metrics["IoU"];
        let valid = Task::<Network>::measure(&mut task, &trained, 16, &self.device)?;
        let test = Task::<Network>::measure_test(&mut task, &trained, 16, &self.device)?
            .ok_or("the study's task has a test split")?;
        let cost = |n: &Network| n.cost([self.size, self.size]);
        let row = Row {
            seed,
            method: method.into(),
            target: None,
            flops_cut: 1.0 - cost(&trained)?.flops() as f64 / cost(gated)?.flops() as f64,
            params_after: cost(&trained)?.params(),
            valid_before: gate_row.valid_before,
            valid_after: iou(&valid),
            test_before: gate_row.test_before.clone(),
            test_after: test.metrics,
            passes: 0,
            seconds: start.elapsed().as_secs_f64(),
            tune_lr: None,
        };
        std::fs::write(&path, serde_json::to_string_pretty(&row)?)?;
        Ok(row)
    }
}

/// The baselines that retrain the gate's widths instead of pruning.
fn is_scratch(method: &str) -> bool {
    method.starts_with("scratch")
}

fn read_report(dir: &Path) -> Res<Report> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn row(seed: u64, method: &str, target: Option<f64>, r: &Report) -> Row {
    let test = r.test.as_ref().expect("the study's task has a test split");
    Row {
        seed,
        method: method.to_string(),
        target,
        flops_cut: r.flops_cut(),
        params_after: r.params_after,
        valid_before: r.baseline,
        valid_after: r.final_metric,
        test_before: test.before.clone(),
        test_after: test.after.clone(),
        passes: r.evaluations,
        seconds: r.seconds,
        tune_lr: r.calibration.as_ref().map(|c| c.learning_rate),
    }
}

/// Mean and sample standard deviation.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn write_outputs(study: &Study, rows: &[Row], methods: &[String], targets: &[f64]) -> Res<()> {
    std::fs::write(
        study.out.join("study.json"),
        serde_json::to_string_pretty(rows)?,
    )?;
    let seeds = rows.iter().map(|r| r.seed).max().map_or(0, |s| s + 1);
    let mut md = format!(
        "{} base {}{} on {}×{} synthetic scenes; tolerance {} IoU point{} on {} validation scenes{}, \
         at most {} validation passes a search; test: {} held-out scenes; mean ± sd over {seeds} \
         seed{}.\n\n\
         Gated trainings: λ = {} on the gates{}.\n\n\
         | method | FLOPs cut, % | params | validation IoU drop | test IoU before → after | test IoU change | test pixel accuracy change | passes | time, s | fine-tune lr |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        study.net,
        study.base,
        if study.narrow > 1 {
            format!(", every width ÷ {}", study.narrow)
        } else {
            String::new()
        },
        study.size,
        study.size,
        study.tolerance,
        if study.tolerance == 1.0 { "" } else { "s" },
        study.valid.len(),
        if study.conservative {
            " (conservative: the interval's upper end)"
        } else {
            ""
        },
        study.budget,
        study.test.len(),
        if seeds == 1 { "" } else { "s" },
        study.gate_l1,
        if study.penalty_start > 0.0 {
            format!(
                ", from {:.0}% of the training on",
                100.0 * study.penalty_start
            )
        } else {
            String::new()
        },
    );
    let pm = |v: Vec<f64>, digits: usize| {
        let (m, s) = mean_sd(&v);
        format!("{m:.digits$} ± {s:.digits$}")
    };
    for method in methods {
        let r: Vec<&Row> = rows
            .iter()
            .filter(|r| &r.method == method && r.target.is_none())
            .collect();
        if r.is_empty() {
            continue;
        }
        let col = |f: &dyn Fn(&Row) -> f64| r.iter().map(|x| f(x)).collect::<Vec<f64>>();
        let test = |x: &Row, m: &str, after: bool| {
            if after {
                x.test_after[m]
            } else {
                x.test_before[m]
            }
        };
        md += &format!(
            "| {method} | {} | {} | {} | {} → {} | {} | {} | {} | {} | {} |\n",
            pm(col(&|x| 100.0 * x.flops_cut), 1),
            pm(col(&|x| x.params_after as f64), 0),
            pm(col(&|x| x.valid_before - x.valid_after), 2),
            pm(col(&|x| test(x, "IoU", false)), 2),
            pm(col(&|x| test(x, "IoU", true)), 2),
            pm(col(&|x| test(x, "IoU", true) - test(x, "IoU", false)), 2),
            pm(
                col(&|x| test(x, "pixel accuracy", true) - test(x, "pixel accuracy", false)),
                2
            ),
            pm(col(&|x| x.passes as f64), 1),
            pm(col(&|x| x.seconds), 0),
            r.iter()
                .map(|x| x
                    .tune_lr
                    .map_or(format!("{:.0e}", study.tune_lr), |lr| format!("{lr:.1e}")))
                .collect::<Vec<_>>()
                .join(" / "),
        );
    }
    std::fs::write(study.out.join("study.md"), md)?;
    if !targets.is_empty() {
        let curves: Vec<plots::Curve> = methods
            .iter()
            .filter(|m| !is_scratch(m))
            .map(|m| {
                let points = targets
                    .iter()
                    .filter_map(|&t| {
                        let cut: Vec<f64> = rows
                            .iter()
                            .filter(|r| &r.method == m && r.target == Some(t))
                            .map(|r| 100.0 * r.flops_cut)
                            .collect();
                        let iou: Vec<f64> = rows
                            .iter()
                            .filter(|r| &r.method == m && r.target == Some(t))
                            .map(|r| r.test_after["IoU"])
                            .collect();
                        (!iou.is_empty()).then(|| {
                            let (y, sd) = mean_sd(&iou);
                            (mean_sd(&cut).0, y, sd)
                        })
                    })
                    .collect();
                (m.clone(), points)
            })
            .collect();
        std::fs::write(
            study.out.join("iou_vs_flops.svg"),
            plots::curves(
                &format!(
                    "test IoU vs FLOPs removed ({}, mean ± sd over seeds)",
                    study.net
                ),
                "FLOPs removed, %",
                "test IoU, %",
                &curves,
            ),
        )?;
    }
    Ok(())
}
