//! Validation and test splits of whole aerial tiles: every tile segmented whole through the
//! seamless tiling and counted pixel by pixel, as a user's network will be used on them.

use std::fs;
use std::path::Path;

use burn::tensor::Device;
use prunus::data::{
    Layout, RgbImage, SegmentationData, Split, SyntheticConfig, Tiling, inria_pairs,
};
use prunus::models::{UNet, UNetConfig};
use prunus::{Error, SegmentationTask, Task, WholeTiles, predict_image};
use tiff::encoder::{TiffEncoder, colortype};

mod common;
use common::write_tile;

fn unet(device: &Device) -> UNet {
    device.seed(11);
    UNetConfig::standard(3, 1, 4, 2).init(device).unwrap()
}

/// `[tp, fp, fn, tn]` of one tile, counted here pixel by pixel.
fn counts_by_hand(net: &UNet, image: &Path, mask: &Path, device: &Device) -> [u64; 4] {
    let rgb = RgbImage::open(image).unwrap();
    let truth = RgbImage::open(mask).unwrap();
    let probs = predict_image(net, &rgb, Tiling::new(32, 8), 4, 3, device).unwrap();
    let mut c = [0u64; 4];
    for (i, p) in probs.iter().enumerate() {
        let (predicted, building) = (*p > 0.5, truth.data[i] > 0.5);
        let k = match (predicted, building) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        c[k] += 1;
    }
    c
}

#[test]
fn whole_tiles_are_measured_through_the_tiling_pixel_by_pixel() {
    let dir = tempfile::tempdir().unwrap();
    // Tiles 1–5 of a city are Inria's validation split; sizes that no window divides.
    write_tile(dir.path(), "austin1", 70, 45, 1);
    write_tile(dir.path(), "austin2", 50, 64, 2);
    write_tile(dir.path(), "austin9", 40, 40, 9); // training: not measured
    let device = Device::flex();
    let net = unet(&device);
    let pairs = inria_pairs(dir.path(), Split::Valid).unwrap();
    assert_eq!(pairs.len(), 2);
    let tiles = WholeTiles::new(Layout::Inria, pairs.clone(), Tiling::new(32, 8))
        .with_align(4)
        .with_batch(3);
    let m = tiles.measure(&net, &device).unwrap();

    let expected: Vec<[u64; 4]> = pairs
        .iter()
        .map(|p| counts_by_hand(&net, &p.image, &p.mask, &device))
        .collect();
    let got: Vec<[u64; 4]> = m
        .examples
        .as_ref()
        .unwrap()
        .counts
        .iter()
        .map(|c| [c[0] as u64, c[1] as u64, c[2] as u64, c[3] as u64])
        .collect();
    assert_eq!(got, expected);
    assert_eq!(expected[0].iter().sum::<u64>(), 70 * 45);
    assert_eq!(expected[1].iter().sum::<u64>(), 50 * 64);
    let [tp, fp, fn_, tn] = [0, 1, 2, 3].map(|k| (expected[0][k] + expected[1][k]) as f64);
    let iou = 100.0 * tp / (tp + fp + fn_);
    assert!(
        (m.metrics["IoU"] - iou).abs() < 1e-9,
        "{} vs {iou}",
        m.metrics["IoU"]
    );
    let accuracy = 100.0 * (tp + tn) / (tp + fp + fn_ + tn);
    assert!((m.metrics["pixel accuracy"] - accuracy).abs() < 1e-9);

    // Through the task: validation and test on whole tiles, the crops only for fine-tuning.
    let scenes = SyntheticConfig::new().with_size(32);
    let crops = SegmentationData::synthetic(scenes, 0, 4);
    let mut task = SegmentationTask::new(crops.clone(), crops)
        .with_whole_tiles(tiles.clone())
        .with_test_tiles(tiles);
    let valid = Task::<UNet>::measure(&mut task, &net, 2, &device).unwrap();
    assert_eq!(valid.metrics, m.metrics);
    let test = Task::<UNet>::measure_test(&mut task, &net, 2, &device).unwrap();
    assert_eq!(test.unwrap().metrics, m.metrics);
    let text = Task::<UNet>::describe(&task);
    assert!(
        text.contains("validation: 2 whole Inria tiles (first: austin1.tif)"),
        "{text}"
    );
    assert!(text.contains("test: 2 whole Inria tiles"), "{text}");
}

#[test]
fn a_mask_of_another_size_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_tile(dir.path(), "vienna3", 40, 36, 3);
    let gt = dir.path().join("AerialImageDataset/train/gt/vienna3.tif");
    TiffEncoder::new(fs::File::create(&gt).unwrap())
        .unwrap()
        .write_image::<colortype::Gray8>(36, 36, &[0u8; 36 * 36])
        .unwrap();
    let device = Device::flex();
    let tiles = WholeTiles::new(
        Layout::Inria,
        inria_pairs(dir.path(), Split::Valid).unwrap(),
        Tiling::new(32, 8),
    );
    let err = tiles.measure(&unet(&device), &device).unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err:?}");
    assert!(err.to_string().contains("vienna3.tif"), "{err}");
    // No tiles at all is an error, not a metric of nothing.
    let none = WholeTiles::new(Layout::Inria, Vec::new(), Tiling::new(32, 8));
    assert!(matches!(
        none.measure(&unet(&device), &device),
        Err(Error::EmptyData(_))
    ));
}
