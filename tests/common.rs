//! Helpers shared by the top-level tests.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use burn::tensor::{Device, Distribution, Tensor};
use tiff::encoder::{TiffEncoder, colortype};

/// A fresh random tensor in `[-1, 1)`.
pub fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

/// The wgpu device, or `None` (with a note) where no adapter exists outside CI.
///
/// Under CI (`CI=true`) the wgpu tests must run, so a missing adapter fails the test there.
pub fn wgpu_device() -> Option<Device> {
    let device = prunus::device("wgpu").expect("prunus is built with wgpu");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        probe(&device);
        return Some(device);
    }
    let found = std::panic::catch_unwind(|| probe(&device)).is_ok();
    if !found {
        eprintln!("skipping: no wgpu adapter on this machine (install mesa-vulkan-drivers)");
    }
    found.then_some(device)
}

fn probe(device: &Device) {
    let x = Tensor::<1>::from_floats([1.0, 2.0], device);
    assert_eq!(x.sum().into_scalar::<f32>(), 3.0);
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let a = a.into_data().try_to_vec::<f32>().unwrap();
    let b = b.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A value in 0..=255 that changes irregularly with the place and the seed.
pub fn noise(x: usize, y: usize, seed: usize) -> u8 {
    let h = (x * 73_856_093) ^ (y * 19_349_663) ^ (seed * 83_492_791);
    (h.wrapping_mul(2_654_435_761) >> 7) as u8
}

/// Inria tile `name` under `root`: an RGB8 TIFF of irregular values and a 0/255 mask of
/// blocky buildings.
pub fn write_tile(root: &Path, name: &str, w: usize, h: usize, seed: usize) {
    let base = root.join("AerialImageDataset/train");
    fs::create_dir_all(base.join("images")).unwrap();
    fs::create_dir_all(base.join("gt")).unwrap();
    let rgb: Vec<u8> = (0..w * h * 3)
        .map(|i| noise(i / 3 % w, i / 3 / w, seed * 3 + i % 3))
        .collect();
    let mask: Vec<u8> = (0..w * h)
        .map(|i| {
            if noise(i % w / 6, i / w / 6, seed) > 180 {
                255
            } else {
                0
            }
        })
        .collect();
    let file = |p: &str| fs::File::create(base.join(p)).unwrap();
    TiffEncoder::new(file(&format!("images/{name}.tif")))
        .unwrap()
        .write_image::<colortype::RGB8>(w as u32, h as u32, &rgb)
        .unwrap();
    TiffEncoder::new(file(&format!("gt/{name}.tif")))
        .unwrap()
        .write_image::<colortype::Gray8>(w as u32, h as u32, &mask)
        .unwrap();
}
