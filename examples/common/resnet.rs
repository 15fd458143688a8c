//! A small ResNet classifier as a Burn user writes it, made prunable: residual blocks with
//! BatchNorm, a projection shortcut where the width changes, global average pooling and a
//! linear head — and the digits as a Burn dataset.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use prunus::data::Digits;
use prunus::layers::{
    Activation, ChannelGroup, GatedConv2d, GatedConv2dConfig, Layers, Prunable, consumer, counted,
    layer_fields,
};
use prunus::models::CostReport;
use prunus::surgery::{ModelFile, PruningPlan, Rebuild, WriteError};
use prunus::{ClassificationBatch, ClassificationModel, PrunableModel};
use serde::{Deserialize, Serialize};

/// `relu(conv2(conv1(x)) + shortcut(x))`; `shortcut` is the identity or a 1×1 projection.
#[derive(Module, Debug)]
pub struct Block {
    conv1: GatedConv2d,
    conv2: GatedConv2d,
    shortcut: Option<GatedConv2d>,
}

impl Block {
    fn new(cin: usize, w: &BlockWidths, device: &Device) -> Self {
        let conv = |c: [usize; 2], k: usize, s: usize, act: Activation| {
            GatedConv2dConfig::new(c)
                .with_kernel_size(k)
                .with_stride(s)
                .with_padding(k / 2)
                .with_bias(false)
                .with_batch_norm(true)
                .with_activation(act)
                .init(device)
        };
        Self {
            conv1: conv([cin, w.inner], 3, w.stride, Activation::Relu),
            conv2: conv([w.inner, w.out], 3, 1, Activation::Identity),
            shortcut: w
                .projection
                .then(|| conv([cin, w.out], 1, w.stride, Activation::Identity)),
        }
    }

    fn widths(&self) -> BlockWidths {
        BlockWidths {
            inner: self.conv1.channels()[1],
            out: self.conv2.channels()[1],
            stride: self.conv1.conv.stride[0],
            projection: self.shortcut.is_some(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let skip = match &self.shortcut {
            Some(projection) => projection.forward(x.clone()),
            None => x.clone(),
        };
        relu(self.conv2.forward(self.conv1.forward(x)) + skip)
    }
}

/// Stem, residual blocks (a stride-2 block wherever the width grows), average pool, linear head.
#[derive(Module, Debug)]
pub struct ResNet {
    stem: GatedConv2d,
    blocks: Vec<Block>,
    head: Linear,
}

impl ResNet {
    /// `widths[0]` for the stem and the first stage; each further width starts a stage of two
    /// blocks at half the resolution.
    pub fn new(in_channels: usize, widths: &[usize], classes: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut width = widths[0];
        for (stage, &w) in widths.iter().enumerate() {
            let stride = if stage == 0 { 1 } else { 2 };
            let block = |stride, projection| BlockWidths {
                inner: w,
                out: w,
                stride,
                projection,
            };
            blocks.push(block(stride, stride != 1 || width != w));
            blocks.push(block(1, false));
            width = w;
        }
        Self::build(
            &ResNetWidths {
                in_channels,
                stem: widths[0],
                blocks,
                classes,
            },
            device,
        )
    }

    /// A network with exactly these widths (fresh weights).
    fn build(a: &ResNetWidths, device: &Device) -> Self {
        let stem = GatedConv2dConfig::new([a.in_channels, a.stem])
            .with_bias(false)
            .with_batch_norm(true)
            .init(device);
        let mut width = a.stem;
        let blocks = a
            .blocks
            .iter()
            .map(|w| {
                let block = Block::new(width, w, device);
                width = w.out;
                block
            })
            .collect();
        Self {
            stem,
            blocks,
            head: LinearConfig::new(width, a.classes).init(device),
        }
    }

    /// Class logits, `[batch, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(x);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [batch, channels, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([batch, channels]);
        counted::linear(&self.head, pooled)
    }
}

// ---- what makes it prunable: 30 lines as rustfmt lays them out (17 statements) ----

impl Layers for Block {
    layer_fields!(conv1, conv2, shortcut);
}

impl Prunable for ResNet {
    layer_fields!(stem, blocks, head);

    /// Each block's inner channels are a group; the channels of a residual stream are one
    /// group with every convolution that writes into it (stem or projection, then each
    /// block's `conv2`) as a producer.
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let width = |l: &GatedConv2d| l.channels()[1];
        let (mut groups, mut stream) = (
            Vec::new(),
            ChannelGroup::new("stem", width(&self.stem), vec![]),
        );
        for (i, b) in self.blocks.iter().enumerate() {
            let path = |field: &str| format!("blocks.{i}.{field}");
            groups.push(ChannelGroup::new(
                path("conv1"),
                width(&b.conv1),
                vec![consumer(path("conv2"), 0)],
            ));
            stream = stream.with_consumer(consumer(path("conv1"), 0));
            if let Some(projection) = &b.shortcut {
                groups.push(stream.with_consumer(consumer(path("shortcut"), 0)));
                stream = ChannelGroup::new(path("shortcut"), width(projection), vec![]);
            }
            stream = stream.with_producer(path("conv2"));
        }
        groups.push(stream.with_consumer(consumer("head", 0)));
        groups
    }
}

// ---- what gives it model files: its widths, serialisable, and a way to build from them ----

/// Every width of a [`ResNet`]: what a model file stores to rebuild it, pruned or not.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ResNetWidths {
    in_channels: usize,
    stem: usize,
    blocks: Vec<BlockWidths>,
    classes: usize,
}

/// A block's inner and output widths, its stride, and whether it has a projection shortcut.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BlockWidths {
    inner: usize,
    out: usize,
    stride: usize,
    projection: bool,
}

impl Rebuild for ResNet {
    type Architecture = ResNetWidths;

    fn architecture(&self) -> ResNetWidths {
        ResNetWidths {
            in_channels: self.stem.channels()[0],
            stem: self.stem.channels()[1],
            blocks: self.blocks.iter().map(Block::widths).collect(),
            classes: self.head.weight.dims()[1],
        }
    }

    fn rebuild(a: &ResNetWidths, device: &Device) -> Result<Self, String> {
        let widths = [a.in_channels, a.stem, a.classes]
            .into_iter()
            .chain(a.blocks.iter().flat_map(|b| [b.inner, b.out, b.stride]));
        if widths.into_iter().any(|w| !(1..=4096).contains(&w)) {
            return Err(format!("a width or stride outside 1…4096 in {a:?}"));
        }
        Ok(Self::build(a, device))
    }
}

impl PrunableModel for ResNet {
    fn model_file(
        &self,
        original: &Self,
        original_cost: &CostReport,
        plan: &PruningPlan,
    ) -> Option<Result<Vec<u8>, WriteError>> {
        Some(ModelFile::pruned(self.clone(), original, original_cost, plan).to_bytes())
    }
}

impl ClassificationModel for ResNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        ResNet::forward(self, images)
    }
}

// ---- the data, as Burn datasets ----

/// One digit: 64 pixels in [0, 1] and its label.
#[derive(Debug, Clone)]
pub struct DigitItem {
    pixels: [f32; 64],
    label: usize,
}

/// The digits of `part` as a Burn dataset.
pub fn dataset(part: &Digits) -> InMemDataset<DigitItem> {
    InMemDataset::new(
        (0..part.len())
            .map(|i| DigitItem {
                pixels: part.image(i),
                label: part.label(i),
            })
            .collect(),
    )
}

/// Digits → `[batch, 1, 8, 8]` images (centred on the pixels' mean) and labels.
#[derive(Debug, Clone, Copy)]
pub struct DigitBatcher;

impl Batcher<DigitItem, ClassificationBatch> for DigitBatcher {
    fn batch(&self, items: Vec<DigitItem>, device: &Device) -> ClassificationBatch {
        let n = items.len();
        let pixels: Vec<f32> = items
            .iter()
            .flat_map(|d| d.pixels.map(|v| (v - 0.3) / 0.4))
            .collect();
        let labels: Vec<i64> = items.iter().map(|d| d.label as i64).collect();
        ClassificationBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, 1, 8, 8]), device),
            targets: Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
