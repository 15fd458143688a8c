//! Inria Aerial Image Labeling and AIRS on disk: file pairs, splits, and crops.
//!
//! - **Inria**: `AerialImageDataset/train/images/<city><n>.tif` with `train/gt/<same name>`;
//!   masks are 255 (building) or 0. The standard validation split is `n = 1..=5` of each city;
//!   tiles `n = 6..=8` of each city are a held-out test split (for a pruning search, which picks
//!   its network on the validation tiles), and training has `n ≥ 9`. `test/` has no labels and is
//!   not listed.
//! - **AIRS**: `{train,val,test}/image/*.tif` with `{…}/label/<same name>`; labels are 1 (roof) or
//!   0; files ending `_vis.tif` are visualisations and are skipped.
//!
//! Training draws random crops of a fixed size; validation covers every tile with a deterministic
//! grid of crops (the last row and column flush with the tile's edge). Only the chunks a crop
//! touches are decoded (see [`Raster`](crate::Raster)).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::image::RgbImage;
use crate::raster::Raster;
use crate::rng::Rng;
use crate::synthetic::Scene;

/// Which on-disk layout a dataset folder has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Inria Aerial Image Labeling: masks 0/255.
    Inria,
    /// AIRS: labels 0/1.
    Airs,
}

/// Training, validation or test part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training tiles.
    Train,
    /// The validation tiles.
    Valid,
    /// Labelled tiles held out from both (AIRS's `test/`, Inria's tiles 6–8 of each city).
    Test,
}

/// An image and its mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilePair {
    /// The RGB image.
    pub image: PathBuf,
    /// The building mask.
    pub mask: PathBuf,
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn missing(path: &Path, what: &str) -> DataError {
    io_error(
        path,
        std::io::Error::new(std::io::ErrorKind::NotFound, what.to_string()),
    )
}

/// The `.tif`/`.tiff` files of a folder, sorted by name.
fn tiffs(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.is_dir() {
        return Err(missing(dir, "folder not found"));
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("tif" | "tiff")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn pair_with(images: Vec<PathBuf>, masks: &Path) -> Result<Vec<TilePair>, DataError> {
    images
        .into_iter()
        .map(|image| {
            let mask = masks.join(image.file_name().expect("listed files have names"));
            if mask.is_file() {
                Ok(TilePair { image, mask })
            } else {
                Err(missing(&image, &format!("no mask at {}", mask.display())))
            }
        })
        .collect()
}

/// The number at the end of an Inria tile's name (`austin12.tif` → 12).
fn inria_number(path: &Path) -> Option<u32> {
    let stem = path.file_stem()?.to_str()?;
    let digits = stem.trim_start_matches(|c: char| !c.is_ascii_digit());
    digits.parse().ok()
}

/// The tile pairs of an Inria folder (`AerialImageDataset` itself or the folder holding it).
///
/// # Errors
/// When a folder is missing or an image has no mask.
pub fn inria_pairs(root: impl AsRef<Path>, split: Split) -> Result<Vec<TilePair>, DataError> {
    let root = root.as_ref();
    let base = if root.join("AerialImageDataset").is_dir() {
        root.join("AerialImageDataset")
    } else {
        root.to_path_buf()
    };
    let train = base.join("train");
    let images = tiffs(&train.join("images"))?
        .into_iter()
        .filter(|p| {
            let of = match inria_number(p) {
                Some(1..=5) => Split::Valid,
                Some(6..=8) => Split::Test,
                _ => Split::Train,
            };
            of == split
        })
        .collect();
    pair_with(images, &train.join("gt"))
}

/// The tile pairs of an AIRS folder: `train/` for training, `val/` for validation, `test/` for
/// the test split.
///
/// # Errors
/// When a folder is missing or an image has no label.
pub fn airs_pairs(root: impl AsRef<Path>, split: Split) -> Result<Vec<TilePair>, DataError> {
    let part = root.as_ref().join(match split {
        Split::Train => "train",
        Split::Valid => "val",
        Split::Test => "test",
    });
    let images = tiffs(&part.join("image"))?
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with("_vis.tif"))
        .collect();
    pair_with(images, &part.join("label"))
}

/// Crops of a fixed size from a set of tile pairs.
#[derive(Debug, Clone)]
pub struct AerialCrops {
    layout: Layout,
    pairs: Vec<TilePair>,
    crop: usize,
}

/// One crop's place: which pair, and its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropAt {
    /// Index of the tile pair.
    pub pair: usize,
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
}

impl AerialCrops {
    /// Crops of `crop × crop` pixels from `pairs` of the given layout.
    pub fn new(layout: Layout, pairs: Vec<TilePair>, crop: usize) -> Self {
        Self {
            layout,
            pairs,
            crop,
        }
    }

    /// Side of every crop in pixels.
    pub fn crop_size(&self) -> usize {
        self.crop
    }

    /// The dataset's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The dataset's tile pairs.
    pub fn pairs(&self) -> &[TilePair] {
        &self.pairs
    }

    /// The crop at `at`: RGB in `[0, 1]` channels first, and the mask as 0/1.
    ///
    /// # Errors
    /// When a file cannot be read, image and mask differ in size, the crop does not fit, or a
    /// mask holds a value other than the layout's two.
    pub fn read(&self, at: CropAt) -> Result<Scene, DataError> {
        let c = self.crop;
        let (image, mask) = self.read_window(at.pair, Some([at.x, at.y, c, c]))?;
        Ok(Scene {
            size: c,
            image: image.data,
            mask,
        })
    }

    /// Tile `pair` whole: its image (RGB in `[0, 1]`) and its mask as 0/1, row-major — what
    /// `prunus::predict_image` segments through the seamless tiling.
    ///
    /// # Errors
    /// As [`AerialCrops::read`]; a tile larger than [`Raster::max_pixels`] is
    /// [`DataError::TooLarge`].
    pub fn read_tile(&self, pair: usize) -> Result<(RgbImage, Vec<u8>), DataError> {
        if pair >= self.pairs.len() {
            let what = format!("there is no tile {pair} of {}", self.pairs.len());
            return Err(missing(Path::new("."), &what));
        }
        self.read_window(pair, None)
    }

    /// The window `[x, y, width, height]` of tile `pair` (`None`: the whole tile), after
    /// checking that image and mask agree: its RGB image, and its mask as 0/1.
    fn read_window(
        &self,
        pair: usize,
        window: Option<[usize; 4]>,
    ) -> Result<(RgbImage, Vec<u8>), DataError> {
        let pair = &self.pairs[pair];
        let mut image = Raster::open(&pair.image)?;
        let mut mask = Raster::open(&pair.mask)?;
        if image.size() != mask.size() {
            return Err(DataError::Format {
                path: pair.mask.clone(),
                reason: format!(
                    "mask is {:?} but its image {} is {:?} (height, width)",
                    mask.size(),
                    pair.image.display(),
                    image.size()
                ),
            });
        }
        if mask.channels() != 1 {
            return Err(DataError::Format {
                path: pair.mask.clone(),
                reason: format!("a mask must have one band, found {}", mask.channels()),
            });
        }
        let [height, width] = image.size();
        let [x, y, w, h] = window.unwrap_or([0, 0, width, height]);
        let rgb = image.read_window_rgb(x, y, w, h)?;
        let raw = mask.read_window_raw(x, y, w, h)?;
        let building = match self.layout {
            Layout::Inria => 255,
            Layout::Airs => 1,
        };
        let mask = raw
            .iter()
            .map(|&v| match v {
                0 => Ok(0),
                v if v == building => Ok(1),
                v => Err(DataError::Format {
                    path: pair.mask.clone(),
                    reason: format!("mask value {v} is neither 0 nor {building}"),
                }),
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let image = RgbImage {
            width: w,
            height: h,
            data: rgb,
        };
        Ok((image, mask))
    }

    /// Crop `index` of a random stream with `seed`: a random tile, a random place in it.
    ///
    /// # Errors
    /// As [`AerialCrops::read`], and when the crop is larger than the tile or there are no tiles.
    pub fn random_crop(&self, seed: u64, index: u64) -> Result<Scene, DataError> {
        let mut rng = Rng::for_item(seed, index);
        if self.pairs.is_empty() {
            return Err(missing(Path::new("."), "the dataset has no tiles"));
        }
        let pair = rng.below(self.pairs.len());
        let [h, w] = Raster::open(&self.pairs[pair].image)?.size();
        if self.crop > h || self.crop > w {
            return Err(self.too_large(pair, [h, w]));
        }
        let x = rng.below(w - self.crop + 1);
        let y = rng.below(h - self.crop + 1);
        self.read(CropAt { pair, x, y })
    }

    fn too_large(&self, pair: usize, [h, w]: [usize; 2]) -> DataError {
        DataError::Window {
            path: self.pairs[pair].image.clone(),
            x: 0,
            y: 0,
            width: self.crop,
            height: self.crop,
            image_width: w,
            image_height: h,
        }
    }

    /// The deterministic grid of crops that covers every tile: steps of the crop size, the last
    /// row and column flush with the tile's edge.
    ///
    /// # Errors
    /// When a tile cannot be opened or is smaller than the crop.
    pub fn grid(&self) -> Result<Vec<CropAt>, DataError> {
        let mut out = Vec::new();
        for pair in 0..self.pairs.len() {
            let [h, w] = Raster::open(&self.pairs[pair].image)?.size();
            if self.crop > h || self.crop > w {
                return Err(self.too_large(pair, [h, w]));
            }
            let starts = |side: usize| {
                let mut s: Vec<usize> = (0..=side - self.crop).step_by(self.crop).collect();
                if s.last() != Some(&(side - self.crop)) {
                    s.push(side - self.crop);
                }
                s
            };
            for y in starts(h) {
                for x in starts(w) {
                    out.push(CropAt { pair, x, y });
                }
            }
        }
        Ok(out)
    }
}
