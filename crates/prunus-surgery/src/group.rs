//! Channel groups: channels that must be removed together.

use serde::{Deserialize, Serialize};

/// A layer that reads a group's channels, and where they sit in its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    /// The consuming layer's module path.
    pub layer: String,
    /// The input channel at which the group's channel 0 sits: 0 for a plain successor, the
    /// width of what comes first for the second part of a concatenation.
    pub offset: usize,
}

/// The output channels of one producer layer together with the matching input channels of
/// every consumer. A group is removed as a unit: channel `i` of the group is the producer's
/// filter `i` and input channel `offset + i` of every consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGroup {
    /// A stable name; the producer's module path.
    pub name: String,
    /// Number of channels (the producer's output channels).
    pub size: usize,
    /// The module path of the layer whose filters these channels are.
    pub producer: String,
    /// Every layer that reads these channels.
    pub consumers: Vec<Consumer>,
}

impl ChannelGroup {
    /// A group named after its producer.
    pub fn new(producer: impl Into<String>, size: usize, consumers: Vec<Consumer>) -> Self {
        let producer = producer.into();
        Self {
            name: producer.clone(),
            size,
            producer,
            consumers,
        }
    }
}

/// Shorthand for a [`Consumer`].
pub fn consumer(layer: impl Into<String>, offset: usize) -> Consumer {
    Consumer {
        layer: layer.into(),
        offset,
    }
}
