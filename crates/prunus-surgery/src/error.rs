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
    #[error("cannot write model file {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A model file that cannot be read: missing, truncated, corrupt or foreign.
    #[error("cannot read model file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
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
