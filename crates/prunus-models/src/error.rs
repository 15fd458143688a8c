//! Errors of this crate.

use std::path::PathBuf;

/// What can go wrong when building, running or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration that cannot build a network.
    #[error("invalid {model} configuration: {reason}")]
    InvalidConfig {
        /// The model family.
        model: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An input whose shape the network cannot take.
    #[error("{model} cannot take an input of shape {shape:?}: {reason}")]
    InvalidInput {
        /// The model family.
        model: &'static str,
        /// The input's shape `[batch, channels, height, width]`.
        shape: [usize; 4],
        /// What is wrong.
        reason: String,
    },
    /// Pretrained weights that could not be read or did not fit.
    #[error("cannot load pretrained weights from {path}: {reason}")]
    Pretrained {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

pub(crate) fn invalid_config(model: &'static str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig {
        model,
        reason: reason.into(),
    }
}
