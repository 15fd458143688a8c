//! The kernel behind Burn's module API: Flex primitives in and out, the layer's parameters as
//! one per-channel map.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::module::Param;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData};

use super::cpu_kernels;
use super::direct;
use super::kernel::{self, ConvGeometry, Epilogue, Kernel};
use super::pool::{self, PoolGeometry};
use crate::{Activation, GatedConv2d, GatedConvTranspose2d};

/// The Flex primitive of a tensor without autodiff, `None` for any other tensor.
fn flex<const D: usize>(tensor: &Tensor<D>) -> Option<FlexTensor> {
    tensor.clone().try_into_primitive::<Flex>().ok()
}

/// The values of a small tensor, on whatever device it lives.
fn host(tensor: Tensor<1>) -> Option<Vec<f32>> {
    tensor.into_data().try_into_vec::<f32>().ok()
}

/// `y = act(gate · norm(conv(x)))` of a gated convolution by prunus's kernel, or `None` where the
/// kernel does not apply (the caller then runs Burn's operations).
pub(crate) fn gated_conv2d(layer: &GatedConv2d, input: &Tensor<4>) -> Option<Tensor<4>> {
    conv2d_then(&layer.conv, input, || gated_epilogue(layer))
}

/// A gated convolution's bias, BatchNorm, gate and activation as one per-channel map.
fn gated_epilogue(layer: &GatedConv2d) -> Option<Epilogue> {
    epilogue(
        layer.conv.bias.as_ref(),
        layer.norm.as_ref(),
        layer.gate.as_ref(),
        layer.activation,
    )
}

/// `y = act(gate · norm(conv(cat(inputs))))` of a gated convolution on inputs concatenated
/// along the channels, read where they are, by prunus's direct kernel or Winograd in registers;
/// `None` where neither takes the layer (the caller then concatenates).
pub(crate) fn gated_conv2d_cat(layer: &GatedConv2d, inputs: &[Tensor<4>]) -> Option<Tensor<4>> {
    if !cpu_kernels() {
        return None;
    }
    let [batch, _, h, w] = inputs.first()?.dims();
    let mut channels = Vec::with_capacity(inputs.len());
    for input in inputs {
        let [b, c, ih, iw] = input.dims();
        if [b, ih, iw] != [batch, h, w] {
            return None;
        }
        channels.push(c);
    }
    let geometry = geometry(&layer.conv, [batch, channels.iter().sum(), h, w])?;
    let kernel = Kernel::choose(&geometry);
    if !kernel.reads_sources() {
        return None;
    }
    let tensors = inputs
        .iter()
        .map(|x| flex(x).map(contiguous))
        .collect::<Option<Vec<_>>>()?;
    let sources = tensors
        .iter()
        .zip(&channels)
        .map(|(t, &c)| Some((t.as_slice::<f32>()?, c)))
        .collect::<Option<Vec<_>>>()?;
    let weight = contiguous(flex(&layer.conv.weight.val())?);
    let epilogue = gated_epilogue(layer)?;
    let weight = weight.as_slice::<f32>()?;
    let out = kernel::conv2d_cat(kernel, &sources, weight, &geometry, &epilogue);
    let [oh, ow] = geometry.output()?;
    Some(tensor(out, [batch, geometry.out_channels, oh, ow]))
}

/// `head(act(gate · norm(conv(x))))` where `head` is a 1×1 convolution to one channel, by the
/// direct kernel in one pass that never writes the gated convolution's output; `None` where the
/// kernel does not take the pair (the caller then runs them one after the other).
pub(crate) fn gated_conv2d_then_head(
    layer: &GatedConv2d,
    head: &Conv2d,
    input: &Tensor<4>,
) -> Option<Tensor<4>> {
    let [out, per_group, kh, kw] = head.weight.dims();
    let pointwise = out == 1
        && head.groups == 1
        && [kh, kw] == [1, 1]
        && head.stride == [1, 1]
        && head.dilation == [1, 1]
        && unpadded(&head.padding);
    if !cpu_kernels() || !pointwise {
        return None;
    }
    let geometry = geometry(&layer.conv, input.dims())?;
    // `projects` asks the direct kernel's rule, as `Kernel::choose` would first.
    if per_group != geometry.out_channels || !direct::projects(&geometry) {
        return None;
    }
    let [x, weight] = operands(input, &layer.conv.weight)?;
    let epilogue = gated_epilogue(layer)?;
    let head_weights = host(head.weight.val().reshape([per_group]))?;
    let bias = match &head.bias {
        Some(bias) => *host(bias.val())?.first()?,
        None => 0.0,
    };
    let projection = direct::Projection {
        weights: &head_weights,
        bias,
    };
    let out = direct::conv2d_projected(
        x.as_slice::<f32>()?,
        weight.as_slice::<f32>()?,
        &geometry,
        &epilogue,
        projection,
    );
    let [oh, ow] = geometry.output()?;
    Some(tensor(out, [geometry.batch, 1, oh, ow]))
}

/// `(y, pool(y))` for `y = act(gate · norm(conv(x)))` and `pool` a 2×2 max-pool at stride 2,
/// by the direct kernel, each pair of rows pooled as soon as it is written; `None` where the
/// kernel does not take the pair (the caller then runs them one after the other).
pub(crate) fn gated_conv2d_pooled(
    layer: &GatedConv2d,
    pool: &MaxPool2d,
    input: &Tensor<4>,
) -> Option<(Tensor<4>, Tensor<4>)> {
    let two_by_two = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && unpadded(&pool.padding);
    if !cpu_kernels() || !two_by_two {
        return None;
    }
    let geometry = geometry(&layer.conv, input.dims())?;
    // `pools` asks the direct kernel's rule, as `Kernel::choose` would first.
    if !direct::pools(&geometry) {
        return None;
    }
    let [x, weight] = operands(input, &layer.conv.weight)?;
    let epilogue = gated_epilogue(layer)?;
    let (y, pooled) = direct::conv2d_pooled(
        x.as_slice::<f32>()?,
        weight.as_slice::<f32>()?,
        &geometry,
        &epilogue,
    );
    let [oh, ow] = geometry.output()?;
    let [batch, o] = [geometry.batch, geometry.out_channels];
    Some((
        tensor(y, [batch, o, oh, ow]),
        tensor(pooled, [batch, o, oh / 2, ow / 2]),
    ))
}

/// A plain convolution by prunus's kernel — without autodiff in one pass with its bias, with
/// autodiff as a differentiable operation — or `None` where the kernel does not apply.
pub(crate) fn conv2d(conv: &Conv2d, input: &Tensor<4>) -> Option<Tensor<4>> {
    let epilogue = || epilogue(conv.bias.as_ref(), None, None, Activation::Identity);
    conv2d_then(conv, input, epilogue).or_else(|| conv2d_autodiff(conv, input))
}

/// A plain transposed convolution by prunus's kernel, as [`conv2d`].
pub(crate) fn conv_transpose2d(conv: &ConvTranspose2d, input: &Tensor<4>) -> Option<Tensor<4>> {
    let epilogue = || epilogue(conv.bias.as_ref(), None, None, Activation::Identity);
    conv_transpose2d_then(conv, input, epilogue).or_else(|| conv_transpose2d_autodiff(conv, input))
}

/// A max-pool by prunus's kernel, for tensors on Flex without autodiff, no padding, no
/// dilation and windows that fit whole; `None` otherwise (the caller then runs Burn's).
pub(crate) fn max_pool2d(layer: &MaxPool2d, input: &Tensor<4>) -> Option<Tensor<4>> {
    if !cpu_kernels() || !unpadded(&layer.padding) || layer.dilation != [1, 1] || layer.ceil_mode {
        return None;
    }
    let [batch, channels, h, w] = input.dims();
    let geometry = PoolGeometry {
        input: [h, w],
        kernel: layer.kernel_size,
        stride: layer.stride,
    };
    let [oh, ow] = geometry.output()?;
    let x = contiguous(flex(input)?);
    let out = pool::max_pool2d(x.as_slice::<f32>()?, batch * channels, &geometry);
    Some(tensor(out, [batch, channels, oh, ow]))
}

/// The convolution then the epilogue, for tensors on Flex without autodiff.
fn conv2d_then(
    conv: &Conv2d,
    input: &Tensor<4>,
    epilogue: impl FnOnce() -> Option<Epilogue>,
) -> Option<Tensor<4>> {
    if !cpu_kernels() {
        return None;
    }
    let geometry = geometry(conv, input.dims())?;
    let [x, weight] = operands(input, &conv.weight)?;
    let epilogue = epilogue()?;
    let out = kernel::conv2d(
        x.as_slice::<f32>()?,
        weight.as_slice::<f32>()?,
        &geometry,
        &epilogue,
    );
    let [oh, ow] = geometry.output()?;
    Some(tensor(out, [geometry.batch, geometry.out_channels, oh, ow]))
}

/// `act(gate · norm(z))` in training on Flex with autodiff as one operation of prunus's
/// ([`super::norm`]), the BatchNorm's running statistics updated as Burn's BatchNorm updates
/// them; `None` where it does not apply (no gate, a BatchNorm not in training mode, other
/// tensors).
pub(crate) fn norm_gate_act_autodiff(
    z: &Tensor<4>,
    norm: Option<&BatchNorm>,
    gate: Option<&Param<Tensor<1>>>,
    activation: Activation,
) -> Option<Tensor<4>> {
    if !cpu_kernels() {
        return None;
    }
    let gate = gate?.val();
    if norm.is_some_and(|n| !n.training.is_enabled()) {
        return None;
    }
    let values = norm.map(|n| (n.gamma.val(), n.beta.val(), n.epsilon as f32));
    let params = values
        .as_ref()
        .map(|(gamma, beta, eps)| super::autodiff::NormParams {
            gamma,
            beta,
            eps: *eps,
        });
    let relu = matches!(activation, Activation::Relu);
    let (y, stats) = super::autodiff::norm_gate_act(z, params, &gate, relu)?;
    if let (Some(norm), Some((mean, var))) = (norm, stats) {
        let device = z.device();
        let momentum = norm.momentum;
        let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Vec<f32>| {
            let n = batch.len();
            let batch = Tensor::<1>::from_data(TensorData::new(batch, [n]), &device);
            let running = state
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - momentum)
                .add(batch.mul_scalar(momentum));
            state.update(running.detach());
        };
        update(&norm.running_mean, mean);
        update(&norm.running_var, var);
    }
    Some(y)
}

/// `conv(x) + bias` of a gated convolution on Flex with autodiff by prunus's kernel and its
/// gradients, or `None` where they do not apply. Normalisation, gate and activation stay Burn's
/// (BatchNorm in training mode needs the batch's statistics).
pub(crate) fn conv2d_autodiff(conv: &Conv2d, input: &Tensor<4>) -> Option<Tensor<4>> {
    if !cpu_kernels() {
        return None;
    }
    let geometry = geometry(conv, input.dims())?;
    let z = super::autodiff::conv2d(input, &conv.weight.val(), geometry)?;
    Some(plus_bias(z, conv.bias.as_ref()))
}

/// `y = act(gate · norm(conv_transpose(x)))` of a gated transposed convolution by prunus's
/// kernel (the adjoint of a convolution: products per band and `col2im`), or `None` where it
/// does not apply.
pub(crate) fn gated_conv_transpose2d(
    layer: &GatedConvTranspose2d,
    input: &Tensor<4>,
) -> Option<Tensor<4>> {
    let epilogue = || {
        epilogue(
            layer.conv.bias.as_ref(),
            layer.norm.as_ref(),
            layer.gate.as_ref(),
            layer.activation,
        )
    };
    conv_transpose2d_then(&layer.conv, input, epilogue)
}

/// The transposed convolution then the epilogue, for tensors on Flex without autodiff.
fn conv_transpose2d_then(
    conv: &ConvTranspose2d,
    input: &Tensor<4>,
    epilogue: impl FnOnce() -> Option<Epilogue>,
) -> Option<Tensor<4>> {
    if !cpu_kernels() {
        return None;
    }
    let g = transpose_geometry(conv, input.dims())?;
    let [x, weight] = operands(input, &conv.weight)?;
    let epilogue = epilogue()?;
    let (x, weight) = (x.as_slice::<f32>()?, weight.as_slice::<f32>()?);
    let [h, w] = g.input;
    let out = if super::up::applies(&g) {
        super::up::conv_transpose_up(x, weight, &g, &epilogue)
    } else {
        let mut out = super::backward::conv2d_input_grad(weight, x, &g);
        for (i, plane) in out.chunks_exact_mut(h * w).enumerate() {
            epilogue.apply(i % g.in_channels, plane);
        }
        out
    };
    Some(tensor(out, [g.batch, g.in_channels, h, w]))
}

/// `conv_transpose(x) + bias` on Flex with autodiff by prunus's kernel and its gradients, or
/// `None` where they do not apply.
pub(crate) fn conv_transpose2d_autodiff(
    conv: &ConvTranspose2d,
    input: &Tensor<4>,
) -> Option<Tensor<4>> {
    if !cpu_kernels() {
        return None;
    }
    let g = transpose_geometry(conv, input.dims())?;
    let z = super::autodiff::conv_transpose2d(input, &conv.weight.val(), g)?;
    Some(plus_bias(z, conv.bias.as_ref()))
}

/// The convolution whose adjoint a transposed convolution on an input of `dims` is: its input is
/// the transposed convolution's output and the other way round, with the same weight
/// (`[in, out, k, k]` of the transposed convolution is `[out, in, k, k]` of the convolution).
fn transpose_geometry(
    conv: &ConvTranspose2d,
    [batch, channels, h, w]: [usize; 4],
) -> Option<ConvGeometry> {
    let [c, out_per_group, kh, kw] = conv.weight.dims();
    if conv.groups != 1 || conv.dilation != [1, 1] || c != channels || batch == 0 {
        return None;
    }
    let [sh, sw] = conv.stride;
    let [ph, pw] = conv.padding;
    let [oph, opw] = conv.padding_out;
    if oph >= sh || opw >= sw || h == 0 || w == 0 {
        return None;
    }
    let side = |n: usize, s: usize, k: usize, p: usize, op: usize| {
        ((n - 1) * s + k + op).checked_sub(2 * p).filter(|&v| v > 0)
    };
    let g = ConvGeometry {
        batch,
        in_channels: out_per_group,
        input: [side(h, sh, kh, ph, oph)?, side(w, sw, kw, pw, opw)?],
        out_channels: c,
        kernel: [kh, kw],
        stride: conv.stride,
        padding: [ph, pw, ph, pw],
    };
    (g.output() == Some([h, w])).then_some(g)
}

/// `z + bias` per channel (Burn's operations, so that autodiff sees the bias).
fn plus_bias(z: Tensor<4>, bias: Option<&Param<Tensor<1>>>) -> Tensor<4> {
    match bias {
        Some(bias) => {
            let [channels] = bias.dims();
            z + bias.val().reshape([1, channels, 1, 1])
        }
        None => z,
    }
}

/// A Flex tensor (without autodiff) of `shape` holding `values`.
fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_primitive::<Flex>(flex_tensor(values, shape))
}

/// The Flex primitive of `shape` holding `values`.
pub(super) fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A layer's input and weight as contiguous Flex primitives, `None` off Flex or with autodiff.
fn operands(input: &Tensor<4>, weight: &Param<Tensor<4>>) -> Option<[FlexTensor; 2]> {
    Some([contiguous(flex(input)?), contiguous(flex(&weight.val())?)])
}

/// Whether a layer's padding is none at all.
fn unpadded(padding: &PaddingConfig2d) -> bool {
    matches!(
        padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    )
}

/// `tensor`, copied into one contiguous `f32` run at offset 0 unless it already is one (so that
/// `as_slice::<f32>()` gives its values; other dtypes stay `None` there).
pub(super) fn contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.is_contiguous() && tensor.as_slice::<f32>().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

/// The convolution's geometry on an input of `dims`, `None` for what the kernel does not do.
fn geometry(conv: &Conv2d, [batch, channels, h, w]: [usize; 4]) -> Option<ConvGeometry> {
    let [out_channels, in_per_group, kh, kw] = conv.weight.dims();
    if conv.groups != 1 || conv.dilation != [1, 1] || in_per_group != channels {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Same => return None,
    };
    let geometry = ConvGeometry {
        batch,
        in_channels: channels,
        input: [h, w],
        out_channels,
        kernel: [kh, kw],
        stride: conv.stride,
        padding,
    };
    // An empty output is Burn's to report.
    (geometry.output().is_some() && batch > 0).then_some(geometry)
}

/// Bias, BatchNorm (running statistics), gate and activation as one per-channel map:
/// `act(g · (s · (z + bias − mean) + β))` with `s = γ / √(var + ε)`.
fn epilogue(
    bias: Option<&Param<Tensor<1>>>,
    norm: Option<&BatchNorm>,
    gate: Option<&Param<Tensor<1>>>,
    activation: Activation,
) -> Option<Epilogue> {
    let bias = match bias {
        Some(b) => Some(host(b.val())?),
        None => None,
    };
    let gate = match gate {
        Some(g) => Some(host(g.val())?),
        None => None,
    };
    let (mut scale, mut shift) = match norm {
        Some(norm) => {
            let (scale, shift) = norm_affine(norm, bias)?;
            (Some(scale), Some(shift))
        }
        None => (None, bias),
    };
    if let Some(gate) = gate {
        let times = |v: Option<Vec<f32>>| {
            Some(match v {
                Some(v) => v.iter().zip(&gate).map(|(a, g)| a * g).collect(),
                None => gate.clone(),
            })
        };
        shift = shift.map(|s| s.iter().zip(&gate).map(|(a, g)| a * g).collect());
        scale = times(scale);
    }
    let relu = match activation {
        Activation::Relu => true,
        Activation::Identity => false,
    };
    Some(Epilogue { scale, shift, relu })
}

/// BatchNorm in inference mode after a conv with `bias`, as `(scale, shift)` of the conv's
/// raw output.
fn norm_affine(norm: &BatchNorm, bias: Option<Vec<f32>>) -> Option<(Vec<f32>, Vec<f32>)> {
    let gamma = host(norm.gamma.val())?;
    let beta = host(norm.beta.val())?;
    let mean = host(norm.running_mean.value())?;
    let var = host(norm.running_var.value())?;
    let eps = norm.epsilon as f32;
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift = (0..scale.len())
        .map(|c| {
            let b = bias.as_ref().map_or(0.0, |b| b[c]);
            (b - mean[c]) * scale[c] + beta[c]
        })
        .collect();
    Some((scale, shift))
}
