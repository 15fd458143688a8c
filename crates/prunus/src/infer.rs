//! Segmenting an image of any size by overlapping tiles.

use burn::tensor::{Device, Tensor, TensorData};
use prunus_data::{ImageReader, RgbImage, Tiling};

use crate::{Error, SegmentationModel};
use prunus_data::imagenet_normalize;

/// Building probabilities for every pixel of `image` (`height × width`, row-major).
///
/// `image` holds RGB values in `[0, 1]`, as [`RgbImage::open`] reads them; they are normalised
/// exactly as training normalises its batches ([`crate::SegmentationBatcher`]), so a model
/// trained by prunus sees what it saw in training. The image is cut into overlapping windows ([`Tiling`]); each window is padded by edge
/// replication up to a multiple of `align` (the network's total down-sampling: 2^depth for a
/// U-Net, 32 for a TernausNet; 32 is always safe), run through the network `batch` windows at a
/// time, and only its kept region is written out, so the result has no seams.
///
/// # Errors
/// When `image` is empty or its data does not match its size, or when `align` or `batch` is 0.
///
/// # Example
/// ```
/// use prunus::data::{RgbImage, Tiling};
/// use prunus::models::UNetConfig;
///
/// let device = prunus::device("flex").unwrap();
/// let unet = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
/// let (width, height) = (70, 45);
/// let data = (0..3 * width * height).map(|i| (i % 17) as f32 / 17.0).collect();
/// let image = RgbImage { width, height, data };
/// let probs = prunus::predict_image(&unet, &image, Tiling::new(32, 8), 4, 4, &device).unwrap();
/// assert_eq!(probs.len(), width * height);
/// ```
pub fn predict_image<M: SegmentationModel>(
    model: &M,
    image: &RgbImage,
    tiling: Tiling,
    align: usize,
    batch: usize,
    device: &Device,
) -> Result<Vec<f32>, Error> {
    let (w, h) = (image.width, image.height);
    if w == 0 || h == 0 || image.data.len() != 3 * w * h {
        return Err(Error::config(
            "image",
            format!(
                "an image of {w}×{h} pixels needs {} values, it has {}",
                3 * w * h,
                image.data.len()
            ),
        ));
    }
    let plane = w * h;
    let read = |y: usize, rows: usize| {
        let mut band = Vec::with_capacity(3 * rows * w);
        for k in 0..3 {
            band.extend_from_slice(&image.data[k * plane + y * w..][..rows * w]);
        }
        Ok(band)
    };
    let mut out = Vec::with_capacity(plane);
    predict_bands(
        model,
        [h, w],
        read,
        tiling,
        align,
        batch,
        device,
        |_, probs| {
            out.extend_from_slice(probs);
            Ok(())
        },
    )?;
    Ok(out)
}

/// Building probabilities for an image read band by band, handed to `emit` a band of whole rows
/// at a time, top to bottom: `emit(y, probs)` receives rows `y .. y + probs.len() / width`.
///
/// The same windows, padding and stitching as [`predict_image`] (the results are identical), but
/// the image is never held whole: only the rows one row of windows covers (`tiling.tile` rows,
/// `width × tile × 12` bytes as `f32` RGB) and their probabilities are in memory at once, plus the
/// network's activations for `batch` windows. `prunus infer` writes each band of a mask as it
/// comes ([`prunus_data::MaskWriter`]), so a 10000×10000 GeoTIFF is segmented in a few hundred MB.
///
/// # Errors
/// As [`predict_image`]; an error of `reader` (a file that cannot be decoded), or of `emit`.
///
/// # Example
/// ```
/// use prunus::data::{ImageReader, MaskWriter, Tiling, write_mask};
/// use prunus::models::UNetConfig;
///
/// let dir = std::env::temp_dir().join(format!("prunus-doc-rows-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let (input, output) = (dir.join("tile.tif"), dir.join("mask.tif"));
/// let pattern: Vec<bool> = (0..70 * 45).map(|i| i % 3 == 0).collect();
/// write_mask(&input, 70, 45, &pattern).unwrap();
///
/// let device = prunus::device("flex").unwrap();
/// let unet = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
/// let mut image = ImageReader::open(&input).unwrap();
/// let [height, width] = image.size();
/// let mut mask = MaskWriter::create(&output, width, height, None).unwrap();
/// prunus::predict_rows(&unet, &mut image, Tiling::new(32, 8), 4, 4, &device, |_, probs| {
///     let rows: Vec<bool> = probs.iter().map(|&p| p > 0.5).collect();
///     Ok(mask.write_rows(&rows)?)
/// })
/// .unwrap();
/// mask.finish().unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn predict_rows<M: SegmentationModel>(
    model: &M,
    reader: &mut ImageReader,
    tiling: Tiling,
    align: usize,
    batch: usize,
    device: &Device,
    emit: impl FnMut(usize, &[f32]) -> Result<(), Error>,
) -> Result<(), Error> {
    let size = reader.size();
    let read = |y, rows| reader.read_rows(y, rows).map_err(Error::from);
    predict_bands(model, size, read, tiling, align, batch, device, emit)
}

/// The windows of one row of [`Tiling`], as one band of the image: read its rows, run its
/// windows `batch` at a time, hand out the kept rows.
#[allow(clippy::too_many_arguments)]
fn predict_bands<M: SegmentationModel>(
    model: &M,
    [h, w]: [usize; 2],
    mut read: impl FnMut(usize, usize) -> Result<Vec<f32>, Error>,
    tiling: Tiling,
    align: usize,
    batch: usize,
    device: &Device,
    mut emit: impl FnMut(usize, &[f32]) -> Result<(), Error>,
) -> Result<(), Error> {
    if align == 0 || batch == 0 {
        return Err(Error::config("align, batch", "must be at least 1"));
    }
    if tiling.tile == 0 || tiling.overlap >= tiling.tile {
        return Err(Error::config(
            "tiling",
            format!(
                "a tile of {} pixels cannot overlap its neighbours by {}: the tile must be at \
                 least 1 pixel and larger than the overlap",
                tiling.tile, tiling.overlap
            ),
        ));
    }
    let model = model.valid();
    let tiles = tiling.tiles(w, h);
    // All windows have the same padded size: the tile clamped to the image, rounded up.
    let side = |len: usize| tiling.tile.min(len).div_ceil(align) * align;
    let (pw, ph) = (side(w), side(h));
    for row in tiles.chunk_by(|a, b| a.y == b.y) {
        let (y, rows) = (row[0].y, row[0].height);
        let [_, _, y0, y1] = row[0].keep;
        let band = read(y, rows)?;
        let mut out = vec![0.0f32; (y1 - y0) * w];
        for chunk in row.chunks(batch) {
            let mut data = Vec::with_capacity(chunk.len() * 3 * pw * ph);
            for t in chunk {
                for k in 0..3 {
                    for y in 0..ph {
                        // Edge replication: rows and columns past the window repeat its last ones.
                        let line = &band[(k * rows + y.min(t.height - 1)) * w..];
                        data.extend((0..pw).map(|x| line[t.x + x.min(t.width - 1)]));
                    }
                }
            }
            let x = Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), 3, ph, pw]), device);
            let x = imagenet_normalize(x);
            let probs = burn::tensor::activation::sigmoid(model.forward(x).narrow(1, 0, 1));
            let probs = probs
                .into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| Error::Training(format!("cannot read predictions: {e:?}")))?;
            for (i, t) in chunk.iter().enumerate() {
                let [x0, x1, ..] = t.keep;
                for y in y0..y1 {
                    let src = i * pw * ph + (y - t.y) * pw + (x0 - t.x);
                    let dst = (y - y0) * w;
                    out[dst + x0..dst + x1].copy_from_slice(&probs[src..src + (x1 - x0)]);
                }
            }
        }
        emit(y0, &out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SegmentationBatcher;
    use prunus_models::UNetConfig;

    /// One window covering the whole image gives what the network gives on a training batch of
    /// that image: the same normalisation, no shift, no flip.
    #[test]
    fn whole_image_prediction_matches_a_training_batch() {
        let device = Device::flex();
        let unet = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
        let scene = prunus_data::generate(&prunus_data::SyntheticConfig::new().with_size(32), 7);
        let batch = SegmentationBatcher::batch_samples(std::slice::from_ref(&scene), &device);
        let expected = burn::tensor::activation::sigmoid(unet.forward(batch.images))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let image = RgbImage {
            width: 32,
            height: 32,
            data: scene.image,
        };
        let got = predict_image(&unet, &image, Tiling::new(32, 0), 4, 1, &device).unwrap();
        let diff = expected
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "max abs difference {diff}");
    }

    /// Band by band from a file (a TIFF in strips of 5 rows, a PNG read row by row), the
    /// probabilities are those of the whole image in memory, bit for bit, for tilings whose bands
    /// overlap, do not, or cover the image at once; the bands come top to bottom, whole rows.
    #[test]
    fn rows_band_by_band_equal_the_whole_image() {
        let device = Device::flex();
        let unet = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (83, 61);
        let pixels: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i as u64 * 2_654_435_761) % 251) as u8)
            .collect();
        let tif = dir.path().join("tile.tif");
        let mut encoder =
            tiff::encoder::TiffEncoder::new(std::fs::File::create(&tif).unwrap()).unwrap();
        let mut image = encoder
            .new_image::<tiff::encoder::colortype::RGB8>(w as u32, h as u32)
            .unwrap();
        image.rows_per_strip(5).unwrap();
        image.write_data(&pixels).unwrap();
        let png = dir.path().join("tile.png");
        prunus_data::write_png(&png, w, h, 3, &pixels).unwrap();
        for path in [&tif, &png] {
            let whole = RgbImage::open(path).unwrap();
            for tiling in [Tiling::new(32, 8), Tiling::new(24, 0), Tiling::new(128, 16)] {
                let expected = predict_image(&unet, &whole, tiling, 4, 3, &device).unwrap();
                let mut reader = ImageReader::open(path).unwrap();
                let (mut got, mut next) = (Vec::new(), 0);
                predict_rows(&unet, &mut reader, tiling, 4, 3, &device, |y, probs| {
                    assert_eq!((y, probs.len() % w), (next, 0));
                    next += probs.len() / w;
                    got.extend_from_slice(probs);
                    Ok(())
                })
                .unwrap();
                assert_eq!(next, h);
                assert!(got == expected, "{} {tiling:?}", path.display());
            }
        }
    }
}
