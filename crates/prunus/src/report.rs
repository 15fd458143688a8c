//! What [`prune_to_tolerance`](crate::prune_to_tolerance) reports, how latency is measured, and
//! the progress bar.

use std::io::IsTerminal;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Tensor;
use std::collections::BTreeMap;

use crate::Error;
use crate::calibrate::Calibration;
use prunus_plan::{Constraint, Criterion, SearchState, StepRecord, StopReason, Tolerance};
use serde::{Deserialize, Serialize};

/// Width of one channel group before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupWidth {
    /// The group (its producer's path).
    pub group: String,
    /// Channels before pruning.
    pub before: usize,
    /// Channels after.
    pub after: usize,
}

/// Every metric on the held-out test split, before and after pruning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestFigures {
    /// Every test metric of the unpruned network, in points.
    pub before: BTreeMap<String, f64>,
    /// Every test metric of the result, in points.
    pub after: BTreeMap<String, f64>,
    /// Confidence intervals of each change (after − before, points) by a paired bootstrap over
    /// the test examples, when the task gives per-example counts.
    pub changes: BTreeMap<String, [f64; 2]>,
}

/// What [`prune_to_tolerance`] found, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The metric the tolerance applies to, as the task names it.
    pub metric: String,
    /// Whether a higher metric is better.
    pub higher_is_better: bool,
    /// The tolerance.
    pub tolerance: Tolerance,
    /// Further metrics with their own tolerances.
    pub also: Vec<Constraint>,
    /// Whether a step had to keep its drop's interval within the tolerance.
    pub conservative: bool,
    /// Every validation metric of the unpruned network, in points.
    pub metrics_before: BTreeMap<String, f64>,
    /// Every validation metric of the result, in points.
    pub metrics_after: BTreeMap<String, f64>,
    /// Confidence interval of `drop` (bootstrap over the validation examples), when the task
    /// gives per-example counts.
    pub drop_interval: Option<[f64; 2]>,
    /// The level of the intervals.
    pub confidence: f64,
    /// Every metric on the held-out test split the search never saw, when the task has one.
    pub test: Option<TestFigures>,
    /// The fine-tunings' learning-rate calibration, when the run asked for one
    /// ([`PruneConfig::calibrate_fine_tune`](crate::PruneConfig::calibrate_fine_tune)).
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// The run's seed ([`PruneConfig::seed`](crate::PruneConfig::seed)).
    pub seed: u64,
    /// The data, as the task describes it.
    pub data: String,
    /// The prunus that made the report: version and, when built from a git checkout, commit.
    pub prunus: String,
    /// The importance criterion.
    pub criterion: Criterion,
    /// The example input FLOPs and latency are measured on, `[batch, channels, height, width]`.
    pub input_shape: [usize; 4],
    /// Metric of the unpruned network on the validation data, in points.
    pub baseline: f64,
    /// Metric of the result on the same data, in points.
    pub final_metric: f64,
    /// Drop from the baseline in the tolerance's unit; never above the tolerance.
    pub drop: f64,
    /// FLOPs per example before.
    pub flops_before: u64,
    /// FLOPs per example after.
    pub flops_after: u64,
    /// Parameters (gates excluded) before.
    pub params_before: u64,
    /// Parameters (gates excluded) after.
    pub params_after: u64,
    /// Median latency of one example before, in ms, gates and norms folded.
    pub latency_ms_before: f64,
    /// Median latency of one example after, in ms, gates and norms folded.
    pub latency_ms_after: f64,
    /// The device the latencies were measured on, as [`crate::device_label`] names it.
    pub device: String,
    /// Validation passes used, baseline and final fine-tune included.
    pub evaluations: usize,
    /// Every step, accepted and rolled back.
    pub steps: Vec<StepRecord>,
    /// Why the search ended.
    pub stop: Option<StopReason>,
    /// Metric after the final fine-tune, and whether that network was kept.
    pub final_fine_tune: Option<(f64, bool)>,
    /// Width of every group before and after.
    pub widths: Vec<GroupWidth>,
    /// Wall time of the call, in seconds (of the last call for a resumed run).
    pub seconds: f64,
}

impl Report {
    /// Share of FLOPs removed, in `[0, 1]`.
    pub fn flops_cut(&self) -> f64 {
        1.0 - self.flops_after as f64 / self.flops_before.max(1) as f64
    }

    /// Measured speed-up: latency before / after.
    pub fn speedup(&self) -> f64 {
        self.latency_ms_before / self.latency_ms_after.max(1e-9)
    }

    /// A few lines for people: metric, drop (with its interval), every metric on validation
    /// and test data, FLOPs, parameters, latency, passes.
    pub fn summary(&self) -> String {
        let unit = match self.tolerance {
            Tolerance::Points(_) => "points",
            Tolerance::Relative(_) => "of the baseline",
        };
        let interval = self.drop_interval.map_or(String::new(), |[lo, hi]| {
            format!(
                ", {:.0}% interval [{lo:.2}, {hi:.2}]",
                100.0 * self.confidence
            )
        });
        let also: String = self
            .also
            .iter()
            .map(|c| format!("; {} within {}", c.metric, c.tolerance.value()))
            .collect();
        let mode = if self.conservative {
            ", conservative"
        } else {
            ""
        };
        let mut lines = format!(
            "{metric}: {b:.2} → {f:.2} (drop {d:.3} {unit}{interval}, tolerance {t}{also}{mode})\n",
            metric = self.metric,
            b = self.baseline,
            f = self.final_metric,
            d = self.drop,
            t = self.tolerance.value(),
        );
        if self.metrics_before.len() > 1 {
            lines += &format!(
                "validation: {}\n",
                metrics_line(
                    &self.metric,
                    &self.metrics_before,
                    &self.metrics_after,
                    None
                )
            );
        }
        if let Some(c) = &self.calibration {
            let tried: Vec<String> = c
                .trials
                .iter()
                .map(|t| format!("{:.1e}: {:.2}", t.learning_rate, t.drop))
                .collect();
            lines += &format!(
                "fine-tuning calibrated: learning rate {:.1e}{} (drop of a fine-tune alone at {})\n",
                c.learning_rate,
                if c.passed(self.tolerance.value()) {
                    ""
                } else {
                    ", the least harmful: no rate tried stayed within half the tolerance"
                },
                tried.join(", "),
            );
        }
        if let Some(test) = &self.test {
            lines += &format!(
                "test (never seen by the search): {}\n",
                metrics_line(&self.metric, &test.before, &test.after, Some(&test.changes))
            );
        }
        lines
            + &format!(
                "FLOPs: {fb:.3} G → {fa:.3} G ({cut:.1}% removed)\n\
             parameters: {pb:.3} M → {pa:.3} M ({pr:.1}× smaller)\n\
             latency on {dev}: {lb:.2} ms → {la:.2} ms ({s:.2}× faster)\n\
             validation passes: {e}, steps: {n} ({acc} accepted), stop: {stop:?}",
                fb = self.flops_before as f64 / 1e9,
                fa = self.flops_after as f64 / 1e9,
                cut = 100.0 * self.flops_cut(),
                pb = self.params_before as f64 / 1e6,
                pa = self.params_after as f64 / 1e6,
                pr = self.params_before as f64 / self.params_after.max(1) as f64,
                dev = self.device,
                lb = self.latency_ms_before,
                la = self.latency_ms_after,
                s = self.speedup(),
                e = self.evaluations,
                n = self.steps.len(),
                acc = self.steps.iter().filter(|s| s.accepted).count(),
                stop = self.stop,
            )
    }
}

/// `IoU 65.42 → 60.10 [-7.1, -3.5], Dice …`: every metric before → after, `main` first, with
/// the interval of its change when given.
fn metrics_line(
    main: &str,
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    changes: Option<&BTreeMap<String, [f64; 2]>>,
) -> String {
    let first = before.get_key_value(main);
    first
        .into_iter()
        .chain(before.iter().filter(|(name, _)| name.as_str() != main))
        .filter_map(|(name, b)| {
            let a = after.get(name)?;
            let ci = changes
                .and_then(|c| c.get(name))
                .map_or(String::new(), |[lo, hi]| format!(" [{lo:+.2}, {hi:+.2}]"));
            Some(format!("{name} {b:.2} → {a:.2}{ci}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pruned network and its report.
#[derive(Debug)]
pub struct Outcome<M> {
    /// The pruned network (gates folded when `fold` is set).
    pub model: M,
    /// What was found, measured.
    pub report: Report,
}

/// Median time of one forward pass of `forward(model, input)` in ms, after two warm-up passes.
///
/// Each pass ends when its output has been read back and the device has finished everything
/// queued on it (`Device::sync`), so on a GPU the time covers the work, not only its launch.
///
/// # Errors
///
/// [`Error::Execution`] when the device cannot run the pass (on a GPU, an input whose buffers
/// pass the device's limits, say).
pub fn measure_latency<M: Module, const D: usize>(
    model: &M,
    input: &Tensor<4>,
    runs: usize,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<D>,
) -> Result<f64, Error> {
    let model = model.valid();
    let device = input.device();
    let failed = |e: &dyn std::fmt::Display| Error::Execution {
        what: format!("a forward pass of a {:?} input", input.dims()),
        message: e.to_string(),
    };
    let run = || -> Result<f64, Error> {
        let start = Instant::now();
        let y = forward(&model, input.clone());
        y.try_into_data().map_err(|e| failed(&e))?;
        device.sync().map_err(|e| failed(&e))?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    };
    run()?;
    run()?;
    let mut times = (0..runs.max(1))
        .map(|_| run())
        .collect::<Result<Vec<f64>, _>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The search's progress on stderr: an `indicatif` bar of the FLOPs cut so far with the last
/// step's figures on a terminal, one plain line per step otherwise (a log).
pub(crate) struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
}

impl ProgressBar {
    /// A bar on stderr when it is a terminal, lines otherwise.
    pub(crate) fn stderr() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style = indicatif::ProgressStyle::with_template("[{bar:30}] {msg}")
                .expect("a valid template")
                .progress_chars("#>-");
            indicatif::ProgressBar::new(1000).with_style(style)
        });
        Self { bar }
    }

    /// Shows the step `record` of the search `state` against `tolerance`.
    pub(crate) fn draw(&self, record: &StepRecord, state: &SearchState, tolerance: f64) {
        let cut = 1.0 - record.flops as f64 / state.baseline_flops.max(1) as f64;
        let current_cut = state
            .steps
            .iter()
            .rev()
            .find(|s| s.accepted)
            .map_or(0.0, |s| {
                1.0 - s.flops as f64 / state.baseline_flops.max(1) as f64
            });
        let line = format!(
            "{:>5.1}% FLOPs cut | step {} −{} ch ({:.1}% FLOPs) metric {:.2} drop {:.3}{}/{} {} | passes {}",
            100.0 * current_cut,
            record.step,
            record.removed,
            100.0 * cut,
            record.metric,
            record.drop,
            record
                .drop_interval
                .map_or(String::new(), |[lo, hi]| format!(" [{lo:.2}, {hi:.2}]")),
            tolerance,
            if record.accepted {
                "accepted".to_string()
            } else if record.violated.is_empty() {
                "rolled back".to_string()
            } else {
                format!("rolled back ({})", record.violated.join(", "))
            },
            state.evaluations,
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position((current_cut * 1000.0).round() as u64);
                bar.set_message(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Leaves the bar's last state on the screen.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
