//! Aerial building segmentation data for prunus.
//!
//! - [`SyntheticConfig`] → [`generate`]: deterministic synthetic aerial tiles with building
//!   footprint masks; no download, fast enough to make data on the fly.
//! - [`inria_pairs`], [`airs_pairs`] → [`AerialCrops`]: the Inria and AIRS layouts on disk,
//!   random training crops and a deterministic validation grid, read from TIFF/GeoTIFF windows
//!   ([`Raster`]) without decoding whole tiles.
//! - [`SegmentationData`] → [`SegmentationBatcher`]: any of these sources as a Burn
//!   [`Dataset`](burn::data::dataset::Dataset) and data loader, batched as
//!   [`imagenet_normalize`]d images with their building masks.
//! - [`Digits`]: scikit-learn's 1,797 handwritten 8×8 digits, bundled, for classifiers.
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

mod aerial;
mod bands;
mod digits;
mod error;
mod geo;
mod image;
mod mask_writer;
mod metrics;
mod raster;
mod rng;
mod segmentation;
mod synthetic;
mod tiling;

pub use aerial::{AerialCrops, CropAt, Layout, Split, TilePair, airs_pairs, inria_pairs};
pub use bands::{ImageReader, MAX_STREAMED_PIXELS};
pub use digits::Digits;
pub use error::DataError;
pub use geo::{Georeferencing, write_mask_georeferenced};
pub use image::{MAX_IMAGE_PIXELS, RgbImage, is_tiff, write_mask, write_png};
pub use mask_writer::{MASK_TILE, MaskWriter};
pub use metrics::{Confusion, Metric};
pub use raster::Raster;
pub use segmentation::{
    Sample, SegmentationBatch, SegmentationBatcher, SegmentationData, imagenet_normalize,
};
pub use synthetic::{Scene, SyntheticConfig, generate};
pub use tiling::{Tile, Tiling};
