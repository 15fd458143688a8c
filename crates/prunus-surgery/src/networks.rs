//! `Prunable` for the bundled networks.

use prunus_models::{DECODER_BLOCKS, ENCODER_LAYERS, TernausNet, UNet};

use crate::group::{ChannelGroup, consumer};
use crate::prunable::{LayerMut, Prunable};

/// `"{prefix}.{index}.{field}"` split into its index and field.
fn indexed<'a>(path: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('.')?;
    let (index, field) = rest.split_once('.')?;
    Some((index.parse().ok()?, field))
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

    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>> {
        if path == "head" {
            return Some(LayerMut::Conv(&mut self.head));
        }
        if let Some((l, field)) = indexed(path, "encoder") {
            let block = self.encoder.get_mut(l)?;
            return match field {
                "conv1" => Some(LayerMut::Gated(&mut block.conv1)),
                "conv2" => Some(LayerMut::Gated(&mut block.conv2)),
                _ => None,
            };
        }
        let (j, field) = indexed(path, "decoder")?;
        let block = self.decoder.get_mut(j)?;
        match field {
            "up" => Some(LayerMut::GatedTranspose(&mut block.up)),
            "conv1" => Some(LayerMut::Gated(&mut block.conv1)),
            "conv2" => Some(LayerMut::Gated(&mut block.conv2)),
            _ => None,
        }
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

    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>> {
        let gated = |l| Some(LayerMut::Gated(l));
        match path {
            "conv1" => gated(&mut self.conv1),
            "conv2" => gated(&mut self.conv2),
            "conv3s" => gated(&mut self.conv3s),
            "conv3" => gated(&mut self.conv3),
            "conv4s" => gated(&mut self.conv4s),
            "conv4" => gated(&mut self.conv4),
            "conv5s" => gated(&mut self.conv5s),
            "conv5" => gated(&mut self.conv5),
            "dec1" => gated(&mut self.dec1),
            "head" => Some(LayerMut::Conv(&mut self.head)),
            _ => {
                let (block, field) = path.split_once('.')?;
                let block = match block {
                    "center" => &mut self.center,
                    "dec5" => &mut self.dec5,
                    "dec4" => &mut self.dec4,
                    "dec3" => &mut self.dec3,
                    "dec2" => &mut self.dec2,
                    _ => return None,
                };
                match field {
                    "conv" => gated(&mut block.conv),
                    "up" => Some(LayerMut::GatedTranspose(&mut block.up)),
                    _ => None,
                }
            }
        }
    }
}
