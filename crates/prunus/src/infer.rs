//! Segmenting an image of any size by overlapping tiles.

use burn::tensor::{Device, Tensor, TensorData};
use prunus_data::{RgbImage, Tiling};

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
    let mut out = vec![0.0f32; w * h];
    let plane = w * h;
    for chunk in tiles.chunks(batch) {
        let mut data = Vec::with_capacity(chunk.len() * 3 * pw * ph);
        for t in chunk {
            for k in 0..3 {
                for y in 0..ph {
                    // Edge replication: rows and columns past the window repeat its last ones.
                    let iy = t.y + y.min(t.height - 1);
                    let row = &image.data[k * plane + iy * w..];
                    data.extend((0..pw).map(|x| row[t.x + x.min(t.width - 1)]));
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
            let [x0, x1, y0, y1] = t.keep;
            for y in y0..y1 {
                let src = i * pw * ph + (y - t.y) * pw + (x0 - t.x);
                out[y * w + x0..y * w + x1].copy_from_slice(&probs[src..src + (x1 - x0)]);
            }
        }
    }
    Ok(out)
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
}
