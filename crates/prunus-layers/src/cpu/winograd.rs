//! 3×3, stride-1 convolutions by Winograd's F(2×2, 3×3): 16 multiplies per 2×2 output tile and
//! input channel instead of 36, a 2.25× cut of the multiply-adds that dominate a U-Net or a
//! TernausNet.
//!
//! With `Bᵀ`, `G` and `Aᵀ` the usual F(2, 3) matrices, each 4×4 input patch `d` (stride 2) and
//! each filter `g` are transformed once, `V = Bᵀ d B` and `U = G g Gᵀ`; for each of the 16
//! positions ξ of the transformed tile, `M[ξ] = U[ξ] (out × in) · V[ξ] (in × tiles)` is one matrix
//! product; the output tile is `Aᵀ M A`, then the epilogue. Bands of tile rows run in parallel,
//! as in [`super::kernel`].

use gemm::Parallelism;

use super::kernel::{ConvGeometry, Epilogue, per_band, with_scratch};

/// Bytes of transformed input and products a band aims at.
const BAND_BYTES: usize = 4 << 20;
/// Fewest tiles in a band (unless the image has fewer).
const MIN_BAND_TILES: usize = 128;

/// Whether F(2×2, 3×3) applies and pays: a 3×3 kernel at stride 1, channels wide enough that the
/// products outweigh the transforms (measured by the ignored `winograd_vs_im2col` test: with the
/// transforms built for AVX2, 1.2× faster than `im2col` at 8 channels, 1.1× at 16, 1.7× at 64).
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3] && g.stride == [1, 1] && g.in_channels >= 8 && g.out_channels >= 8
}

/// `U = G g Gᵀ` of every filter, as `[16][out][in]`.
fn transform_weights(weight: &[f32], out_channels: usize, in_channels: usize) -> Vec<f32> {
    let plane = out_channels * in_channels;
    let mut u = vec![0.0f32; 16 * plane];
    for (f, g) in weight.chunks_exact(9).enumerate() {
        // G g: four rows of three.
        let mut t = [[0.0f32; 3]; 4];
        for j in 0..3 {
            let (a, b, c) = (g[j], g[3 + j], g[6 + j]);
            t[0][j] = a;
            t[1][j] = 0.5 * (a + b + c);
            t[2][j] = 0.5 * (a - b + c);
            t[3][j] = c;
        }
        // (G g) Gᵀ.
        for (i, row) in t.iter().enumerate() {
            let (a, b, c) = (row[0], row[1], row[2]);
            let values = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
            for (j, v) in values.into_iter().enumerate() {
                u[(i * 4 + j) * plane + f] = v;
            }
        }
    }
    u
}

/// `x` convolved with the 3×3 `weight` at stride 1, then `epilogue`; as
/// [`super::kernel::conv2d`].
pub(crate) fn conv3x3(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let [oh, ow] = g.output().expect("the kernel fits the padded input");
    let u = transform_weights(weight, g.out_channels, g.in_channels);
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let per_tile = 16 * 4 * (g.in_channels + g.out_channels);
    let target = (BAND_BYTES / per_tile).max(MIN_BAND_TILES);
    let rows_per_band = target.div_ceil(tw).clamp(1, th);
    let bands = th.div_ceil(rows_per_band);
    let run = |x: &[f32], image_out: *mut f32, b: usize, parallelism: Parallelism| {
        let tile_rows = b * rows_per_band..((b + 1) * rows_per_band).min(th);
        // SAFETY: this band writes only its image's output rows 2·tile_rows (see `band`).
        unsafe { band(x, &u, g, tile_rows, image_out, epilogue, parallelism) };
    };
    // SAFETY: the bands' tiles cover every output pixel of every image and channel, once each.
    unsafe { per_band(x, g, bands, run) }
}

/// Tile rows `tile_rows` of one image.
///
/// # Safety
/// `out` points at the image's output `[out, oh, ow]`, valid for writes.
#[allow(clippy::too_many_arguments)]
unsafe fn band(
    x: &[f32],
    u: &[f32],
    g: &ConvGeometry,
    tile_rows: std::ops::Range<usize>,
    out: *mut f32,
    epilogue: &Epilogue,
    parallelism: Parallelism,
) {
    let [_, ow] = g.output().expect("checked by conv3x3");
    let tw = ow.div_ceil(2);
    let tiles = tile_rows.len() * tw;
    let (c, o) = (g.in_channels, g.out_channels);
    with_scratch(16 * (c + o) * tiles, |scratch| {
        let (v, m) = scratch.split_at_mut(16 * c * tiles);
        transform_input(x, g, tile_rows.clone(), v);
        for xi in 0..16 {
            // SAFETY: M[ξ] is [o, tiles], U[ξ] [o, c], V[ξ] [c, tiles], all row-major, in bounds.
            unsafe {
                gemm::gemm(
                    o,
                    tiles,
                    c,
                    m.as_mut_ptr().add(xi * o * tiles),
                    1,
                    tiles as isize,
                    false,
                    u.as_ptr().add(xi * o * c),
                    1,
                    c as isize,
                    v.as_ptr().add(xi * c * tiles),
                    1,
                    tiles as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
        // SAFETY: the caller's contract.
        unsafe { transform_output(m, g, tile_rows, out, epilogue) };
    });
}

/// The output tiles `Aᵀ M A` of tile rows `tile_rows` from the products `m` (`[16][out][tiles]`),
/// through the epilogue into `out`; a tile row at a time, so that every loop runs along `x`.
///
/// # Safety
/// As [`band`].
unsafe fn transform_output(
    m: &[f32],
    g: &ConvGeometry,
    tile_rows: std::ops::Range<usize>,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    #[cfg(target_arch = "x86_64")]
    if super::direct::Isa::Avx2.available() {
        // SAFETY: the CPU has AVX2 and FMA; the rest is the caller's contract.
        unsafe { transform_output_avx2(m, g, tile_rows, out, epilogue) };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { transform_output_body(m, g, tile_rows, out, epilogue) };
}

/// [`transform_output`] built for AVX2 + FMA.
///
/// # Safety
/// As [`band`], on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_output_avx2(
    m: &[f32],
    g: &ConvGeometry,
    tile_rows: std::ops::Range<usize>,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    // SAFETY: the caller's contract.
    unsafe { transform_output_body(m, g, tile_rows, out, epilogue) };
}

/// # Safety
/// As [`band`].
#[inline(always)]
unsafe fn transform_output_body(
    m: &[f32],
    g: &ConvGeometry,
    tile_rows: std::ops::Range<usize>,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    let [oh, ow] = g.output().expect("checked by conv3x3");
    let tw = ow.div_ceil(2);
    let tiles = tile_rows.len() * tw;
    let o = g.out_channels;
    // Aᵀ M: rows y[i][j] of length tw; then each output row, 2·tw wide.
    let mut y = vec![0.0f32; 8 * tw];
    let mut line = vec![0.0f32; 2 * tw];
    for channel in 0..o {
        for (r, ty) in tile_rows.clone().enumerate() {
            let plane = |xi: usize| &m[(xi * o + channel) * tiles + r * tw..][..tw];
            let (y0, y1) = y.split_at_mut(4 * tw);
            for j in 0..4 {
                let (m0, m1, m2, m3) = (plane(j), plane(4 + j), plane(8 + j), plane(12 + j));
                let a = &mut y0[j * tw..(j + 1) * tw];
                let b = &mut y1[j * tw..(j + 1) * tw];
                for t in 0..tw {
                    a[t] = m0[t] + m1[t] + m2[t];
                    b[t] = m1[t] - m2[t] - m3[t];
                }
            }
            for (i, rows) in [&*y0, &*y1].into_iter().enumerate() {
                let row = 2 * ty + i;
                if row >= oh {
                    continue;
                }
                let (r0, r1, r2, r3) = (
                    &rows[..tw],
                    &rows[tw..2 * tw],
                    &rows[2 * tw..3 * tw],
                    &rows[3 * tw..],
                );
                for (t, pair) in line.chunks_exact_mut(2).enumerate() {
                    pair[0] = r0[t] + r1[t] + r2[t];
                    pair[1] = r1[t] - r2[t] - r3[t];
                }
                epilogue.apply(channel, &mut line[..ow]);
                // SAFETY: (channel, row, 0..ow) lies in this task's rows of the output.
                unsafe {
                    let dst = out.add((channel * oh + row) * ow);
                    std::ptr::copy_nonoverlapping(line.as_ptr(), dst, ow);
                }
            }
        }
    }
}

/// `V = Bᵀ d B` of every 4×4 input patch of tile rows `tile_rows`, as `[16][in][tiles]`: for
/// each tile row, the four zero-padded input rows are combined along `x` (`Bᵀ d`), then each
/// combination is split into the four columns of every tile (`· B`).
fn transform_input(x: &[f32], g: &ConvGeometry, tile_rows: std::ops::Range<usize>, v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::direct::Isa::Avx2.available() {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { transform_input_avx2(x, g, tile_rows, v) };
        return;
    }
    transform_input_body(x, g, tile_rows, v);
}

/// [`transform_input`] built for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_input_avx2(
    x: &[f32],
    g: &ConvGeometry,
    tile_rows: std::ops::Range<usize>,
    v: &mut [f32],
) {
    transform_input_body(x, g, tile_rows, v);
}

#[inline(always)]
fn transform_input_body(
    x: &[f32],
    g: &ConvGeometry,
    tile_rows: std::ops::Range<usize>,
    v: &mut [f32],
) {
    let [h, w] = g.input;
    let [pt, pl, _, _] = g.padding;
    let [_, ow] = g.output().expect("checked by conv3x3");
    let tw = ow.div_ceil(2);
    let tiles = tile_rows.len() * tw;
    let xi_stride = g.in_channels * tiles;
    let len = 2 * tw + 2;
    let (start, end) = (pl.min(len), (pl + w).min(len));
    let mut d = vec![0.0f32; 4 * len];
    let mut t = vec![0.0f32; 4 * len];
    for c in 0..g.in_channels {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for (r, ty) in tile_rows.clone().enumerate() {
            for (i, row) in d.chunks_exact_mut(len).enumerate() {
                let iy = (2 * ty + i).wrapping_sub(pt);
                if iy >= h || start >= end {
                    row.fill(0.0);
                    continue;
                }
                row[..start].fill(0.0);
                row[end..].fill(0.0);
                row[start..end].copy_from_slice(&plane[iy * w + start - pl..iy * w + end - pl]);
            }
            {
                let (d0, rest) = d.split_at(len);
                let (d1, rest) = rest.split_at(len);
                let (d2, d3) = rest.split_at(len);
                let (t0, rest) = t.split_at_mut(len);
                let (t1, rest) = rest.split_at_mut(len);
                let (t2, t3) = rest.split_at_mut(len);
                for j in 0..len {
                    t0[j] = d0[j] - d2[j];
                    t1[j] = d1[j] + d2[j];
                    t2[j] = d2[j] - d1[j];
                    t3[j] = d1[j] - d3[j];
                }
            }
            let base = c * tiles + r * tw;
            for (i, ti) in t.chunks_exact(len).enumerate() {
                let pairs = || ti.chunks_exact(2).zip(ti[2..].chunks_exact(2));
                let at = |k: usize| (i * 4 + k) * xi_stride + base;
                for (dst, (p, q)) in v[at(0)..at(0) + tw].iter_mut().zip(pairs()) {
                    *dst = p[0] - q[0];
                }
                for (dst, (p, q)) in v[at(1)..at(1) + tw].iter_mut().zip(pairs()) {
                    *dst = p[1] + q[0];
                }
                for (dst, (p, q)) in v[at(2)..at(2) + tw].iter_mut().zip(pairs()) {
                    *dst = q[0] - p[1];
                }
                for (dst, (p, q)) in v[at(3)..at(3) + tw].iter_mut().zip(pairs()) {
                    *dst = p[1] - q[1];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernel::tests::{close, naive, values};

    #[test]
    fn matches_the_definition_for_odd_and_even_sizes_and_any_padding() {
        let epilogue = Epilogue {
            scale: Some(values(24, 3)),
            shift: Some(values(24, 4)),
            relu: true,
        };
        for (input, padding) in [
            ([12, 10], [1, 1, 1, 1]),
            ([9, 7], [1, 1, 1, 1]),
            ([8, 8], [0, 0, 0, 0]),
            ([7, 11], [2, 0, 1, 1]),
            ([3, 3], [0, 0, 0, 0]),
        ] {
            let g = ConvGeometry {
                batch: 2,
                in_channels: 17,
                input,
                out_channels: 24,
                kernel: [3, 3],
                stride: [1, 1],
                padding,
            };
            assert!(applies(&g));
            let x = values(2 * 17 * input[0] * input[1], 1);
            let weight = values(24 * 17 * 9, 2);
            let got = conv3x3(&x, &weight, &g, &epilogue);
            let want = naive(&x, &weight, &g, &epilogue);
            close(&got, &want, &format!("{g:?}"));
        }
    }

    /// Winograd vs `im2col` where the threshold is decided, fastest of 30 runs each,
    /// interleaved: `cargo test --release --workspace --lib -- --ignored --nocapture
    /// winograd_vs_im2col`.
    #[test]
    #[ignore = "a timing, not a test"]
    fn winograd_vs_im2col() {
        use crate::cpu::kernel::conv2d_im2col;
        use std::time::Instant;
        for (c, o, side) in [
            (6, 6, 256),
            (8, 8, 256),
            (11, 11, 256),
            (13, 13, 128),
            (16, 16, 256),
            (25, 25, 64),
            (64, 64, 64),
        ] {
            let g = ConvGeometry {
                batch: 1,
                in_channels: c,
                input: [side, side],
                out_channels: o,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1, 1, 1],
            };
            let x = values(c * side * side, 1);
            let weight = values(o * c * 9, 2);
            let e = Epilogue {
                relu: true,
                ..Epilogue::default()
            };
            let (mut wino, mut im2col) = (f64::MAX, f64::MAX);
            for _ in 0..30 {
                let t = Instant::now();
                std::hint::black_box(conv3x3(&x, &weight, &g, &e));
                wino = wino.min(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                std::hint::black_box(conv2d_im2col(&x, &weight, &g, &e));
                im2col = im2col.min(t.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "{c:>3} → {o:>3} at {side}²: Winograd {wino:.3} ms, im2col {im2col:.3} ms ({:.2}×)",
                im2col / wino
            );
        }
    }
}
