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

/// Sets a layer's gates and BatchNorm to something other than their initial values: random
/// gates (the first one 0), statistics and affine parameters away from 0 and 1.
pub(crate) fn trained_like(
    gate: &mut Option<burn::module::Param<Tensor<1>>>,
    norm: Option<&mut burn::nn::BatchNorm>,
    out: usize,
    device: &Device,
) {
    use burn::module::{Param, RunningState};
    let vector =
        |low: f64, high: f64| Tensor::<1>::random([out], Distribution::Uniform(low, high), device);
    let g = vector(-1.5, 1.5).slice_assign(0..1, Tensor::zeros([1], device));
    *gate = Some(Param::from_tensor(g));
    if let Some(norm) = norm {
        norm.gamma = Param::from_tensor(vector(0.5, 2.0));
        norm.beta = Param::from_tensor(vector(-1.0, 1.0));
        norm.running_mean = RunningState::new(vector(-0.5, 0.5));
        norm.running_var = RunningState::new(vector(0.2, 3.0));
    }
}
