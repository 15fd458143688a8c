//! Errors of this crate.

use prunus_surgery::SurgeryError;

/// What can go wrong when scoring, planning or searching.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A setting out of its range; the message names it.
    #[error("invalid pruning configuration: {0}")]
    Config(String),
    /// A criterion needs something a group's producer does not have (a gate, a BatchNorm).
    #[error("group {group}: {reason}")]
    Criterion {
        /// The group.
        group: String,
        /// What is missing.
        reason: String,
    },
    /// Scores that do not match the network's groups.
    #[error("scores for group {group}: {reason}")]
    Scores {
        /// The group.
        group: String,
        /// What does not match.
        reason: String,
    },
    /// A run folder that cannot be used: made by another search, corrupt, or not writable.
    #[error("run folder {path}: {reason}")]
    Run {
        /// The folder or file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Surgery failed.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
}
