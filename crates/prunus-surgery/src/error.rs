//! Errors of this crate.

use std::path::PathBuf;

use prunus_models::ModelError;

/// What can go wrong in planning, surgery or model files.
#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    /// A plan names a group the network does not have.
    #[error("unknown channel group `{group}`")]
    UnknownGroup {
        /// The group's name.
        group: String,
    },
    /// A plan keeps a channel past the end of its group.
    #[error(
        "channel group `{group}`: index {index} is out of range (the group has {size} channels)"
    )]
    IndexOutOfRange {
        /// The group's name.
        group: String,
        /// The offending index.
        index: usize,
        /// The group's size.
        size: usize,
    },
    /// A plan keeps the same channel twice.
    #[error("channel group `{group}`: index {index} is kept twice")]
    DuplicateIndex {
        /// The group's name.
        group: String,
        /// The repeated index.
        index: usize,
    },
    /// A plan keeps no channel of a group.
    #[error("channel group `{group}`: at least one channel must be kept")]
    EmptyGroup {
        /// The group's name.
        group: String,
    },
    /// A network whose channel groups do not match its layers.
    #[error("layer `{layer}`: {reason}")]
    Layer {
        /// The layer's module path.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// A channel group that does not describe the network: a wrong offset, a missing
    /// consumer or producer, a layer of the wrong width.
    #[error("channel group `{group}`, layer `{layer}`: {reason}")]
    Declaration {
        /// The group's name.
        group: String,
        /// The layer at fault (the group's name when no single layer is).
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// The rebuilt network is not a valid network of its family.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A model file that cannot be written.
    #[error("cannot write model file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: WriteError,
    },
    /// A model file that cannot be read: missing, truncated, corrupt or foreign.
    #[error("cannot read model file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ModelFileError,
    },
}

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file exists and is not replaced (an input is never overwritten).
    #[error("the file exists; it is not overwritten")]
    Exists,
    /// The path names a folder or nothing, not a file.
    #[error("the path names no file")]
    NoFileName,
    /// The network's weights could not be serialised.
    #[error("cannot serialise the weights: {0}")]
    Serialise(String),
    /// The operating system refused (a read-only or full folder, a missing parent, …).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What is wrong with a model file's bytes.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// The file could not be read at all.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file does not start with prunus's magic bytes.
    #[error("not a prunus model file (bad magic)")]
    NotAModelFile,
    /// A format version this prunus does not read.
    #[error("format version {found} is not supported (expected {expected})")]
    Version {
        /// The file's version.
        found: u32,
        /// The version this prunus writes.
        expected: u32,
    },
    /// Fewer bytes than the preamble announces.
    #[error("truncated ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes in the file.
        got: u64,
        /// Bytes the preamble announces.
        expected: u64,
    },
    /// More bytes than the preamble announces, or lengths that cannot be.
    #[error("corrupt ({got} bytes, expected {expected})")]
    Length {
        /// Bytes in the file.
        got: u64,
        /// Bytes the preamble announces (`u64::MAX` when they overflow).
        expected: u64,
    },
    /// The checksum does not match the header and weights.
    #[error("corrupt (checksum mismatch)")]
    Checksum,
    /// The header is not the JSON of a model header.
    #[error("corrupt header")]
    Header(#[source] serde_json::Error),
    /// The header describes something this network type refuses (sizes, widths).
    #[error("{0}")]
    Describes(String),
    /// The architecture cannot be rebuilt, or its gates or BatchNorms folded.
    #[error("cannot rebuild the network: {0}")]
    Rebuild(String),
    /// Burn cannot read the weights.
    #[error("weights do not load: {0}")]
    Weights(String),
    /// Weights that do not fit the architecture the header describes.
    #[error("weights do not fit the architecture: {0}")]
    Mismatch(String),
    /// A weight that is NaN or infinite.
    #[error("weights: {tensor} holds a NaN or infinite value (element {index})")]
    NonFinite {
        /// The tensor's path.
        tensor: String,
        /// The element's index.
        index: usize,
    },
}

pub(crate) fn layer_error(layer: &str, reason: impl Into<String>) -> SurgeryError {
    SurgeryError::Layer {
        layer: layer.to_string(),
        reason: reason.into(),
    }
}

impl From<prunus_layers::LayerError> for SurgeryError {
    fn from(e: prunus_layers::LayerError) -> Self {
        SurgeryError::Layer {
            layer: e.layer,
            reason: e.reason,
        }
    }
}
