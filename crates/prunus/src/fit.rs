//! A plain training loop for any task: Adam, the gates at their own learning rate, the gates'
//! L1 penalty, the schedule of [`TrainConfig`], and a stop at the first loss that is not finite.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use prunus_layers::{Trainable, gate_param_ids, set_trainable};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::SplitMix64;

use crate::error::Error;
use crate::train::{LrSchedule, TrainConfig, TrainMode};

/// The facade's random stream (shuffles, bootstrap resamples) for `seed`: SplitMix64 from
/// `rand_xoshiro`, value-stable across versions.
pub(crate) fn stream(seed: u64) -> SplitMix64 {
    SplitMix64::seed_from_u64(seed)
}

/// The order of `n` examples in epoch `epoch` for `seed` (rand's Fisher–Yates shuffle).
pub(crate) fn shuffled(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = stream(seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

/// The learning rate at iteration `t` of `total`.
fn rate(config: &TrainConfig, t: usize, total: usize) -> f64 {
    match config.schedule {
        LrSchedule::Constant => config.learning_rate,
        LrSchedule::Cosine => {
            let min = 0.05 * config.learning_rate;
            let progress = t as f64 / total.max(1) as f64;
            min + (config.learning_rate - min)
                * 0.5
                * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// Trains `model` for `config.epochs` epochs over `examples` training examples in shuffled
/// batches of `config.batch_size`: `batch(indices, device)` loads a batch on the autodiff
/// device, `loss(model, batch)` is the task's loss; `config.loss.gate_l1` · Σ|g| (and
/// `bn_l1` · Σ|γ|) is added.
///
/// # Errors
/// [`Error::NonFiniteLoss`] at the first loss that is not finite (the model is dropped), and
/// the errors of `batch`.
pub(crate) fn fit<M: Module, B>(
    model: M,
    examples: usize,
    config: &TrainConfig,
    device: &Device,
    mut batch: impl FnMut(&[usize], &Device) -> Result<B, Error>,
    loss: impl Fn(&M, B) -> Tensor<1>,
) -> Result<M, Error> {
    config.validate()?;
    if examples == 0 {
        return Err(Error::EmptyData("training"));
    }
    let autodiff = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    let trainable = match config.mode {
        TrainMode::Joint => Trainable::All,
        TrainMode::GatesOnly => Trainable::GatesOnly,
    };
    let mut model = set_trainable(model.train().fork(&autodiff), trainable);
    let gate_ids = gate_param_ids(&model);
    let mut weights_optim = AdamConfig::new().init();
    let mut gates_optim = AdamConfig::new().init();
    let per_epoch = examples.div_ceil(config.batch_size);
    let total = config.epochs * per_epoch;
    let mut step = 0;
    for epoch in 0..config.epochs {
        let order = shuffled(examples, config.seed, epoch);
        for indices in order.chunks(config.batch_size) {
            step += 1;
            let input = batch(indices, &autodiff)?;
            let value = loss(&model, input);
            let task_loss = value.clone().into_scalar::<f64>();
            if !task_loss.is_finite() {
                return Err(Error::NonFiniteLoss {
                    step,
                    value: task_loss,
                    last_checkpoint: None,
                });
            }
            let value = if step > config.penalty_from(total) {
                config.loss.with_penalties(&model, value)
            } else {
                value
            };
            let mut grads = value.backward();
            let gate_grads = GradientsParams::from_params(&mut grads, &model, &gate_ids);
            let weight_grads = GradientsParams::from_grads(grads, &model);
            let lr = rate(config, step - 1, total);
            model = weights_optim.step(lr, model, weight_grads);
            if !gate_grads.is_empty() {
                model = gates_optim.step(lr * config.gate_lr_scale, model, gate_grads);
            }
        }
    }
    // As Burn's Learner returns it: off the autodiff graph, every parameter trainable again.
    Ok(set_trainable(model.valid(), Trainable::All))
}
