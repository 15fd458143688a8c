//! Folding one layer's gates into its parameters.

use burn::module::Param;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;
use prunus_layers::{GatedConv2d, GatedConvTranspose2d};

/// `param · gate` along `dim` of a `D`-dimensional parameter.
fn scale<const D: usize>(
    param: &Param<Tensor<D>>,
    gate: &Tensor<1>,
    dim: usize,
) -> Param<Tensor<D>> {
    let value = param.val();
    let [n] = gate.dims();
    let mut shape = [1usize; D];
    shape[dim] = n;
    Param::from_tensor((value * gate.clone().reshape(shape)).detach())
}

fn fold_norm(norm: &BatchNorm, gate: &Tensor<1>) -> BatchNorm {
    BatchNorm {
        gamma: scale(&norm.gamma, gate, 0),
        beta: scale(&norm.beta, gate, 0),
        ..norm.clone()
    }
}

/// A gated convolution with its gates folded into conv or BatchNorm parameters.
pub(crate) fn fold_conv(layer: &GatedConv2d) -> GatedConv2d {
    let Some(gate) = layer.gate.as_ref().map(Param::val) else {
        return layer.clone();
    };
    let mut folded = layer.clone();
    folded.gate = None;
    match &layer.norm {
        Some(norm) => folded.norm = Some(fold_norm(norm, &gate)),
        None => {
            folded.conv.weight = scale(&layer.conv.weight, &gate, 0);
            folded.conv.bias = layer.conv.bias.as_ref().map(|b| scale(b, &gate, 0));
        }
    }
    folded
}

/// A gated transposed convolution with its gates folded; its weight is `[in, out, k, k]`.
pub(crate) fn fold_conv_transpose(layer: &GatedConvTranspose2d) -> GatedConvTranspose2d {
    let Some(gate) = layer.gate.as_ref().map(Param::val) else {
        return layer.clone();
    };
    let mut folded = layer.clone();
    folded.gate = None;
    match &layer.norm {
        Some(norm) => folded.norm = Some(fold_norm(norm, &gate)),
        None => {
            folded.conv.weight = scale(&layer.conv.weight, &gate, 1);
            folded.conv.bias = layer.conv.bias.as_ref().map(|b| scale(b, &gate, 0));
        }
    }
    folded
}

/// `(scale, shift)` per channel of a BatchNorm in inference mode:
/// `norm(z) = scale · z + shift`, `scale = γ / √(var + ε)`, `shift = β − scale · mean`.
fn norm_affine(norm: &BatchNorm) -> (Tensor<1>, Tensor<1>) {
    let std = norm.running_var.value().add_scalar(norm.epsilon).sqrt();
    let scale = norm.gamma.val() / std;
    let shift = norm.beta.val() - scale.clone() * norm.running_mean.value();
    (scale, shift)
}

/// A conv's bias, or zeros.
fn bias_or_zero(bias: Option<&Param<Tensor<1>>>, reference: &Tensor<1>) -> Tensor<1> {
    bias.map(Param::val)
        .unwrap_or_else(|| reference.zeros_like())
}

macro_rules! fold_norm_into_conv {
    ($name:ident, $layer:ty, $out_axis:expr) => {
        /// The layer with its BatchNorm (inference statistics) folded into the convolution.
        pub(crate) fn $name(layer: &$layer) -> $layer {
            let Some(norm) = &layer.norm else {
                return layer.clone();
            };
            let (factor, shift) = norm_affine(norm);
            let bias = bias_or_zero(layer.conv.bias.as_ref(), &factor);
            let mut folded = layer.clone();
            folded.norm = None;
            folded.conv.weight = scale(&layer.conv.weight, &factor, $out_axis);
            folded.conv.bias = Some(Param::from_tensor((bias * factor + shift).detach()));
            folded
        }
    };
}

fold_norm_into_conv!(fold_norm_conv, GatedConv2d, 0);
fold_norm_into_conv!(fold_norm_conv_transpose, GatedConvTranspose2d, 1);
