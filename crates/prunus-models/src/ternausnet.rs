//! TernausNet: a U-Net whose encoder is VGG11, with importance-gated convolutions.
//!
//! Iglovikov, Shvets, "TernausNet: U-Net with VGG11 Encoder Pre-Trained on ImageNet for Image
//! Segmentation", 2018 (`UNet11`, `num_filters = 32`). Encoder: VGG11's eight 3×3 convolutions
//! with bias and ReLU and no BatchNorm, five max-pools. Decoder blocks are
//! `Conv3×3 + ReLU → ConvTranspose2d(k3, s2, p1, output_padding 1) + ReLU` and take
//! `[decoder, skip]` concatenated; a 1×1 convolution gives the class logits. Inputs are RGB
//! normalised with ImageNet's mean and standard deviation (`prunus_data::imagenet_normalize`);
//! height and width are multiples of 32.
//!
//! Every convolution and transposed convolution except the output one is gated. All widths
//! live in [`TernausNetConfig`].

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::store::{ModuleSnapshot, PytorchStore};
use burn::tensor::{Device, Tensor};
use prunus_layers::{
    ChannelGroup, GateInit, GatedConv2d, GatedConv2dConfig, GatedConvTranspose2d,
    GatedConvTranspose2dConfig, Layers, Prunable, consumer,
};

use crate::cost::{CostBuilder, CostReport, Costed, LayerShape};
use crate::error::{ModelError, check_widths, invalid_config};
use crate::input::check_input;
use crate::unet::conv_channels;

const MODEL: &str = "TernausNet";

/// Names of the encoder convolutions, in order; also their module paths.
pub const ENCODER_LAYERS: [&str; 8] = [
    "conv1", "conv2", "conv3s", "conv3", "conv4s", "conv4", "conv5s", "conv5",
];

/// Names of the decoder blocks, from the bottom up; also their module paths.
pub const DECODER_BLOCKS: [&str; 5] = ["center", "dec5", "dec4", "dec3", "dec2"];

/// Index of torchvision's `vgg11().features` layer holding each encoder convolution.
const VGG11_FEATURE_INDEX: [usize; 8] = [0, 3, 6, 8, 11, 13, 16, 18];

/// After which encoder convolution a max-pool comes (its output is also a skip).
const POOL_AFTER: [usize; 5] = [0, 1, 3, 5, 7];

/// Configuration of a [`TernausNet`]: every width of every layer.
#[derive(Config, Debug, PartialEq)]
pub struct TernausNetConfig {
    /// Channels of the input image (3 for the pretrained VGG11 encoder).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output channels (1 for binary segmentation with logits).
    #[config(default = 1)]
    pub num_classes: usize,
    /// Output widths of the encoder convolutions, in the order of [`ENCODER_LAYERS`].
    pub encoder: [usize; 8],
    /// `[mid, out]` widths of the decoder blocks, in the order of [`DECODER_BLOCKS`]: `mid` is
    /// the 3×3 convolution's output, `out` the transposed convolution's.
    pub decoder: [[usize; 2]; 5],
    /// Output width of `dec1`, the last 3×3 convolution.
    pub dec1: usize,
    /// How the gates start.
    #[config(default = "GateInit::Ones")]
    pub gate_init: GateInit,
}

impl TernausNetConfig {
    /// The network of the paper for `num_filters` (32 there): VGG11's widths
    /// `64, 128, 256, 256, 512, 512, 512, 512` and decoder widths in multiples of `num_filters`.
    pub fn standard(num_classes: usize, num_filters: usize) -> Self {
        // Saturating: an absurd `num_filters` becomes a width `validate` refuses, not an overflow.
        let nf = |k: usize| num_filters.saturating_mul(k);
        Self::new(
            [64, 128, 256, 256, 512, 512, 512, 512],
            [
                [nf(16), nf(8)],
                [nf(16), nf(8)],
                [nf(16), nf(4)],
                [nf(8), nf(2)],
                [nf(4), nf(1)],
            ],
            num_filters,
        )
        .with_num_classes(num_classes)
    }

    /// Checks that the widths describe a network.
    ///
    /// # Errors
    /// When a width is 0.
    pub fn validate(&self) -> Result<(), ModelError> {
        let widths = self.encoder.iter().chain(self.decoder.iter().flatten());
        if self.in_channels == 0 || self.num_classes == 0 || self.dec1 == 0 {
            return Err(invalid_config(
                MODEL,
                "in_channels, num_classes and dec1 must be ≥ 1",
            ));
        }
        if widths.clone().any(|&w| w == 0) {
            return Err(invalid_config(MODEL, "every width must be ≥ 1"));
        }
        check_widths(
            MODEL,
            widths.chain([&self.dec1, &self.in_channels, &self.num_classes]),
        )
    }

    /// Inputs of every convolution, output widths and the input's down-sampling, by path.
    fn layers(&self) -> Vec<(String, LayerShape, usize)> {
        let conv = |c| LayerShape::conv3(c, true, false);
        let mut layers = Vec::new();
        let mut channels = self.in_channels;
        let mut scale = 1;
        for (i, name) in ENCODER_LAYERS.iter().enumerate() {
            layers.push((name.to_string(), conv([channels, self.encoder[i]]), scale));
            channels = self.encoder[i];
            if POOL_AFTER.contains(&i) {
                scale *= 2;
            }
        }
        // Skips, from the bottom up: conv5, conv4, conv3, conv2 feed dec5…dec2; conv1 feeds dec1.
        let skips = [7, 5, 3, 1, 0].map(|i| self.encoder[i]);
        for (b, name) in DECODER_BLOCKS.iter().enumerate() {
            let [mid, out] = self.decoder[b];
            let input = if b == 0 {
                channels
            } else {
                channels + skips[b - 1]
            };
            layers.push((format!("{name}.conv"), conv([input, mid]), scale));
            layers.push((
                format!("{name}.up"),
                LayerShape::up([mid, out], 3, 1, 1),
                scale,
            ));
            channels = out;
            scale /= 2;
        }
        layers.push(("dec1".into(), conv([channels + skips[4], self.dec1]), 1));
        layers.push((
            "head".into(),
            LayerShape::head([self.dec1, self.num_classes]),
            1,
        ));
        layers
    }

    /// Builds the network on `device`.
    ///
    /// # Errors
    /// When [`TernausNetConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> Result<TernausNet, ModelError> {
        self.validate()?;
        let conv = |channels| {
            GatedConv2dConfig::new(channels)
                .with_gate_init(self.gate_init.clone())
                .init(device)
        };
        let up = |channels| {
            GatedConvTranspose2dConfig::new(channels)
                .with_kernel_size(3)
                .with_padding(1)
                .with_padding_out(1)
                .with_gate_init(self.gate_init.clone())
                .init(device)
        };
        let mut shapes = self
            .layers()
            .into_iter()
            .map(|(_, shape, _)| shape.channels);
        let mut next = || shapes.next().expect("layers() lists every layer");
        let encoder: Vec<GatedConv2d> = (0..8).map(|_| conv(next())).collect();
        let blocks: Vec<DecoderBlock> = (0..5)
            .map(|_| DecoderBlock {
                conv: conv(next()),
                up: up(next()),
            })
            .collect();
        let dec1 = conv(next());
        let head = Conv2dConfig::new(next(), [1, 1]).init(device);
        let [conv1, conv2, conv3s, conv3, conv4s, conv4, conv5s, conv5] =
            encoder.try_into().expect("eight encoder convolutions");
        let [center, dec5, dec4, dec3, dec2] = blocks.try_into().expect("five decoder blocks");
        Ok(TernausNet {
            conv1,
            conv2,
            conv3s,
            conv3,
            conv4s,
            conv4,
            conv5s,
            conv5,
            center,
            dec5,
            dec4,
            dec3,
            dec2,
            dec1,
            head,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        })
    }
}

impl Costed for TernausNetConfig {
    fn cost(&self, [height, width]: [usize; 2]) -> Result<CostReport, ModelError> {
        self.validate()?;
        check_input(
            MODEL,
            [1, self.in_channels, height, width],
            self.in_channels,
            5,
        )?;
        let mut builder = CostBuilder::default();
        for (name, shape, scale) in self.layers() {
            builder.add(name, shape, [height / scale, width / scale]);
        }
        Ok(builder.finish([height, width]))
    }
}

/// `Conv3×3 + gate + ReLU → ConvTranspose2d(k3, s2, p1, output_padding 1) + gate + ReLU`.
#[derive(Module, Debug)]
pub struct DecoderBlock {
    /// The 3×3 convolution.
    pub conv: GatedConv2d,
    /// The up-sampling transposed convolution.
    pub up: GatedConvTranspose2d,
}

impl DecoderBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.up.forward(self.conv.forward(x))
    }

    /// [`forward`](Self::forward) on `inputs` concatenated along the channels.
    fn forward_cat(&self, inputs: Vec<Tensor<4>>) -> Tensor<4> {
        self.up.forward(self.conv.forward_cat(inputs))
    }

    fn widths(&self) -> [usize; 2] {
        [self.conv.channels()[1], self.up.channels()[1]]
    }
}

/// TernausNet (U-Net with a VGG11 encoder) whose convolutions carry importance gates. Build it
/// with [`TernausNetConfig::init`]; load torchvision's VGG11 weights into its encoder with
/// [`TernausNet::load_vgg11_encoder`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_models::TernausNetConfig;
///
/// let device = Device::flex();
/// let config = TernausNetConfig::new([2, 2, 2, 2, 2, 2, 2, 2], [[2, 2]; 5], 2);
/// let net = config.init(&device).unwrap();
/// let x = Tensor::<4>::random([1, 3, 32, 64], Distribution::Default, &device);
/// assert_eq!(net.forward(x).dims(), [1, 1, 32, 64]);
/// ```
#[derive(Module, Debug)]
pub struct TernausNet {
    /// VGG11 `features.0`.
    pub conv1: GatedConv2d,
    /// VGG11 `features.3`.
    pub conv2: GatedConv2d,
    /// VGG11 `features.6`.
    pub conv3s: GatedConv2d,
    /// VGG11 `features.8`.
    pub conv3: GatedConv2d,
    /// VGG11 `features.11`.
    pub conv4s: GatedConv2d,
    /// VGG11 `features.13`.
    pub conv4: GatedConv2d,
    /// VGG11 `features.16`.
    pub conv5s: GatedConv2d,
    /// VGG11 `features.18`.
    pub conv5: GatedConv2d,
    /// The block on the pooled `conv5`.
    pub center: DecoderBlock,
    /// The block on `[center, conv5]`.
    pub dec5: DecoderBlock,
    /// The block on `[dec5, conv4]`.
    pub dec4: DecoderBlock,
    /// The block on `[dec4, conv3]`.
    pub dec3: DecoderBlock,
    /// The block on `[dec3, conv2]`.
    pub dec2: DecoderBlock,
    /// The 3×3 convolution on `[dec2, conv1]`.
    pub dec1: GatedConv2d,
    /// The ungated 1×1 output convolution.
    pub head: Conv2d,
    /// 2×2 max-pool, stride 2.
    pub pool: MaxPool2d,
}

impl TernausNet {
    fn encoder(&self) -> [&GatedConv2d; 8] {
        [
            &self.conv1,
            &self.conv2,
            &self.conv3s,
            &self.conv3,
            &self.conv4s,
            &self.conv4,
            &self.conv5s,
            &self.conv5,
        ]
    }

    /// The configuration this network has now, its widths read from its weights.
    pub fn config(&self) -> TernausNetConfig {
        let blocks = [&self.center, &self.dec5, &self.dec4, &self.dec3, &self.dec2];
        TernausNetConfig::new(
            self.encoder().map(|c| c.channels()[1]),
            blocks.map(DecoderBlock::widths),
            self.dec1.channels()[1],
        )
        .with_in_channels(self.conv1.channels()[0])
        .with_num_classes(conv_channels(&self.head)[1])
    }

    /// Checks that an input of `shape` fits the network.
    ///
    /// # Errors
    /// When the channels differ from the network's, or height or width is not a positive
    /// multiple of 32.
    pub fn check_input(&self, shape: [usize; 4]) -> Result<(), ModelError> {
        check_input(MODEL, shape, self.conv1.channels()[0], 5)
    }

    /// Class logits for every pixel, or an error for an input the network cannot take.
    ///
    /// # Shapes
    /// - `input`: `[batch, in_channels, height, width]`, height and width multiples of 32
    /// - output: `[batch, num_classes, height, width]`
    pub fn try_forward(&self, input: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        self.check_input(input.dims())?;
        Ok(self.forward_unchecked(input))
    }

    /// Class logits for every pixel.
    ///
    /// # Shapes
    /// As [`TernausNet::try_forward`].
    ///
    /// # Panics
    /// With [`TernausNet::check_input`]'s message when the input does not fit.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        self.try_forward(input).unwrap_or_else(|e| panic!("{e}"))
    }

    fn forward_unchecked(&self, x: Tensor<4>) -> Tensor<4> {
        let pool = |x| prunus_layers::counted::max_pool2d(&self.pool, x);
        let conv1 = self.conv1.forward(x);
        let conv2 = self.conv2.forward(pool(conv1.clone()));
        let conv3 = self.conv3.forward(self.conv3s.forward(pool(conv2.clone())));
        let conv4 = self.conv4.forward(self.conv4s.forward(pool(conv3.clone())));
        let conv5 = self.conv5.forward(self.conv5s.forward(pool(conv4.clone())));
        let center = self.center.forward(pool(conv5.clone()));
        // Each decoder level reads `[decoder, skip]`: concatenated, or read where they are.
        let dec5 = self.dec5.forward_cat(vec![center, conv5]);
        let dec4 = self.dec4.forward_cat(vec![dec5, conv4]);
        let dec3 = self.dec3.forward_cat(vec![dec4, conv3]);
        let dec2 = self.dec2.forward_cat(vec![dec3, conv2]);
        let dec1 = self.dec1.forward_cat(vec![dec2, conv1]);
        prunus_layers::counted::conv2d(&self.head, dec1)
    }

    /// Loads torchvision's VGG11 `features.*` weights (a `.pth` state dict of `vgg11()` or of
    /// its `features`) into the eight encoder convolutions, leaving gates and decoder as they
    /// are.
    ///
    /// Keys `features.{0,3,6,8,11,13,16,18}.{weight,bias}` go to
    /// `conv1 … conv5` in order; keys outside `features.` (the classifier) are ignored. The
    /// file's shapes must match the encoder's widths.
    ///
    /// # Errors
    /// When the file cannot be read, an encoder tensor is missing, or a shape differs.
    pub fn load_vgg11_encoder(mut self, path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let error = |reason: String| ModelError::Pretrained {
            path: path.to_path_buf(),
            reason,
        };
        let mut store = PytorchStore::from_file(path)
            .map_indices_contiguous(false)
            .with_regex(r"^(conv[1-5]s?)\.conv\.(weight|bias)$")
            .allow_partial(true);
        for (name, index) in ENCODER_LAYERS.iter().zip(VGG11_FEATURE_INDEX) {
            store =
                store.with_key_remapping(format!(r"^features\.{index}\."), format!("{name}.conv."));
        }
        let result = self
            .load_from(&mut store)
            .map_err(|e| error(e.to_string()))?;
        if !result.errors.is_empty() {
            let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
            return Err(error(errors.join("; ")));
        }
        let missing: Vec<String> = ENCODER_LAYERS
            .iter()
            .flat_map(|name| [format!("{name}.conv.weight"), format!("{name}.conv.bias")])
            .filter(|key| !result.applied.contains(key))
            .collect();
        if !missing.is_empty() {
            return Err(error(format!(
                "no VGG11 features for {} (expected keys features.{{0,3,6,8,11,13,16,18}}.{{weight,bias}})",
                missing.join(", ")
            )));
        }
        Ok(self)
    }
}

impl Costed for TernausNet {
    fn cost(&self, input_size: [usize; 2]) -> Result<CostReport, ModelError> {
        self.config().cost(input_size)
    }
}

/// TernausNet groups, named by producer path. Each encoder convolution feeds the next one;
/// `conv5`, `conv4`, `conv3`, `conv2`, `conv1` also feed the second part of the input of
/// `dec5.conv`, `dec4.conv`, `dec3.conv`, `dec2.conv`, `dec1` (TernausNet concatenates
/// `[decoder, skip]`, so the offset is the decoder part's width); a block's `conv` feeds its `up`,
/// whose output is the first part of the next block's input.
impl Prunable for TernausNet {
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let config = self.config();
        let mut groups = Vec::new();
        // Which decoder layer each encoder output feeds as a skip, and at what offset.
        let out = |b: usize| config.decoder[b][1];
        let skip_of = |name: &str| match name {
            "conv5" => Some(("dec5.conv", out(0))),
            "conv4" => Some(("dec4.conv", out(1))),
            "conv3" => Some(("dec3.conv", out(2))),
            "conv2" => Some(("dec2.conv", out(3))),
            "conv1" => Some(("dec1", out(4))),
            _ => None,
        };
        for (i, name) in ENCODER_LAYERS.iter().enumerate() {
            let next = ENCODER_LAYERS.get(i + 1).copied().unwrap_or("center.conv");
            let mut consumers = vec![consumer(next, 0)];
            if let Some((layer, offset)) = skip_of(name) {
                consumers.push(consumer(layer, offset));
            }
            groups.push(ChannelGroup::new(*name, config.encoder[i], consumers));
        }
        for (b, name) in DECODER_BLOCKS.iter().enumerate() {
            let [mid, out] = config.decoder[b];
            groups.push(ChannelGroup::new(
                format!("{name}.conv"),
                mid,
                vec![consumer(format!("{name}.up"), 0)],
            ));
            let next = DECODER_BLOCKS
                .get(b + 1)
                .map_or_else(|| "dec1".to_string(), |n| format!("{n}.conv"));
            groups.push(ChannelGroup::new(
                format!("{name}.up"),
                out,
                vec![consumer(next, 0)],
            ));
        }
        groups.push(ChannelGroup::new(
            "dec1",
            config.dec1,
            vec![consumer("head", 0)],
        ));
        groups
    }

    prunus_layers::layer_fields!(
        conv1, conv2, conv3s, conv3, conv4s, conv4, conv5s, conv5, center, dec5, dec4, dec3, dec2,
        dec1, head
    );
}

impl Layers for DecoderBlock {
    prunus_layers::layer_fields!(conv, up);
}
