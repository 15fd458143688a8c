//! Helpers for this crate's unit tests.

use burn::tensor::{Device, Distribution, Tensor};

/// A fresh random input in `[-1, 1)`.
pub(crate) fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

/// Asserts channel `c` of `y` is exactly 0 everywhere and some other value is not.
pub(crate) fn assert_channel_zero(y: &Tensor<4>, c: usize) {
    let [b, channels, h, w] = y.dims();
    let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
    let plane = h * w;
    for n in 0..b {
        for k in 0..channels {
            let start = (n * channels + k) * plane;
            let chunk = &values[start..start + plane];
            if k == c {
                assert!(
                    chunk.iter().all(|v| *v == 0.0),
                    "channel {c} is not exactly 0"
                );
            } else {
                assert!(
                    chunk.iter().any(|v| *v != 0.0),
                    "channel {k} is unexpectedly all 0"
                );
            }
        }
    }
}
