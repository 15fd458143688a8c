//! `prune_to_tolerance()`: the smallest network whose validation metric stays within a tolerance.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device, Distribution, Tensor};
use prunus_data::Metric;
use prunus_models::{Costed, TernausNet, UNet};
use prunus_plan::{
    Criterion, PlanError, PlannerConfig, Scores, SearchConfig, SearchHost, SearchState, StepRecord,
    StopReason, Targets, TaylorScores, Tolerance, score, search,
};
use prunus_surgery::{
    ModelFile, Network, Provenance, Prunable, fold_for_inference, fold_gates, model_digest, prune,
    write_atomic,
};
use serde::{Deserialize, Serialize};

use crate::datasets::SegmentationData;
use crate::error::Error;
use crate::train::{SegmentationModel, TrainConfig, TrainDisplay, evaluate, train};

/// A network `prune_to_tolerance` can work on: prunable, segmenting, and with a cost model.
pub trait PrunableModel: Prunable + SegmentationModel + Costed {
    /// This network as a [`Network`] when it is one of prunus's architectures; accepted steps
    /// and the result are then also saved as self-describing model files. `None` by default.
    fn to_network(&self) -> Option<Network> {
        None
    }
}

impl PrunableModel for UNet {
    fn to_network(&self) -> Option<Network> {
        Some(Network::UNet(self.clone()))
    }
}

impl PrunableModel for TernausNet {
    fn to_network(&self) -> Option<Network> {
        Some(Network::TernausNet(self.clone()))
    }
}

impl PrunableModel for Network {
    fn to_network(&self) -> Option<Network> {
        Some(self.clone())
    }
}

/// Settings of [`prune_to_tolerance`].
#[derive(Config, Debug)]
pub struct PruneConfig {
    /// The validation metric the tolerance applies to.
    #[config(default = "Metric::PixelAccuracy")]
    pub metric: Metric,
    /// The largest allowed drop: points of the metric in percent (or a share of the baseline
    /// with `relative`). Finite and ≥ 0.
    #[config(default = 0.5)]
    pub tolerance: f64,
    /// Read `tolerance` as a share of the baseline metric instead of points.
    #[config(default = false)]
    pub relative: bool,
    /// Share of the remaining prunable channels the first step removes, in (0, 1]; halved at
    /// each rolled-back step.
    #[config(default = 0.5)]
    pub initial_step: f64,
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
}

impl PruneConfig {
    fn search_config(&self) -> SearchConfig {
        SearchConfig {
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
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad setting.
    pub fn validate(&self) -> Result<(), Error> {
        self.search_config()
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        for tune in self.fine_tune.iter().chain(&self.final_fine_tune) {
            tune.validate()?;
        }
        if self.eval_batch_size == 0 {
            return Err(Error::Config("eval_batch_size must be at least 1".into()));
        }
        if self.criterion == Criterion::Taylor && self.taylor_batches == 0 {
            return Err(Error::Config("taylor_batches must be at least 1".into()));
        }
        Ok(())
    }

    /// The settings that decide the result (what a resumed run must share with the first).
    fn fingerprint(&self) -> String {
        let mut c = self.clone();
        c.progress = false;
        c.run_dir = None;
        c.latency_runs = 0;
        serde_json::to_string(&c).unwrap_or_default()
    }
}

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

/// What [`prune_to_tolerance`] found, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The metric the tolerance applies to.
    pub metric: Metric,
    /// The tolerance.
    pub tolerance: Tolerance,
    /// The importance criterion.
    pub criterion: Criterion,
    /// Input size FLOPs and latency are measured at, `[height, width]`.
    pub input_size: [usize; 2],
    /// Metric of the unpruned network on the validation data, in points.
    pub baseline: f64,
    /// Metric of the result on the same data, in points.
    pub final_metric: f64,
    /// Drop from the baseline in the tolerance's unit; never above the tolerance.
    pub drop: f64,
    /// FLOPs per image before.
    pub flops_before: u64,
    /// FLOPs per image after.
    pub flops_after: u64,
    /// Parameters (gates excluded) before.
    pub params_before: u64,
    /// Parameters (gates excluded) after.
    pub params_after: u64,
    /// Median latency of one image before, in ms, gates and norms folded.
    pub latency_ms_before: f64,
    /// Median latency of one image after, in ms, gates and norms folded.
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

    /// A few lines for people: metric, drop, FLOPs, parameters, latency, passes.
    pub fn summary(&self) -> String {
        let unit = match self.tolerance {
            Tolerance::Points(_) => "points",
            Tolerance::Relative(_) => "of the baseline",
        };
        format!(
            "{metric}: {b:.2} → {f:.2} (drop {d:.3} {unit}, tolerance {t})\n\
             FLOPs: {fb:.3} G → {fa:.3} G ({cut:.1}% removed)\n\
             parameters: {pb:.3} M → {pa:.3} M ({pr:.1}× smaller)\n\
             latency on {dev}: {lb:.2} ms → {la:.2} ms ({s:.2}× faster)\n\
             validation passes: {e}, steps: {n} ({acc} accepted), stop: {stop:?}",
            metric = self.metric,
            b = self.baseline,
            f = self.final_metric,
            d = self.drop,
            t = self.tolerance.value(),
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

/// The pruned network and its report.
#[derive(Debug)]
pub struct Outcome<M> {
    /// The pruned network (gates folded when `fold` is set).
    pub model: M,
    /// What was found, measured.
    pub report: Report,
}

/// What a run folder holds between calls.
#[derive(Debug, Serialize, Deserialize)]
struct RunState {
    fingerprint: String,
    original: u64,
    state: SearchState,
}

const RUN_STATE: &str = "search.json";
/// Numbers the temporary fine-tuning folders of runs without a run folder, so that concurrent
/// runs in one process never share one.
static TUNE_DIRS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const RUN_WEIGHTS: &str = "accepted.bpk";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn weights_bytes<M: Module>(model: &M) -> Result<Vec<u8>, Error> {
    let mut store = BurnpackStore::from_bytes(None);
    model
        .valid()
        .save_into(&mut store)
        .map_err(|e| Error::Training(format!("cannot serialise the weights: {e}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| Error::Training(format!("cannot serialise the weights: {e}")))?;
    Ok(bytes.to_vec())
}

/// serde_json's parser may be off by one bit on floats; a resumed search must see exactly the
/// metrics it saved. Floats travel as strings (`"f64:…"`, Rust's exact shortest form).
fn exact_floats(value: serde_json::Value, encode: bool) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) if encode && n.is_f64() => {
            Value::String(format!("f64:{:?}", n.as_f64().unwrap_or(f64::NAN)))
        }
        Value::String(s) if !encode && s.starts_with("f64:") => s[4..]
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(s), Value::Number),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| exact_floats(v, encode)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, exact_floats(v, encode)))
                .collect(),
        ),
        other => other,
    }
}

/// Median latency of one `[1, 3, h, w]` forward pass in ms, after two warm-up passes.
pub fn measure_latency<M: SegmentationModel>(
    model: &M,
    input_size: [usize; 2],
    runs: usize,
    device: &Device,
) -> f64 {
    let model = model.valid();
    let [h, w] = input_size;
    let x = Tensor::<4>::random([1, 3, h, w], Distribution::Default, device);
    let run = || {
        let start = Instant::now();
        let y = model.forward(x.clone());
        let _ = y.into_data();
        start.elapsed().as_secs_f64() * 1e3
    };
    run();
    run();
    let mut times: Vec<f64> = (0..runs.max(1)).map(|_| run()).collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// A progress bar over the search's steps on stderr: FLOPs removed and the metric.
struct ProgressBar {
    terminal: bool,
}

impl ProgressBar {
    fn draw(&self, record: &StepRecord, state: &SearchState, tolerance: f64) {
        let cut = 1.0 - record.flops as f64 / state.baseline_flops.max(1) as f64;
        let current_cut = state
            .steps
            .iter()
            .rev()
            .find(|s| s.accepted)
            .map_or(0.0, |s| {
                1.0 - s.flops as f64 / state.baseline_flops.max(1) as f64
            });
        let filled = (current_cut * 30.0).round() as usize;
        let bar: String = "#".repeat(filled) + &"-".repeat(30 - filled.min(30));
        let line = format!(
            "[{bar}] {:>5.1}% FLOPs cut | step {} −{} ch ({:.1}% FLOPs) metric {:.2} drop {:.3}/{} {} | passes {}",
            100.0 * current_cut,
            record.step,
            record.removed,
            100.0 * cut,
            record.metric,
            record.drop,
            tolerance,
            if record.accepted {
                "accepted"
            } else {
                "rolled back"
            },
            state.evaluations,
        );
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

struct Host<'a, M> {
    config: &'a PruneConfig,
    train: &'a SegmentationData,
    valid: &'a SegmentationData,
    device: &'a Device,
    input_size: [usize; 2],
    run_dir: Option<PathBuf>,
    fingerprint: String,
    original: u64,
    original_network: Option<Network>,
    observer: &'a mut dyn FnMut(&StepRecord, &SearchState) -> bool,
    stop: bool,
    _model: std::marker::PhantomData<M>,
}

impl<M: PrunableModel> Host<'_, M> {
    fn save_state(&self, state: &SearchState) -> Result<(), Error> {
        let Some(dir) = &self.run_dir else {
            return Ok(());
        };
        let run = RunState {
            fingerprint: self.fingerprint.clone(),
            original: self.original,
            state: state.clone(),
        };
        let value = serde_json::to_value(&run).expect("the run state serialises");
        let json = serde_json::to_vec_pretty(&exact_floats(value, true)).expect("JSON");
        write_atomic(&dir.join(RUN_STATE), &json)?;
        Ok(())
    }

    fn tune(&self, model: M, config: &TrainConfig, name: &str, seed: u64) -> Result<M, Error> {
        let (dir, temporary) = match &self.run_dir {
            Some(run) => (run.join(name), false),
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
        config.resume = false;
        config.display = TrainDisplay::Quiet;
        config.seed = config.seed.wrapping_add(seed);
        let small_valid = self.valid.take(self.config.eval_batch_size);
        let result = train(model, self.train, &small_valid, &dir, &config, self.device);
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
        }
        Ok(result?.model)
    }

    fn taylor(&self, model: &M) -> Result<Scores, Error> {
        let autodiff = self.device.clone().autodiff();
        let model = prunus_layers::set_trainable(
            model.clone().train().fork(&autodiff),
            prunus_layers::Trainable::All,
        );
        let mut taylor = TaylorScores::new();
        let bs = self.config.eval_batch_size;
        for b in 0..self.config.taylor_batches {
            let start = b * bs % self.train.len();
            let batch = self.train.batch(start..start + bs, &autodiff)?;
            let logits = model.forward(batch.images);
            let loss = crate::LossConfig::new().task_loss(logits, batch.masks);
            let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
            taylor.add(&model, &grads)?;
        }
        Ok(taylor.scores())
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Surgery(s) => Error::Surgery(s),
            PlanError::Config(m) => Error::Config(m),
            other => Error::Config(other.to_string()),
        }
    }
}

impl<M: PrunableModel> SearchHost<M> for Host<'_, M> {
    type Error = Error;

    fn evaluate(&mut self, model: &M) -> Result<f64, Error> {
        let confusion = evaluate(model, self.valid, self.config.eval_batch_size, self.device)?;
        Ok(100.0 * confusion.metric(self.config.metric))
    }

    fn scores(&mut self, model: &M, step: usize) -> Result<Scores, Error> {
        if self.stop {
            return Err(Error::Interrupted {
                run_dir: self.run_dir.clone(),
            });
        }
        match self.config.criterion {
            Criterion::Taylor => self.taylor(model),
            criterion => Ok(score(model, criterion, step as u64)?),
        }
    }

    fn flops(&mut self, model: &M) -> Result<u64, Error> {
        Ok(model.cost(self.input_size)?.flops())
    }

    fn fine_tune(&mut self, model: M, step: usize) -> Result<M, Error> {
        match &self.config.fine_tune {
            Some(config) => self.tune(model, config, "fine-tune", step as u64),
            None => Ok(model),
        }
    }

    fn accepted(&mut self, model: &M, state: &SearchState) -> Result<(), Error> {
        let Some(dir) = self.run_dir.clone() else {
            return Ok(());
        };
        write_atomic(&dir.join(RUN_WEIGHTS), &weights_bytes(model)?)?;
        self.save_state(state)?;
        if let (Some(network), Some(original)) = (model.to_network(), &self.original_network) {
            let provenance = provenance_of(original, state, self.input_size)?;
            let path = dir.join(format!("step-{:03}.prunus", state.steps.len()));
            ModelFile::new(network, provenance).save_replacing(path)?;
        }
        Ok(())
    }

    fn progress(&mut self, record: &StepRecord, state: &SearchState) {
        if !(self.observer)(record, state) {
            self.stop = true;
        }
    }
}

fn provenance_of(
    original: &Network,
    state: &SearchState,
    input_size: [usize; 2],
) -> Result<Provenance, Error> {
    let mut provenance = Provenance::original(original, input_size)?;
    provenance.record(&state.plan());
    Ok(provenance)
}

/// Prunes `model` as far as the tolerance allows, with a progress bar when
/// `config.progress` is set. See [`prune_to_tolerance_with`].
///
/// # Errors
/// As [`prune_to_tolerance_with`].
pub fn prune_to_tolerance<M: PrunableModel>(
    model: M,
    train: &SegmentationData,
    valid: &SegmentationData,
    config: &PruneConfig,
    device: &Device,
) -> Result<Outcome<M>, Error> {
    let bar = ProgressBar {
        terminal: std::io::stderr().is_terminal(),
    };
    let show = config.progress;
    let tolerance = config.tolerance;
    let mut observer = |record: &StepRecord, state: &SearchState| {
        if show {
            bar.draw(record, state, tolerance);
        }
        true
    };
    let outcome = prune_to_tolerance_with(model, train, valid, config, device, &mut observer);
    if show && bar.terminal {
        eprintln!();
    }
    outcome
}

/// Prunes `model` as far as `config.tolerance` allows on `valid`, the method's search:
///
/// 1. the baseline metric `m0` of `model` on `valid`;
/// 2. each step ranks the channels by `config.criterion`, removes the lowest `s` share of the
///    remaining prunable ones, rebuilds the network slimmer, optionally fine-tunes it on
///    `train`, and evaluates it: kept if `m0 − m ≤ t`, else rolled back with `s` halved;
/// 3. it ends when a step would remove less than one channel, the evaluation budget is spent,
///    or a rate or FLOPs target is reached; an optional final fine-tune is kept only if it stays
///    within the tolerance.
///
/// The reported drop is measured on `valid` and never exceeds the tolerance. `observer` sees
/// every step; returning `false` stops the run after that step with [`Error::Interrupted`] (a
/// run folder then holds the last accepted step, and the same call resumes from it).
///
/// # Errors
/// [`Error::Config`] for bad settings (negative or NaN tolerance, step outside (0, 1], …) or a
/// run folder made with other settings or another model, [`Error::EmptyData`] for an empty
/// validation set, [`Error::Interrupted`], and errors of evaluation, training and surgery.
pub fn prune_to_tolerance_with<M: PrunableModel>(
    model: M,
    train: &SegmentationData,
    valid: &SegmentationData,
    config: &PruneConfig,
    device: &Device,
    observer: &mut dyn FnMut(&StepRecord, &SearchState) -> bool,
) -> Result<Outcome<M>, Error> {
    let started = Instant::now();
    config.validate()?;
    if valid.is_empty() {
        return Err(Error::EmptyData("validation"));
    }
    if train.is_empty() && (config.fine_tune.is_some() || config.final_fine_tune.is_some()) {
        return Err(Error::EmptyData("training"));
    }
    let search_config = config.search_config();
    let input_size = [valid.sample_size(); 2];
    let original = model;
    let original_groups = original.channel_groups();
    let original_cost = original.cost(input_size)?;
    // Recognises the model a run folder was started from (only needed with a run folder) by
    // its tensors' paths, shapes and values: the serialised weights carry parameter ids, which
    // differ in every process that loads the same model file.
    let original_hash = match &config.run_dir {
        Some(_) => model_digest(&original).map_err(Error::Training)?,
        None => 0,
    };

    let run_dir = config.run_dir.clone();
    let _lock = match &run_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
            Some(crate::lock::lock_folder(dir)?)
        }
        None => None,
    };
    let mut host = Host::<M> {
        config,
        train,
        valid,
        device,
        input_size,
        run_dir: run_dir.clone(),
        fingerprint: config.fingerprint(),
        original: original_hash,
        original_network: original.to_network(),
        observer,
        stop: false,
        _model: std::marker::PhantomData,
    };

    // Resume from a run folder, or start with the baseline.
    let resumed = match &run_dir {
        Some(dir) if dir.join(RUN_STATE).is_file() => {
            let path = dir.join(RUN_STATE);
            let text = std::fs::read(&path).map_err(io_error(&path))?;
            let run: RunState = serde_json::from_slice(&text)
                .and_then(|v| serde_json::from_value(exact_floats(v, false)))
                .map_err(|e| {
                    Error::Config(format!("{}: not a prunus run state: {e}", path.display()))
                })?;
            if run.fingerprint != host.fingerprint {
                return Err(Error::Config(format!(
                    "{} was made with other pruning settings; use another run folder",
                    dir.display()
                )));
            }
            if run.original != original_hash {
                return Err(Error::Config(format!(
                    "{} was started from another model; use another run folder",
                    dir.display()
                )));
            }
            let mut current = prune(original.clone(), &run.state.plan())?;
            if run.state.accepted() > 0 {
                let path = dir.join(RUN_WEIGHTS);
                let bytes = std::fs::read(&path).map_err(io_error(&path))?;
                let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
                let result = current.load_from(&mut store).map_err(|e| {
                    Error::Config(format!("{}: weights do not load: {e}", path.display()))
                })?;
                if !result.errors.is_empty() || !result.missing.is_empty() {
                    return Err(Error::Config(format!(
                        "{}: weights do not fit the accepted network",
                        path.display()
                    )));
                }
            }
            if config.progress {
                eprintln!(
                    "resuming the run in {}: {} steps done ({} accepted){}",
                    dir.display(),
                    run.state.steps.len(),
                    run.state.accepted(),
                    if run.state.stopped.is_some() {
                        ", search finished"
                    } else {
                        ""
                    }
                );
            }
            Some((current, run.state))
        }
        _ => None,
    };
    let (current, state) = match resumed {
        Some(r) => r,
        None => {
            let baseline = host.evaluate(&original)?;
            let state = SearchState::start(
                &original_groups,
                baseline,
                original_cost.flops(),
                &search_config,
            );
            host.save_state(&state)?;
            (original.clone(), state)
        }
    };

    let (mut model, state) = search(current, state, &mut host, &search_config)?;
    // The finished search, so that a later call with this run folder starts from it (and counts
    // the final fine-tune's pass once, not once per call).
    host.save_state(&state)?;

    // Final fine-tune, kept only within the tolerance.
    let mut final_metric = state.metric;
    let mut final_tune = None;
    let mut evaluations = state.evaluations;
    if let Some(tune) = &config.final_fine_tune {
        let tuned = host.tune(model.clone(), tune, "final-fine-tune", u64::MAX / 2)?;
        let metric = host.evaluate(&tuned)?;
        evaluations += 1;
        let keep =
            search_config.tolerance.drop(state.baseline, metric) <= search_config.tolerance.value();
        final_tune = Some((metric, keep));
        if keep {
            model = tuned;
            final_metric = metric;
        }
    }

    let widths = original_groups
        .iter()
        .map(|g| GroupWidth {
            group: g.name.clone(),
            before: g.size,
            after: state.kept.get(&g.name).map_or(g.size, Vec::len),
        })
        .collect();
    let final_cost = model.cost(input_size)?;
    let latency_ms_before = measure_latency(
        &fold_for_inference(original.clone())?,
        input_size,
        config.latency_runs,
        device,
    );
    let latency_ms_after = measure_latency(
        &fold_for_inference(model.clone())?,
        input_size,
        config.latency_runs,
        device,
    );
    if config.fold {
        model = fold_gates(model)?;
    }
    let report = Report {
        metric: config.metric,
        tolerance: search_config.tolerance,
        criterion: config.criterion,
        input_size,
        baseline: state.baseline,
        final_metric,
        drop: search_config.tolerance.drop(state.baseline, final_metric),
        flops_before: original_cost.flops(),
        flops_after: final_cost.flops(),
        params_before: original_cost.params(),
        params_after: final_cost.params(),
        latency_ms_before,
        latency_ms_after,
        device: crate::device_label(device),
        evaluations,
        steps: state.steps.clone(),
        stop: state.stopped,
        final_fine_tune: final_tune,
        widths,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(dir) = &run_dir {
        let json = serde_json::to_vec_pretty(&report).expect("the report serialises");
        write_atomic(&dir.join("report.json"), &json)?;
        if let (Some(network), Some(original)) = (model.to_network(), &host.original_network) {
            let provenance = provenance_of(original, &state, input_size)?;
            ModelFile::new(network, provenance).save_replacing(dir.join("pruned.prunus"))?;
        }
    }
    Ok(Outcome { model, report })
}
