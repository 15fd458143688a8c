//! U-Net with BatchNorm and importance-gated convolutions.
//!
//! Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image
//! Segmentation", MICCAI 2015, in its common BatchNorm variant: every DoubleConv is
//! `(Conv3×3 pad 1, no bias → BatchNorm → ReLU) × 2`; an encoder level is
//! `MaxPool2 → DoubleConv`; a decoder level is `ConvTranspose2d(k2, s2) → concat [skip, up] →
//! DoubleConv`; a 1×1 convolution with bias gives the class logits.
//!
//! Every convolution and transposed convolution except the output one is gated. All widths
//! live in [`UNetConfig`], so a pruned U-Net is a U-Net with a config of smaller widths.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};
use prunus_layers::{
    Activation, ChannelGroup, GateInit, GatedConv2d, GatedConv2dConfig, GatedConvTranspose2d,
    GatedConvTranspose2dConfig, Layers, Prunable, consumer,
};

use crate::cost::{CostBuilder, CostReport, Costed, LayerShape};
use crate::error::{ModelError, check_widths, invalid_config};
use crate::input::check_input;

const MODEL: &str = "U-Net";

/// Configuration of a [`UNet`]: every width of every layer.
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Channels of the input image.
    pub in_channels: usize,
    /// Output channels (classes; 1 for binary segmentation with logits).
    pub num_classes: usize,
    /// Widths `[conv1, conv2]` of each encoder level's DoubleConv, from the top (full
    /// resolution) to the bottleneck: `depth + 1` entries.
    pub encoder: Vec<[usize; 2]>,
    /// Widths `[up, conv1, conv2]` of each decoder level, from the bottom up: `depth` entries.
    /// `up` is the transposed convolution's output; `conv1` takes `[skip, up]` concatenated.
    pub decoder: Vec<[usize; 3]>,
    /// How the gates start.
    #[config(default = "GateInit::Ones")]
    pub gate_init: GateInit,
}

/// The most down-samplings a U-Net may have: inputs are multiples of `2^depth` pixels, and
/// 2^16 = 65,536 is already beyond any image a network sees whole.
pub const MAX_DEPTH: usize = 16;

impl UNetConfig {
    /// The standard U-Net: level `i` has `base · 2^i` channels, `depth` down-samplings.
    /// `standard(3, 1, 64, 4)` is the network of the paper.
    pub fn standard(in_channels: usize, num_classes: usize, base: usize, depth: usize) -> Self {
        // Saturating: an absurd depth or base becomes a width `validate` refuses, not an overflow.
        let width = |level: usize| {
            u32::try_from(level)
                .ok()
                .and_then(|l| 1usize.checked_shl(l))
                .map_or(usize::MAX, |scale| base.saturating_mul(scale))
        };
        let encoder = (0..=depth).map(|l| [width(l); 2]).collect();
        let decoder = (0..depth).rev().map(|l| [width(l); 3]).collect();
        Self::new(in_channels, num_classes, encoder, decoder)
    }

    /// Number of down-samplings.
    pub fn depth(&self) -> usize {
        self.decoder.len()
    }

    /// Checks that the widths describe a network.
    ///
    /// # Errors
    /// When a width is 0 or the encoder and decoder depths disagree.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.in_channels == 0 || self.num_classes == 0 {
            return Err(invalid_config(
                MODEL,
                "in_channels and num_classes must be ≥ 1",
            ));
        }
        if self.encoder.len() != self.decoder.len() + 1 {
            return Err(invalid_config(
                MODEL,
                format!(
                    "{} encoder levels need {} decoder levels, got {}",
                    self.encoder.len(),
                    self.encoder.len().saturating_sub(1),
                    self.decoder.len()
                ),
            ));
        }
        let widths = self
            .encoder
            .iter()
            .flatten()
            .chain(self.decoder.iter().flatten());
        if widths.clone().any(|&w| w == 0) {
            return Err(invalid_config(MODEL, "every width must be ≥ 1"));
        }
        if self.depth() > MAX_DEPTH {
            return Err(invalid_config(
                MODEL,
                format!("depth {} is above the limit of {MAX_DEPTH}", self.depth()),
            ));
        }
        check_widths(MODEL, widths.chain([&self.in_channels, &self.num_classes]))
    }

    /// The shape of every counted layer, with its module path, in forward order, and the
    /// down-sampling of the layer's input (`2^level`).
    fn layers(&self) -> Vec<(String, LayerShape, usize)> {
        let mut layers = Vec::new();
        let mut channels = self.in_channels;
        for (level, [a, b]) in self.encoder.iter().copied().enumerate() {
            let scale = 1 << level;
            layers.push((
                format!("encoder.{level}.conv1"),
                conv_bn([channels, a]),
                scale,
            ));
            layers.push((format!("encoder.{level}.conv2"), conv_bn([a, b]), scale));
            channels = b;
        }
        for (j, [up, a, b]) in self.decoder.iter().copied().enumerate() {
            let level = self.depth() - 1 - j;
            let skip = self.encoder[level][1];
            let shape = LayerShape::up([channels, up], 2, 0, 0);
            layers.push((format!("decoder.{j}.up"), shape, 2 << level));
            layers.push((
                format!("decoder.{j}.conv1"),
                conv_bn([skip + up, a]),
                1 << level,
            ));
            layers.push((format!("decoder.{j}.conv2"), conv_bn([a, b]), 1 << level));
            channels = b;
        }
        layers.push((
            "head".into(),
            LayerShape::head([channels, self.num_classes]),
            1,
        ));
        layers
    }

    /// Builds the network on `device`.
    ///
    /// # Errors
    /// When [`UNetConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> Result<UNet, ModelError> {
        self.validate()?;
        let conv = |[i, o]: [usize; 2]| {
            GatedConv2dConfig::new([i, o])
                .with_bias(false)
                .with_batch_norm(true)
                .with_gate_init(self.gate_init.clone())
                .init(device)
        };
        let mut channels = self.in_channels;
        let mut encoder = Vec::with_capacity(self.encoder.len());
        for &[a, b] in &self.encoder {
            encoder.push(DoubleConv {
                conv1: conv([channels, a]),
                conv2: conv([a, b]),
            });
            channels = b;
        }
        let mut decoder = Vec::with_capacity(self.decoder.len());
        for (j, &[up, a, b]) in self.decoder.iter().enumerate() {
            let skip = self.encoder[self.depth() - 1 - j][1];
            decoder.push(UpBlock {
                up: GatedConvTranspose2dConfig::new([channels, up])
                    .with_activation(Activation::Identity)
                    .with_gate_init(self.gate_init.clone())
                    .init(device),
                conv1: conv([skip + up, a]),
                conv2: conv([a, b]),
            });
            channels = b;
        }
        Ok(UNet {
            encoder,
            decoder,
            head: Conv2dConfig::new([channels, self.num_classes], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        })
    }
}

fn conv_bn(channels: [usize; 2]) -> LayerShape {
    LayerShape::conv3(channels, false, true)
}

impl Costed for UNetConfig {
    fn cost(&self, [height, width]: [usize; 2]) -> Result<CostReport, ModelError> {
        self.validate()?;
        check_input(
            MODEL,
            [1, self.in_channels, height, width],
            self.in_channels,
            self.depth(),
        )?;
        let mut builder = CostBuilder::default();
        for (name, shape, scale) in self.layers() {
            builder.add(name, shape, [height / scale, width / scale]);
        }
        Ok(builder.finish([height, width]))
    }
}

/// `(Conv3×3 → BatchNorm → gate → ReLU) × 2`.
#[derive(Module, Debug)]
pub struct DoubleConv {
    /// The first convolution.
    pub conv1: GatedConv2d,
    /// The second convolution.
    pub conv2: GatedConv2d,
}

impl DoubleConv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv2.forward(self.conv1.forward(x))
    }
}

/// A decoder level: up-sample, concatenate `[skip, up]`, DoubleConv.
#[derive(Module, Debug)]
pub struct UpBlock {
    /// The 2×2, stride 2 transposed convolution (gated, no activation).
    pub up: GatedConvTranspose2d,
    /// The first convolution, on `[skip, up]`.
    pub conv1: GatedConv2d,
    /// The second convolution.
    pub conv2: GatedConv2d,
}

/// A U-Net whose convolutions carry importance gates. Build it with [`UNetConfig::init`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_models::UNetConfig;
///
/// let device = Device::flex();
/// let unet = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
/// let x = Tensor::<4>::random([1, 3, 16, 16], Distribution::Default, &device);
/// assert_eq!(unet.forward(x).dims(), [1, 1, 16, 16]);
/// // 18 is not a multiple of 2^depth = 4.
/// let bad = Tensor::<4>::random([1, 3, 18, 16], Distribution::Default, &device);
/// assert!(unet.try_forward(bad).is_err());
/// ```
#[derive(Module, Debug)]
pub struct UNet {
    /// DoubleConvs from the top level to the bottleneck; level `i ≥ 1` is preceded by a
    /// max-pool.
    pub encoder: Vec<DoubleConv>,
    /// Decoder levels from the bottom up.
    pub decoder: Vec<UpBlock>,
    /// The ungated 1×1 output convolution.
    pub head: Conv2d,
    /// 2×2 max-pool, stride 2.
    pub pool: MaxPool2d,
}

impl UNet {
    /// The configuration this network has now, its widths read from its weights.
    pub fn config(&self) -> UNetConfig {
        let in_channels = self.encoder[0].conv1.channels()[0];
        let [_, num_classes] = conv_channels(&self.head);
        let encoder = self
            .encoder
            .iter()
            .map(|d| [d.conv1.channels()[1], d.conv2.channels()[1]])
            .collect();
        let decoder = self
            .decoder
            .iter()
            .map(|u| {
                [
                    u.up.channels()[1],
                    u.conv1.channels()[1],
                    u.conv2.channels()[1],
                ]
            })
            .collect();
        UNetConfig::new(in_channels, num_classes, encoder, decoder)
    }

    /// Checks that an input of `shape` fits the network.
    ///
    /// # Errors
    /// When the channels differ from the network's, or height or width is not a positive
    /// multiple of `2^depth`.
    pub fn check_input(&self, shape: [usize; 4]) -> Result<(), ModelError> {
        let in_channels = self.encoder[0].conv1.channels()[0];
        check_input(MODEL, shape, in_channels, self.decoder.len())
    }

    /// Class logits for every pixel, or an error for an input the network cannot take.
    ///
    /// # Shapes
    /// - `input`: `[batch, in_channels, height, width]`, height and width multiples of
    ///   `2^depth`
    /// - output: `[batch, num_classes, height, width]`
    pub fn try_forward(&self, input: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        self.check_input(input.dims())?;
        Ok(self.forward_unchecked(input))
    }

    /// Class logits for every pixel.
    ///
    /// # Shapes
    /// As [`UNet::try_forward`].
    ///
    /// # Panics
    /// With [`UNet::check_input`]'s message when the input does not fit.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        self.try_forward(input).unwrap_or_else(|e| panic!("{e}"))
    }

    fn forward_unchecked(&self, input: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.encoder.len());
        let mut x = input;
        let bottom = self.encoder.len().saturating_sub(1);
        for (level, block) in self.encoder.iter().enumerate() {
            if level == bottom {
                x = block.forward(x);
                break;
            }
            // The skip, and the next level's input pooled from it as its rows are written
            // where the CPU kernel takes the layer.
            let (skip, pooled) = block
                .conv2
                .forward_pooled(&self.pool, block.conv1.forward(x));
            skips.push(skip);
            x = pooled;
        }
        let Some((last, decoder)) = self.decoder.split_last() else {
            return prunus_layers::counted::conv2d(&self.head, x);
        };
        let mut level = |block: &UpBlock, x| {
            let up = block.up.forward(x);
            let skip = skips.pop().expect("one skip per decoder level");
            block.conv1.forward_cat(vec![skip, up])
        };
        for block in decoder {
            x = block.conv2.forward(level(block, x));
        }
        // The last convolution and the head in one pass where the CPU kernel takes them.
        last.conv2.forward_then(&self.head, level(last, x))
    }
}

impl Costed for UNet {
    fn cost(&self, input_size: [usize; 2]) -> Result<CostReport, ModelError> {
        self.config().cost(input_size)
    }
}

/// `[in, out]` of a plain convolution.
pub(crate) fn conv_channels(conv: &Conv2d) -> [usize; 2] {
    let [out, in_per_group, _, _] = conv.weight.dims();
    [in_per_group * conv.groups, out]
}
/// U-Net groups, named by producer path:
/// - `encoder.{l}.conv1` → `encoder.{l}.conv2`;
/// - `encoder.{l}.conv2` → the next level's `conv1` and, as the skip, the first part of
///   `decoder.{depth-1-l}.conv1` (offset 0: U-Net concatenates `[skip, up]`); the bottleneck's
///   feeds `decoder.0.up`;
/// - `decoder.{j}.up` → `decoder.{j}.conv1` at offset = the skip's width;
/// - `decoder.{j}.conv1` → `decoder.{j}.conv2` → the next level's `up` (or `head`).
impl Prunable for UNet {
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let depth = self.decoder.len();
        let mut groups = Vec::new();
        for (l, block) in self.encoder.iter().enumerate() {
            groups.push(ChannelGroup::new(
                format!("encoder.{l}.conv1"),
                block.conv1.channels()[1],
                vec![consumer(format!("encoder.{l}.conv2"), 0)],
            ));
            let consumers = if l < depth {
                vec![
                    consumer(format!("encoder.{}.conv1", l + 1), 0),
                    consumer(format!("decoder.{}.conv1", depth - 1 - l), 0),
                ]
            } else if depth > 0 {
                vec![consumer("decoder.0.up", 0)]
            } else {
                vec![consumer("head", 0)]
            };
            groups.push(ChannelGroup::new(
                format!("encoder.{l}.conv2"),
                block.conv2.channels()[1],
                consumers,
            ));
        }
        for (j, block) in self.decoder.iter().enumerate() {
            let skip = self.encoder[depth - 1 - j].conv2.channels()[1];
            groups.push(ChannelGroup::new(
                format!("decoder.{j}.up"),
                block.up.channels()[1],
                vec![consumer(format!("decoder.{j}.conv1"), skip)],
            ));
            groups.push(ChannelGroup::new(
                format!("decoder.{j}.conv1"),
                block.conv1.channels()[1],
                vec![consumer(format!("decoder.{j}.conv2"), 0)],
            ));
            let next = if j + 1 < depth {
                format!("decoder.{}.up", j + 1)
            } else {
                "head".into()
            };
            groups.push(ChannelGroup::new(
                format!("decoder.{j}.conv2"),
                block.conv2.channels()[1],
                vec![consumer(next, 0)],
            ));
        }
        groups
    }

    prunus_layers::layer_fields!(encoder, decoder, head);
}

impl Layers for DoubleConv {
    prunus_layers::layer_fields!(conv1, conv2);
}

impl Layers for UpBlock {
    prunus_layers::layer_fields!(up, conv1, conv2);
}
