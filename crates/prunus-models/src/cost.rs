//! Exact parameter and multiply-add counts of a network at a given input size.
//!
//! The count is made from a network's configuration (its widths), so the cost of a pruned
//! network is known before it is built. Conventions:
//! - **multiply-adds (MACs)** count the products of the convolutions and transposed
//!   convolutions: `out_h · out_w · out_c · in_c · k²` for a convolution and
//!   `in_h · in_w · in_c · out_c · k²` for a transposed convolution (every input pixel is
//!   spread over a `k × k` window). Bias additions, BatchNorm, gates, activations, pooling and
//!   concatenation are not counted: they are linear in the activations, not in the weights, and
//!   vanish in the total.
//! - **FLOPs = 2 × MACs**, the convention of the pruning literature (one multiply plus one add).
//! - **parameters** are the network's own: conv weights and biases, BatchNorm `γ` and `β`
//!   (running statistics are buffers, not parameters). The gates, one per prunable filter, are
//!   counted separately in [`CostReport::gates`]; a network whose gates are folded into its
//!   weights has none.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use prunus_layers::LayerKind;

/// The cost of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCost {
    /// The layer's module path, e.g. `"encoder.0.conv1"`.
    pub name: String,
    /// Convolution or transposed convolution.
    pub kind: LayerKind,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Side of the square kernel.
    pub kernel_size: usize,
    /// Input `[height, width]`.
    pub input_size: [usize; 2],
    /// Output `[height, width]`.
    pub output_size: [usize; 2],
    /// Weights, bias and BatchNorm `γ`, `β`.
    pub params: u64,
    /// Gates (0 for an ungated layer).
    pub gates: u64,
    /// Multiply-adds for one input image.
    pub macs: u64,
}

/// The cost of a whole network at one input size, layer by layer.
///
/// # Example
/// ```
/// use prunus_models::{Costed, UNetConfig};
///
/// let config = UNetConfig::standard(3, 1, 16, 4);
/// let cost = config.cost([128, 128]).unwrap();
/// assert_eq!(cost.params(), 1_942_577);
/// assert_eq!(cost.macs(), 758_120_448);
/// assert_eq!(cost.flops(), 2 * cost.macs());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostReport {
    /// The input `[height, width]` the cost was counted at.
    pub input_size: [usize; 2],
    /// Every convolution and transposed convolution, in forward order.
    pub layers: Vec<LayerCost>,
}

impl CostReport {
    /// Parameters of the network, gates excluded.
    pub fn params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Gates of the network.
    pub fn gates(&self) -> u64 {
        self.layers.iter().map(|l| l.gates).sum()
    }

    /// Multiply-adds for one input image.
    pub fn macs(&self) -> u64 {
        self.layers
            .iter()
            .fold(0, |sum, l| sum.saturating_add(l.macs))
    }

    /// Floating-point operations for one input image, `2 × macs()`.
    pub fn flops(&self) -> u64 {
        self.macs().saturating_mul(2)
    }

    /// Values in the outputs of every counted layer for one input image: what a forward pass
    /// produces, and (near enough) what a backward pass keeps.
    pub fn activations(&self) -> u64 {
        self.layers.iter().fold(0, |sum, l| {
            let [h, w] = l.output_size.map(|s| s as u64);
            sum.saturating_add(h.saturating_mul(w).saturating_mul(l.out_channels as u64))
        })
    }

    /// The layer with module path `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerCost> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// The widest layer (channels) a configuration may declare: 65,536, far beyond any real CNN
/// (VGG's widest has 4,096), and small enough that a layer's counts never overflow.
pub const MAX_WIDTH: usize = 1 << 16;

/// A network, or its configuration, whose cost can be counted.
pub trait Costed {
    /// The cost of one forward pass on an input of `[height, width]`.
    ///
    /// # Errors
    /// When the network cannot take that input size.
    fn cost(&self, input_size: [usize; 2]) -> Result<CostReport, crate::ModelError>;
}

/// How a layer is shaped, for counting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerShape {
    pub kind: LayerKind,
    pub channels: [usize; 2],
    pub kernel_size: usize,
    pub stride: usize,
    pub padding: usize,
    pub padding_out: usize,
    pub bias: bool,
    pub batch_norm: bool,
    pub gated: bool,
}

impl LayerShape {
    /// A gated 3×3, pad 1 convolution.
    pub(crate) fn conv3(channels: [usize; 2], bias: bool, batch_norm: bool) -> Self {
        Self {
            kind: LayerKind::Conv,
            channels,
            kernel_size: 3,
            stride: 1,
            padding: 1,
            padding_out: 0,
            bias,
            batch_norm,
            gated: true,
        }
    }

    /// The ungated 1×1 output convolution with bias.
    pub(crate) fn head(channels: [usize; 2]) -> Self {
        Self {
            kernel_size: 1,
            padding: 0,
            gated: false,
            ..Self::conv3(channels, true, false)
        }
    }

    /// A gated transposed convolution with bias and no BatchNorm.
    pub(crate) fn up(channels: [usize; 2], kernel_size: usize, padding: usize, out: usize) -> Self {
        Self {
            kind: LayerKind::ConvTranspose,
            channels,
            kernel_size,
            stride: 2,
            padding,
            padding_out: out,
            bias: true,
            batch_norm: false,
            gated: true,
        }
    }

    fn output_size(&self, [h, w]: [usize; 2]) -> [usize; 2] {
        let (k, s, p) = (self.kernel_size, self.stride, self.padding);
        let side = |x: usize| match self.kind {
            LayerKind::Conv | LayerKind::Linear => (x + 2 * p - k) / s + 1,
            LayerKind::ConvTranspose => (x - 1) * s + k + self.padding_out - 2 * p,
        };
        [side(h), side(w)]
    }
}

/// Collects layer costs in forward order.
#[derive(Debug, Default)]
pub(crate) struct CostBuilder {
    layers: Vec<LayerCost>,
}

impl CostBuilder {
    /// Counts a layer applied to an input of `input_size`; returns its output size.
    pub(crate) fn add(
        &mut self,
        name: impl Into<String>,
        shape: LayerShape,
        input_size: [usize; 2],
    ) -> [usize; 2] {
        let [cin, cout] = shape.channels.map(|c| c as u64);
        let k2 = (shape.kernel_size * shape.kernel_size) as u64;
        let output_size = shape.output_size(input_size);
        // Saturating: an absurd input size gives u64::MAX, which any budget check refuses.
        let pixels = |[h, w]: [usize; 2]| (h as u64).saturating_mul(w as u64);
        let weights = cin * cout * k2; // ≤ 2^16 · 2^16 · k², widths being validated
        let macs = match shape.kind {
            LayerKind::Conv | LayerKind::Linear => pixels(output_size).saturating_mul(weights),
            LayerKind::ConvTranspose => pixels(input_size).saturating_mul(weights),
        };
        let params = weights
            + if shape.bias { cout } else { 0 }
            + if shape.batch_norm { 2 * cout } else { 0 };
        self.layers.push(LayerCost {
            name: name.into(),
            kind: shape.kind,
            in_channels: shape.channels[0],
            out_channels: shape.channels[1],
            kernel_size: shape.kernel_size,
            input_size,
            output_size,
            params,
            gates: if shape.gated { cout } else { 0 },
            macs,
        });
        output_size
    }

    pub(crate) fn finish(self, input_size: [usize; 2]) -> CostReport {
        CostReport {
            input_size,
            layers: self.layers,
        }
    }
}

/// Maps every weight's id to the module path of the layer that owns it.
#[derive(Default)]
struct LayerNames {
    path: Vec<(String, String)>,
    names: BTreeMap<ParamId, String>,
}

impl ModuleVisitor for LayerNames {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // `…layer.weight`, or `…gated.conv.weight` inside a gated layer. Each entry holds a
        // field's name and the type of the struct that has the field.
        let mut end = self.path.len().saturating_sub(1);
        if end >= 1
            && self.path[end - 1].0 == "conv"
            && prunus_layers::is_gated_container(&self.path[end - 1].1)
        {
            end -= 1;
        }
        let name: Vec<&str> = self.path[..end].iter().map(|(n, _)| n.as_str()).collect();
        self.names.entry(param.id).or_insert_with(|| name.join("."));
    }
}

/// The exact cost of one forward pass of `model`, measured: `forward(model, input)` runs once
/// while every gated layer (and every plain layer run through
/// [`prunus_layers::counted`]) notes its shape ([`prunus_layers::record`]). Works for any
/// network, whatever its topology; a layer run twice counts its multiply-adds twice and its
/// parameters once. Figures are per input example (`input`'s batch is divided out).
///
/// Plain Burn layers run with their own `forward` are not seen, so not counted.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_models::{Costed, UNetConfig, measure_cost};
///
/// let device = Device::flex();
/// let config = UNetConfig::standard(3, 1, 4, 2);
/// let unet = config.init(&device).unwrap();
/// let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
/// let measured = measure_cost(&unet, x, |net, x| net.forward(x));
/// assert_eq!(measured.macs(), config.cost([32, 32]).unwrap().macs());
/// ```
pub fn measure_cost<M: Module, O>(
    model: &M,
    input: Tensor<4>,
    forward: impl FnOnce(&M, Tensor<4>) -> O,
) -> CostReport {
    let [batch, _, h, w] = input.dims();
    let (_, runs) = prunus_layers::record(|| forward(model, input));
    let mut names = LayerNames::default();
    model.visit(&mut names);
    let mut seen = BTreeSet::new();
    let layers = runs
        .into_iter()
        .map(|run| {
            let first = seen.insert(run.weight);
            LayerCost {
                name: names
                    .names
                    .get(&run.weight)
                    .cloned()
                    .unwrap_or_else(|| "?".into()),
                kind: run.kind,
                in_channels: run.channels[0],
                out_channels: run.channels[1],
                kernel_size: run.kernel_size,
                input_size: run.input_size,
                output_size: run.output_size,
                params: if first { run.params } else { 0 },
                gates: if first { run.gates } else { 0 },
                macs: run.macs / batch.max(1) as u64,
            }
        })
        .collect();
    CostReport {
        input_size: [h, w],
        layers,
    }
}
