//! The facade's error type.

use std::path::PathBuf;

use prunus_data::DataError;
use prunus_models::ModelError;
use prunus_surgery::SurgeryError;

use crate::DeviceError;

/// What can go wrong when training, evaluating or pruning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting out of its range; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A split with no samples.
    #[error("the {0} data is empty")]
    EmptyData(&'static str),
    /// The loss became NaN or infinite; training stopped before saving that epoch.
    #[error(
        "training stopped: the loss became {value} at step {step}; {}",
        match last_checkpoint {
            Some(path) => format!("the last good checkpoint is {}", path.display()),
            None => "no epoch had completed, so there is no checkpoint".to_string(),
        }
    )]
    NonFiniteLoss {
        /// The training step (1-based, counted over the whole run).
        step: usize,
        /// The loss value.
        value: f64,
        /// The last good model checkpoint, if an epoch had completed.
        last_checkpoint: Option<PathBuf>,
    },
    /// The caller asked the pruning run to stop; a run folder holds the last accepted step.
    #[error("pruning interrupted{}", match run_dir {
        Some(dir) => format!("; run again with the run folder {} to resume", dir.display()),
        None => String::new(),
    })]
    Interrupted {
        /// The run folder, if there is one.
        run_dir: Option<PathBuf>,
    },
    /// A command would need more memory than the machine has.
    #[error(
        "{what} would need about {} of memory, but {} is available; use a smaller size or batch",
        crate::memory::human_bytes(*needed),
        crate::memory::human_bytes(*available)
    )]
    OutOfMemory {
        /// What was refused.
        what: String,
        /// The estimate, in bytes.
        needed: u64,
        /// What the machine has available, in bytes.
        available: u64,
    },
    /// Another process is working in the run folder.
    #[error(
        "{} is in use by another prunus run; wait for it to end or use another run folder",
        run_dir.display()
    )]
    Busy {
        /// The run folder.
        run_dir: PathBuf,
    },
    /// Burn's training loop failed.
    #[error("training failed: {0}")]
    Training(String),
    /// Reading data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Building or running a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Surgery or a model file failed.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// An unknown or missing backend.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A file or folder that cannot be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
