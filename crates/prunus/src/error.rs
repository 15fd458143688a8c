//! The facade's error type.

use std::path::PathBuf;

use prunus_data::DataError;
use prunus_models::ModelError;
use prunus_plan::PlanError;
use prunus_surgery::SurgeryError;

use crate::DeviceError;

/// What can go wrong when training, evaluating or pruning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting out of its range.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The setting (a field of the configuration, or an argument).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
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
    /// Burn's training loop failed, or a tensor could not be read back from the device.
    #[error("training failed: {0}")]
    Training(String),
    /// The device could not run a computation (on a GPU: a buffer past its limits, a lost
    /// device), reported when its result was read back.
    #[error("{what} failed on the device: {message}")]
    Execution {
        /// What was being computed.
        what: String,
        /// The device's report.
        message: String,
    },
    /// A training run folder whose checkpoint cannot be resumed (another architecture, corrupt).
    #[error("cannot resume from {}; use another run folder or turn resume off", path.display())]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Building or running a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Surgery or a model file failed.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// Scoring, planning or the search's run folder failed.
    #[error(transparent)]
    Plan(PlanError),
    /// An unknown or missing backend.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A file or folder that cannot be written or read.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Config`] for `field`.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// What kind of failure this is (the CLI's exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } | Error::OutOfMemory { .. } | Error::Device(_) => ErrorKind::Usage,
            Error::EmptyData(_) | Error::Busy { .. } | Error::Io { .. } | Error::Resume { .. } => {
                ErrorKind::Input
            }
            Error::Data(_) => ErrorKind::Input,
            Error::Model(e) => error_kind(e),
            Error::Surgery(e) => error_kind(e),
            Error::Plan(e) => error_kind(e),
            Error::Interrupted { .. } => ErrorKind::Interrupted,
            Error::NonFiniteLoss { .. } | Error::Training(_) | Error::Execution { .. } => {
                ErrorKind::Failure
            }
        }
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Surgery(s) => Error::Surgery(s),
            PlanError::Config { field, reason } => Error::Config { field, reason },
            other => Error::Plan(other),
        }
    }
}

/// What kind of failure an error is, for a program that reports it: the `prunus` CLI exits with
/// [`ErrorKind::exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A setting or argument out of its range, an unknown backend, a size the machine cannot
    /// hold: fix the command (exit code 2).
    Usage,
    /// A file or folder that is missing, unreadable, corrupt, foreign, in use or not writable
    /// (exit code 3).
    Input,
    /// The computation failed: a loss that is not finite, Burn's training loop, the device, or
    /// a bug (exit code 1).
    Failure,
    /// The run was asked to stop; its run folder resumes it (exit code 130, as after Ctrl-C).
    Interrupted,
}

impl ErrorKind {
    /// The process exit code for this kind: 2 usage, 3 input, 1 failure, 130 interrupted.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Input => 3,
            ErrorKind::Failure => 1,
            ErrorKind::Interrupted => 130,
        }
    }
}

/// The kind of any error of prunus's crates (or an I/O error, which is [`ErrorKind::Input`]);
/// anything else is a [`ErrorKind::Failure`].
pub fn error_kind(error: &(dyn std::error::Error + 'static)) -> ErrorKind {
    if let Some(e) = error.downcast_ref::<Error>() {
        return e.kind();
    }
    if let Some(e) = error.downcast_ref::<SurgeryError>() {
        return match e {
            SurgeryError::Read { .. } | SurgeryError::Write { .. } => ErrorKind::Input,
            SurgeryError::Model(m) => error_kind(m),
            _ => ErrorKind::Failure,
        };
    }
    if let Some(e) = error.downcast_ref::<PlanError>() {
        return match e {
            PlanError::Config { .. } => ErrorKind::Usage,
            PlanError::Run { .. } => ErrorKind::Input,
            PlanError::Surgery(s) => error_kind(s),
            _ => ErrorKind::Failure,
        };
    }
    if let Some(e) = error.downcast_ref::<ModelError>() {
        return match e {
            ModelError::InvalidConfig { .. } => ErrorKind::Usage,
            _ => ErrorKind::Input,
        };
    }
    if error.is::<DataError>() || error.is::<std::io::Error>() {
        return ErrorKind::Input;
    }
    if error.is::<DeviceError>() {
        return ErrorKind::Usage;
    }
    ErrorKind::Failure
}

/// The message of `error` and of each of its causes, outermost first: what the CLI prints as
/// `error: …` and `caused by: …` lines.
///
/// # Example
/// ```
/// let err = prunus::surgery::ModelFile::<prunus::surgery::Network>::load(
///     "/no/such/model.prunus",
///     &burn::tensor::Device::flex(),
/// )
/// .unwrap_err();
/// let messages = prunus::error_messages(&err);
/// assert_eq!(messages[0], "cannot read model file /no/such/model.prunus");
/// assert!(messages[1].contains("No such file"), "{messages:?}");
/// ```
pub fn error_messages(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(c) = cause {
        let message = c.to_string();
        // A cause whose message its parent already shows adds nothing.
        if !messages.last().is_some_and(|m| m.ends_with(&message)) {
            messages.push(message);
        }
        cause = c.source();
    }
    messages
}
