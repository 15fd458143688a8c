//! The kernel as a differentiable operation on Flex with autodiff: prunus's forward pass and
//! [`super::backward`]'s gradients, registered in Burn's graph like any of its operations.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use super::backward::{conv2d_input_grad, conv2d_weight_grad};
use super::flex::{contiguous, flex_tensor};
use super::kernel::{self, ConvGeometry, Epilogue};
use super::norm::{Dims, Grads, Norm};
use burn::backend::autodiff::ops::NodeGuard;

/// A 2-d convolution without bias whose backward pass is [`super::backward`]'s.
#[derive(Debug)]
struct KernelConv2d;

/// What the backward pass needs: the input and the weight (contiguous) and the geometry.
type State = (FlexTensor, FlexTensor, ConvGeometry);

/// `out` as the output of `op` on the inputs `nodes`, recorded with `state` for the backward
/// pass when any input is tracked.
fn record<O, const N: usize>(
    op: O,
    nodes: [NodeGuard; N],
    state: O::State,
    out: FlexTensor,
) -> Tensor<4>
where
    O: Backward<Flex, N>,
{
    let tensor = match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive::<Autodiff<Flex>>(tensor)
}

fn slice(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("contiguous f32 tensor")
}

impl Backward<Flex, 2> for KernelConv2d {
    type State = State;

    fn backward(self, ops: Ops<State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dz = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, g) = ops.state;
        if let Some(node) = node_x {
            let dx = conv2d_input_grad(slice(&weight), slice(&dz), &g);
            let [h, w] = g.input;
            let shape = [g.batch, g.in_channels, h, w];
            grads.register::<Flex>(node.id, flex_tensor(dx, shape));
        }
        if let Some(node) = node_weight {
            let dw = conv2d_weight_grad(slice(&x), slice(&dz), &g);
            let shape = [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]];
            grads.register::<Flex>(node.id, flex_tensor(dw, shape));
        }
    }
}

/// The transposed convolution whose forward pass is the input gradient of the convolution `g`
/// (with the same weight), so that its gradients are that convolution's forward pass and its
/// weight gradient with input and output exchanged.
#[derive(Debug)]
struct KernelConvTranspose2d;

impl Backward<Flex, 2> for KernelConvTranspose2d {
    type State = State;

    fn backward(self, ops: Ops<State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, g) = ops.state;
        if let Some(node) = node_x {
            let dx = kernel::conv2d(slice(&dy), slice(&weight), &g, &Epilogue::default());
            let [oh, ow] = g.output().expect("checked at the forward pass");
            let shape = [g.batch, g.out_channels, oh, ow];
            grads.register::<Flex>(node.id, flex_tensor(dx, shape));
        }
        if let Some(node) = node_weight {
            let dw = conv2d_weight_grad(slice(&dy), slice(&x), &g);
            let shape = [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]];
            grads.register::<Flex>(node.id, flex_tensor(dw, shape));
        }
    }
}

/// The primitives and graph nodes of `x` and `weight` if both are on Flex with autodiff.
fn parts(x: &Tensor<4>, weight: &Tensor<4>) -> Option<[(FlexTensor, NodeGuard); 2]> {
    let x = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let weight = weight.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let (x, x_node) = x.into_parts();
    let (weight, weight_node) = weight.into_parts();
    let (x, weight) = (contiguous(x), contiguous(weight));
    // Other dtypes are Burn's.
    x.as_slice::<f32>()?;
    weight.as_slice::<f32>()?;
    Some([(x, x_node), (weight, weight_node)])
}

/// `conv_transpose(x, weight)` (no bias) for tensors on Flex with autodiff, where `g` is the
/// convolution it is the adjoint of; `None` for other tensors.
pub(crate) fn conv_transpose2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    g: ConvGeometry,
) -> Option<Tensor<4>> {
    let [(x, x_node), (weight, weight_node)] = parts(x, weight)?;
    let out = conv2d_input_grad(slice(&weight), slice(&x), &g);
    let [h, w] = g.input;
    let out = flex_tensor(out, [g.batch, g.in_channels, h, w]);
    Some(record(
        KernelConvTranspose2d,
        [x_node, weight_node],
        (x, weight, g),
        out,
    ))
}

/// `conv(x, weight)` (no bias) for tensors on Flex with autodiff, or `None` for any other.
pub(crate) fn conv2d(x: &Tensor<4>, weight: &Tensor<4>, g: ConvGeometry) -> Option<Tensor<4>> {
    let [(x, x_node), (weight, weight_node)] = parts(x, weight)?;
    let out = kernel::conv2d(slice(&x), slice(&weight), &g, &Epilogue::default());
    let [oh, ow] = g.output()?;
    let out = flex_tensor(out, [g.batch, g.out_channels, oh, ow]);
    Some(record(
        KernelConv2d,
        [x_node, weight_node],
        (x, weight, g),
        out,
    ))
}

/// Training-mode BatchNorm (optional), gate and activation as one operation
/// ([`super::norm`]).
#[derive(Debug)]
struct NormGateAct;

/// The op's input and output and everything per channel the backward pass needs.
#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    y: FlexTensor,
    shape: [usize; 4],
    norm: Option<Norm>,
    gate: Vec<f32>,
    relu: bool,
}

fn vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

/// `[batch, channels, pixels]` of an NCHW shape.
fn planes([b, c, h, w]: [usize; 4]) -> Dims {
    [b, c, h * w]
}

impl NormState {
    fn backward(&self, dy: FlexTensor) -> Grads {
        let dy = contiguous(dy);
        let (x, y) = (slice(&self.x), slice(&self.y));
        let g = &self.gate;
        super::norm::backward(
            x,
            y,
            slice(&dy),
            planes(self.shape),
            self.norm.as_ref(),
            g,
            self.relu,
        )
    }
}

impl Backward<Flex, 4> for NormGateAct {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let result = ops.state.backward(grads.consume::<Flex>(&ops.node));
        let [x, gamma, beta, gate] = ops.parents;
        if let Some(node) = x {
            grads.register::<Flex>(node.id, flex_tensor(result.dx, ops.state.shape));
        }
        for (node, values) in [
            (gamma, result.dgamma),
            (beta, result.dbeta),
            (gate, result.dgate),
        ] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, vector(values));
            }
        }
    }
}

impl Backward<Flex, 2> for NormGateAct {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let result = ops.state.backward(grads.consume::<Flex>(&ops.node));
        let [x, gate] = ops.parents;
        if let Some(node) = x {
            grads.register::<Flex>(node.id, flex_tensor(result.dx, ops.state.shape));
        }
        if let Some(node) = gate {
            grads.register::<Flex>(node.id, vector(result.dgate));
        }
    }
}

/// A batch's mean and biased variance per channel.
pub(crate) type Statistics = (Vec<f32>, Vec<f32>);

/// The parameters of a BatchNorm in training mode, for [`norm_gate_act`].
pub(crate) struct NormParams<'a> {
    pub gamma: &'a Tensor<1>,
    pub beta: &'a Tensor<1>,
    pub eps: f32,
}

/// `act(gate · batch_norm_train(z))` (or `act(gate · z)` without `norm`) for tensors on Flex
/// with autodiff, with the batch's mean and variance for the running statistics; `None` for
/// other tensors.
pub(crate) fn norm_gate_act(
    z: &Tensor<4>,
    norm: Option<NormParams<'_>>,
    gate: &Tensor<1>,
    relu: bool,
) -> Option<(Tensor<4>, Option<Statistics>)> {
    let ad = |t: &Tensor<1>| t.clone().try_into_primitive::<Autodiff<Flex>>().ok();
    let (x, x_node) = z
        .clone()
        .try_into_primitive::<Autodiff<Flex>>()
        .ok()?
        .into_parts();
    let (gate, gate_node) = ad(gate)?.into_parts();
    let x = contiguous(x);
    x.as_slice::<f32>()?;
    let [b, c, h, w] = z.dims();
    if b * c * h * w == 0 {
        return None;
    }
    let dims = planes([b, c, h, w]);
    let gate_values = contiguous(gate).as_slice::<f32>()?.to_vec();
    let params = match &norm {
        Some(n) => {
            let (gamma, gamma_node) = ad(n.gamma)?.into_parts();
            let (beta, beta_node) = ad(n.beta)?.into_parts();
            let (mean, var) = super::norm::statistics(slice(&x), dims);
            let state = Norm {
                gamma: contiguous(gamma).as_slice::<f32>()?.to_vec(),
                beta: contiguous(beta).as_slice::<f32>()?.to_vec(),
                mean,
                var,
                eps: n.eps,
            };
            Some((state, gamma_node, beta_node))
        }
        None => None,
    };
    let norm_state = params.as_ref().map(|(n, _, _)| n.clone());
    let y = super::norm::forward(slice(&x), dims, norm_state.as_ref(), &gate_values, relu);
    let y = flex_tensor(y, [b, c, h, w]);
    let stats = norm_state.as_ref().map(|n| (n.mean.clone(), n.var.clone()));
    let state = NormState {
        x,
        y: y.clone(),
        shape: [b, c, h, w],
        norm: norm_state,
        gate: gate_values,
        relu,
    };
    let tensor = match params {
        Some((_, gamma_node, beta_node)) => {
            let nodes = [x_node, gamma_node, beta_node, gate_node];
            record::<_, 4>(NormGateAct, nodes, state, y)
        }
        None => record::<_, 2>(NormGateAct, [x_node, gate_node], state, y),
    };
    Some((tensor, stats))
}
