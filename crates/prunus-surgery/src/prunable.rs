//! The `Prunable` trait and the surgery that works on any network implementing it.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;
use prunus_layers::{GatedConv2d, GatedConvTranspose2d};

use crate::error::{SurgeryError, layer_error};
use crate::group::ChannelGroup;
use crate::plan::PruningPlan;
use crate::slice::SliceChannels;

/// Mutable access to one layer of a network, by kind.
#[derive(Debug)]
pub enum LayerMut<'a> {
    /// A gated convolution.
    Gated(&'a mut GatedConv2d),
    /// A gated transposed convolution.
    GatedTranspose(&'a mut GatedConvTranspose2d),
    /// A plain convolution (e.g. the output layer, which only consumes).
    Conv(&'a mut Conv2d),
    /// A plain transposed convolution.
    ConvTranspose(&'a mut ConvTranspose2d),
}

impl LayerMut<'_> {
    fn channels(&self) -> [usize; 2] {
        match self {
            Self::Gated(l) => l.channels(),
            Self::GatedTranspose(l) => SliceChannels::channels(&**l),
            Self::Conv(l) => SliceChannels::channels(&**l),
            Self::ConvTranspose(l) => SliceChannels::channels(&**l),
        }
    }

    /// Replaces the layer by its slice on outputs (`outputs = true`) or inputs.
    fn slice(&mut self, path: &str, keep: &[usize], outputs: bool) -> Result<(), SurgeryError> {
        fn apply<L: SliceChannels>(
            layer: &mut L,
            path: &str,
            keep: &[usize],
            outputs: bool,
        ) -> Result<(), SurgeryError> {
            *layer = if outputs {
                layer.select_outputs(path, keep)?
            } else {
                layer.select_inputs(path, keep)?
            };
            Ok(())
        }
        match self {
            Self::Gated(l) => apply(&mut **l, path, keep, outputs),
            Self::GatedTranspose(l) => apply(&mut **l, path, keep, outputs),
            Self::Conv(l) => apply(&mut **l, path, keep, outputs),
            Self::ConvTranspose(l) => apply(&mut **l, path, keep, outputs),
        }
    }

    /// The layer's gate, when it is a gated layer that still has one.
    fn gate_mut(&mut self) -> Option<&mut Option<Param<Tensor<1>>>> {
        match self {
            Self::Gated(l) => Some(&mut l.gate),
            Self::GatedTranspose(l) => Some(&mut l.gate),
            Self::Conv(_) | Self::ConvTranspose(_) => None,
        }
    }
}

/// A network whose filters can be removed: it lists its channel groups and gives access to
/// its layers by module path.
///
/// Implementing it is all a custom CNN needs for [`prune`], [`close_removed_gates`] and
/// [`fold_gates`]. The output layer must not be a group's producer.
pub trait Prunable: Module + Sized {
    /// Every prunable channel group, with its producer and consumers.
    fn channel_groups(&self) -> Vec<ChannelGroup>;

    /// The layer at `path`, or `None` when there is none.
    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>>;
}

fn layer<'a, M: Prunable>(model: &'a mut M, path: &str) -> Result<LayerMut<'a>, SurgeryError> {
    model
        .layer_mut(path)
        .ok_or_else(|| layer_error(path, "the network has no such layer"))
}

/// Builds the slimmer network that keeps only the channels `plan` keeps.
///
/// Each group's producer loses the removed filters (weights, bias, BatchNorm, gate), and every
/// consumer loses the matching input channels at its offset; transposed convolutions are cut
/// on their own axes. The network's configuration follows from its new weights.
///
/// The result computes exactly what the original computes with the removed filters' gates set
/// to 0 ([`close_removed_gates`]).
///
/// # Errors
/// When the plan does not fit the network's groups (naming the group), or a group does not
/// match its layers.
pub fn prune<M: Prunable>(mut model: M, plan: &PruningPlan) -> Result<M, SurgeryError> {
    let groups = model.channel_groups();
    plan.validate(&groups)?;
    // Input channels each consumer loses, gathered over all groups first: a consumer fed by
    // a concatenation is sliced once, with the offsets of the unsliced layer.
    let mut lost_inputs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for group in &groups {
        check_group(&mut model, group)?;
        let removed = plan.removed(group);
        if removed.is_empty() {
            continue;
        }
        for consumer in &group.consumers {
            let lost = lost_inputs.entry(consumer.layer.as_str()).or_default();
            lost.extend(removed.iter().map(|i| consumer.offset + i));
        }
        let kept = plan
            .kept(&group.name)
            .expect("a group with removed channels is named");
        layer(&mut model, &group.producer)?.slice(&group.producer, kept, true)?;
    }
    for (path, lost) in lost_inputs {
        let mut layer = layer(&mut model, path)?;
        let inputs = layer.channels()[0];
        let keep: Vec<usize> = (0..inputs).filter(|i| !lost.contains(i)).collect();
        layer.slice(path, &keep, false)?;
    }
    Ok(model)
}

/// Checks that a group's producer and consumers exist and have room for it.
fn check_group<M: Prunable>(model: &mut M, group: &ChannelGroup) -> Result<(), SurgeryError> {
    let outputs = layer(model, &group.producer)?.channels()[1];
    if outputs != group.size {
        return Err(layer_error(
            &group.producer,
            format!(
                "group `{}` has {} channels but its producer {outputs}",
                group.name, group.size
            ),
        ));
    }
    for consumer in &group.consumers {
        let inputs = layer(model, &consumer.layer)?.channels()[0];
        if consumer.offset + group.size > inputs {
            return Err(layer_error(
                &consumer.layer,
                format!(
                    "group `{}` at offset {} needs {} input channels, the layer has {inputs}",
                    group.name,
                    consumer.offset,
                    consumer.offset + group.size
                ),
            ));
        }
    }
    Ok(())
}

/// The same network with the gates of the channels `plan` removes set to 0 — what [`prune`]
/// must equal.
///
/// # Errors
/// As [`prune`]; also when a producer has no gate (folded).
pub fn close_removed_gates<M: Prunable>(
    mut model: M,
    plan: &PruningPlan,
) -> Result<M, SurgeryError> {
    let groups = model.channel_groups();
    plan.validate(&groups)?;
    for group in &groups {
        let removed = plan.removed(group);
        if removed.is_empty() {
            continue;
        }
        check_group(&mut model, group)?;
        let mut producer = layer(&mut model, &group.producer)?;
        let gate = producer
            .gate_mut()
            .and_then(Option::as_mut)
            .ok_or_else(|| layer_error(&group.producer, "the layer has no gate"))?;
        let value = gate.val();
        let mut mask = vec![1.0f32; group.size];
        for i in removed {
            mask[i] = 0.0;
        }
        let mask = Tensor::<1>::from_floats(mask.as_slice(), &value.device());
        *gate = Param::from_tensor(value * mask);
    }
    Ok(model)
}

/// Multiplies every producer's gates into its parameters and removes the gates, so inference
/// pays nothing for them: `W'_i = g_i W_i`, `b'_i = g_i b_i` without BatchNorm, `γ'_i = g_i γ_i`,
/// `β'_i = g_i β_i` with it. Exact for any sign of `g_i`, since the gate comes before the
/// activation.
///
/// Layers already folded are left as they are.
///
/// # Errors
/// When a group's producer is missing.
pub fn fold_gates<M: Prunable>(model: M) -> Result<M, SurgeryError> {
    map_producers(
        model,
        crate::fold::fold_conv,
        crate::fold::fold_conv_transpose,
    )
}

/// Folds every producer's BatchNorm into its convolution with the running statistics:
/// `W'_i = s_i W_i`, `b'_i = s_i (b_i − mean_i) + β_i`, `s_i = γ_i / √(var_i + ε)`.
///
/// Exact for inference (a BatchNorm in inference mode is an affine map per channel) and saves
/// a pass over every activation. The result has no BatchNorm left, so it is for inference only:
/// train or fine-tune before folding. Gates, if any, stay where they are (after the folded
/// norm), so `fold_batch_norms(fold_gates(model))` leaves plain convolutions.
///
/// # Errors
/// When a group's producer is missing.
pub fn fold_batch_norms<M: Prunable>(model: M) -> Result<M, SurgeryError> {
    map_producers(
        model,
        crate::fold::fold_norm_conv,
        crate::fold::fold_norm_conv_transpose,
    )
}

/// The fastest exact inference form: gates and BatchNorms folded into the convolutions
/// (`fold_batch_norms(fold_gates(model))`).
///
/// # Errors
/// As [`fold_gates`].
pub fn fold_for_inference<M: Prunable>(model: M) -> Result<M, SurgeryError> {
    fold_batch_norms(fold_gates(model)?)
}

/// Replaces every group's producer by `conv(producer)` or `transpose(producer)`, by kind.
fn map_producers<M: Prunable>(
    mut model: M,
    conv: fn(&GatedConv2d) -> GatedConv2d,
    transpose: fn(&GatedConvTranspose2d) -> GatedConvTranspose2d,
) -> Result<M, SurgeryError> {
    for group in model.channel_groups() {
        match layer(&mut model, &group.producer)? {
            LayerMut::Gated(l) => *l = conv(l),
            LayerMut::GatedTranspose(l) => *l = transpose(l),
            LayerMut::Conv(_) | LayerMut::ConvTranspose(_) => {}
        }
    }
    Ok(model)
}
