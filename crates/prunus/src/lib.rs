//! # prunus
//!
//! Compress convolutional networks by **importance-weight filter pruning to an error
//! tolerance**, on [Burn](https://burn.dev).
//!
//! Every convolution filter gets an extra learnable scalar, its importance weight (a *gate*).
//! The network is trained with the gates; the filters with the weakest gates are removed, the
//! layers rebuilt physically slimmer, and pruning goes on only while the validation metric stays
//! within the tolerance the user sets.
//!
//! ## Crate map
//! - [`layers`] (`prunus-layers`): gated convolution and transposed-convolution layers, gate
//!   initialisations, the gates' L1 penalty, gates-only training.
//! - [`models`] (`prunus-models`): U-Net and TernausNet of any width, their exact cost.
//! - [`surgery`] (`prunus-surgery`): channel groups, exact filter removal, gate folding, model
//!   files.
//! - [`plan`] (`prunus-plan`): importance criteria, the pruning planner, the tolerance search.
//! - [`data`] (`prunus-data`): synthetic aerial scenes, Inria/AIRS loaders, segmentation metrics.
//! - [`prune_to_tolerance()`]: the method's search for any [`Prunable`](surgery::Prunable)
//!   network and any [`Task`] — [`SegmentationTask`] (synthetic, Inria, AIRS) and
//!   [`ClassificationTask`] (any Burn dataset) come with it.
//! - [`train()`], [`evaluate()`]: segmentation training with gates on Burn's `Learner`, and
//!   validation.
//! - [`device()`]: a Burn device from a name (`flex`, `ndarray`, `wgpu`, `default`).
//!
//! ## Backends
//! All three are compiled in by default and chosen at run time:
//!
//! | name      | backend                          | feature   |
//! | --------- | -------------------------------- | --------- |
//! | `flex`    | pure-Rust CPU (the CPU default)  | `flex`    |
//! | `ndarray` | CPU, deprecated upstream         | `ndarray` |
//! | `wgpu`    | GPU through Vulkan/Metal/DX12    | `wgpu`    |
//!
//! ```
//! use burn::tensor::{Distribution, Tensor};
//! use prunus::models::{Costed, UNetConfig};
//!
//! let device = prunus::device("flex").unwrap();
//! let config = UNetConfig::standard(3, 1, 8, 3);
//! let unet = config.init(&device).unwrap();
//! let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Default, &device);
//! assert_eq!(unet.forward(x).dims(), [1, 1, 64, 64]);
//! println!("{} GFLOPs", config.cost([64, 64]).unwrap().flops() as f64 / 1e9);
//! ```

mod calibrate;
mod checkpoint;
mod classify;
mod device;
mod error;
mod fit;
mod infer;
mod lock;
mod loss;
mod measure;
mod memory;
pub mod plots;
mod progress;
mod prune;
mod report;
mod task;
mod tiles;
mod train;

pub use calibrate::{CALIBRATION_SHARE, CALIBRATION_TRIES, Calibration, CalibrationTrial};
pub use classify::{ClassificationBatch, ClassificationModel, ClassificationTask};
pub use device::{DEVICE_ENV, DeviceError, device, device_from_env, device_label, devices};
pub use error::{Error, ErrorKind, error_kind, error_messages};
pub use infer::{predict_image, predict_rows};
pub use lock::{FolderLock, lock_folder_with};
pub use loss::LossConfig;
pub use measure::{Examples, Measurement, change_intervals};
pub use memory::{check_memory, keep_freed_memory, memory_available, memory_needed};
pub use progress::{PlainRenderer, SegmentationMetric, SegmentationOutput};
pub use prune::{PrunableModel, PruneConfig, prune_to_tolerance, prune_to_tolerance_with};
pub use prunus_data as data;
pub use prunus_data::{
    SegmentationBatch, SegmentationBatcher, SegmentationData, imagenet_normalize,
};
pub use prunus_layers as layers;
pub use prunus_models as models;
pub use prunus_plan as plan;
pub use prunus_surgery as surgery;
pub use report::{GroupWidth, Outcome, Report, TestFigures, measure_latency};
pub use task::{SegmentationTask, Task};
pub use tiles::WholeTiles;
pub use train::{
    LrSchedule, SegmentationModel, TrainConfig, TrainDisplay, TrainMode, Trained, TrainingModel,
    checkpoint_dir, evaluate, last_checkpoint, train, train_on,
};

/// This prunus: `prunus 0.1.0`, with ` (commit 1a2b3c4d5e6f)` when built from a git checkout —
/// what reports record so that a figure can be traced to the code that made it.
///
/// ```
/// assert!(prunus::version().starts_with("prunus "));
/// ```
pub fn version() -> String {
    let mut v = format!("prunus {}", env!("CARGO_PKG_VERSION"));
    if let Some(commit) = option_env!("PRUNUS_COMMIT") {
        v += &format!(" (commit {commit})");
    }
    v
}

/// The README's code, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
