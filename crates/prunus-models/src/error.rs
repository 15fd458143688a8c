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

/// Refuses a width above [`crate::MAX_WIDTH`]: such a layer cannot be allocated anyway, and its
/// cost would overflow the counters.
pub(crate) fn check_widths<'a>(
    model: &'static str,
    widths: impl IntoIterator<Item = &'a usize>,
) -> Result<(), ModelError> {
    match widths.into_iter().find(|&&w| w > crate::MAX_WIDTH) {
        Some(w) => Err(invalid_config(
            model,
            format!(
                "a width of {w} channels is above the limit of {}",
                crate::MAX_WIDTH
            ),
        )),
        None => Ok(()),
    }
}
