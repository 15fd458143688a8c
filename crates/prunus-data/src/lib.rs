//! Aerial building segmentation data for prunus.
//!
//! - [`SyntheticConfig`] → [`generate`]: deterministic synthetic aerial tiles with building
//!   footprint masks; no download, fast enough to make data on the fly.
//! - [`Confusion`], [`Metric`]: pixel accuracy, IoU, Dice/F1, precision, recall accumulated over
//!   a dataset.
//!
//! ```
//! use prunus_data::{Confusion, SyntheticConfig, generate};
//!
//! let scene = generate(&SyntheticConfig::new().with_size(64).with_seed(1), 0);
//! assert_eq!(scene.image.len(), 3 * 64 * 64);
//! // Predicting "no building" everywhere:
//! let truth: Vec<bool> = scene.mask.iter().map(|&m| m == 1).collect();
//! let mut confusion = Confusion::default();
//! confusion.add(&vec![false; truth.len()], &truth);
//! assert_eq!(confusion.iou(), 0.0);
//! assert!(confusion.pixel_accuracy() > 0.5);
//! ```

mod metrics;
mod rng;
mod synthetic;

pub use metrics::{Confusion, Metric};
pub use synthetic::{Scene, SyntheticConfig, generate};
