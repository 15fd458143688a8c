//! Training-mode BatchNorm, gate and ReLU after a convolution as one pass forward and two
//! backward, on NCHW planes: `y = relu(g · (γ · x̂ + β))` with `x̂ = (x − mean) / √(var + ε)`, the
//! batch's statistics per channel. Burn composes the same from a dozen tensor operations, with
//! channel-major copies of the activation for every mean (a sixth of a U-Net's training step).
//! Without BatchNorm the op is `y = relu(g · x)`.

use rayon::prelude::*;

/// Per-channel BatchNorm parameters and the batch's statistics.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    /// Scale γ.
    pub gamma: Vec<f32>,
    /// Shift β.
    pub beta: Vec<f32>,
    /// The batch's mean.
    pub mean: Vec<f32>,
    /// The batch's (biased) variance.
    pub var: Vec<f32>,
    /// ε.
    pub eps: f32,
}

impl Norm {
    fn inv_std(&self, c: usize) -> f32 {
        1.0 / (self.var[c] + self.eps).sqrt()
    }
}

/// Shape `[batch, channels, pixels]` of the activation.
pub(crate) type Dims = [usize; 3];

/// The planes `(n, c)` of channel `c`, for every image `n`.
fn planes(x: &[f32], [batch, channels, pixels]: Dims, c: usize) -> impl Iterator<Item = &[f32]> {
    (0..batch).map(move |n| &x[(n * channels + c) * pixels..][..pixels])
}

/// Each channel's mean and biased variance over the batch and the pixels (two passes, sums of
/// each plane in `f64`).
pub(crate) fn statistics(x: &[f32], dims: Dims) -> (Vec<f32>, Vec<f32>) {
    let [batch, channels, pixels] = dims;
    let count = (batch * pixels) as f64;
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = planes(x, dims, c)
                .map(|p| p.iter().sum::<f32>() as f64)
                .sum();
            let mean = sum / count;
            let m = mean as f32;
            let squares: f64 = planes(x, dims, c)
                .map(|p| p.iter().map(|v| (v - m) * (v - m)).sum::<f32>() as f64)
                .sum();
            (m, (squares / count) as f32)
        })
        .unzip()
}

/// Per channel `(a, b)` with `g · (γ · x̂ + β) = a · x + b`.
fn affine(norm: Option<&Norm>, gate: &[f32], c: usize) -> (f32, f32) {
    match norm {
        Some(n) => {
            let s = n.gamma[c] * n.inv_std(c);
            (gate[c] * s, gate[c] * (n.beta[c] - n.mean[c] * s))
        }
        None => (gate[c], 0.0),
    }
}

/// `y = act(a · x + b)` per channel.
pub(crate) fn forward(
    x: &[f32],
    dims: Dims,
    norm: Option<&Norm>,
    gate: &[f32],
    relu: bool,
) -> Vec<f32> {
    let [_, channels, pixels] = dims;
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_exact_mut(pixels)
        .zip(x.par_chunks_exact(pixels))
        .enumerate()
        .for_each(|(plane, (y, x))| {
            let (a, b) = affine(norm, gate, plane % channels);
            if relu {
                y.iter_mut()
                    .zip(x)
                    .for_each(|(y, x)| *y = (a * x + b).max(0.0));
            } else {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = a * x + b);
            }
        });
    y
}

/// Gradients of [`forward`]: `(dx, dγ, dβ, dg)` (`dγ`, `dβ` empty without BatchNorm).
pub(crate) struct Grads {
    pub dx: Vec<f32>,
    pub dgamma: Vec<f32>,
    pub dbeta: Vec<f32>,
    pub dgate: Vec<f32>,
}

/// The backward pass of [`forward`] from its input `x`, output `y` (for ReLU's mask) and output
/// gradient `dy`.
pub(crate) fn backward(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dims: Dims,
    norm: Option<&Norm>,
    gate: &[f32],
    relu: bool,
) -> Grads {
    let [batch, channels, pixels] = dims;
    let count = (batch * pixels) as f32;
    let dv = |y: f32, dy: f32| if relu && y <= 0.0 { 0.0 } else { dy };
    // Σ dv and Σ dv · x̂ per channel (x̂ = x without BatchNorm).
    let sums: Vec<(f32, f32)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let (m, s) = norm.map_or((0.0, 1.0), |n| (n.mean[c], n.inv_std(c)));
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            for ((x, y), dy) in planes(x, dims, c)
                .zip(planes(y, dims, c))
                .zip(planes(dy, dims, c))
            {
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for ((x, y), dy) in x.iter().zip(y).zip(dy) {
                    let d = dv(*y, *dy);
                    a += d;
                    b += d * (x - m) * s;
                }
                sum += a as f64;
                dot += b as f64;
            }
            (sum as f32, dot as f32)
        })
        .collect();
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_exact_mut(pixels)
        .zip(x.par_chunks_exact(pixels))
        .zip(y.par_chunks_exact(pixels))
        .zip(dy.par_chunks_exact(pixels))
        .enumerate()
        .for_each(|(plane, (((dx, x), y), dy))| {
            let c = plane % channels;
            let (sum, dot) = sums[c];
            match norm {
                Some(n) => {
                    let s = n.inv_std(c);
                    let k = gate[c] * n.gamma[c] * s;
                    let (mean_dv, mean_dot) = (sum / count, dot / count);
                    for (((dx, x), y), dy) in dx.iter_mut().zip(x).zip(y).zip(dy) {
                        let xhat = (x - n.mean[c]) * s;
                        *dx = k * (dv(*y, *dy) - mean_dv - xhat * mean_dot);
                    }
                }
                None => {
                    for ((dx, y), dy) in dx.iter_mut().zip(y).zip(dy) {
                        *dx = gate[c] * dv(*y, *dy);
                    }
                }
            }
        });
    let (mut dgamma, mut dbeta) = (Vec::new(), Vec::new());
    let dgate = match norm {
        Some(n) => (0..channels)
            .map(|c| {
                let (sum, dot) = sums[c];
                dgamma.push(gate[c] * dot);
                dbeta.push(gate[c] * sum);
                n.gamma[c] * dot + n.beta[c] * sum
            })
            .collect(),
        // Without BatchNorm x̂ is x, so `dot` is Σ dv · x.
        None => sums.iter().map(|&(_, dot)| dot).collect(),
    };
    Grads {
        dx,
        dgamma,
        dbeta,
        dgate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernel::tests::values;

    /// The loss `Σ w · y` at `x`, in f64, for finite differences.
    fn loss(x: &[f32], w: &[f32], dims: Dims, norm: Option<&Norm>, gate: &[f32]) -> f64 {
        let norm = norm.map(|n| {
            let (mean, var) = statistics(x, dims);
            Norm {
                mean,
                var,
                ..n.clone()
            }
        });
        forward(x, dims, norm.as_ref(), gate, true)
            .iter()
            .zip(w)
            .map(|(y, w)| (*y as f64) * (*w as f64))
            .sum()
    }

    #[test]
    fn statistics_and_output_match_the_definition() {
        let dims = [2, 3, 5];
        let x = values(30, 1);
        let (mean, var) = statistics(&x, dims);
        for c in 0..3 {
            let v: Vec<f32> = (0..2)
                .flat_map(|n| x[(n * 3 + c) * 5..][..5].to_vec())
                .collect();
            let m = v.iter().sum::<f32>() / 10.0;
            let s = v.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / 10.0;
            assert!((mean[c] - m).abs() < 1e-6 && (var[c] - s).abs() < 1e-6);
        }
        let norm = Norm {
            gamma: values(3, 2),
            beta: values(3, 3),
            mean,
            var,
            eps: 1e-5,
        };
        let gate = values(3, 4);
        let y = forward(&x, dims, Some(&norm), &gate, true);
        for (i, y) in y.iter().enumerate() {
            let c = (i / 5) % 3;
            let xhat = (x[i] - norm.mean[c]) / (norm.var[c] + 1e-5).sqrt();
            let want = (gate[c] * (norm.gamma[c] * xhat + norm.beta[c])).max(0.0);
            assert!((y - want).abs() < 1e-5);
        }
    }

    #[test]
    fn input_gradient_matches_finite_differences() {
        let dims = [2, 3, 4];
        let x = values(24, 5);
        let w = values(24, 6);
        let gate = values(3, 7);
        for with_norm in [true, false] {
            let (mean, var) = statistics(&x, dims);
            let norm = with_norm.then(|| Norm {
                gamma: values(3, 8),
                beta: values(3, 9),
                mean,
                var,
                eps: 1e-3,
            });
            let y = forward(&x, dims, norm.as_ref(), &gate, true);
            let grads = backward(&x, &y, &w, dims, norm.as_ref(), &gate, true);
            let h = 1e-3f32;
            for i in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let numeric = (loss(&up, &w, dims, norm.as_ref(), &gate)
                    - loss(&down, &w, dims, norm.as_ref(), &gate))
                    / (2.0 * h as f64);
                assert!(
                    (grads.dx[i] as f64 - numeric).abs() < 2e-3,
                    "norm {with_norm}, x[{i}]: {} vs {numeric}",
                    grads.dx[i]
                );
            }
        }
    }
}
