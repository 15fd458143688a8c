//! How many validation passes the tolerance search spends as networks grow: the search that
//! only halves its step against the one that doubles it again after accepted steps
//! (`SearchConfig::grow_after`, the default).
//!
//! ```sh
//! cargo run --release --example search_passes                # U-Net bases 4 … 64, 5 seeds
//! cargo run --release --example search_passes -- --bases 4,8 --seeds 3 --noise 1
//! ```
//!
//! Each network is a real U-Net (`UNetConfig::standard(3, 1, base, 4)`) pruned by the real
//! search, planner and surgery; only the validation metric is a formula, so that thousands of
//! passes cost seconds and the figure isolates the search: `100 − 40·r²` points, r the share of
//! channels removed, plus — in the noisy rows — a disturbance uniform in ±`--noise` points
//! (0.5) that changes at every pass, as a validation metric measured on a few hundred images
//! does. The tolerance is 1 point (`--tolerance`), the first step 50% of the channels, the
//! criterion random (the formula ignores which channels go). A search stops when its step falls
//! below one channel, or at `--cap` passes (2000).
//!
//! The question is the worst case: a search that only halves its step, once a noisy pass has
//! made the step small, creeps towards the tolerance a few channels per pass, so its passes grow
//! with the number of filters; one that grows the step again after two accepted steps needs a
//! number of passes that grows with the logarithm of it.

use burn::tensor::Device;
use clap::Parser;
use prunus::models::{Costed, UNet, UNetConfig};
use prunus::plan::{
    Criterion, Evaluation, PlanError, Scores, SearchConfig, SearchHost, SearchState, Tolerance,
    score, search,
};
use prunus::surgery::Prunable;

#[path = "common/cli.rs"]
mod cli;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser, Debug)]
#[command(about = "Validation passes the tolerance search spends as U-Nets grow")]
struct Args {
    /// Seeds of every noisy row (the exact rows run once).
    #[arg(long, value_name = "N", default_value_t = 5)]
    seeds: u64,
    /// The tolerance, in points of the formula's metric.
    #[arg(long, value_name = "POINTS", default_value_t = 1.0)]
    tolerance: f64,
    /// The noisy rows' disturbance: uniform in ± this many points, new at every pass.
    #[arg(long, value_name = "POINTS", default_value_t = 0.5)]
    noise: f64,
    /// The most validation passes of one search.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    cap: usize,
    /// The U-Nets' first-level widths, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "4,8,16,32,64")]
    bases: String,
}

fn main() {
    cli::main_with(run);
}

/// How the metric answers a candidate.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `100 − 40·r²`, measured exactly.
    Exact,
    /// The same with a disturbance in ±noise points at every pass.
    Noisy,
    /// `100 − 400·max(0, r − 0.8)² − 20·s²` with the disturbance, s the share removed by the
    /// candidate's own step: a large step harms more than the short fine-tuning repairs, and
    /// the network holds 80% of its channels' removal when they go a little at a time.
    Stepwise,
}

/// The metric by formula (see [`Shape`]).
struct FormulaHost {
    shape: Shape,
    total: usize,
    /// Channels of the last accepted network.
    last: usize,
    noise: f64,
    /// Where the disturbance's sequence starts (one sequence per seed).
    phase: f64,
    passes: usize,
}

fn channels(model: &UNet) -> usize {
    model.channel_groups().iter().map(|g| g.size).sum()
}

impl SearchHost<UNet> for FormulaHost {
    type Error = PlanError;

    fn evaluate(&mut self, model: &UNet) -> Result<Evaluation, PlanError> {
        self.passes += 1;
        let now = channels(model);
        let r = 1.0 - now as f64 / self.total as f64;
        let step = 1.0 - now as f64 / self.last as f64;
        // A Weyl sequence: equidistributed in [0, 1), different at every pass.
        let u = (self.phase + self.passes as f64 * 0.618_033_988_749_895).fract();
        let disturbance = if self.passes == 1 {
            0.0 // the baseline is the network as measured
        } else {
            self.noise * (2.0 * u - 1.0)
        };
        Ok(Evaluation::from(match self.shape {
            Shape::Exact => 100.0 - 40.0 * r * r,
            Shape::Noisy => 100.0 - 40.0 * r * r + disturbance,
            Shape::Stepwise => {
                100.0 - 400.0 * (r - 0.8).max(0.0).powi(2) - 20.0 * step * step + disturbance
            }
        }))
    }

    fn scores(&mut self, model: &UNet, step: usize) -> Result<Scores, PlanError> {
        score(model, Criterion::Random { seed: 7 }, step as u64)
    }

    fn accepted(&mut self, model: &UNet, _state: &SearchState) -> Result<(), PlanError> {
        self.last = channels(model);
        Ok(())
    }

    fn flops(&mut self, model: &UNet) -> Result<u64, PlanError> {
        // A U-Net built by `standard` always has a cost at 64²; the formula does not use it.
        let cost = model.cost([64, 64]);
        cost.map(|c| c.flops())
            .map_err(|e| PlanError::config("model", e.to_string()))
    }
}

/// One search: passes spent (baseline included) and the share of channels removed.
fn one(
    model: &UNet,
    shape: Shape,
    seed: u64,
    grow_after: Option<usize>,
    a: &Opts,
) -> Res<(usize, f64)> {
    let mut host = FormulaHost {
        shape,
        total: channels(model),
        last: channels(model),
        noise: a.noise,
        phase: seed as f64 * 0.414_213_562_373_095,
        passes: 0,
    };
    let config = SearchConfig {
        tolerance: Tolerance::Points(a.tolerance),
        initial_step: 0.5,
        max_evaluations: Some(a.cap),
        grow_after,
        ..SearchConfig::default()
    };
    let baseline = host.evaluate(model)?;
    let flops = host.flops(model)?;
    let state = SearchState::start(&model.channel_groups(), &baseline, flops, &config)?;
    let (pruned, state) = search(model.clone(), state, &mut host, &config)?;
    let removed = 1.0 - channels(&pruned) as f64 / host.total as f64;
    Ok((state.evaluations + 1, removed))
}

struct Opts {
    tolerance: f64,
    noise: f64,
    cap: usize,
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v.sqrt())
}

fn run() -> Res<()> {
    let args = Args::parse();
    let seeds = args.seeds;
    let opts = Opts {
        tolerance: args.tolerance,
        noise: args.noise,
        cap: args.cap,
    };
    let bases: Vec<usize> = args
        .bases
        .split(',')
        .map(|b| {
            b.trim()
                .parse()
                .map_err(|_| format!("--bases: {b} is not a width"))
        })
        .collect::<Result<_, _>>()?;
    let device = Device::flex();
    println!(
        "tolerance {} point, first step 50%, noise ±{} points, {seeds} seeds, cap {} passes",
        opts.tolerance, opts.noise, opts.cap
    );
    let models = bases
        .iter()
        .map(|&b| UNetConfig::standard(3, 1, b, 4).init(&device))
        .collect::<Result<Vec<_>, _>>()?;
    for shape in [Shape::Exact, Shape::Noisy, Shape::Stepwise] {
        println!("\n{shape:?}: passes (removed)\n");
        println!("| U-Net base | filters | halving only | grows again |");
        println!("| ---: | ---: | ---: | ---: |");
        for (base, model) in bases.iter().zip(&models) {
            let mut cells = Vec::new();
            for grow in [None, Some(2)] {
                let n = if matches!(shape, Shape::Exact) {
                    1
                } else {
                    seeds
                };
                let mut passes = Vec::new();
                let mut share = Vec::new();
                for seed in 0..n {
                    let (p, r) = one(model, shape, seed, grow, &opts)?;
                    passes.push(p as f64);
                    share.push(100.0 * r);
                }
                let (m, s) = mean_sd(&passes);
                let capped = passes.iter().any(|&p| p as usize >= opts.cap);
                let spread = if n > 1 {
                    format!(" ± {s:.0}")
                } else {
                    String::new()
                };
                cells.push(format!(
                    "{m:.0}{spread}{} ({:.1}%)",
                    if capped { ", capped" } else { "" },
                    mean_sd(&share).0
                ));
            }
            println!(
                "| {base} | {} | {} | {} |",
                channels(model),
                cells[0],
                cells[1]
            );
        }
    }
    Ok(())
}
