//! Gradients of [`super::kernel::conv2d`] (without its epilogue): with `cols` the band's column
//! matrix and `dz` the output gradient,
//!
//! - weight: `dW [out, in·kh·kw] = Σ dz [out, pixels] · colsᵀ [pixels, in·kh·kw]`;
//! - input: `dcols = Wᵀ · dz`, scattered back onto the input (`col2im`).
//!
//! Both are matrix products per band of output rows, as the forward pass. Burn's default weight
//! gradient is a convolution of the input by the output gradient (batch as channels, the whole
//! output as kernel), which its Flex backend runs as a direct loop: half of a U-Net's training
//! step.

use gemm::Parallelism;
use rayon::prelude::*;

use super::kernel::{ConvGeometry, bands, im2col, with_scratch};

/// `∂L/∂weight` (`[out, in, kh, kw]`) from the input `x` and the output gradient `dz`.
///
/// Each (image, band) task adds its product onto its thread's own accumulator, and the
/// accumulators are summed at the end: the product's output is small (`out × in·kh·kw`) and its
/// inner dimension long (the band's pixels), so splitting the product itself would leave threads
/// idle — unless there are too few tasks to share out.
pub(crate) fn conv2d_weight_grad(x: &[f32], dz: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let [h, w] = g.input;
    let [oh, ow] = g.output().expect("the kernel fits the padded input");
    let (k, pixels) = (g.depth(), oh * ow);
    let (rows_per_band, count) = bands(g);
    let size = g.out_channels * k;
    let threads = rayon::current_num_threads().max(1);
    let tasks = g.batch * count;
    // Too few tasks to share out: one accumulator, the products themselves in parallel.
    let parallelism = if tasks < 2 * threads {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let task = |mut dw: Vec<f32>, task: usize| {
        let (image, b) = (task / count, task % count);
        let x = &x[image * g.in_channels * h * w..(image + 1) * g.in_channels * h * w];
        let dz = &dz[image * g.out_channels * pixels..(image + 1) * g.out_channels * pixels];
        let rows = b * rows_per_band..((b + 1) * rows_per_band).min(oh);
        let n = rows.len() * ow;
        with_scratch(k * n, |cols| {
            im2col(x, g, rows.clone(), cols);
            // SAFETY: dst dW [out, k] row-major; lhs the band of dz, [out, n] with rows
            // `pixels` apart; rhs colsᵀ [n, k] read from cols [k, n]; all in bounds.
            unsafe {
                gemm::gemm(
                    g.out_channels,
                    k,
                    n,
                    dw.as_mut_ptr(),
                    1,
                    k as isize,
                    true,
                    dz.as_ptr().add(rows.start * ow),
                    1,
                    pixels as isize,
                    cols.as_ptr(),
                    n as isize,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        });
        dw
    };
    if tasks < 2 * threads {
        return (0..tasks).fold(vec![0.0f32; size], task);
    }
    (0..tasks)
        .into_par_iter()
        .fold(|| vec![0.0f32; size], task)
        .reduce(
            || vec![0.0f32; size],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// `∂L/∂x` (`[batch, in, h, w]`) from the weight and the output gradient `dz`.
///
/// At stride 1 this is itself a convolution — of `dz` by the weight flipped in space, input and
/// output channels swapped, with padding `k − 1 − p` — and the forward kernel (Winograd where it
/// applies) computes it; a U-Net's or TernausNet's up-sampling is computed directly
/// ([`super::up`]); otherwise products per band and `col2im`.
pub(crate) fn conv2d_input_grad(weight: &[f32], dz: &[f32], g: &ConvGeometry) -> Vec<f32> {
    if let Some((flipped, transposed)) = as_convolution(weight, g) {
        return super::kernel::conv2d(dz, &flipped, &transposed, &Default::default());
    }
    if super::up::applies(g) {
        return super::up::conv_transpose_up(dz, weight, g, &Default::default());
    }
    conv2d_input_grad_products(weight, dz, g)
}

/// [`conv2d_input_grad`] by products per band and `col2im`, whatever the geometry.
pub(crate) fn conv2d_input_grad_products(weight: &[f32], dz: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let [h, w] = g.input;
    let [oh, ow] = g.output().expect("the kernel fits the padded input");
    let (k, pixels) = (g.depth(), oh * ow);
    let (rows_per_band, count) = bands(g);
    let threads = rayon::current_num_threads().max(1);
    let image_len = g.in_channels * h * w;
    let mut dx = vec![0.0f32; g.batch * image_len];
    let image = |dx: &mut [f32], dz: &[f32], parallelism: Parallelism| {
        for b in 0..count {
            let rows = b * rows_per_band..((b + 1) * rows_per_band).min(oh);
            let n = rows.len() * ow;
            with_scratch(k * n, |dcols| {
                // SAFETY: dst dcols [k, n] row-major; lhs Wᵀ [k, out] read from W [out, k];
                // rhs the band of dz, [out, n] with rows `pixels` apart; all in bounds.
                unsafe {
                    gemm::gemm(
                        k,
                        n,
                        g.out_channels,
                        dcols.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        weight.as_ptr(),
                        k as isize,
                        1,
                        dz.as_ptr().add(rows.start * ow),
                        1,
                        pixels as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        parallelism,
                    );
                }
                col2im(dcols, g, rows.clone(), dx);
            });
        }
    };
    let dz_images = dz.chunks_exact(g.out_channels * pixels);
    if g.batch >= threads {
        dx.par_chunks_exact_mut(image_len)
            .zip(dz_images.collect::<Vec<_>>())
            .for_each(|(dx, dz)| image(dx, dz, Parallelism::None));
    } else {
        for (dx, dz) in dx.chunks_exact_mut(image_len).zip(dz_images) {
            image(dx, dz, Parallelism::Rayon(threads));
        }
    }
    dx
}

/// The stride-1 input gradient as a convolution: the weight `[in, out, kh, kw]` flipped in space
/// and the geometry from `dz` to `x`; `None` at other strides or padding wider than the kernel.
fn as_convolution(weight: &[f32], g: &ConvGeometry) -> Option<(Vec<f32>, ConvGeometry)> {
    let [kh, kw] = g.kernel;
    let [pt, pl, pb, pr] = g.padding;
    if g.stride != [1, 1] || pt >= kh || pb >= kh || pl >= kw || pr >= kw {
        return None;
    }
    let (o, c) = (g.out_channels, g.in_channels);
    let mut flipped = vec![0.0f32; weight.len()];
    for oc in 0..o {
        for ic in 0..c {
            let src = &weight[(oc * c + ic) * kh * kw..][..kh * kw];
            let dst = &mut flipped[(ic * o + oc) * kh * kw..][..kh * kw];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    let transposed = ConvGeometry {
        batch: g.batch,
        in_channels: o,
        input: g.output()?,
        out_channels: c,
        kernel: g.kernel,
        stride: [1, 1],
        padding: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr],
    };
    Some((flipped, transposed))
}

/// Adds the columns of output rows `rows` back onto the input positions they were read from:
/// the adjoint of [`im2col`].
fn col2im(columns: &[f32], g: &ConvGeometry, rows: std::ops::Range<usize>, dx: &mut [f32]) {
    let [h, w] = g.input;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [pt, pl, _, _] = g.padding;
    let [_, ow] = g.output().expect("checked by the caller");
    let n = rows.len() * ow;
    for c in 0..g.in_channels {
        let plane = &mut dx[c * h * w..(c + 1) * h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let row = ((c * kh + ky) * kw + kx) * n;
                let src = &columns[row..row + n];
                let xs = super::kernel::valid_columns(g, kx);
                if xs.is_empty() {
                    continue;
                }
                for (i, y) in rows.clone().enumerate() {
                    let iy = (y * sh + ky).wrapping_sub(pt);
                    if iy >= h {
                        continue;
                    }
                    let line = &src[i * ow..(i + 1) * ow];
                    let dst = &mut plane[iy * w..(iy + 1) * w];
                    let ix0 = xs.start * sw + kx - pl;
                    if sw == 1 {
                        for (d, s) in dst[ix0..ix0 + xs.len()].iter_mut().zip(&line[xs.clone()]) {
                            *d += s;
                        }
                    } else {
                        for (j, s) in line[xs.clone()].iter().enumerate() {
                            dst[ix0 + j * sw] += s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernel::tests::{close, values};

    /// The gradients by definition: every output position's gradient times the input or weight
    /// value it multiplied.
    fn naive(x: &[f32], weight: &[f32], dz: &[f32], g: &ConvGeometry) -> (Vec<f32>, Vec<f32>) {
        let [h, w] = g.input;
        let [kh, kw] = g.kernel;
        let [oh, ow] = g.output().unwrap();
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; weight.len()];
        for b in 0..g.batch {
            for o in 0..g.out_channels {
                for y in 0..oh {
                    for xo in 0..ow {
                        let d = dz[((b * g.out_channels + o) * oh + y) * ow + xo] as f64;
                        for c in 0..g.in_channels {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy =
                                        (y * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                    let ix =
                                        (xo * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xi = ((b * g.in_channels + c) * h + iy as usize) * w
                                        + ix as usize;
                                    let wi = ((o * g.in_channels + c) * kh + ky) * kw + kx;
                                    dx[xi] += d * weight[wi] as f64;
                                    dw[wi] += d * x[xi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        let f = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
        (f(dx), f(dw))
    }

    #[test]
    fn gradients_match_the_definition() {
        for (batch, input, kernel, stride, padding) in [
            (2, [9, 7], 3, 1, [1, 1, 1, 1]),
            (3, [10, 8], 3, 2, [1, 1, 1, 1]),
            (1, [6, 6], 1, 1, [0, 0, 0, 0]),
            (2, [8, 9], 2, 2, [0, 1, 1, 0]),
            (1, [40, 30], 3, 1, [1, 1, 1, 1]),
        ] {
            let g = ConvGeometry {
                batch,
                in_channels: 5,
                input,
                out_channels: 6,
                kernel: [kernel; 2],
                stride: [stride; 2],
                padding,
            };
            let [oh, ow] = g.output().unwrap();
            let x = values(batch * 5 * input[0] * input[1], 1);
            let weight = values(6 * 5 * kernel * kernel, 2);
            let dz = values(batch * 6 * oh * ow, 3);
            let (dx, dw) = naive(&x, &weight, &dz, &g);
            close(&conv2d_input_grad(&weight, &dz, &g), &dx, "input gradient");
            close(&conv2d_weight_grad(&x, &dz, &g), &dw, "weight gradient");
        }
    }
}
