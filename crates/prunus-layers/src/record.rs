//! Counting what a forward pass computes: every layer of this crate (and every plain layer run
//! through [`counted`](crate::counted)) notes its shape and cost while [`record`] is active.
//!
//! This gives the exact cost of any network, whatever its topology, from one forward pass:
//! `prunus_models::measure_cost` names the layers and sums them.

use std::cell::RefCell;

use burn::module::{Param, ParamId};
use burn::nn::BatchNorm;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The kind of a counted layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerKind {
    /// A 2-d convolution.
    Conv,
    /// A 2-d transposed convolution.
    ConvTranspose,
    /// A fully connected layer.
    Linear,
}

/// One layer run, as [`record`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// The id of the layer's weight: names the layer (`prunus_models::measure_cost` maps it to
    /// the module path).
    pub weight: ParamId,
    /// Convolution, transposed convolution or linear.
    pub kind: LayerKind,
    /// `[in, out]` channels (features for a linear layer).
    pub channels: [usize; 2],
    /// Kernel side (1 for a linear layer).
    pub kernel_size: usize,
    /// Input `[height, width]` (`[1, 1]` for a linear layer).
    pub input_size: [usize; 2],
    /// Output `[height, width]`.
    pub output_size: [usize; 2],
    /// Weights, bias and BatchNorm `γ`, `β`.
    pub params: u64,
    /// Gates.
    pub gates: u64,
    /// Multiply-adds of this run, for the whole batch.
    pub macs: u64,
}

thread_local! {
    static RECORDING: RefCell<Option<Vec<Executed>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns what it returned with every layer run it made on this thread, in
/// order. Nested calls record into the innermost.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_layers::{GatedConv2dConfig, record};
///
/// let device = Device::flex();
/// let layer = GatedConv2dConfig::new([3, 8]).init(&device);
/// let x = Tensor::<4>::random([1, 3, 16, 16], Distribution::Default, &device);
/// let (_, runs) = record(|| layer.forward(x));
/// assert_eq!(runs[0].macs, 16 * 16 * 8 * 3 * 9);
/// ```
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Vec<Executed>) {
    let outer = RECORDING.with(|r| r.borrow_mut().replace(Vec::new()));
    let result = f();
    let runs = RECORDING.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer));
    (result, runs.unwrap_or_default())
}

fn note(run: impl FnOnce() -> Executed) {
    RECORDING.with(|r| {
        if let Some(runs) = r.borrow_mut().as_mut() {
            runs.push(run());
        }
    });
}

fn numel<const D: usize>(p: &Param<Tensor<D>>) -> u64 {
    p.shape().num_elements() as u64
}

fn conv_params(
    weight: &Param<Tensor<4>>,
    bias: Option<&Param<Tensor<1>>>,
    norm: Option<&BatchNorm>,
) -> u64 {
    numel(weight) + bias.map_or(0, numel) + norm.map_or(0, |n| 2 * numel(&n.gamma))
}

/// Notes a convolution run from `input` dims to `output` dims.
pub(crate) fn note_conv(
    conv: &Conv2d,
    norm: Option<&BatchNorm>,
    gate: Option<&Param<Tensor<1>>>,
    input: [usize; 4],
    output: [usize; 4],
) {
    note(|| {
        let [out, per_group, kh, kw] = conv.weight.dims();
        let positions = (output[0] * output[2] * output[3]) as u64;
        Executed {
            weight: conv.weight.id,
            kind: LayerKind::Conv,
            channels: [per_group * conv.groups, out],
            kernel_size: kh,
            input_size: [input[2], input[3]],
            output_size: [output[2], output[3]],
            params: conv_params(&conv.weight, conv.bias.as_ref(), norm),
            gates: gate.map_or(0, numel),
            macs: positions * (out * per_group * kh * kw) as u64,
        }
    });
}

/// Notes a transposed convolution run (weight `[in, out/groups, k, k]`).
pub(crate) fn note_conv_transpose(
    conv: &ConvTranspose2d,
    norm: Option<&BatchNorm>,
    gate: Option<&Param<Tensor<1>>>,
    input: [usize; 4],
    output: [usize; 4],
) {
    note(|| {
        let [inputs, per_group, kh, kw] = conv.weight.dims();
        let positions = (input[0] * input[2] * input[3]) as u64;
        Executed {
            weight: conv.weight.id,
            kind: LayerKind::ConvTranspose,
            channels: [inputs, per_group * conv.groups],
            kernel_size: kh,
            input_size: [input[2], input[3]],
            output_size: [output[2], output[3]],
            params: conv_params(&conv.weight, conv.bias.as_ref(), norm),
            gates: gate.map_or(0, numel),
            macs: positions * (inputs * per_group * kh * kw) as u64,
        }
    });
}

/// Plain Burn layers run so that [`record`] counts them: use these in a forward pass for the
/// layers that are not prunus layers (an output convolution, a classifier head).
pub mod counted {
    use burn::nn::Linear;
    use burn::nn::conv::{Conv2d, ConvTranspose2d};
    use burn::nn::pool::MaxPool2d;
    use burn::tensor::Tensor;

    use super::{Executed, LayerKind, note, numel};

    /// `layer.forward(input)`, counted; by prunus's CPU kernel on Flex (see
    /// [`set_cpu_kernels`](crate::set_cpu_kernels)).
    pub fn conv2d(layer: &Conv2d, input: Tensor<4>) -> Tensor<4> {
        let dims = input.dims();
        let output = crate::cpu::conv2d(layer, &input).unwrap_or_else(|| layer.forward(input));
        super::note_conv(layer, None, None, dims, output.dims());
        output
    }

    /// `layer.forward(input)`, counted; by prunus's CPU kernel on Flex (see
    /// [`set_cpu_kernels`](crate::set_cpu_kernels)).
    pub fn conv_transpose2d(layer: &ConvTranspose2d, input: Tensor<4>) -> Tensor<4> {
        let dims = input.dims();
        let output =
            crate::cpu::conv_transpose2d(layer, &input).unwrap_or_else(|| layer.forward(input));
        super::note_conv_transpose(layer, None, None, dims, output.dims());
        output
    }

    /// `layer.forward(input)`, by prunus's CPU kernel on Flex (see
    /// [`set_cpu_kernels`](crate::set_cpu_kernels)); nothing to count, no multiply-adds.
    ///
    /// ```
    /// use burn::nn::pool::MaxPool2dConfig;
    /// use burn::tensor::{Device, Distribution, Tensor};
    ///
    /// let device = Device::flex();
    /// let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    /// let x = Tensor::<4>::random([1, 3, 8, 8], Distribution::Default, &device);
    /// let y = prunus_layers::counted::max_pool2d(&pool, x.clone());
    /// assert_eq!(y.to_data(), pool.forward(x).to_data());
    /// ```
    pub fn max_pool2d(layer: &MaxPool2d, input: Tensor<4>) -> Tensor<4> {
        crate::cpu::max_pool2d(layer, &input).unwrap_or_else(|| layer.forward(input))
    }

    /// `layer.forward(input)`, counted: one multiply-add per weight for every row of the
    /// input (every example of a `[batch, features]` input).
    pub fn linear<const D: usize>(layer: &Linear, input: Tensor<D>) -> Tensor<D> {
        let rows = input.shape().num_elements() / input.dims()[D - 1].max(1);
        let output = layer.forward(input);
        note(|| {
            let [inputs, outputs] = layer.weight.dims();
            Executed {
                weight: layer.weight.id,
                kind: LayerKind::Linear,
                channels: [inputs, outputs],
                kernel_size: 1,
                input_size: [1, 1],
                output_size: [1, 1],
                params: numel(&layer.weight) + layer.bias.as_ref().map_or(0, numel),
                gates: 0,
                macs: (rows * inputs * outputs) as u64,
            }
        });
        output
    }
}
