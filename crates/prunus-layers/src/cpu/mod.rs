//! Prunus's own convolution kernel for inference on the Flex CPU backend.
//!
//! Burn's Flex convolution runs every 2-d convolution as a 3-d one: per call it repacks the
//! weights, converts the whole input to channels-last in one thread, multiplies per tile into
//! fresh buffers and scatters the result back to NCHW. Then BatchNorm, gate and ReLU each make
//! another pass over the output. For inference this module replaces all of that with one
//! NCHW `im2col` + matrix product per band of output rows, the layer's affine map (bias,
//! BatchNorm with its running statistics, gate) and ReLU applied in the same pass
//! ([`kernel`]).
//!
//! It takes over only where it computes the same function as Burn's layers: a tensor on Flex
//! without autodiff (so BatchNorm is in inference mode), `f32`, no groups, no dilation, explicit
//! or no padding. Everything else — training, ndarray, wgpu — goes through Burn unchanged.
//! [`set_cpu_kernels`] (or `PRUNUS_CPU_KERNELS=0`) turns it off, to compare.

#[cfg(feature = "flex")]
mod autodiff;
mod backward;
mod direct;
#[cfg(feature = "flex")]
mod flex;
mod kernel;
mod norm;
mod pool;
mod up;
mod winograd;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(feature = "flex")]
pub(crate) use flex::{
    conv_transpose2d, conv_transpose2d_autodiff, conv2d, conv2d_autodiff, gated_conv_transpose2d,
    gated_conv2d, gated_conv2d_cat, gated_conv2d_pooled, gated_conv2d_then_head, max_pool2d,
    norm_gate_act_autodiff,
};

/// The most output channels a convolution can have for its 1×1 head to run in its registers
/// (`GatedConv2d::forward_then`) on this CPU; 0 without AVX2 or AVX-512.
#[cfg(test)]
pub(crate) fn widest_projection() -> usize {
    direct::Isa::detect().map_or(0, |isa| isa.max_block())
}

/// 0: not decided yet (read `PRUNUS_CPU_KERNELS`), 1: on, 2: off.
static STATE: AtomicU8 = AtomicU8::new(0);
static FROM_ENV: OnceLock<bool> = OnceLock::new();

/// Turns prunus's own CPU convolution kernel on or off for the whole process (it is on unless
/// the environment variable `PRUNUS_CPU_KERNELS` is `0`). Off, every layer runs Burn's
/// operations; the outputs agree to within 1e-4, the speed is what differs.
///
/// # Example
/// ```
/// prunus_layers::set_cpu_kernels(false);
/// assert!(!prunus_layers::cpu_kernels());
/// prunus_layers::set_cpu_kernels(true);
/// ```
pub fn set_cpu_kernels(enabled: bool) {
    STATE.store(if enabled { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether prunus's own CPU convolution kernel is in use (see [`set_cpu_kernels`]).
pub fn cpu_kernels() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => *FROM_ENV
            .get_or_init(|| std::env::var("PRUNUS_CPU_KERNELS").map_or(true, |v| v.trim() != "0")),
    }
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn gated_conv2d(
    _layer: &crate::GatedConv2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn gated_conv_transpose2d(
    _layer: &crate::GatedConvTranspose2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn conv_transpose2d_autodiff(
    _conv: &burn::nn::conv::ConvTranspose2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn norm_gate_act_autodiff(
    _z: &burn::tensor::Tensor<4>,
    _norm: Option<&burn::nn::BatchNorm>,
    _gate: Option<&burn::module::Param<burn::tensor::Tensor<1>>>,
    _activation: crate::Activation,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn gated_conv2d_cat(
    _layer: &crate::GatedConv2d,
    _inputs: &[burn::tensor::Tensor<4>],
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn gated_conv2d_then_head(
    _layer: &crate::GatedConv2d,
    _head: &burn::nn::conv::Conv2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn gated_conv2d_pooled(
    _layer: &crate::GatedConv2d,
    _pool: &burn::nn::pool::MaxPool2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<(burn::tensor::Tensor<4>, burn::tensor::Tensor<4>)> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn max_pool2d(
    _pool: &burn::nn::pool::MaxPool2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn conv2d(
    _conv: &burn::nn::conv::Conv2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn conv_transpose2d(
    _conv: &burn::nn::conv::ConvTranspose2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}

/// Without the `flex` feature there is no Flex tensor to take over.
#[cfg(not(feature = "flex"))]
pub(crate) fn conv2d_autodiff(
    _conv: &burn::nn::conv::Conv2d,
    _input: &burn::tensor::Tensor<4>,
) -> Option<burn::tensor::Tensor<4>> {
    None
}
