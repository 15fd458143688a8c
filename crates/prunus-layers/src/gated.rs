//! What the two gated layers share: gate, optional BatchNorm and activation after the conv.

use burn::module::Param;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor};

use crate::{Activation, GateInit};

/// `act(g ⊙ norm(z))` (or `act(norm(z))` once the gates are folded) for a conv output `z` of shape `[batch, channels, height, width]`.
pub(crate) fn gate_forward(
    z: Tensor<4>,
    norm: Option<&BatchNorm>,
    gate: Option<&Param<Tensor<1>>>,
    activation: Activation,
) -> Tensor<4> {
    if let Some(y) = crate::cpu::norm_gate_act_autodiff(&z, norm, gate, activation) {
        return y;
    }
    gate_forward_burn(z, norm, gate, activation)
}

/// [`gate_forward`] by Burn's operations alone.
pub(crate) fn gate_forward_burn(
    z: Tensor<4>,
    norm: Option<&BatchNorm>,
    gate: Option<&Param<Tensor<1>>>,
    activation: Activation,
) -> Tensor<4> {
    let z = match norm {
        Some(norm) => norm.forward(z),
        None => z,
    };
    let z = match gate {
        Some(gate) => {
            let [channels] = gate.dims();
            z * gate.val().reshape([1, channels, 1, 1])
        }
        None => z,
    };
    activation.forward(z)
}

/// The optional BatchNorm of a layer with `channels` outputs.
pub(crate) fn init_norm(batch_norm: bool, channels: usize, device: &Device) -> Option<BatchNorm> {
    batch_norm.then(|| BatchNormConfig::new(channels).init(device))
}

/// The gates of a layer whose filters are the slices `weight` along `filter_axis`.
pub(crate) fn init_gates(
    gate_init: &GateInit,
    weight: &Tensor<4>,
    filter_axis: usize,
    device: &Device,
) -> Param<Tensor<1>> {
    let filters = weight.dims()[filter_axis];
    let norms = gate_init
        .needs_filter_norms()
        .then(|| filter_l1_norms(weight.clone(), filter_axis));
    gate_init.init_param(filters, norms, device)
}

/// The L1 norm of every filter of a 4-d weight whose filters lie along `filter_axis`.
pub fn filter_l1_norms(weight: Tensor<4>, filter_axis: usize) -> Tensor<1> {
    assert!(filter_axis < 2, "filters lie along axis 0 or 1");
    let weight = if filter_axis == 1 {
        weight.swap_dims(0, 1)
    } else {
        weight
    };
    let [filters, ..] = weight.dims();
    weight
        .abs()
        .reshape([filters as i32, -1])
        .sum_dim(1)
        .reshape([filters])
}
