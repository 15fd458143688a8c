//! Helpers shared by the top-level tests.
#![allow(dead_code)]

use burn::tensor::{Device, Distribution, Tensor};

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
