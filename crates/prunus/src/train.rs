//! Training a segmentation network with its gates, on Burn's `Learner`.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::config::Config;
use burn::module::Module;
use burn::module::ParamGroup;
use burn::optim::AdamConfig;
use burn::optim::GradientsParams;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrSchedulerConfig;
use burn::tensor::{Device, Tensor};
use burn::train::checkpoint::{Checkpointer, KeepLastNCheckpoints};
use burn::train::metric::LossMetric;
use burn::train::renderer::{MetricsRenderer, default_renderer};
use burn::train::{
    ExecutionStrategy, InferenceStep, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining,
    TrainOutput, TrainStep,
};
use prunus_data::{Confusion, Metric, SegmentationBatch, SegmentationData};
use prunus_layers::{Trainable, gate_param_paths, set_trainable};
use prunus_models::{TernausNet, UNet};
use prunus_surgery::Network;
use serde::{Deserialize, Serialize};

use crate::checkpoint::EagerCheckpointer;
use crate::error::Error;
use crate::loss::LossConfig;
use crate::progress::{
    PlainRenderer, SegmentationMetric, SegmentationOutput, confusion_per_image, counts_of,
};

/// A network that maps `[batch, 3, h, w]` images to `[batch, 1, h, w]` building logits.
///
/// Implemented for [`UNet`], [`TernausNet`] and [`Network`]; implement it for your own
/// network to train and prune it with prunus.
pub trait SegmentationModel: Module + burn::module::ModuleDisplay + 'static {
    /// The logits for `images`.
    fn forward(&self, images: Tensor<4>) -> Tensor<4>;
}

impl SegmentationModel for UNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        UNet::forward(self, images)
    }
}

impl SegmentationModel for TernausNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        TernausNet::forward(self, images)
    }
}

impl SegmentationModel for Network {
    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        Network::forward(self, images)
    }
}

/// Which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainMode {
    /// Weights and gates together (the method's joint training).
    Joint,
    /// Only the gates; the network is frozen. Cheap importance estimation for a trained model.
    GatesOnly,
}

/// The learning-rate schedule over all iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The same rate throughout.
    Constant,
    /// Cosine annealing from the rate down to 5% of it.
    Cosine,
}

/// How training reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainDisplay {
    /// Burn's terminal dashboard when stdout is a terminal, plain lines otherwise.
    Auto,
    /// Always Burn's terminal dashboard.
    Dashboard,
    /// One plain line per split and epoch.
    Plain,
    /// Nothing.
    Quiet,
}

/// Settings of [`train`].
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Number of epochs (in total: a resumed run continues up to this).
    #[config(default = 10)]
    pub epochs: usize,
    /// Images per batch.
    #[config(default = 8)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// The gates' learning rate as a multiple of `learning_rate`. Adam moves every parameter
    /// by about its learning rate per step whatever the gradient's size, so gates starting at 1
    /// could not reach 0 in a short run at the weights' rate; a larger rate lets the L1 penalty
    /// drive the gates of unneeded filters to 0 (see docs/method.md).
    #[config(default = 10.0)]
    pub gate_lr_scale: f64,
    /// Learning-rate schedule.
    #[config(default = "LrSchedule::Cosine")]
    pub schedule: LrSchedule,
    /// Share of the training's steps, in `[0, 1)`, before the loss's penalties (`gate_l1`,
    /// `bn_l1`) apply; 0 applies them from the first step (the method as specified). With
    /// Adam, a gate whose loss gradient is smaller than λ moves towards 0 at its full rate
    /// whatever λ is; in a network without BatchNorm the deep layers' gradients are tiny
    /// before the network has learnt to use them, so a penalty from the start can close whole
    /// layers for good (a TernausNet trained so lost every gate from its third block on). A
    /// start at 0.5 lets the network learn first and the penalty then close what it does not use.
    #[config(default = 0.0)]
    pub penalty_start: f64,
    /// Loss weights.
    #[config(default = "LossConfig::new()")]
    pub loss: LossConfig,
    /// Which parameters train.
    #[config(default = "TrainMode::Joint")]
    pub mode: TrainMode,
    /// Seed of the batch shuffling.
    #[config(default = 0)]
    pub seed: u64,
    /// Data-loading threads (0: load on the training thread).
    #[config(default = 1)]
    pub workers: usize,
    /// Continue from the last checkpoint in the run folder, if there is one.
    #[config(default = true)]
    pub resume: bool,
    /// Progress display.
    #[config(default = "TrainDisplay::Auto")]
    pub display: TrainDisplay,
}

impl TrainConfig {
    /// The steps of a training of `steps` in all after which the penalties apply
    /// ([`penalty_start`](Self::penalty_start)): the loss of step `k` (from 1) carries them
    /// when `k` exceeds this.
    pub(crate) fn penalty_from(&self, steps: usize) -> usize {
        (self.penalty_start * steps as f64) as usize
    }

    /// The short fine-tune the examples and the CLI run between pruning steps and at the end:
    /// `epochs` epochs, batch 16, learning rate 1e-3, no gate penalty (the gates have done their
    /// job).
    pub fn fine_tuning(epochs: usize) -> Self {
        Self::new()
            .with_epochs(epochs)
            .with_batch_size(16)
            .with_learning_rate(1e-3)
            .with_loss(LossConfig::new().with_gate_l1(0.0))
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad setting.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &str, m: String| Err(Error::config(field, m));
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if !(self.penalty_start >= 0.0 && self.penalty_start < 1.0) {
            return bad(
                "penalty_start",
                format!("must be in [0, 1), got {}", self.penalty_start),
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(
                "learning_rate",
                format!("must be in (0, 1], got {}", self.learning_rate),
            );
        }
        if !(self.gate_lr_scale > 0.0 && self.learning_rate * self.gate_lr_scale <= 10.0) {
            return bad(
                "gate_lr_scale",
                format!(
                    "must be > 0 with learning_rate × gate_lr_scale ≤ 10, got {}",
                    self.gate_lr_scale
                ),
            );
        }
        let gates = self.learning_rate * self.gate_lr_scale;
        if self.schedule == LrSchedule::Cosine && gates > 1.0 {
            // Burn's cosine annealing refuses a starting rate above 1.
            return bad(
                "gate_lr_scale",
                format!(
                    "the gates' rate, learning_rate × gate_lr_scale = {gates}, must be at most 1 \
                     with the cosine schedule"
                ),
            );
        }
        self.loss.validate()
    }
}

/// Stops training at the first loss that is not finite and remembers where.
#[derive(Clone, Default)]
struct NanGuard {
    interrupter: Interrupter,
    step: Arc<AtomicUsize>,
    hit: Arc<Mutex<Option<(usize, f64)>>>,
}

impl fmt::Debug for NanGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NanGuard").field("hit", &self.hit).finish()
    }
}

/// The network wrapped for Burn's `Learner`: forward, loss and the NaN guard.
#[derive(Module, Debug)]
pub struct TrainingModel<N> {
    net: N,
    #[module(skip)]
    loss: LossConfig,
    #[module(skip)]
    guard: NanGuard,
    /// The penalties apply after this many steps ([`TrainConfig::penalty_start`]).
    #[module(skip)]
    penalty_from: usize,
}

impl<N: SegmentationModel> TrainStep for TrainingModel<N> {
    type Input = SegmentationBatch;
    type Output = SegmentationOutput;

    fn step(&self, batch: SegmentationBatch) -> TrainOutput<SegmentationOutput> {
        let step = self.guard.step.fetch_add(1, Ordering::Relaxed) + 1;
        let logits = self.net.forward(batch.images);
        let task = self.loss.task_loss(logits.clone(), batch.masks.clone());
        let loss = if step > self.penalty_from {
            self.loss.with_penalties(&self.net, task)
        } else {
            task
        };
        let value = loss.clone().into_scalar::<f64>();
        let output = SegmentationOutput {
            loss: loss.clone(),
            logits,
            masks: batch.masks,
        };
        if !value.is_finite() {
            // Keep the model as it is (no update) and stop before the epoch's checkpoint.
            *self.guard.hit.lock().unwrap() = Some((step, value));
            self.guard
                .interrupter
                .stop(Some(&format!("loss is {value} at step {step}")));
            return TrainOutput {
                grads: GradientsParams::new(),
                item: output,
            };
        }
        TrainOutput::new(&self.net, loss.backward(), output)
    }
}

impl<N: SegmentationModel> InferenceStep for TrainingModel<N> {
    type Input = SegmentationBatch;
    type Output = SegmentationOutput;

    fn step(&self, batch: SegmentationBatch) -> SegmentationOutput {
        let logits = self.net.forward(batch.images);
        let loss = self.loss.task_loss(logits.clone(), batch.masks.clone());
        SegmentationOutput {
            loss,
            logits,
            masks: batch.masks,
        }
    }
}

/// What [`train`] returns.
#[derive(Debug)]
pub struct Trained<N> {
    /// The trained network, all parameters trainable again.
    pub model: N,
    /// The epoch training resumed after, if it resumed from a checkpoint.
    pub resumed_from: Option<usize>,
    /// The last epoch completed.
    pub epochs: usize,
}

/// The checkpoint folder inside a run folder.
pub fn checkpoint_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoint")
}

/// The last epoch with a complete checkpoint (model, optimiser and scheduler) in `run_dir`.
pub fn last_checkpoint(run_dir: &Path) -> Option<usize> {
    let dir = checkpoint_dir(run_dir);
    let entries = std::fs::read_dir(&dir).ok()?;
    let complete = |epoch: usize| {
        ["model", "optim", "scheduler"]
            .iter()
            .all(|name| dir.join(format!("{name}-{epoch}.bpk")).is_file())
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("model-")?
                .strip_suffix(".bpk")?
                .parse::<usize>()
                .ok()
        })
        .filter(|&epoch| complete(epoch))
        .max()
}

/// Trains `net` on `train`, validating on `valid` after each epoch, with Burn's `Learner`.
///
/// Loss: BCE-with-logits + `jaccard_weight`·(1 − soft Jaccard) + λ·Σ|g| ([`LossConfig`]);
/// Adam; the configured schedule. Checkpoints of model, optimiser and scheduler go to
/// `run_dir/checkpoint` after every epoch (the last two are kept) and Burn's metric logs to
/// `run_dir`. With `resume`, a run folder that holds a checkpoint continues after it.
///
/// # Errors
/// - [`Error::Config`] for bad settings, [`Error::EmptyData`] for an empty split;
/// - [`Error::NonFiniteLoss`] when the loss becomes NaN or infinite: training stops at once,
///   before that epoch's checkpoint, so the last checkpoint holds the last good state;
/// - [`Error::Training`] when Burn's training loop fails (a sample that cannot be read, a
///   checkpoint that cannot be written).
pub fn train<N: SegmentationModel>(
    net: N,
    train: &SegmentationData,
    valid: &SegmentationData,
    run_dir: &Path,
    config: &TrainConfig,
    device: &Device,
) -> Result<Trained<N>, Error> {
    train_on(
        net,
        train,
        valid,
        run_dir,
        config,
        std::slice::from_ref(device),
    )
}

/// [`train`] on several devices at once, with burn-train's multi-device strategy
/// (`ExecutionStrategy::MultiDevice`): each step runs one batch on every device, in one thread
/// per device, and sums their gradients on the first device, where the optimiser steps; the
/// training data is split into one contiguous share per device; validation runs on the first
/// device. An epoch therefore takes `devices.len()` times fewer steps (the learning-rate schedule
/// counts those). One device is [`train`] exactly.
///
/// The devices may repeat (`[flex, flex]`: two threads sharing the CPU), but Burn's distributed
/// data parallelism across processes needs CUDA collectives, which prunus does not build.
///
/// # Errors
/// As [`train`]; [`Error::Config`] when `devices` is empty.
pub fn train_on<N: SegmentationModel>(
    net: N,
    train: &SegmentationData,
    valid: &SegmentationData,
    run_dir: &Path,
    config: &TrainConfig,
    devices: &[Device],
) -> Result<Trained<N>, Error> {
    let Some(device) = devices.first() else {
        return Err(Error::config("devices", "name at least one device"));
    };
    config.validate()?;
    if train.is_empty() {
        return Err(Error::EmptyData("training"));
    }
    if valid.is_empty() {
        return Err(Error::EmptyData("validation"));
    }
    std::fs::create_dir_all(run_dir).map_err(|source| Error::Io {
        path: run_dir.to_path_buf(),
        source,
    })?;
    let _lock = crate::lock::lock_folder(run_dir)?;

    let trainable = match config.mode {
        TrainMode::Joint => Trainable::All,
        TrainMode::GatesOnly => Trainable::GatesOnly,
    };
    let guard = NanGuard::default();
    // Parameters must be tracked on an autodiff device (`train` restores their gradient state).
    let autodiff = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    // Each step takes a batch of every device's share of the data.
    let share = train.len().div_ceil(devices.len());
    let per_epoch = share.div_ceil(config.batch_size);
    let iterations = config.epochs * per_epoch;
    // Steps are counted on every device.
    let penalty_from = config.penalty_from(iterations * devices.len());
    let model = TrainingModel {
        net: set_trainable(net.train().fork(&autodiff), trainable),
        loss: config.loss.clone(),
        guard: guard.clone(),
        penalty_from,
    };
    // One schedule for the weights, the same shape scaled for the gates.
    let schedule = |lr: f64| -> LrSchedulerConfig {
        match config.schedule {
            LrSchedule::Constant => LrSchedulerConfig::Constant(lr),
            LrSchedule::Cosine => CosineAnnealingLrSchedulerConfig::new(lr, iterations.max(1))
                .with_min_lr(lr * 0.05)
                .into(),
        }
    };
    let gate_paths = gate_param_paths(&model);
    let mut scheduler = ModuleLrSchedulerConfig::new(schedule(config.learning_rate));
    if !gate_paths.is_empty() {
        scheduler = scheduler.with_group(
            ParamGroup::from_paths(gate_paths),
            schedule(config.learning_rate * config.gate_lr_scale),
        );
    }
    let scheduler = scheduler
        .init()
        .map_err(|reason| Error::config("learning_rate", reason))?;
    // With `resume`, continue after the last complete checkpoint; one at or past the last
    // epoch is loaded and returned as it is (the epoch loop then runs zero times).
    let resumed_from = if config.resume {
        last_checkpoint(run_dir)
    } else {
        None
    };
    let epochs = config.epochs.max(resumed_from.unwrap_or(0));
    if let Some(epoch) = resumed_from {
        // The step count goes on where the checkpoint left it (the penalties' start).
        guard
            .step
            .store(epoch * per_epoch * devices.len(), Ordering::Relaxed);
        let restored = restore_model(&model, run_dir, epoch)?;
        if epoch >= config.epochs {
            // Nothing left to train: the checkpoint is the result (no optimiser state to load).
            return Ok(Trained {
                model: set_trainable(restored.net, Trainable::All),
                resumed_from,
                epochs,
            });
        }
    }
    let learner = Learner::new(model, AdamConfig::new().init(), scheduler);

    let loader_train = train.loader(config.batch_size, Some(config.seed), device);
    let loader_valid = valid.loader(config.batch_size, None, device);

    let renderer: Box<dyn MetricsRenderer> = match config.display {
        TrainDisplay::Auto if std::io::stdout().is_terminal() => {
            default_renderer(guard.interrupter.clone(), resumed_from)
        }
        TrainDisplay::Dashboard => default_renderer(guard.interrupter.clone(), resumed_from),
        TrainDisplay::Auto | TrainDisplay::Plain => Box::new(PlainRenderer::new()),
        TrainDisplay::Quiet => Box::new(PlainRenderer::quiet()),
    };

    let mut training = SupervisedTraining::new(run_dir, loader_train, loader_valid)
        .num_epochs(epochs)
        .with_interrupter(guard.interrupter.clone())
        .with_custom_checkpointers(
            EagerCheckpointer::new(&checkpoint_dir(run_dir), "model"),
            EagerCheckpointer::new(&checkpoint_dir(run_dir), "optim"),
            EagerCheckpointer::new(&checkpoint_dir(run_dir), "scheduler"),
        )
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
        .renderer(renderer)
        .with_application_logger(None)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(SegmentationMetric::new(Metric::PixelAccuracy))
        .metric_valid_numeric(SegmentationMetric::new(Metric::PixelAccuracy))
        .metric_train_numeric(SegmentationMetric::new(Metric::Iou))
        .metric_valid_numeric(SegmentationMetric::new(Metric::Iou));
    if let Some(epoch) = resumed_from {
        training = training.checkpoint(epoch);
    }
    if devices.len() > 1 {
        let strategy =
            ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimMainDevice);
        training = training.with_training_strategy(strategy.into());
    }
    let result = training.launch(learner);

    if let Some((step, value)) = *guard.hit.lock().unwrap() {
        return Err(Error::NonFiniteLoss {
            step,
            value,
            last_checkpoint: last_checkpoint(run_dir)
                .map(|e| checkpoint_dir(run_dir).join(format!("model-{e}.bpk"))),
        });
    }
    if let Some(error) = result.error {
        return Err(Error::Training(error.to_string()));
    }
    Ok(Trained {
        model: set_trainable(result.model.net, Trainable::All),
        resumed_from,
        epochs,
    })
}

/// Loads the model checkpoint of `epoch` into a copy of `model`: an error, not Burn's panic,
/// when it belongs to another architecture.
fn restore_model<N: SegmentationModel>(
    model: &TrainingModel<N>,
    run_dir: &Path,
    epoch: usize,
) -> Result<TrainingModel<N>, Error> {
    let checkpoints = EagerCheckpointer::new(&checkpoint_dir(run_dir), "model");
    let path = checkpoints.path(epoch);
    let bad = |reason: String| Error::Resume {
        path: path.clone(),
        source: reason.into(),
    };
    let record = checkpoints.restore(epoch).map_err(|e| bad(e.to_string()))?;
    model
        .clone()
        .try_load_record(record)
        .map_err(|e| bad(format!("{e:?}")))
}

/// Thresholds `net`'s logits at 0 over every sample of `data` and counts the confusion matrix.
///
/// Runs on `device` in batches of `batch_size`, without autodiff.
///
/// # Errors
/// [`Error::Data`] when a sample cannot be read, [`Error::EmptyData`] for an empty dataset.
pub fn evaluate<N: SegmentationModel>(
    net: &N,
    data: &SegmentationData,
    batch_size: usize,
    device: &Device,
) -> Result<Confusion, Error> {
    let mut total = Confusion::default();
    for [tp, fp, fn_, tn] in evaluate_images(net, data, batch_size, device)? {
        total.merge(&Confusion { tp, fp, fn_, tn });
    }
    Ok(total)
}

/// The confusion counts `[tp, fp, fn, tn]` of every sample of `data`, in order (what
/// [`evaluate`] sums; a bootstrap resamples them).
///
/// # Errors
/// As [`evaluate`].
pub(crate) fn evaluate_images<N: SegmentationModel>(
    net: &N,
    data: &SegmentationData,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<[u64; 4]>, Error> {
    if data.is_empty() {
        return Err(Error::EmptyData("evaluation"));
    }
    let net = net.valid();
    let mut images = Vec::with_capacity(data.len());
    let batch_size = batch_size.max(1);
    for start in (0..data.len()).step_by(batch_size) {
        let batch = data.batch(start..start + batch_size, device)?;
        let logits = net.forward(batch.images);
        let counts = confusion_per_image(logits, batch.masks)
            .try_into_vec_as::<i64>()
            .map_err(|e| Error::Training(format!("cannot read the confusion counts: {e}")))?;
        images.extend(counts.chunks_exact(4).map(counts_of));
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use prunus_models::UNetConfig;

    /// The loss of a step before the penalties' start is the task loss alone; from the next
    /// step on it adds λ·Σ|g|, Σ|g| summed here from the gates' values.
    #[test]
    fn penalties_apply_only_after_their_start() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let net = UNetConfig::standard(3, 1, 4, 1).init(&device).unwrap();
        let gates: f64 = prunus_layers::gates(&net)
            .into_iter()
            .flat_map(|(_, g)| g.into_data().iter::<f32>().collect::<Vec<_>>())
            .map(|g| f64::from(g.abs()))
            .sum();
        assert!(gates > 1.0, "the network has gates: {gates}");
        let lambda = 0.25;
        let model = TrainingModel {
            net,
            loss: LossConfig::new().with_gate_l1(lambda),
            guard: NanGuard::default(),
            penalty_from: 2,
        };
        let images = Tensor::<4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let masks = Tensor::<4>::random([2, 1, 16, 16], Distribution::Uniform(0.0, 1.0), &device)
            .greater_elem(0.7)
            .float();
        let task = model
            .loss
            .task_loss(model.net.forward(images.clone()), masks.clone())
            .into_scalar::<f64>();
        let losses: Vec<f64> = (0..4)
            .map(|_| {
                let batch = SegmentationBatch {
                    images: images.clone(),
                    masks: masks.clone(),
                };
                TrainStep::step(&model, batch)
                    .item
                    .loss
                    .into_scalar::<f64>()
            })
            .collect();
        for (step, loss) in losses.iter().enumerate() {
            let expected = if step < 2 {
                task
            } else {
                task + lambda * gates
            };
            assert!(
                (loss - expected).abs() < 1e-4 * expected.abs().max(1.0),
                "step {}: loss {loss}, expected {expected}",
                step + 1
            );
        }
    }

    #[test]
    fn a_penalty_start_outside_zero_to_one_is_an_error() {
        for bad in [-0.1, 1.0, f64::NAN] {
            let err = TrainConfig::new()
                .with_penalty_start(bad)
                .validate()
                .unwrap_err();
            assert!(err.to_string().contains("penalty_start"), "{err}");
        }
        TrainConfig::new()
            .with_penalty_start(0.5)
            .validate()
            .unwrap();
    }

    #[test]
    fn a_gate_rate_above_one_is_an_error_under_the_cosine_schedule() {
        let fast = TrainConfig::new()
            .with_learning_rate(0.2)
            .with_gate_lr_scale(10.0);
        let err = fast.clone().validate().unwrap_err();
        assert!(err.to_string().contains("gate_lr_scale"), "{err}");
        assert!(err.to_string().contains("= 2"), "{err}");
        fast.with_schedule(LrSchedule::Constant).validate().unwrap();
        TrainConfig::new()
            .with_learning_rate(0.1)
            .with_gate_lr_scale(10.0)
            .validate()
            .unwrap();
    }
}
