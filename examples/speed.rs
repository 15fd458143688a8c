//! Forward and training-step times of the bundled networks, unpruned and uniformly pruned, on
//! one device — the prunus half of `benches/versus.sh`, which runs PyTorch on the same cases and
//! prints the ratios.
//!
//! ```sh
//! cargo run --release --example speed                      # every case, flex
//! cargo run --release --example speed -- --only unet16     # cases whose name contains unet16
//! cargo run --release --example speed -- --json cases.json # also write cases and timings
//! cargo run --release --example speed -- --paired --runs 15  # realised speed-ups of pruning
//! cargo run --release --example speed -- --device wgpu --batch 8 --only _512 --no-train --paired
//! ```
//!
//! Options: `--device NAME` (flex), `--runs N` timed repetitions per case (median taken; 5),
//! `--batch N` images per forward pass (1),
//! `--only TEXT` (cases whose name contains it, and the unpruned networks of the pruned ones),
//! `--case NAME` (that case alone), `--json FILE`,
//! `--list` (cases without timing them), `--no-train`, `--no-pruned`, `--paired` (each pruned
//! case against its unpruned network, timed in alternation: the realised speed-ups, from the
//! medians and from the fastest passes).
//!
//! Forward cases run with gates and BatchNorms folded (as `prunus bench` and the report measure
//! latency), each pass timed until its output is read back and the device is idle; pruned cases keep the same share of every channel group, bisected so that
//! 85% or 90% of the multiply-adds are gone. Training cases time one Adam step of the gated
//! network in training mode: forward, loss with the gate penalty, backward, update, and reading
//! the loss back (as `train` does every step).

use std::path::PathBuf;
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use clap::Parser;
use prunus::LossConfig;
use prunus::models::{Costed, TernausNetConfig, UNetConfig};
use prunus::surgery::{Architecture, Prunable, PruningPlan, fold_for_inference, prune};
use serde_json::json;

#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "Forward and training-step times of the bundled networks, unpruned and pruned")]
struct Args {
    /// The device: flex, ndarray, wgpu, or default (`BURN_DEVICE`, else flex).
    #[arg(long, value_name = "NAME", default_value = "flex")]
    device: String,
    /// Timed repetitions per case, the median taken (at least 1).
    #[arg(long, value_name = "N", default_value_t = 5)]
    runs: usize,
    /// Images per forward pass in the forward cases (at least 1).
    #[arg(long, value_name = "N", default_value_t = 1)]
    batch: usize,
    /// Only the cases whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// That case alone (its exact name).
    #[arg(long, value_name = "NAME")]
    case: Option<String>,
    /// Also write the cases and their timings to this JSON file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// List the cases without timing them.
    #[arg(long)]
    list: bool,
    /// Leave out the training-step cases.
    #[arg(long)]
    no_train: bool,
    /// Leave out the pruned cases.
    #[arg(long)]
    no_pruned: bool,
    /// Time each pruned case against its unpruned network in alternation (unpruned, pruned,
    /// unpruned, …) and print the realised speed-ups: both medians see the same machine.
    #[arg(long)]
    paired: bool,
}

fn main() {
    cli::main_with(run);
}

/// Shares of the multiply-adds removed in the pruned cases.
const CUTS: [f64; 2] = [0.85, 0.9];

/// One timed case.
struct Case {
    name: String,
    /// `forward` or `train`.
    kind: &'static str,
    architecture: Architecture,
    input: [usize; 4],
    /// The unpruned case this one is a pruned version of.
    pruned_from: Option<String>,
}

fn networks() -> Vec<(&'static str, Architecture)> {
    vec![
        (
            "ternausnet",
            Architecture::TernausNet(TernausNetConfig::standard(1, 32)),
        ),
        (
            "unet64",
            Architecture::UNet(UNetConfig::standard(3, 1, 64, 4)),
        ),
        (
            "unet16",
            Architecture::UNet(UNetConfig::standard(3, 1, 16, 4)),
        ),
    ]
}

fn macs(architecture: &Architecture, size: usize) -> Result<u64, Box<dyn std::error::Error>> {
    Ok(architecture.cost([size, size])?.macs())
}

/// The architecture whose multiply-adds are closest above `(1 − cut)` of the original's, every
/// group keeping the same share.
fn pruned_to(
    architecture: &Architecture,
    cut: f64,
    size: usize,
    device: &Device,
) -> Result<Architecture, Box<dyn std::error::Error>> {
    let net = architecture.init(device)?;
    let target = (1.0 - cut) * macs(architecture, size)? as f64;
    let at = |fraction| -> Result<Architecture, Box<dyn std::error::Error>> {
        Ok(prune(
            net.clone(),
            &PruningPlan::leading_share(&net.channel_groups(), fraction),
        )?
        .architecture())
    };
    let (mut low, mut high) = (0.0f64, 1.0f64);
    for _ in 0..20 {
        let mid = (low + high) / 2.0;
        if (macs(&at(mid)?, size)? as f64) < target {
            low = mid;
        } else {
            high = mid;
        }
    }
    at(high)
}

/// The cases `chosen` picks by name, built (and pruned) only when picked; `with_unpruned`: a
/// picked pruned case brings its unpruned network.
fn cases(
    device: &Device,
    batch: usize,
    train: bool,
    pruned: bool,
    chosen: &dyn Fn(&str) -> bool,
    with_unpruned: bool,
) -> Result<Vec<Case>, Box<dyn std::error::Error>> {
    let mut cases = Vec::new();
    for (name, architecture) in networks() {
        for size in [256, 512] {
            let base = format!("{name}_{size}");
            let cut_names = CUTS.map(|cut| format!("{base}_cut{}", (cut * 100.0).round()));
            // A pruned case's speed-up needs its unpruned network timed in the same run.
            let cut_chosen = pruned && cut_names.iter().any(|n| chosen(n));
            if chosen(&base) || (cut_chosen && with_unpruned) {
                cases.push(Case {
                    name: base.clone(),
                    kind: "forward",
                    architecture: architecture.clone(),
                    input: [batch, 3, size, size],
                    pruned_from: None,
                });
            }
            if pruned {
                for (cut, cut_name) in CUTS.into_iter().zip(cut_names) {
                    if !chosen(&cut_name) {
                        continue;
                    }
                    cases.push(Case {
                        name: cut_name,
                        kind: "forward",
                        architecture: pruned_to(&architecture, cut, size, device)?,
                        input: [batch, 3, size, size],
                        pruned_from: Some(base.clone()),
                    });
                }
            }
        }
    }
    if train {
        for (name, architecture) in networks() {
            let batch = match name {
                "unet16" => 4,
                "ternausnet" => 1,
                _ => continue,
            };
            let case_name = format!("train_{name}_{batch}x256");
            if !chosen(&case_name) {
                continue;
            }
            cases.push(Case {
                name: case_name,
                kind: "train",
                architecture,
                input: [batch, 3, 256, 256],
                pruned_from: None,
            });
        }
    }
    Ok(cases)
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// A timer of one folded forward pass of the case's network, its output read back and the device
/// idle (ms), warmed up by two passes.
fn forward_timer(
    case: &Case,
    device: &Device,
) -> Result<impl Fn() -> f64, Box<dyn std::error::Error>> {
    let net = fold_for_inference(case.architecture.init(device)?)?;
    let x = Tensor::<4>::random(case.input, Distribution::Default, device);
    let once = move || {
        let start = Instant::now();
        let _ = net.forward(x.clone()).into_data();
        let _ = x.device().sync();
        start.elapsed().as_secs_f64() * 1e3
    };
    once();
    once();
    Ok(once)
}

/// Median ms of one folded forward pass, its output read back.
fn time_forward(
    case: &Case,
    runs: usize,
    device: &Device,
) -> Result<f64, Box<dyn std::error::Error>> {
    let once = forward_timer(case, device)?;
    Ok(median((0..runs).map(|_| once()).collect()))
}

fn fastest(times: &[f64]) -> f64 {
    times.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Every pruned case timed in alternation with its unpruned network; a markdown table of the
/// medians, the realised speed-up and its share of the multiply-add ratio, then the same from
/// the fastest pass of each (a busy or shared machine only ever adds time: the fastest passes
/// are the nearest to an idle machine's, where the medians move with the neighbours' load).
fn paired(all: &[Case], runs: usize, device: &Device) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "| pruned case | MAC ratio | unpruned ms | pruned ms | speed-up | ÷ MAC ratio | \
         fastest: unpruned ms | pruned ms | speed-up | ÷ MAC ratio |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for case in all {
        let Some(base) = &case.pruned_from else {
            continue;
        };
        let Some(unpruned) = all.iter().find(|c| &c.name == base) else {
            continue;
        };
        let (a, b) = (
            forward_timer(unpruned, device)?,
            forward_timer(case, device)?,
        );
        let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for _ in 0..runs {
            ta.push(a());
            tb.push(b());
        }
        let (fa, fb) = (fastest(&ta), fastest(&tb));
        let (ma, mb) = (median(ta), median(tb));
        let size = case.input[2];
        let ratio =
            macs(&unpruned.architecture, size)? as f64 / macs(&case.architecture, size)? as f64;
        println!(
            "| {} | {ratio:.2} | {ma:.1} | {mb:.1} | {:.2} | {:.2} | {fa:.1} | {fb:.1} | {:.2} | \
             {:.2} |",
            case.name,
            ma / mb,
            ma / mb / ratio,
            fa / fb,
            fa / fb / ratio
        );
    }
    Ok(())
}

/// Median ms of one Adam step of the gated network, the loss read back.
fn time_train(
    case: &Case,
    runs: usize,
    device: &Device,
) -> Result<f64, Box<dyn std::error::Error>> {
    let device = device.clone().autodiff();
    let mut net = case.architecture.init(&device)?;
    let [b, _, h, w] = case.input;
    let x = Tensor::<4>::random(case.input, Distribution::Default, &device);
    let masks = Tensor::<4>::random([b, 1, h, w], Distribution::Bernoulli(0.1), &device);
    let loss = LossConfig::new();
    let mut optim = AdamConfig::new().init();
    let mut once = || {
        let start = Instant::now();
        let logits = net.forward(x.clone());
        let l = loss.loss(&net, logits, masks.clone());
        let grads = GradientsParams::from_grads(l.backward(), &net);
        let _ = l.into_data();
        net = optim.step(1e-4, net.clone(), grads);
        start.elapsed().as_secs_f64() * 1e3
    };
    once();
    once();
    Ok(median((0..runs).map(|_| once()).collect()))
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = prunus::device(&args.device)?;
    let runs = args.runs.max(1);
    let only = args.only.unwrap_or_default();
    let exact = args.case;
    let list = args.list;
    let chosen = |name: &str| match &exact {
        Some(exact) => name == exact,
        None => name.contains(&only),
    };
    let all = cases(
        &device,
        args.batch.max(1),
        !args.no_train,
        !args.no_pruned,
        &chosen,
        exact.is_none(),
    )?;
    println!("device: {}", prunus::device_label(&device));
    println!("forward passes of {} image(s)", args.batch.max(1));
    if args.paired {
        return paired(&all, runs, &device);
    }
    let mut rows = Vec::new();
    println!(
        "{:<24} {:>9} {:>10} {:>10}",
        "case", "GMACs", "ms", "GMAC/s"
    );
    for case in &all {
        let ms = match (list, case.kind) {
            (true, _) => f64::NAN,
            (false, "train") => time_train(case, runs, &device)?,
            (false, _) => time_forward(case, runs, &device)?,
        };
        let [b, _, h, _] = case.input;
        let gmacs = b as f64 * macs(&case.architecture, h)? as f64 / 1e9;
        println!(
            "{:<24} {:>9.3} {:>10.2} {:>10.1}",
            case.name,
            gmacs,
            ms,
            gmacs / (ms / 1e3)
        );
        rows.push(json!({
            "name": case.name,
            "kind": case.kind,
            "architecture": case.architecture,
            "input": case.input,
            "pruned_from": case.pruned_from,
            "gmacs": gmacs,
            "ms": (!list).then_some(ms),
        }));
    }
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&json!({
            "device": prunus::device_label(&device),
            "runs": runs,
            "cases": rows,
        }))?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
