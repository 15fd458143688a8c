//! Max-pooling on NCHW planes, for inference.
//!
//! Burn's Flex max-pool runs a scalar loop with an index division per element: in a pruned
//! U-Net it took as long as the convolutions around it (4.2 ms for a 16 × 256² input, where
//! reading it once takes a tenth of that). Here every output row is the maximum of whole input
//! rows, pairwise along `x` for the usual 2×2 window at stride 2 — loops the compiler
//! vectorises — and the planes run in parallel.

use rayon::prelude::*;

/// Window and stride of a max-pool without padding or dilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolGeometry {
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
}

impl PoolGeometry {
    /// Output `[height, width]` (windows that fit whole), `None` when none fits.
    pub fn output(&self) -> Option<[usize; 2]> {
        let side = |size: usize, k: usize, s: usize| {
            (k > 0 && s > 0 && size >= k).then(|| (size - k) / s + 1)
        };
        Some([
            side(self.input[0], self.kernel[0], self.stride[0])?,
            side(self.input[1], self.kernel[1], self.stride[1])?,
        ])
    }
}

/// The maximum of every window of every plane of `x` (`planes` planes of `input`), as
/// `[planes, oh, ow]`.
///
/// # Panics
/// When `x` does not hold `planes` planes or no window fits.
pub(crate) fn max_pool2d(x: &[f32], planes: usize, g: &PoolGeometry) -> Vec<f32> {
    let [h, w] = g.input;
    let [oh, ow] = g.output().expect("the window fits the input");
    assert_eq!(x.len(), planes * h * w, "input length");
    let mut out = vec![0.0f32; planes * oh * ow];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(out, plane)| plane_max(plane, g, out));
    out
}

/// One plane.
fn plane_max(plane: &[f32], g: &PoolGeometry, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { plane_max_avx2(plane, g, out) };
        return;
    }
    plane_max_body(plane, g, out);
}

/// [`plane_max`] built for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn plane_max_avx2(plane: &[f32], g: &PoolGeometry, out: &mut [f32]) {
    plane_max_body(plane, g, out);
}

/// The 2×2 maxima at stride 2 of two rows `r0`, `r1` into `out` (`r0.len() / 2` of them).
pub(crate) fn max_pool_pair(r0: &[f32], r1: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { pair_max_avx2(r0, r1, out) };
        return;
    }
    pair_max_body(r0, r1, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pair_max_avx2(r0: &[f32], r1: &[f32], out: &mut [f32]) {
    pair_max_body(r0, r1, out);
}

#[inline(always)]
fn pair_max_body(r0: &[f32], r1: &[f32], out: &mut [f32]) {
    for ((o, a), b) in out
        .iter_mut()
        .zip(r0.chunks_exact(2))
        .zip(r1.chunks_exact(2))
    {
        *o = a[0].max(a[1]).max(b[0].max(b[1]));
    }
}

#[inline(always)]
fn plane_max_body(plane: &[f32], g: &PoolGeometry, out: &mut [f32]) {
    let [_, w] = g.input;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [_, ow] = g.output().expect("checked by max_pool2d");
    for (y, out) in out.chunks_exact_mut(ow).enumerate() {
        let row = |ky: usize| &plane[(y * sh + ky) * w..(y * sh + ky + 1) * w];
        if [kh, kw, sh, sw] == [2, 2, 2, 2] {
            pair_max_body(row(0), row(1), out);
            continue;
        }
        out.fill(f32::NEG_INFINITY);
        for ky in 0..kh {
            let r = row(ky);
            for kx in 0..kw {
                for (x, o) in out.iter_mut().enumerate() {
                    *o = o.max(r[x * sw + kx]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernel::tests::values;

    fn naive(x: &[f32], planes: usize, g: &PoolGeometry) -> Vec<f32> {
        let [h, w] = g.input;
        let [oh, ow] = g.output().unwrap();
        let mut out = Vec::new();
        for p in 0..planes {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut m = f32::NEG_INFINITY;
                    for ky in 0..g.kernel[0] {
                        for kx in 0..g.kernel[1] {
                            let (iy, ix) = (y * g.stride[0] + ky, xo * g.stride[1] + kx);
                            m = m.max(x[(p * h + iy) * w + ix]);
                        }
                    }
                    out.push(m);
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_for_even_and_odd_sizes_and_other_windows() {
        for (input, kernel, stride) in [
            ([8, 8], [2, 2], [2, 2]),
            ([9, 7], [2, 2], [2, 2]),
            ([10, 13], [3, 3], [2, 2]),
            ([6, 9], [3, 2], [1, 3]),
            ([2, 2], [2, 2], [2, 2]),
        ] {
            let g = PoolGeometry {
                input,
                kernel,
                stride,
            };
            let planes = 5;
            let x = values(planes * input[0] * input[1], 7);
            assert_eq!(max_pool2d(&x, planes, &g), naive(&x, planes, &g), "{g:?}");
        }
        let none = PoolGeometry {
            input: [1, 4],
            kernel: [2, 2],
            stride: [2, 2],
        };
        assert_eq!(none.output(), None);
    }
}
