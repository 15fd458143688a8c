//! `prune_to_tolerance()`: the smallest network whose validation metric stays within a tolerance.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::ModuleDisplay;
use burn::tensor::Device;
use prunus_models::{CostReport, Costed, TernausNet, UNet};
use prunus_plan::{
    Constraint, Criterion, DEFAULT_METRIC, Evaluation, PlannerConfig, RunFolder, Scores,
    SearchConfig, SearchHost, SearchState, StepRecord, Targets, TaylorScores, Tolerance, score,
    search,
};
use prunus_surgery::{
    ModelFile, Network, Prunable, PruningPlan, SurgeryError, WriteError, fold_for_inference,
    fold_gates, model_digest, verify_prunable, write_atomic,
};

use crate::error::Error;
use crate::measure::{Examples, Measurement, change_intervals};
use crate::report::{GroupWidth, Outcome, ProgressBar, Report, TestFigures, measure_latency};
use crate::task::Task;
use crate::train::{TrainConfig, TrainDisplay};

/// A network `prune_to_tolerance` can work on: [`Prunable`] (its channel groups and layers),
/// printable, and optionally with a cost model and a model file format.
///
/// For your own network this is one line, `impl PrunableModel for MyNet {}`, beside its
/// [`Prunable`] declaration; with [`Rebuild`](prunus_surgery::Rebuild) and
/// [`PrunableModel::model_file`] it also gets model files.
pub trait PrunableModel: Prunable + ModuleDisplay + 'static {
    /// This network as the bytes of a self-describing model file, pruned from `original`
    /// (whose cost is `original_cost`) by `plan`; accepted steps and the result are then also
    /// saved as model files in the run folder. `None` by default. A network that implements
    /// [`Rebuild`](prunus_surgery::Rebuild) writes one with
    /// `Some(ModelFile::pruned(self.clone(), original, original_cost, plan).to_bytes())`.
    fn model_file(
        &self,
        original: &Self,
        original_cost: &CostReport,
        plan: &PruningPlan,
    ) -> Option<Result<Vec<u8>, WriteError>> {
        let _ = (original, original_cost, plan);
        None
    }

    /// The exact cost of one forward pass on an input of `[height, width]` when the network
    /// knows it without running (a cost model over its configuration, equal to the measured
    /// one); `None` by default, and the task measures it.
    fn known_cost(&self, input_size: [usize; 2]) -> Option<CostReport> {
        let _ = input_size;
        None
    }
}

impl PrunableModel for UNet {
    fn known_cost(&self, input_size: [usize; 2]) -> Option<CostReport> {
        self.cost(input_size).ok()
    }

    fn model_file(
        &self,
        original: &Self,
        original_cost: &CostReport,
        plan: &PruningPlan,
    ) -> Option<Result<Vec<u8>, WriteError>> {
        Network::UNet(self.clone()).model_file(
            &Network::UNet(original.clone()),
            original_cost,
            plan,
        )
    }
}

impl PrunableModel for TernausNet {
    fn known_cost(&self, input_size: [usize; 2]) -> Option<CostReport> {
        self.cost(input_size).ok()
    }

    fn model_file(
        &self,
        original: &Self,
        original_cost: &CostReport,
        plan: &PruningPlan,
    ) -> Option<Result<Vec<u8>, WriteError>> {
        Network::TernausNet(self.clone()).model_file(
            &Network::TernausNet(original.clone()),
            original_cost,
            plan,
        )
    }
}

impl PrunableModel for Network {
    fn known_cost(&self, input_size: [usize; 2]) -> Option<CostReport> {
        self.cost(input_size).ok()
    }

    fn model_file(
        &self,
        original: &Self,
        original_cost: &CostReport,
        plan: &PruningPlan,
    ) -> Option<Result<Vec<u8>, WriteError>> {
        Some(ModelFile::pruned(self.clone(), original, original_cost, plan).to_bytes())
    }
}

/// Settings of [`prune_to_tolerance`].
#[derive(Config, Debug)]
pub struct PruneConfig {
    /// The largest allowed drop: points of the metric in percent (or a share of the baseline
    /// with `relative`). Finite and ≥ 0.
    #[config(default = 0.5)]
    pub tolerance: f64,
    /// Read `tolerance` as a share of the baseline metric instead of points.
    #[config(default = false)]
    pub relative: bool,
    /// Further metrics, by the names the task measures them under (`"pixel accuracy"`,
    /// `"Dice"`), each with its own tolerance: a step is kept only when every one holds.
    #[config(default = "Vec::new()")]
    pub also: Vec<Constraint>,
    /// Bootstrap resamples of the validation examples behind each step's confidence interval
    /// (0: no intervals). Needs a task that measures per-example counts
    /// ([`Task::measure`]); the segmentation and classification tasks do.
    #[config(default = 1000)]
    pub bootstrap: usize,
    /// Confidence level of the intervals, in (0, 1).
    #[config(default = 0.95)]
    pub confidence: f64,
    /// Keep a step only when the upper end of its drop's interval is within the tolerance —
    /// "lose at most t points" as a promise about the validation distribution, not one draw.
    #[config(default = false)]
    pub conservative: bool,
    /// Seed of the run's randomness (fine-tuning order, bootstrap resamples); reported.
    #[config(default = 0)]
    pub seed: u64,
    /// Share of the remaining prunable channels the first step removes, in (0, 1]; halved at
    /// each rolled-back step.
    #[config(default = 0.5)]
    pub initial_step: f64,
    /// After this many accepted steps in a row the step doubles again, up to `initial_step`
    /// (`None`: it only halves).
    #[config(default = "Some(2)")]
    pub grow_after: Option<usize>,
    /// The most validation passes of the search, baseline included.
    pub max_evaluations: Option<usize>,
    /// Stop once this share of the prunable channels is removed.
    pub target_rate: Option<f64>,
    /// Stop once this share of the FLOPs is removed.
    pub target_flops: Option<f64>,
    /// How channels are ranked.
    #[config(default = "Criterion::Gate")]
    pub criterion: Criterion,
    /// Ranking and constraints.
    #[config(default = "PlannerConfig::default()")]
    pub planner: PlannerConfig,
    /// Fine-tuning of every candidate before it is evaluated (`None`: none).
    pub fine_tune: Option<TrainConfig>,
    /// Fine-tuning of the final network; kept only if its metric stays within the tolerance.
    pub final_fine_tune: Option<TrainConfig>,
    /// Before searching, fit the fine-tunings' learning rate to the network: fine-tune the
    /// unpruned network at the configured rate and then at rates √10 smaller (at most
    /// [`CALIBRATION_TRIES`](crate::CALIBRATION_TRIES)), and use the largest whose fine-tune
    /// alone costs at most half the tolerance (else the least harmful) for every fine-tune of
    /// the search, the final one scaled alike. Without it, a fine-tune that knocks a converged
    /// network off its optimum by more than the tolerance (a network without BatchNorm
    /// fine-tuned at its peak training rate) has every step rolled back whatever it removed.
    /// Costs one fine-tune and validation pass per rate tried, outside `max_evaluations`;
    /// the report's `calibration` lists them. The trials are judged against `tolerance`: a cut
    /// to a FLOPs or rate target under a tolerance that never binds keeps the first rate, so
    /// calibrate such a run with the tolerance you would search with and set its rate.
    #[config(default = false)]
    pub calibrate_fine_tune: bool,
    /// Training batches the Taylor criterion averages over.
    #[config(default = 4)]
    pub taylor_batches: usize,
    /// Batch size of the validation passes.
    #[config(default = 16)]
    pub eval_batch_size: usize,
    /// Fold the gates of the result into its weights.
    #[config(default = true)]
    pub fold: bool,
    /// A folder for the run: every accepted step, the report and the result are saved there,
    /// and a call with the same folder resumes from the last accepted step.
    pub run_dir: Option<PathBuf>,
    /// Show a progress bar on stderr.
    #[config(default = true)]
    pub progress: bool,
    /// Timed forward passes per latency figure (median taken).
    #[config(default = 10)]
    pub latency_runs: usize,
    /// Prove the network's channel groups before searching
    /// ([`verify_prunable`](prunus_surgery::verify_prunable)).
    #[config(default = true)]
    pub verify: bool,
}

impl PruneConfig {
    fn search_config(&self, metric: &str, higher_is_better: bool) -> SearchConfig {
        SearchConfig {
            higher_is_better,
            tolerance: if self.relative {
                Tolerance::Relative(self.tolerance)
            } else {
                Tolerance::Points(self.tolerance)
            },
            initial_step: self.initial_step,
            max_evaluations: self.max_evaluations,
            targets: Targets {
                rate: self.target_rate,
                flops: self.target_flops,
            },
            planner: self.planner.clone(),
            grow_after: self.grow_after,
            metric: metric.to_string(),
            also: self.also.clone(),
            conservative: self.conservative,
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad setting.
    pub fn validate(&self) -> Result<(), Error> {
        self.search_config(DEFAULT_METRIC, true).validate()?;
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::config(
                "confidence",
                format!("must be in (0, 1), got {}", self.confidence),
            ));
        }
        if self.conservative && self.bootstrap == 0 {
            return Err(Error::config(
                "bootstrap",
                "must be at least 1: the conservative search needs intervals",
            ));
        }
        for tune in self.fine_tune.iter().chain(&self.final_fine_tune) {
            tune.validate()?;
        }
        if self.calibrate_fine_tune && self.fine_tune.is_none() && self.final_fine_tune.is_none() {
            return Err(Error::config(
                "calibrate_fine_tune",
                "there is no fine-tuning to calibrate (set fine_tune or final_fine_tune)",
            ));
        }
        if self.eval_batch_size == 0 {
            return Err(Error::config("eval_batch_size", "must be at least 1"));
        }
        if self.criterion == Criterion::Taylor && self.taylor_batches == 0 {
            return Err(Error::config("taylor_batches", "must be at least 1"));
        }
        Ok(())
    }

    /// The settings that decide the result (what a resumed run must share with the first).
    fn fingerprint(&self, metric: &str) -> String {
        let mut c = self.clone();
        c.progress = false;
        c.run_dir = None;
        c.latency_runs = 0;
        c.verify = true;
        format!("{metric}|{}", serde_json::to_string(&c).unwrap_or_default())
    }
}

/// Numbers the temporary fine-tuning folders of runs without a run folder, so that concurrent
/// runs in one process never share one.
static TUNE_DIRS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The search's side of the task: evaluation, scores, cost, fine-tuning, saving.
pub(crate) struct Host<'a, M, T> {
    pub(crate) config: &'a PruneConfig,
    pub(crate) task: &'a mut T,
    pub(crate) device: &'a Device,
    pub(crate) run: Option<RunFolder>,
    /// The unpruned network and its cost, for the provenance of model files.
    pub(crate) original: (M, CostReport),
    /// The fine-tunings' learning rates are multiplied by this (the calibration's choice).
    tune_scale: f64,
    input_shape: [usize; 4],
    observer: &'a mut dyn FnMut(&StepRecord, &SearchState) -> bool,
    stop: bool,
    /// The unpruned network's per-example counts, which intervals compare candidates with.
    baseline_examples: Option<Examples>,
}

/// The cost of `model` on an input of `input_shape`: from its configuration when it has a cost
/// model (no forward pass), else measured by the task.
fn cost_of<M: PrunableModel, T: Task<M>>(
    model: &M,
    task: &T,
    input_shape: [usize; 4],
    device: &Device,
) -> CostReport {
    let [_, _, h, w] = input_shape;
    model
        .known_cost([h, w])
        .unwrap_or_else(|| task.cost(model, device))
}

impl<M: PrunableModel, T: Task<M>> Host<'_, M, T> {
    fn save_state(&self, state: &SearchState) -> Result<(), Error> {
        match &self.run {
            Some(run) => Ok(run.save_state(state)?),
            None => Ok(()),
        }
    }

    /// Fine-tunes `model` with `config` (its rate times `tune_scale`) in a fresh folder `name`.
    pub(crate) fn tune(
        &mut self,
        model: M,
        config: &TrainConfig,
        name: &str,
        seed: u64,
    ) -> Result<M, Error> {
        let (dir, temporary) = match &self.run {
            Some(run) => (run.dir().join(name), false),
            None => (
                std::env::temp_dir().join(format!(
                    "prunus-{name}-{}-{}",
                    std::process::id(),
                    TUNE_DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                )),
                true,
            ),
        };
        // A fresh training each time: no resuming from an earlier candidate's checkpoints.
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = config.clone();
        config.learning_rate *= self.tune_scale;
        config.resume = false;
        config.display = TrainDisplay::Quiet;
        config.seed = config
            .seed
            .wrapping_add(seed)
            .wrapping_add(self.config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let result = self.task.fine_tune(model, &config, &dir, self.device);
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
        }
        result
    }

    fn taylor(&mut self, model: &M) -> Result<Scores, Error> {
        let autodiff = self.device.clone().autodiff();
        let model = prunus_layers::set_trainable(
            model.clone().train().fork(&autodiff),
            prunus_layers::Trainable::All,
        );
        let mut taylor = TaylorScores::new();
        for b in 0..self.config.taylor_batches {
            let loss = self
                .task
                .loss(&model, b, self.config.eval_batch_size, &autodiff)?;
            let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
            taylor.add(&model, &grads)?;
        }
        Ok(taylor.scores())
    }

    /// Every validation metric of the unpruned network; keeps its per-example counts.
    fn measure_baseline(&mut self) -> Result<Evaluation, Error> {
        let (original, _) = &self.original;
        let m = self
            .task
            .measure(original, self.config.eval_batch_size, self.device)?;
        self.baseline_examples = m.examples;
        Ok(Evaluation::new(m.metrics))
    }

    /// A candidate's measurement as the search's evaluation: with intervals of its changes
    /// from the baseline when the task gives per-example counts.
    fn evaluation(&mut self, m: Measurement) -> Result<Evaluation, Error> {
        let mut evaluation = Evaluation::new(m.metrics);
        let Some(examples) = m.examples else {
            return Ok(evaluation);
        };
        if self.config.bootstrap == 0 {
            return Ok(evaluation);
        }
        if self.baseline_examples.is_none() {
            // A resumed run: the baseline's counts were not kept.
            self.measure_baseline()?;
        }
        if let Some(baseline) = &self.baseline_examples {
            // The same resamples for every candidate (one seed): intervals of different steps
            // are comparable, and a resumed run gives the ones an uninterrupted run gives.
            evaluation.changes = change_intervals(
                baseline,
                &examples,
                self.config.bootstrap,
                self.config.confidence,
                self.config.seed,
            );
        }
        Ok(evaluation)
    }

    /// The cost of `model` on the example input: from its configuration when it has a cost
    /// model (no forward pass per candidate), else measured by the task.
    fn cost(&self, model: &M) -> CostReport {
        cost_of(model, &*self.task, self.input_shape, self.device)
    }

    /// Writes `model` to `path` as a model file when it can be one
    /// ([`PrunableModel::model_file`]).
    fn save_model_file(&self, model: &M, state: &SearchState, path: &Path) -> Result<(), Error> {
        let (original, original_cost) = &self.original;
        match model.model_file(original, original_cost, &state.plan()) {
            Some(Ok(bytes)) => Ok(write_atomic(path, &bytes)?),
            Some(Err(source)) => Err(SurgeryError::Write {
                path: path.to_path_buf(),
                source,
            }
            .into()),
            None => Ok(()),
        }
    }
}

impl<M: PrunableModel, T: Task<M>> SearchHost<M> for Host<'_, M, T> {
    type Error = Error;

    fn evaluate(&mut self, model: &M) -> Result<Evaluation, Error> {
        let m = self
            .task
            .measure(model, self.config.eval_batch_size, self.device)?;
        self.evaluation(m)
    }

    fn scores(&mut self, model: &M, step: usize) -> Result<Scores, Error> {
        if self.stop {
            return Err(Error::Interrupted {
                run_dir: self.run.as_ref().map(|r| r.dir().to_path_buf()),
            });
        }
        match self.config.criterion {
            Criterion::Taylor => self.taylor(model),
            criterion => Ok(score(model, criterion, step as u64)?),
        }
    }

    fn flops(&mut self, model: &M) -> Result<u64, Error> {
        Ok(self.cost(model).flops())
    }

    fn fine_tune(&mut self, model: M, step: usize) -> Result<M, Error> {
        match &self.config.fine_tune {
            Some(config) => self.tune(model, config, "fine-tune", step as u64),
            None => Ok(model),
        }
    }

    fn accepted(&mut self, model: &M, state: &SearchState) -> Result<(), Error> {
        let Some(run) = &self.run else {
            return Ok(());
        };
        run.save_accepted(model, state)?;
        let path = run
            .dir()
            .join(format!("step-{:03}.prunus", state.steps.len()));
        self.save_model_file(model, state, &path)
    }

    fn progress(&mut self, record: &StepRecord, state: &SearchState) {
        if !(self.observer)(record, state) {
            self.stop = true;
        }
    }
}

/// Prunes `model` for `task` as far as the tolerance allows, with a progress bar when
/// `config.progress` is set. See [`prune_to_tolerance_with`].
///
/// # Errors
/// As [`prune_to_tolerance_with`].
pub fn prune_to_tolerance<M: PrunableModel, T: Task<M>>(
    model: M,
    task: &mut T,
    config: &PruneConfig,
    device: &Device,
) -> Result<Outcome<M>, Error> {
    let bar = ProgressBar::stderr();
    let show = config.progress;
    let tolerance = config.tolerance;
    let mut observer = |record: &StepRecord, state: &SearchState| {
        if show {
            bar.draw(record, state, tolerance);
        }
        true
    };
    let outcome = prune_to_tolerance_with(model, task, config, device, &mut observer);
    bar.finish();
    outcome
}

/// Prunes `model` as far as `config.tolerance` allows on `task`'s validation metric — the
/// method's search:
///
/// 0. the network's channel groups are proven against it (`config.verify`);
/// 1. the baseline metric `m0` of `model`;
/// 2. each step ranks the channels by `config.criterion`, removes the lowest `s` share of the
///    remaining prunable ones, rebuilds the network slimmer, optionally fine-tunes it through
///    the task, and evaluates it: kept if it is at most `t` worse than `m0`, else rolled back
///    with `s` halved;
/// 3. it ends when a step would remove less than one channel, the evaluation budget is spent,
///    or a rate or FLOPs target is reached; an optional final fine-tune is kept only if it stays
///    within the tolerance.
///
/// The reported drop is measured on the task's validation data and never exceeds the
/// tolerance. `observer` sees every step; returning `false` stops the run after that step with
/// [`Error::Interrupted`] (a run folder then holds the last accepted step, and the same call
/// resumes from it).
///
/// # Errors
/// [`Error::Config`] for bad settings (negative or NaN tolerance, step outside (0, 1], …) or a
/// run folder made with other settings or another model, [`Error::EmptyData`] for an empty
/// validation set, [`Error::Surgery`] for channel groups that do not describe the network,
/// [`Error::Interrupted`], and errors of evaluation, training and surgery.
pub fn prune_to_tolerance_with<M: PrunableModel, T: Task<M>>(
    model: M,
    task: &mut T,
    config: &PruneConfig,
    device: &Device,
    observer: &mut dyn FnMut(&StepRecord, &SearchState) -> bool,
) -> Result<Outcome<M>, Error> {
    let started = Instant::now();
    config.validate()?;
    task.check(config.fine_tune.is_some() || config.final_fine_tune.is_some())?;
    let input = task.example_input(device);
    if config.verify {
        verify_prunable(&model, input.clone(), |m, x| task.forward(m, x))?;
    }
    let search_config = config.search_config(&task.metric_name(), task.higher_is_better());
    let run = open_run(&model, &*task, config)?;
    let _lock = match &run {
        Some(run) => Some(crate::lock::lock_folder(run.dir())?),
        None => None,
    };
    let original = model;
    let original_cost = cost_of(&original, &*task, input.dims(), device);
    let mut host = Host::<M, T> {
        config,
        task,
        device,
        run,
        original: (original.clone(), original_cost),
        input_shape: input.dims(),
        observer,
        stop: false,
        baseline_examples: None,
        tune_scale: 1.0,
    };
    let (current, state) = resume_or_start(&original, &mut host, &search_config)?;
    let calibration = if config.calibrate_fine_tune {
        let calibration = host.calibration(state.baseline, &search_config)?;
        host.tune_scale = calibration.scale;
        Some(calibration)
    } else {
        None
    };
    let (model, state) = search(current, state, &mut host, &search_config)?;
    // The finished search, so that a later call with this run folder starts from it (and counts
    // the final fine-tune's pass once, not once per call).
    host.save_state(&state)?;
    let finished = final_fine_tune(model, &state, &mut host, &search_config)?;
    let test = test_figures(&mut host, &finished.model)?;
    let mut report = measure(&finished, &state, &host, &search_config, &input)?;
    report.test = test;
    report.calibration = calibration;
    let model = if config.fold {
        fold_gates(finished.model)?
    } else {
        finished.model
    };
    report.seconds = started.elapsed().as_secs_f64();
    save_outputs(&host, &model, &state, &report)?;
    Ok(Outcome { model, report })
}

/// The run folder, created, when the configuration names one: it belongs to these settings,
/// this metric and this model (by its tensors: serialised weights carry parameter ids, which
/// differ in every process that loads the same model file).
fn open_run<M: PrunableModel, T: Task<M>>(
    model: &M,
    task: &T,
    config: &PruneConfig,
) -> Result<Option<RunFolder>, Error> {
    let Some(dir) = &config.run_dir else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let digest = model_digest(model).map_err(Error::Training)?;
    let fingerprint = config.fingerprint(&task.metric_name());
    Ok(Some(RunFolder::new(dir, fingerprint, digest)))
}

/// The last accepted network and state from the run folder, or the unpruned network and its
/// baseline.
fn resume_or_start<M: PrunableModel, T: Task<M>>(
    original: &M,
    host: &mut Host<'_, M, T>,
    search_config: &SearchConfig,
) -> Result<(M, SearchState), Error> {
    if let Some(run) = &host.run
        && let Some((current, state)) = run.resume(original)?
    {
        if host.config.progress {
            eprintln!(
                "resuming the run in {}: {} steps done ({} accepted){}",
                run.dir().display(),
                state.steps.len(),
                state.accepted(),
                if state.stopped.is_some() {
                    ", search finished"
                } else {
                    ""
                }
            );
        }
        return Ok((current, state));
    }
    let baseline = host.measure_baseline()?;
    let flops = host.flops(original)?;
    let state = SearchState::start(&original.channel_groups(), &baseline, flops, search_config)?;
    host.save_state(&state)?;
    Ok((original.clone(), state))
}

/// The network a search ends with, after the optional final fine-tune.
struct Finished<M> {
    model: M,
    /// Its validation metric.
    metric: f64,
    /// Every validation metric of it.
    metrics: std::collections::BTreeMap<String, f64>,
    /// The interval of its drop, when the task gives one.
    interval: Option<[f64; 2]>,
    /// The final fine-tune's metric, and whether its network was kept.
    tune: Option<(f64, bool)>,
    /// Validation passes in all, the final fine-tune's included.
    evaluations: usize,
}

/// The final fine-tune, kept only within the tolerance (every constrained metric, the upper end
/// of the interval in conservative mode).
fn final_fine_tune<M: PrunableModel, T: Task<M>>(
    model: M,
    state: &SearchState,
    host: &mut Host<'_, M, T>,
    search_config: &SearchConfig,
) -> Result<Finished<M>, Error> {
    let last = state.steps.iter().rev().find(|s| s.accepted);
    let searched = Finished {
        model,
        metric: state.metric,
        metrics: last
            .map(|s| s.metrics.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| state.baseline_evaluation(search_config).metrics),
        interval: last.and_then(|s| s.drop_interval),
        tune: None,
        evaluations: state.evaluations,
    };
    let Some(tune) = host.config.final_fine_tune.clone() else {
        return Ok(searched);
    };
    let tuned = host.tune(
        searched.model.clone(),
        &tune,
        "final-fine-tune",
        u64::MAX / 2,
    )?;
    let evaluation = SearchHost::evaluate(host, &tuned)?;
    let judgement = search_config.judge(&state.baseline_evaluation(search_config), &evaluation)?;
    let keep = judgement.accepted();
    let tried = Some((judgement.metric, keep));
    let evaluations = state.evaluations + 1;
    Ok(if keep {
        Finished {
            model: tuned,
            metric: judgement.metric,
            metrics: evaluation.metrics,
            interval: judgement.interval,
            tune: tried,
            evaluations,
        }
    } else {
        Finished {
            tune: tried,
            evaluations,
            ..searched
        }
    })
}

/// Every test metric of the unpruned network and of the result, when the task has a test split.
fn test_figures<M: PrunableModel, T: Task<M>>(
    host: &mut Host<'_, M, T>,
    result: &M,
) -> Result<Option<TestFigures>, Error> {
    let batch = host.config.eval_batch_size;
    let Some(before) = host
        .task
        .measure_test(&host.original.0, batch, host.device)?
    else {
        return Ok(None);
    };
    let after = host
        .task
        .measure_test(result, batch, host.device)?
        .ok_or_else(|| Error::Training("the task's test split went away".into()))?;
    let changes = match (&before.examples, &after.examples) {
        (Some(b), Some(a)) if host.config.bootstrap > 0 => change_intervals(
            b,
            a,
            host.config.bootstrap,
            host.config.confidence,
            host.config.seed ^ 0x7e57,
        ),
        _ => Default::default(),
    };
    Ok(Some(TestFigures {
        before: before.metrics,
        after: after.metrics,
        changes,
    }))
}

/// The report: metrics, cost, latency and widths of the original and the result (`seconds` is
/// the caller's to fill).
fn measure<M: PrunableModel, T: Task<M>>(
    finished: &Finished<M>,
    state: &SearchState,
    host: &Host<'_, M, T>,
    search_config: &SearchConfig,
    input: &burn::tensor::Tensor<4>,
) -> Result<Report, Error> {
    let (original, before) = &host.original;
    let groups = original.channel_groups();
    let widths = groups
        .iter()
        .map(|g| GroupWidth {
            group: g.name.clone(),
            before: g.size,
            after: state.kept.get(&g.name).map_or(g.size, Vec::len),
        })
        .collect();
    let model = &finished.model;
    let after = host.cost(model);
    let runs = host.config.latency_runs;
    let task = &*host.task;
    let latency = |m: &M| -> Result<f64, Error> {
        measure_latency(&fold_for_inference(m.clone())?, input, runs, |m, x| {
            task.forward(m, x)
        })
    };
    Ok(Report {
        metric: host.task.metric_name(),
        higher_is_better: search_config.higher_is_better,
        tolerance: search_config.tolerance,
        also: search_config.also.clone(),
        conservative: search_config.conservative,
        metrics_before: state.baseline_evaluation(search_config).metrics,
        metrics_after: finished.metrics.clone(),
        drop_interval: finished.interval,
        confidence: host.config.confidence,
        test: None,
        calibration: None,
        seed: host.config.seed,
        data: task.describe(),
        prunus: crate::version(),
        criterion: host.config.criterion,
        input_shape: host.input_shape,
        baseline: state.baseline,
        final_metric: finished.metric,
        drop: search_config.drop(state.baseline, finished.metric),
        flops_before: before.flops(),
        flops_after: after.flops(),
        params_before: before.params(),
        params_after: after.params(),
        latency_ms_before: latency(original)?,
        latency_ms_after: latency(model)?,
        device: crate::device_label(host.device),
        evaluations: finished.evaluations,
        steps: state.steps.clone(),
        stop: state.stopped,
        final_fine_tune: finished.tune,
        widths,
        seconds: 0.0,
    })
}

/// The report and, when the network can be one ([`PrunableModel::model_file`]), the pruned
/// model file, in the run folder.
fn save_outputs<M: PrunableModel, T: Task<M>>(
    host: &Host<'_, M, T>,
    model: &M,
    state: &SearchState,
    report: &Report,
) -> Result<(), Error> {
    let Some(run) = &host.run else {
        return Ok(());
    };
    let json = serde_json::to_vec_pretty(report).expect("the report serialises");
    write_atomic(&run.dir().join("report.json"), &json)?;
    host.save_model_file(model, state, &run.dir().join("pruned.prunus"))
}
