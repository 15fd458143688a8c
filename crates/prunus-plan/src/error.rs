//! Errors of this crate.

use prunus_surgery::SurgeryError;

/// What can go wrong when scoring, planning or searching.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A setting out of its range.
    #[error("invalid pruning configuration: {field}: {reason}")]
    Config {
        /// The setting.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
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
    #[error("run folder {}", path.display())]
    Run {
        /// The folder or file.
        path: std::path::PathBuf,
        /// What is wrong.
        #[source]
        source: RunError,
    },
    /// Surgery failed.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
}

impl PlanError {
    /// A [`PlanError::Config`] for `field`.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        PlanError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Why a run folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The folder holds a search with other settings.
    #[error("was made with other pruning settings; use another run folder")]
    OtherSettings,
    /// The folder holds a search from another model.
    #[error("was started from another model; use another run folder")]
    OtherModel,
    /// The state file is not a prunus run state.
    #[error("not a prunus run state")]
    Corrupt(#[source] serde_json::Error),
    /// The accepted network's weights cannot be read or written.
    #[error("weights: {0}")]
    Weights(String),
    /// The accepted network's weights do not fit the network the state describes.
    #[error("weights do not fit the accepted network")]
    Mismatch,
    /// The operating system refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
