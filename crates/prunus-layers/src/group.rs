//! Channel groups: channels that must be removed together.

use serde::{Deserialize, Serialize};

/// A layer that reads a group's channels, and where they sit in its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    /// The consuming layer's module path.
    pub layer: String,
    /// The input index at which the group's channel 0 starts: 0 for a plain successor, the
    /// width of what comes first for the second part of a concatenation.
    pub offset: usize,
    /// Inputs per channel: 1 for a convolution; `height × width` for a `Linear` that reads a
    /// flattened `[channels, height, width]` feature map, where channel `i` is the inputs
    /// `offset + i·span .. offset + (i + 1)·span`.
    #[serde(default = "one")]
    pub span: usize,
}

fn one() -> usize {
    1
}

/// Channels that are removed as a unit: channel `i` of the group is output channel `i` of every
/// producer, channel `i` of every member, and the inputs `offset + i·span ..` of every consumer.
///
/// - **Producers** write the channels: a convolution's filters, a `Linear`'s outputs. Several
///   producers share one group when their outputs are added (the convolutions that feed one
///   residual `add` must keep the same channels).
/// - **Members** act on each channel separately and are cut in step: a stand-alone BatchNorm, a
///   depthwise convolution (`groups == channels`).
/// - **Consumers** read the channels: the next convolution, a transposed convolution, a part of
///   a concatenation (at an offset), a `Linear` after a flatten (with a span).
///
/// Removing channel `i` is exact when the network computes the same with that channel at 0
/// everywhere: [`verify_prunable`](https://docs.rs/prunus-surgery) checks a declaration
/// against the network.
///
/// # Example
/// ```
/// use prunus_layers::{ChannelGroup, consumer};
///
/// // A residual stage: the stem and both blocks' last convolutions write the same channels.
/// let stage = ChannelGroup::new("stem", 16, vec![consumer("block1.conv1", 0)])
///     .with_producer("block1.conv2")
///     .with_consumer(consumer("head", 0));
/// assert_eq!(stage.producers, ["stem", "block1.conv2"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGroup {
    /// A stable name; by default the first producer's module path.
    pub name: String,
    /// Number of channels.
    pub size: usize,
    /// The layers whose output channels these are (at least one).
    pub producers: Vec<String>,
    /// Per-channel layers cut in step with the group (BatchNorm, depthwise convolutions).
    #[serde(default)]
    pub members: Vec<String>,
    /// Every layer that reads these channels.
    pub consumers: Vec<Consumer>,
}

impl ChannelGroup {
    /// A group with one producer, named after it.
    pub fn new(producer: impl Into<String>, size: usize, consumers: Vec<Consumer>) -> Self {
        let producer = producer.into();
        Self {
            name: producer.clone(),
            size,
            producers: vec![producer],
            members: Vec::new(),
            consumers,
        }
    }

    /// The group under another name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a producer whose outputs are added to (or share channels with) the others'.
    pub fn with_producer(mut self, producer: impl Into<String>) -> Self {
        self.producers.push(producer.into());
        self
    }

    /// Adds a per-channel layer (BatchNorm, depthwise convolution) cut in step.
    pub fn with_member(mut self, member: impl Into<String>) -> Self {
        self.members.push(member.into());
        self
    }

    /// Adds a consumer.
    pub fn with_consumer(mut self, consumer: Consumer) -> Self {
        self.consumers.push(consumer);
        self
    }

    /// Every layer the group names: producers, members, then consumers.
    pub fn layers(&self) -> impl Iterator<Item = &str> {
        self.producers
            .iter()
            .chain(&self.members)
            .map(String::as_str)
            .chain(self.consumers.iter().map(|c| c.layer.as_str()))
    }
}

/// A consumer that reads the group's channels one input per channel, from `offset` on.
pub fn consumer(layer: impl Into<String>, offset: usize) -> Consumer {
    Consumer {
        layer: layer.into(),
        offset,
        span: 1,
    }
}

/// A `Linear` consumer of a flattened `[channels, height, width]` map: `span = height × width`
/// inputs per channel, from input `offset` on.
pub fn flattened(layer: impl Into<String>, offset: usize, span: usize) -> Consumer {
    Consumer {
        layer: layer.into(),
        offset,
        span,
    }
}
