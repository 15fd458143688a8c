//! Validation and test splits of whole aerial tiles, measured through the seamless tiling.

use burn::tensor::Device;
use prunus_data::{AerialCrops, Confusion, Layout, TilePair, Tiling};

use crate::error::Error;
use crate::infer::predict_image;
use crate::measure::{Examples, Measurement};
use crate::train::SegmentationModel;

/// Whole tiles of an aerial dataset (Inria, AIRS), measured the way a trained network is used
/// on them: each tile segmented whole by [`predict_image`] — overlapping windows, edge padding,
/// no seams — and compared with its whole mask. Each tile is one example of the bootstrap
/// intervals. Give it to
/// [`SegmentationTask::with_whole_tiles`](crate::SegmentationTask::with_whole_tiles) or
/// [`with_test_tiles`](crate::SegmentationTask::with_test_tiles).
///
/// One tile is held at a time: an Inria tile (5000²) needs about 0.5 GB while it is measured —
/// its RGB values as f32 (300 MB), the probabilities (100 MB), the mask and the two masks of
/// booleans compared.
///
/// # Example
/// ```no_run
/// use prunus::data::{Layout, Split, Tiling, inria_pairs};
/// use prunus::{SegmentationData, SegmentationTask, WholeTiles};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = "AerialImageDataset";
/// let valid = WholeTiles::new(Layout::Inria, inria_pairs(root, Split::Valid)?, Tiling::new(512, 64));
/// let test = WholeTiles::new(Layout::Inria, inria_pairs(root, Split::Test)?, Tiling::new(512, 64));
/// # let train = SegmentationData::synthetic(prunus::data::SyntheticConfig::new(), 0, 1);
/// # let crops = train.clone();
/// let task = SegmentationTask::new(train, crops)
///     .with_whole_tiles(valid)
///     .with_test_tiles(test);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WholeTiles {
    tiles: AerialCrops,
    tiling: Tiling,
    align: usize,
    batch: usize,
}

impl WholeTiles {
    /// The tiles `pairs` of `layout` (its mask values: Inria 0/255, AIRS 0/1), segmented in
    /// windows of `tiling`; windows padded to a multiple of 32 pixels (every U-Net of depth ≤ 5
    /// and TernausNet), 4 windows a batch.
    pub fn new(layout: Layout, pairs: Vec<TilePair>, tiling: Tiling) -> Self {
        Self {
            tiles: AerialCrops::new(layout, pairs, tiling.tile),
            tiling,
            align: 32,
            batch: 4,
        }
    }

    /// Windows padded to a multiple of `align` pixels (the network's total down-sampling).
    pub fn with_align(mut self, align: usize) -> Self {
        self.align = align;
        self
    }

    /// `batch` windows a forward pass.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// The windows.
    pub fn tiling(&self) -> Tiling {
        self.tiling
    }

    /// Number of tiles.
    pub fn len(&self) -> usize {
        self.tiles.pairs().len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `12 whole Inria tiles (first: austin1.tif), windows of 512 px overlapping by 64`.
    pub fn describe(&self) -> String {
        let first = self
            .tiles
            .pairs()
            .first()
            .and_then(|p| p.image.file_name())
            .map(|n| format!(" (first: {})", n.to_string_lossy()))
            .unwrap_or_default();
        format!(
            "{} whole {:?} tiles{first}, windows of {} px overlapping by {}",
            self.len(),
            self.tiles.layout(),
            self.tiling.tile,
            self.tiling.overlap
        )
    }

    /// Every segmentation metric of `model` over the tiles, each tile's confusion counts kept
    /// for the bootstrap. A pixel is a building when its probability is above 0.5 (its logit
    /// above 0, as on crops).
    ///
    /// # Errors
    /// [`Error::EmptyData`] without tiles; a tile that cannot be read ([`Error::Data`], naming
    /// the file); a bad tiling, alignment or batch ([`Error::Config`]).
    pub fn measure<M: SegmentationModel>(
        &self,
        model: &M,
        device: &Device,
    ) -> Result<Measurement, Error> {
        if self.is_empty() {
            return Err(Error::EmptyData("whole-tile"));
        }
        let mut images = Vec::with_capacity(self.len());
        for pair in 0..self.len() {
            let (image, mask) = self.tiles.read_tile(pair)?;
            let probs = predict_image(model, &image, self.tiling, self.align, self.batch, device)?;
            let predicted: Vec<bool> = probs.iter().map(|&p| p > 0.5).collect();
            let truth: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
            let mut c = Confusion::default();
            c.add(&predicted, &truth);
            images.push([c.tp, c.fp, c.fn_, c.tn]);
        }
        Ok(Measurement::from_examples(Examples::segmentation(images)))
    }
}
