//! Proving a network's channel groups against the network itself.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::Tensor;
use prunus_layers::{ChannelGroup, Prunable};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::SplitMix64;

use crate::error::SurgeryError;
use crate::plan::PruningPlan;
use crate::prunable::{check_groups, close_removed_gates, consumer_inputs, layer, prune};

/// The largest difference allowed between closing channels and removing them, relative to the
/// output's scale (at least 1).
pub const VERIFY_TOLERANCE: f32 = 1e-5;

/// Proves `model`'s channel groups against the network: for a random subset of every group's
/// channels (about half), removing them physically ([`prune`]) must give the same output of
/// `forward` on `input` as closing them ([`close_removed_gates`]), within
/// [`VERIFY_TOLERANCE`] × max(1, largest |output|).
///
/// Each consumer is checked on its own too: with the channels closed, also zeroing the inputs
/// the consumer declares must not change the output (they must be the closed channels).
///
/// The proof is as good as `input`: a channel that is 0 everywhere on it (a ReLU that never
/// fires) reads the same wherever it is wired, so a wrong offset that only moves such channels
/// passes. Give an input that exercises the network, such as a real example.
///
/// # Errors
/// [`SurgeryError::Declaration`] naming the group and the layer at fault:
/// - a layer of the wrong width, a consumer too narrow for its offset (before any pass);
/// - a consumer whose offset or span points at other channels (or whose producer is wrong);
/// - a network that no longer runs, or computes something else, once the channels are gone:
///   a layer that reads or writes the channels is missing from the group.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_models::UNetConfig;
/// use prunus_surgery::verify_prunable;
///
/// let device = Device::flex();
/// let unet = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
/// let x = Tensor::<4>::random([1, 3, 16, 16], Distribution::Default, &device);
/// verify_prunable(&unet, x, |net, x| net.forward(x)).unwrap();
/// ```
pub fn verify_prunable<M: Prunable, const D: usize>(
    model: &M,
    input: Tensor<4>,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<D>,
) -> Result<(), SurgeryError> {
    let model = model.valid();
    let groups = model.channel_groups();
    check_groups(&mut model.clone(), &groups)?;
    let reference = forward(&model, input.clone());
    let scale = reference.abs().max().into_scalar::<f32>().max(1.0);
    let tolerance = VERIFY_TOLERANCE * scale;
    for (g, group) in groups.iter().enumerate() {
        if group.size < 2 {
            continue;
        }
        let removed = random_subset(group.size, g as u64);
        let kept: Vec<usize> = (0..group.size).filter(|i| !removed.contains(i)).collect();
        let plan = PruningPlan::new().keep(group.name.clone(), kept);
        check_group(&model, group, &plan, &removed, &input, &forward, tolerance)?;
    }
    Ok(())
}

fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Option<f32> {
    (a.dims() == b.dims()).then(|| (a - b).abs().max().into_scalar::<f32>())
}

fn check_group<M: Prunable, const D: usize>(
    model: &M,
    group: &ChannelGroup,
    plan: &PruningPlan,
    removed: &[usize],
    input: &Tensor<4>,
    forward: &impl Fn(&M, Tensor<4>) -> Tensor<D>,
    tolerance: f32,
) -> Result<(), SurgeryError> {
    let fault = |layer: &str, reason: String| SurgeryError::Declaration {
        group: group.name.clone(),
        layer: layer.to_string(),
        reason,
    };
    let closed_model = close_removed_gates(model.clone(), plan)?;
    let closed = forward(&closed_model, input.clone());
    for consumer in &group.consumers {
        let mut ignoring = closed_model.clone();
        let inputs: Vec<usize> = consumer_inputs(consumer, removed).collect();
        layer(&mut ignoring, &consumer.layer)?.zero_inputs(&consumer.layer, &inputs)?;
        let diff = max_diff(forward(&ignoring, input.clone()), closed.clone());
        if diff.is_none_or(|d| d > tolerance) {
            return Err(fault(
                &consumer.layer,
                format!(
                    "the inputs it is declared to read at offset {} (span {}) are not the \
                     channels that {} write: a wrong offset or span, or a wrong producer",
                    consumer.offset,
                    consumer.span,
                    group.producers.join(", ")
                ),
            ));
        }
    }
    let pruned_model = prune(model.clone(), plan)?;
    let pruned = catch_unwind(AssertUnwindSafe(|| forward(&pruned_model, input.clone())));
    let layers = || {
        format!(
            "producers {}; members {}; consumers {}",
            group.producers.join(", "),
            if group.members.is_empty() {
                "none".to_string()
            } else {
                group.members.join(", ")
            },
            group
                .consumers
                .iter()
                .map(|c| c.layer.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let pruned = pruned.map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        fault(
            &group.name,
            format!(
                "the network no longer runs once channels {removed:?} are removed, so a layer \
                 that reads or writes them is missing from the group ({}): {message}",
                layers()
            ),
        )
    })?;
    match max_diff(pruned, closed) {
        Some(d) if d <= tolerance => Ok(()),
        diff => Err(fault(
            &group.name,
            format!(
                "removing channels {removed:?} changes the output ({}; allowed {tolerance:e}) \
                 compared with closing them, so a layer that reads them is not a consumer or one \
                 that writes them is not a producer ({})",
                diff.map_or("its shape".to_string(), |d| format!("by {d:e}")),
                layers()
            ),
        )),
    }
}

/// About half of `0..size`, at least one and at most `size − 1`, ascending; reproducible.
fn random_subset(size: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    let mut picked: Vec<usize> = (0..size).filter(|_| rng.random::<bool>()).collect();
    if picked.is_empty() {
        picked.push(rng.random_range(0..size));
    }
    if picked.len() == size {
        picked.remove(rng.random_range(0..size));
    }
    picked
}
