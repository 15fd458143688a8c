//! The surgery that works on any [`Prunable`] network: removal, closing, folding.

use std::collections::{BTreeMap, BTreeSet};

use prunus_layers::{ChannelGroup, GatedConv2d, GatedConvTranspose2d, LayerMut, Prunable};

use crate::error::{SurgeryError, layer_error};
use crate::plan::PruningPlan;

pub(crate) fn layer<'a, M: Prunable>(
    model: &'a mut M,
    path: &str,
) -> Result<LayerMut<'a>, SurgeryError> {
    model
        .layer_mut(path)
        .ok_or_else(|| layer_error(path, "the network has no such layer"))
}

/// The inputs of `consumer` that carry the group's channels `channels`.
pub(crate) fn consumer_inputs(
    consumer: &prunus_layers::Consumer,
    channels: &[usize],
) -> impl Iterator<Item = usize> {
    let (offset, span) = (consumer.offset, consumer.span);
    channels
        .iter()
        .flat_map(move |&i| offset + i * span..offset + (i + 1) * span)
}

/// Builds the slimmer network that keeps only the channels `plan` keeps.
///
/// Each group's producers lose the removed filters (weights, bias, BatchNorm, gate), its
/// members (BatchNorm, depthwise convolutions) the removed channels, and every consumer the
/// matching inputs at its offset; transposed convolutions are cut on their own axes. The
/// network's configuration follows from its new weights.
///
/// The result computes exactly what the original computes with the removed channels closed
/// ([`close_removed_gates`]) when the groups describe the network truly, which
/// [`verify_prunable`](crate::verify_prunable) checks.
///
/// # Errors
/// When the plan does not fit the network's groups (naming the group), or a group does not
/// match its layers.
pub fn prune<M: Prunable>(mut model: M, plan: &PruningPlan) -> Result<M, SurgeryError> {
    let groups = model.channel_groups();
    plan.validate(&groups)?;
    check_groups(&mut model, &groups)?;
    // Inputs each consumer loses, gathered over all groups first: a consumer fed by a
    // concatenation is sliced once, with the offsets of the unsliced layer.
    let mut lost_inputs: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for group in &groups {
        let removed = plan.removed(group);
        if removed.is_empty() {
            continue;
        }
        for consumer in &group.consumers {
            let lost = lost_inputs.entry(consumer.layer.as_str()).or_default();
            lost.extend(consumer_inputs(consumer, &removed));
        }
        let kept = plan
            .kept(&group.name)
            .expect("a group with removed channels is named");
        for producer in &group.producers {
            layer(&mut model, producer)?.slice_outputs(producer, kept)?;
        }
        for member in &group.members {
            layer(&mut model, member)?.slice_in_step(member, kept)?;
        }
    }
    for (path, lost) in lost_inputs {
        let mut layer = layer(&mut model, path)?;
        let inputs = layer.channels()[0];
        let keep: Vec<usize> = (0..inputs).filter(|i| !lost.contains(i)).collect();
        layer.slice_inputs(path, &keep)?;
    }
    Ok(model)
}

/// Checks that every group's layers exist, have room for it, and that no layer produces or
/// joins two groups.
pub(crate) fn check_groups<M: Prunable>(
    model: &mut M,
    groups: &[ChannelGroup],
) -> Result<(), SurgeryError> {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for group in groups {
        if group.producers.is_empty() {
            return Err(SurgeryError::Declaration {
                group: group.name.clone(),
                layer: group.name.clone(),
                reason: "the group has no producer".into(),
            });
        }
        for path in group.producers.iter().chain(&group.members) {
            if let Some(other) = owner.insert(path, &group.name) {
                return Err(SurgeryError::Declaration {
                    group: group.name.clone(),
                    layer: path.clone(),
                    reason: format!("the layer already writes the channels of group `{other}`"),
                });
            }
            let channels = layer(model, path)?.channels()[1];
            if channels != group.size {
                return Err(SurgeryError::Declaration {
                    group: group.name.clone(),
                    layer: path.clone(),
                    reason: format!(
                        "the group has {} channels but the layer writes {channels}",
                        group.size
                    ),
                });
            }
        }
        for consumer in &group.consumers {
            let inputs = layer(model, &consumer.layer)?.channels()[0];
            let needed = consumer.offset + group.size * consumer.span;
            if consumer.span == 0 || needed > inputs {
                return Err(SurgeryError::Declaration {
                    group: group.name.clone(),
                    layer: consumer.layer.clone(),
                    reason: format!(
                        "at offset {} with span {} the group needs {needed} inputs, the layer \
                         has {inputs}",
                        consumer.offset, consumer.span
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The same network with the channels `plan` removes closed — made exactly 0 where they are
/// written — which is what [`prune`] must equal: gated producers get those gates at 0, ungated
/// producers lose those filters' weights and bias (and BatchNorm `γ`, `β`), members their
/// per-channel parameters.
///
/// # Errors
/// As [`prune`].
pub fn close_removed_gates<M: Prunable>(
    mut model: M,
    plan: &PruningPlan,
) -> Result<M, SurgeryError> {
    let groups = model.channel_groups();
    plan.validate(&groups)?;
    check_groups(&mut model, &groups)?;
    for group in &groups {
        let removed = plan.removed(group);
        if removed.is_empty() {
            continue;
        }
        for path in group.producers.iter().chain(&group.members) {
            layer(&mut model, path)?.close_outputs(path, &removed)?;
        }
    }
    Ok(model)
}

/// Multiplies every gate into its layer's parameters and removes the gates, so inference
/// pays nothing for them: `W'_i = g_i W_i`, `b'_i = g_i b_i` without BatchNorm, `γ'_i = g_i γ_i`,
/// `β'_i = g_i β_i` with it. Exact for any sign of `g_i`, since the gate comes before the
/// activation.
///
/// Layers already folded are left as they are.
///
/// # Errors
/// When a group's producer is missing.
pub fn fold_gates<M: Prunable>(model: M) -> Result<M, SurgeryError> {
    map_gated(
        model,
        crate::fold::fold_conv,
        crate::fold::fold_conv_transpose,
    )
}

/// Folds the BatchNorm of every gated producer and member into its convolution with the running
/// statistics: `W'_i = s_i W_i`, `b'_i = s_i (b_i − mean_i) + β_i`, `s_i = γ_i / √(var_i + ε)`.
///
/// Exact for inference (a BatchNorm in inference mode is an affine map per channel) and saves
/// a pass over every activation. The result has no BatchNorm left in those layers, so it is for
/// inference only: train or fine-tune before folding. Gates, if any, stay where they are
/// (after the folded norm), so `fold_batch_norms(fold_gates(model))` leaves plain
/// convolutions. Stand-alone BatchNorms are left as they are.
///
/// # Errors
/// When a group's producer is missing.
pub fn fold_batch_norms<M: Prunable>(model: M) -> Result<M, SurgeryError> {
    map_gated(
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

/// Replaces every gated producer and member by `conv(layer)` or `transpose(layer)`, by kind.
fn map_gated<M: Prunable>(
    mut model: M,
    conv: fn(&GatedConv2d) -> GatedConv2d,
    transpose: fn(&GatedConvTranspose2d) -> GatedConvTranspose2d,
) -> Result<M, SurgeryError> {
    for group in model.channel_groups() {
        for path in group.producers.iter().chain(&group.members) {
            match layer(&mut model, path)? {
                LayerMut::Gated(l) => *l = conv(l),
                LayerMut::GatedTranspose(l) => *l = transpose(l),
                _ => {}
            }
        }
    }
    Ok(model)
}
