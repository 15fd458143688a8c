//! Segmentation datasets for Burn's data loaders: synthetic scenes and aerial crops, batched as
//! ImageNet-normalised images and building masks.

use std::sync::Arc;

use crate::aerial::{AerialCrops, CropAt};
use crate::error::DataError;
use crate::synthetic::{Scene, SyntheticConfig, generate};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};

/// One image and its building mask.
pub type Sample = Scene;

/// Normalises RGB values in `[0, 1]` with ImageNet's per-channel mean and standard deviation,
/// the input a pretrained VGG11 encoder (TernausNet's) expects; every [`SegmentationBatch`] is
/// normalised so.
///
/// # Shapes
/// - `rgb`: `[batch, 3, height, width]`, values in `[0, 1]`
/// - output: the same shape
pub fn imagenet_normalize(rgb: Tensor<4>) -> Tensor<4> {
    let device = rgb.device();
    let mean = Tensor::<1>::from_floats([0.485, 0.456, 0.406], &device).reshape([1, 3, 1, 1]);
    let std = Tensor::<1>::from_floats([0.229, 0.224, 0.225], &device).reshape([1, 3, 1, 1]);
    (rgb - mean) / std
}

/// A batch of images and masks on a device.
#[derive(Debug, Clone)]
pub struct SegmentationBatch {
    /// `[batch, 3, h, w]`, ImageNet-normalised RGB.
    pub images: Tensor<4>,
    /// `[batch, 1, h, w]`, 1 for building, 0 otherwise.
    pub masks: Tensor<4>,
}

/// Turns [`Sample`]s into a [`SegmentationBatch`]; every sample of a batch must have one size.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentationBatcher;

impl SegmentationBatcher {
    /// Batches `samples` on `device` (ImageNet normalisation of the images).
    ///
    /// # Panics
    /// When the samples have different sizes or `samples` is empty (a data loader never does
    /// either; [`SegmentationData`] sources give one size per source).
    pub fn batch_samples(samples: &[Sample], device: &Device) -> SegmentationBatch {
        assert!(!samples.is_empty(), "cannot batch zero samples");
        let size = samples[0].size;
        let n = samples.len();
        let mut images = Vec::with_capacity(n * 3 * size * size);
        let mut masks = Vec::with_capacity(n * size * size);
        for sample in samples {
            assert_eq!(
                sample.size, size,
                "every sample of a batch must have the same size"
            );
            images.extend_from_slice(&sample.image);
            masks.extend(sample.mask.iter().map(|&m| m as f32));
        }
        let images = Tensor::<4>::from_data(TensorData::new(images, [n, 3, size, size]), device);
        let masks = Tensor::<4>::from_data(TensorData::new(masks, [n, 1, size, size]), device);
        SegmentationBatch {
            images: imagenet_normalize(images),
            masks,
        }
    }
}

impl Batcher<Sample, SegmentationBatch> for SegmentationBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> SegmentationBatch {
        Self::batch_samples(&items, device)
    }
}

/// Where samples come from. Cheap to clone; every source is deterministic for its seed.
#[derive(Debug, Clone)]
pub enum SegmentationData {
    /// `len` synthetic scenes, scene indices `first..first + len` of the generator.
    Synthetic {
        /// Generator settings (size, seed, density, noise).
        config: SyntheticConfig,
        /// Index of the first scene; keep train and validation ranges disjoint.
        first: u64,
        /// Number of scenes.
        len: usize,
    },
    /// `len` random crops (training): crop `i` is `random_crop(seed, i)`.
    RandomCrops {
        /// The tiles and crop size.
        crops: Arc<AerialCrops>,
        /// Seed of the crop stream.
        seed: u64,
        /// Number of crops per epoch.
        len: usize,
    },
    /// A deterministic grid of crops that covers every tile (validation).
    Grid {
        /// The tiles and crop size.
        crops: Arc<AerialCrops>,
        /// The crops, from [`AerialCrops::grid`].
        places: Arc<Vec<CropAt>>,
    },
}

impl SegmentationData {
    /// `len` synthetic scenes starting at scene `first`.
    pub fn synthetic(config: SyntheticConfig, first: u64, len: usize) -> Self {
        Self::Synthetic { config, first, len }
    }

    /// `len` random crops per epoch from `crops` (for training).
    pub fn random_crops(crops: AerialCrops, seed: u64, len: usize) -> Self {
        Self::RandomCrops {
            crops: Arc::new(crops),
            seed,
            len,
        }
    }

    /// The validation grid over every tile of `crops`.
    ///
    /// # Errors
    /// When a tile cannot be opened or is smaller than the crop.
    pub fn grid(crops: AerialCrops) -> Result<Self, DataError> {
        let places = crops.grid()?;
        Ok(Self::Grid {
            crops: Arc::new(crops),
            places: Arc::new(places),
        })
    }

    /// The first `n` samples (all of them when there are fewer).
    pub fn take(&self, n: usize) -> Self {
        let mut out = self.clone();
        match &mut out {
            Self::Synthetic { len, .. } | Self::RandomCrops { len, .. } => *len = (*len).min(n),
            Self::Grid { places, .. } => {
                *places = Arc::new(places.iter().copied().take(n).collect());
            }
        }
        out
    }

    /// At most `n` samples spread evenly over all of them (every `len / n`-th): a grid over
    /// many tiles then keeps crops of every tile, not the first tiles' crops as
    /// [`take`](Self::take) does. Other sources are cut like `take`.
    ///
    /// ```
    /// use prunus_data::{SegmentationData, SyntheticConfig};
    ///
    /// let data = SegmentationData::synthetic(SyntheticConfig::new().with_size(16), 0, 10);
    /// assert_eq!(data.spread(3).len(), 3);
    /// ```
    pub fn spread(&self, n: usize) -> Self {
        match self {
            Self::Grid { crops, places } if n < places.len() => Self::Grid {
                crops: crops.clone(),
                places: Arc::new(
                    (0..n)
                        .map(|i| places[i * places.len() / n.max(1)])
                        .collect(),
                ),
            },
            _ => self.take(n),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Self::Synthetic { len, .. } | Self::RandomCrops { len, .. } => *len,
            Self::Grid { places, .. } => places.len(),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `index`, read or generated.
    ///
    /// # Errors
    /// When a tile cannot be read (aerial sources), or `index` is out of range.
    pub fn sample(&self, index: usize) -> Result<Sample, DataError> {
        if index >= self.len() {
            return Err(DataError::Index {
                index,
                len: self.len(),
            });
        }
        match self {
            Self::Synthetic { config, first, .. } => Ok(generate(config, first + index as u64)),
            Self::RandomCrops { crops, seed, .. } => crops.random_crop(*seed, index as u64),
            Self::Grid { crops, places } => crops.read(places[index]),
        }
    }

    /// Samples `range` (clipped to the dataset) read and batched on `device`.
    ///
    /// # Errors
    /// When a sample cannot be read.
    pub fn batch(
        &self,
        range: std::ops::Range<usize>,
        device: &Device,
    ) -> Result<SegmentationBatch, DataError> {
        let samples = (range.start..range.end.min(self.len()))
            .map(|i| self.sample(i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SegmentationBatcher::batch_samples(&samples, device))
    }

    /// What the samples are, for reports: the source, the count and what picks them.
    ///
    /// ```
    /// use prunus_data::{SegmentationData, SyntheticConfig};
    ///
    /// let data = SegmentationData::synthetic(SyntheticConfig::new().with_size(32), 100, 50);
    /// assert_eq!(data.describe(), "50 synthetic 32×32 scenes (generator seed 0, scenes 100..150)");
    /// ```
    pub fn describe(&self) -> String {
        match self {
            Self::Synthetic { config, first, len } => format!(
                "{len} synthetic {s}×{s} scenes (generator seed {seed}, scenes {first}..{end})",
                s = config.size,
                seed = config.seed,
                end = first + *len as u64
            ),
            Self::RandomCrops { crops, seed, len } => format!(
                "{len} random {s}×{s} crops (seed {seed}) from {} {:?} tiles",
                crops.pairs().len(),
                crops.layout(),
                s = crops.crop_size()
            ),
            Self::Grid { crops, places } => format!(
                "{} {s}×{s} crops on a grid over {} {:?} tiles",
                places.len(),
                crops.pairs().len(),
                crops.layout(),
                s = crops.crop_size()
            ),
        }
    }

    /// Side of the samples in pixels.
    pub fn sample_size(&self) -> usize {
        match self {
            Self::Synthetic { config, .. } => config.size,
            Self::RandomCrops { crops, .. } | Self::Grid { crops, .. } => crops.crop_size(),
        }
    }

    /// A Burn data loader over this source.
    ///
    /// `shuffle` reorders the samples each epoch with that seed; `None` keeps their order.
    pub fn loader(
        &self,
        batch_size: usize,
        shuffle: Option<u64>,
        device: &Device,
    ) -> Arc<dyn DataLoader<SegmentationBatch>> {
        let builder = DataLoaderBuilder::new(SegmentationBatcher)
            .batch_size(batch_size.max(1))
            .set_device(device.clone());
        let builder = match shuffle {
            Some(seed) => builder.shuffle(seed),
            None => builder,
        };
        builder.build(self.clone())
    }
}

impl Dataset<Sample> for SegmentationData {
    fn get(&self, index: usize) -> Result<Sample, DatasetError> {
        self.sample(index).map_err(DatasetError::new)
    }

    fn len(&self) -> usize {
        SegmentationData::len(self)
    }
}
