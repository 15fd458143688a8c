//! The error-tolerance search: prune in steps while the validation metric stays within the
//! tolerance, halving the step and rolling back when it does not.

use std::collections::BTreeMap;

use prunus_surgery::{ChannelGroup, Prunable, PruningPlan, prune};
use serde::{Deserialize, Serialize};

use crate::criteria::Scores;
use crate::error::PlanError;
use crate::planner::{PlannerConfig, plan_removal, removed_count};

/// The largest metric drop allowed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Tolerance {
    /// At most this many points (the metric in percent): `m0 − m ≤ t`.
    Points(f64),
    /// At most this share of the baseline: `(m0 − m) / m0 ≤ t`.
    Relative(f64),
}

impl Tolerance {
    /// The drop from `baseline` to `metric` in this tolerance's unit, for a metric where higher
    /// is better.
    pub fn drop(&self, baseline: f64, metric: f64) -> f64 {
        self.worsening(baseline, metric, true)
    }

    /// How much worse `metric` is than `baseline` in this tolerance's unit: `baseline − metric`
    /// when higher is better (accuracy, IoU), `metric − baseline` when lower is better (error,
    /// loss); relative tolerances divide by |baseline|.
    pub fn worsening(&self, baseline: f64, metric: f64, higher_is_better: bool) -> f64 {
        let worse = if higher_is_better {
            baseline - metric
        } else {
            metric - baseline
        };
        match self {
            Self::Points(_) => worse,
            Self::Relative(_) => {
                if baseline == 0.0 {
                    0.0f64.max(worse)
                } else {
                    worse / baseline.abs()
                }
            }
        }
    }

    /// The interval of the drop, in this tolerance's unit, from an interval `[low, high]` of
    /// the change `metric − baseline` in points.
    pub fn worsening_interval(
        &self,
        baseline: f64,
        change: [f64; 2],
        higher_is_better: bool,
    ) -> [f64; 2] {
        let [a, b] = change.map(|c| self.worsening(baseline, baseline + c, higher_is_better));
        [a.min(b), a.max(b)]
    }

    /// The allowed drop.
    pub fn value(&self) -> f64 {
        match self {
            Self::Points(t) | Self::Relative(t) => *t,
        }
    }
}

/// What else may end the search before the tolerance does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Targets {
    /// Stop once this share of the prunable channels is removed (0–1).
    pub rate: Option<f64>,
    /// Stop once this share of the FLOPs is removed (0–1).
    pub flops: Option<f64>,
}

/// What a validation pass measured: every metric, in points, by name, and — for a candidate
/// when the host can tell — how sure each change from the baseline is.
///
/// ```
/// use prunus_plan::Evaluation;
///
/// let e = Evaluation::from(93.5);
/// assert_eq!(e.get("metric"), Some(93.5));
/// let e = Evaluation::new([("IoU", 61.0), ("pixel accuracy", 97.2)]);
/// assert_eq!(e.get("IoU"), Some(61.0));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Evaluation {
    /// Every metric measured, in points, by name.
    pub metrics: BTreeMap<String, f64>,
    /// A confidence interval `[low, high]` of each metric's change from the baseline
    /// (candidate − baseline, in points), by name; empty when the host gives none (and for the
    /// baseline itself).
    pub changes: BTreeMap<String, [f64; 2]>,
}

impl Evaluation {
    /// Metrics by name, no intervals.
    pub fn new<S: Into<String>>(metrics: impl IntoIterator<Item = (S, f64)>) -> Self {
        Self {
            metrics: metrics.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            changes: BTreeMap::new(),
        }
    }

    /// The value of `metric`.
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied()
    }
}

impl From<f64> for Evaluation {
    /// One metric, named `metric` (the name [`SearchConfig::default`] judges).
    fn from(value: f64) -> Self {
        Self::new([(DEFAULT_METRIC, value)])
    }
}

/// The name of the metric [`SearchConfig::default`] judges, and of the one an `f64` converts to.
pub const DEFAULT_METRIC: &str = "metric";

/// A further metric that must stay within its own tolerance ("≤ 1 point of IoU *and* ≤ 0.5
/// points of pixel accuracy").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    /// The metric's name, as the host's [`Evaluation`] names it.
    pub metric: String,
    /// Its largest allowed drop.
    pub tolerance: Tolerance,
    /// Whether a higher value is better.
    pub higher_is_better: bool,
}

/// Settings of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// The metric the tolerance applies to, as the host's [`Evaluation`] names it.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// The largest allowed drop of the metric.
    pub tolerance: Tolerance,
    /// Share of the remaining prunable channels the first step removes, in (0, 1].
    pub initial_step: f64,
    /// The most validation passes, baseline included (`None`: no limit).
    pub max_evaluations: Option<usize>,
    /// Rate and FLOPs targets that stop the search early.
    pub targets: Targets,
    /// Constraints of the planner.
    pub planner: PlannerConfig,
    /// Whether a higher metric is better (accuracy, IoU: the default) or a lower one (error).
    #[serde(default = "higher")]
    pub higher_is_better: bool,
    /// After this many accepted steps in a row the step doubles again (up to `initial_step`), so
    /// that a search that had to halve its step does not creep one channel at a time for the
    /// rest of the run; `None` only halves (the search of the paper).
    #[serde(default = "two")]
    pub grow_after: Option<usize>,
    /// Further metrics with their own tolerances; a step is kept only when every one holds.
    #[serde(default)]
    pub also: Vec<Constraint>,
    /// Keep a step only when the upper end of its drop's confidence interval is within the
    /// tolerance (for every metric the host gives an interval for), not just the drop as
    /// measured.
    #[serde(default)]
    pub conservative: bool,
}

fn default_metric() -> String {
    DEFAULT_METRIC.into()
}

fn higher() -> bool {
    true
}

fn two() -> Option<usize> {
    Some(2)
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            tolerance: Tolerance::Points(0.5),
            initial_step: 0.5,
            max_evaluations: None,
            targets: Targets::default(),
            planner: PlannerConfig::default(),
            higher_is_better: true,
            grow_after: two(),
            metric: default_metric(),
            also: Vec::new(),
            conservative: false,
        }
    }
}

impl SearchConfig {
    /// How much worse `metric` is than `baseline`, in the tolerance's unit, in this metric's
    /// direction.
    pub fn drop(&self, baseline: f64, metric: f64) -> f64 {
        self.tolerance
            .worsening(baseline, metric, self.higher_is_better)
    }

    /// Every constrained metric, the main one first.
    pub fn constraints(&self) -> Vec<Constraint> {
        let main = Constraint {
            metric: self.metric.clone(),
            tolerance: self.tolerance,
            higher_is_better: self.higher_is_better,
        };
        std::iter::once(main)
            .chain(self.also.iter().cloned())
            .collect()
    }

    /// Judges a candidate's evaluation against the baseline's: the drop of every constrained
    /// metric and whether the candidate is kept.
    ///
    /// # Errors
    /// [`PlanError::Config`] when the evaluation (or the baseline) lacks a constrained metric.
    pub fn judge(
        &self,
        baseline: &Evaluation,
        candidate: &Evaluation,
    ) -> Result<Judgement, PlanError> {
        let mut judgement = Judgement {
            metric: 0.0,
            drop: 0.0,
            interval: None,
            violated: Vec::new(),
        };
        for (i, c) in self.constraints().iter().enumerate() {
            let missing = |what: &str| {
                PlanError::config(
                    "metric",
                    format!(
                        "the {what} has no metric named {:?} (it has {:?})",
                        c.metric,
                        candidate.metrics.keys().collect::<Vec<_>>()
                    ),
                )
            };
            let m0 = baseline.get(&c.metric).ok_or_else(|| missing("baseline"))?;
            let m = candidate
                .get(&c.metric)
                .ok_or_else(|| missing("evaluation"))?;
            let drop = c.tolerance.worsening(m0, m, c.higher_is_better);
            let interval = candidate
                .changes
                .get(&c.metric)
                .map(|&ch| c.tolerance.worsening_interval(m0, ch, c.higher_is_better));
            let judged = match interval {
                Some([_, high]) if self.conservative => drop.max(high),
                _ => drop,
            };
            if !judged.is_finite() || judged > c.tolerance.value() {
                judgement.violated.push(c.metric.clone());
            }
            if i == 0 {
                judgement.metric = m;
                judgement.drop = drop;
                judgement.interval = interval;
            }
        }
        Ok(judgement)
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`PlanError::Config`] naming the bad setting: a tolerance that is negative or not finite,
    /// a step outside (0, 1], a budget below 2, a target outside (0, 1], a metric constrained
    /// twice.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |field: &str, m: String| Err(PlanError::config(field, m));
        let constraints = self.constraints();
        for (i, c) in constraints.iter().enumerate() {
            let t = c.tolerance.value();
            if !t.is_finite() || t < 0.0 {
                return bad(
                    "tolerance",
                    format!("must be finite and ≥ 0 (on {}), got {t}", c.metric),
                );
            }
            if constraints[..i].iter().any(|o| o.metric == c.metric) {
                return bad("tolerance", format!("{} has two tolerances", c.metric));
            }
        }
        let s = self.initial_step;
        if !(s > 0.0 && s <= 1.0) {
            return bad("initial_step", format!("must be in (0, 1], got {s}"));
        }
        if self.grow_after == Some(0) {
            return bad(
                "grow_after",
                "the step can grow after one accepted step at the soonest, got 0".into(),
            );
        }
        if let Some(n) = self.max_evaluations
            && n < 2
        {
            return bad(
                "max_evaluations",
                format!("must allow the baseline and one step (≥ 2), got {n}"),
            );
        }
        for (name, target) in [("rate", self.targets.rate), ("flops", self.targets.flops)] {
            if let Some(v) = target
                && !(v > 0.0 && v <= 1.0)
            {
                return bad(name, format!("the target must be in (0, 1], got {v}"));
            }
        }
        self.planner.validate()
    }
}

/// How a candidate fared against the baseline ([`SearchConfig::judge`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The candidate's main metric.
    pub metric: f64,
    /// The main metric's drop, in the tolerance's unit.
    pub drop: f64,
    /// The interval of that drop, when the host gave one.
    pub interval: Option<[f64; 2]>,
    /// The constrained metrics that left their tolerance; empty: the candidate is kept.
    pub violated: Vec<String>,
}

impl Judgement {
    /// Whether every constraint holds.
    pub fn accepted(&self) -> bool {
        self.violated.is_empty()
    }
}

/// One step of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based step number.
    pub step: usize,
    /// Share of the remaining prunable channels the step tried to remove.
    pub fraction: f64,
    /// Channels the step removed.
    pub removed: usize,
    /// Prunable channels left after the step (if accepted) or that would be left.
    pub channels: usize,
    /// FLOPs of the candidate network.
    pub flops: u64,
    /// Validation metric of the candidate, in points.
    pub metric: f64,
    /// Drop from the baseline, in the tolerance's unit.
    pub drop: f64,
    /// Whether the candidate was kept.
    pub accepted: bool,
    /// Every metric the host measured on the candidate, in points.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Confidence interval of `drop`, when the host gave one.
    #[serde(default)]
    pub drop_interval: Option<[f64; 2]>,
    /// The constrained metrics that left their tolerance (why a step was rolled back).
    #[serde(default)]
    pub violated: Vec<String>,
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The next step would remove less than one channel.
    StepTooSmall,
    /// The constraints leave nothing to remove.
    NothingRemovable,
    /// The evaluation budget is spent.
    Budget,
    /// The rate target is reached.
    RateReached,
    /// The FLOPs target is reached.
    FlopsReached,
}

/// Everything the search knows after an accepted step: enough to resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchState {
    /// Baseline metric in points.
    pub baseline: f64,
    /// Every metric of the unpruned network, in points.
    #[serde(default)]
    pub baseline_metrics: BTreeMap<String, f64>,
    /// FLOPs of the unpruned network.
    pub baseline_flops: u64,
    /// Prunable channels of the unpruned network.
    pub baseline_channels: usize,
    /// Current step fraction.
    pub fraction: f64,
    /// Validation passes so far, baseline included.
    pub evaluations: usize,
    /// Every step so far, accepted and rolled back.
    pub steps: Vec<StepRecord>,
    /// Metric of the last accepted network (the baseline before any).
    pub metric: f64,
    /// Kept channels of every group, as indices into the unpruned network's channels.
    pub kept: BTreeMap<String, Vec<usize>>,
    /// Why the search ended, once it has.
    pub stopped: Option<StopReason>,
}

impl SearchState {
    /// The state before any step, from the unpruned network's groups and evaluation.
    ///
    /// # Errors
    /// [`PlanError::Config`] when the evaluation lacks a constrained metric.
    pub fn start(
        groups: &[ChannelGroup],
        baseline: &Evaluation,
        baseline_flops: u64,
        config: &SearchConfig,
    ) -> Result<Self, PlanError> {
        config.judge(baseline, baseline)?;
        let main = baseline.get(&config.metric).unwrap_or(f64::NAN);
        Ok(Self {
            baseline: main,
            baseline_metrics: baseline.metrics.clone(),
            baseline_flops,
            baseline_channels: config.planner.prunable_channels(groups),
            fraction: config.initial_step,
            evaluations: 1,
            steps: Vec::new(),
            metric: main,
            kept: groups
                .iter()
                .map(|g| (g.name.clone(), (0..g.size).collect()))
                .collect(),
            stopped: None,
        })
    }

    /// The baseline as an evaluation: every metric of the unpruned network (the main one alone
    /// for a state saved before they were kept).
    pub fn baseline_evaluation(&self, config: &SearchConfig) -> Evaluation {
        let mut metrics = self.baseline_metrics.clone();
        metrics
            .entry(config.metric.clone())
            .or_insert(self.baseline);
        Evaluation {
            metrics,
            changes: BTreeMap::new(),
        }
    }

    /// The plan that takes the unpruned network to the last accepted one.
    pub fn plan(&self) -> PruningPlan {
        let mut plan = PruningPlan::new();
        for (group, kept) in &self.kept {
            plan.set_keep(group.clone(), kept.iter().copied());
        }
        plan
    }

    /// Number of steps accepted.
    pub fn accepted(&self) -> usize {
        self.steps.iter().filter(|s| s.accepted).count()
    }
}

/// What the search needs from its caller: metrics, scores, fine-tuning, cost, and a place to
/// save progress.
pub trait SearchHost<M> {
    /// The caller's error type.
    type Error: From<PlanError>;

    /// The validation metrics of `model`, in points (percent), with the one
    /// [`SearchConfig::metric`] names among them (an `f64` converts to an evaluation of the
    /// default metric); intervals of their changes from the baseline when the host can tell.
    fn evaluate(&mut self, model: &M) -> Result<Evaluation, Self::Error>;

    /// Importance scores of `model`'s channels for step `step` (1-based).
    fn scores(&mut self, model: &M, step: usize) -> Result<Scores, Self::Error>;

    /// FLOPs of `model`.
    fn flops(&mut self, model: &M) -> Result<u64, Self::Error>;

    /// Optional fine-tuning of a freshly pruned candidate of step `step`; the default returns
    /// it unchanged.
    fn fine_tune(&mut self, model: M, step: usize) -> Result<M, Self::Error> {
        let _ = step;
        Ok(model)
    }

    /// Called after each accepted step with the new network and the state (to checkpoint).
    fn accepted(&mut self, model: &M, state: &SearchState) -> Result<(), Self::Error> {
        let _ = (model, state);
        Ok(())
    }

    /// Called after every step, accepted or not (to show progress).
    fn progress(&mut self, record: &StepRecord, state: &SearchState) {
        let _ = (record, state);
    }
}

fn stop_for_targets(
    state: &SearchState,
    channels: usize,
    flops: u64,
    config: &SearchConfig,
) -> Option<StopReason> {
    let rate_done = 1.0 - channels as f64 / state.baseline_channels.max(1) as f64;
    let flops_done = 1.0 - flops as f64 / state.baseline_flops.max(1) as f64;
    if config.targets.rate.is_some_and(|r| rate_done >= r - 1e-12) {
        return Some(StopReason::RateReached);
    }
    if config
        .targets
        .flops
        .is_some_and(|f| flops_done >= f - 1e-12)
    {
        return Some(StopReason::FlopsReached);
    }
    None
}

/// Doubles the step (up to the initial one) after every `grow_after` accepted steps in a row.
fn grow(state: &mut SearchState, config: &SearchConfig) {
    let Some(n) = config.grow_after else {
        return;
    };
    let streak = state.steps.iter().rev().take_while(|s| s.accepted).count();
    if streak > 0 && streak % n == 0 && state.fraction < config.initial_step {
        state.fraction = (state.fraction * 2.0).min(config.initial_step);
    }
}

/// Runs the tolerance search from `model` (the last accepted network) and `state`.
///
/// Each step removes the lowest-ranked `fraction` of the remaining prunable channels, lets the
/// host fine-tune and evaluate the candidate, and accepts it when the drop from the baseline is
/// within the tolerance — for every constrained metric, and for the upper end of the drop's
/// interval in [`SearchConfig::conservative`] mode; otherwise it rolls back and halves the
/// fraction. After
/// [`SearchConfig::grow_after`] accepted steps in a row the fraction doubles again, up to the
/// initial one. With a rate or FLOPs
/// target, a step removes no more than needed to reach it. Returns the last accepted network and
/// the final state; the drop of that network as measured is within the tolerance.
///
/// # Errors
/// The host's errors, and [`PlanError`]s from planning and surgery.
pub fn search<M, H>(
    mut model: M,
    mut state: SearchState,
    host: &mut H,
    config: &SearchConfig,
) -> Result<(M, SearchState), H::Error>
where
    M: Prunable,
    H: SearchHost<M>,
{
    config.validate()?;
    let baseline = state.baseline_evaluation(config);
    let mut flops_now = host.flops(&model)?;
    while state.stopped.is_none() {
        let groups = model.channel_groups();
        let channels = config.planner.prunable_channels(&groups);
        if let Some(reason) = stop_for_targets(&state, channels, flops_now, config) {
            state.stopped = Some(reason);
            break;
        }
        if config
            .max_evaluations
            .is_some_and(|n| state.evaluations >= n)
        {
            state.stopped = Some(StopReason::Budget);
            break;
        }
        let mut count = (state.fraction * channels as f64).floor() as usize;
        if let Some(rate) = config.targets.rate {
            let goal = (rate * state.baseline_channels as f64).ceil() as usize;
            let removed_so_far = state.baseline_channels - channels;
            count = count.min(goal.saturating_sub(removed_so_far).max(1));
        }
        if count < 1 {
            state.stopped = Some(StopReason::StepTooSmall);
            break;
        }
        let step = state.steps.len() + 1;
        let scores = host.scores(&model, step)?;
        let mut plan = plan_removal(&groups, &scores, count, &config.planner)?;
        let mut candidate = prune(model.clone(), &plan).map_err(PlanError::from)?;
        let mut candidate_flops = host.flops(&candidate)?;
        if let Some(target) = config.targets.flops {
            // Remove no more than the target needs: the smallest count that reaches it.
            let goal = ((1.0 - target) * state.baseline_flops as f64).floor() as u64;
            if candidate_flops < goal {
                let (mut lo, mut hi) = (1usize, count);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let p = plan_removal(&groups, &scores, mid, &config.planner)?;
                    let c = prune(model.clone(), &p).map_err(PlanError::from)?;
                    if host.flops(&c)? <= goal {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                plan = plan_removal(&groups, &scores, lo, &config.planner)?;
                candidate = prune(model.clone(), &plan).map_err(PlanError::from)?;
                candidate_flops = host.flops(&candidate)?;
            }
        }
        let removed = removed_count(&groups, &plan);
        if removed == 0 {
            state.stopped = Some(StopReason::NothingRemovable);
            break;
        }
        let candidate = host.fine_tune(candidate, step)?;
        let evaluation = host.evaluate(&candidate)?;
        state.evaluations += 1;
        let judgement = config.judge(&baseline, &evaluation)?;
        let accepted = judgement.accepted();
        let metric = judgement.metric;
        let record = StepRecord {
            step,
            fraction: state.fraction,
            removed,
            channels: channels - removed,
            flops: candidate_flops,
            metric,
            drop: judgement.drop,
            accepted,
            metrics: evaluation.metrics,
            drop_interval: judgement.interval,
            violated: judgement.violated,
        };
        state.steps.push(record.clone());
        if accepted {
            for group in &groups {
                if let Some(keep) = plan.kept(&group.name) {
                    let old = &state.kept[&group.name];
                    let new = keep.iter().map(|&i| old[i]).collect();
                    state.kept.insert(group.name.clone(), new);
                }
            }
            state.metric = metric;
            model = candidate;
            flops_now = candidate_flops;
            grow(&mut state, config);
            host.accepted(&model, &state)?;
        } else {
            state.fraction /= 2.0;
        }
        host.progress(&record, &state);
    }
    Ok((model, state))
}
