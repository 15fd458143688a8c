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
    Param::from_tensor(value * gate.clone().reshape(shape))
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
