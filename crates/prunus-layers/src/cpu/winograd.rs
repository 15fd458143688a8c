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

use std::ops::Range;

use super::direct::{Isa, Row, channel_blocks, run_row};
use super::kernel::{ConvGeometry, Epilogue, per_task, with_scratch, written_once};

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

/// Whether F(2×2, 3×3) with its products in registers ([`Products::Registers`]) applies and
/// pays, and with which instructions: a 3×3 kernel at stride 1 on images of 64² or more, up to
/// 256 channels, where the direct kernel does not take the layer (`Kernel::choose` asks it
/// first). Measured by the ignored
/// `direct_vs_products` test (AVX-512, Xeon, fastest of 30): 1.1–1.3× faster than the direct
/// kernel and 1.05–1.3× faster than the `gemm` products from 49 to 256 channels on 64²–256²
/// (49 → 49 on 64²: 1.10×, 128 → 128 on 128²: 1.31×, 256 → 256 on 64²: 1.27×); even with the
/// direct kernel around 40 channels, behind it below (0.5–0.8× at 7–21: the transforms cost
/// more than the multiplies they save); behind on 32² and smaller (0.83–0.9× at 49–97, 0.55×
/// at 512 on 16²: few tiles for the weights each band reads).
pub(crate) fn in_registers(g: &ConvGeometry) -> Option<Isa> {
    let [oh, ow] = g.output()?;
    let wide_images = oh * ow >= 64 * 64 && ow >= 32;
    let channels = g.in_channels <= 256 && g.out_channels <= 256;
    let kernel = g.kernel == [3, 3] && g.stride == [1, 1];
    if !(kernel && wide_images && channels) {
        return None;
    }
    Isa::detect()
}

/// `U = G g Gᵀ` of one 3×3 filter `g`, its 16 values in the order of ξ.
fn transform_filter(g: &[f32]) -> [f32; 16] {
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
    let mut u = [0.0f32; 16];
    for (i, row) in t.iter().enumerate() {
        let (a, b, c) = (row[0], row[1], row[2]);
        u[i * 4..i * 4 + 4].copy_from_slice(&[a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]);
    }
    u
}

/// `U = G g Gᵀ` of every filter, as `[16][out][in]`.
fn transform_weights(weight: &[f32], out_channels: usize, in_channels: usize) -> Vec<f32> {
    let plane = out_channels * in_channels;
    assert_eq!(weight.len(), 9 * plane, "weight length");
    // SAFETY: the `plane` filters f, each into its place in every one of the 16 planes.
    unsafe {
        written_once(16 * plane, |u| {
            for (f, g) in weight.chunks_exact(9).enumerate() {
                for (xi, v) in transform_filter(g).into_iter().enumerate() {
                    u[xi * plane + f].write(v);
                }
            }
        })
    }
}

/// `x` convolved with the 3×3 `weight` at stride 1, then `epilogue`, by `gemm` products; as
/// [`super::kernel::conv2d`] (the tests' reference point).
#[cfg(test)]
pub(crate) fn conv3x3(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    conv3x3_cat(&[(x, g.in_channels)], weight, g, epilogue, Products::Gemm)
}

/// How a band's 16 products `M[ξ] = U[ξ] · V[ξ]` are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Products {
    /// By `gemm`, which packs its operands: wide layers.
    Gemm,
    /// By the direct kernel's 1×1 rows, the output channels × a run of tiles in registers:
    /// narrow layers, where packing a product of a few rows costs more than the product.
    Registers(Isa),
}

/// [`conv3x3`] of the concatenation along the channels of `sources` (each `(values, channels)`,
/// `[batch, channels, h, w]`), read where they are, its products computed as `products` says.
///
/// # Panics
/// When a slice's length does not match the geometry or the sources' channels do not add up to
/// its input channels.
pub(crate) fn conv3x3_cat(
    sources: &[(&[f32], usize)],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
    products: Products,
) -> Vec<f32> {
    let [h, w] = g.input;
    let [oh, ow] = g.output().expect("the kernel fits the padded input");
    let (c, o) = (g.in_channels, g.out_channels);
    assert_eq!(
        sources.iter().map(|&(_, n)| n).sum::<usize>(),
        c,
        "the sources' channels"
    );
    for &(x, n) in sources {
        assert_eq!(x.len(), g.batch * n * h * w, "input length");
    }
    assert_eq!(weight.len(), o * c * 9, "weight length");
    let (u, packed) = match products {
        Products::Gemm => (transform_weights(weight, o, c), None),
        Products::Registers(isa) => (Vec::new(), Some(Packed::new(isa, weight, o, c))),
    };
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let per_tile = 16 * 4 * (c + o);
    let mut rows_per_band = (BAND_BYTES / per_tile).max(MIN_BAND_TILES).div_ceil(tw);
    if packed.is_some() {
        // The products do not share a band out between threads: four bands per thread (load
        // balance), each small enough to stay in the core's own cache.
        let threads = rayon::current_num_threads().max(1);
        let wanted = (4 * threads).div_ceil(g.batch);
        rows_per_band = (REGISTER_BAND_BYTES / per_tile)
            .max(MIN_BAND_TILES)
            .div_ceil(tw)
            .min(th.div_ceil(wanted));
    }
    let rows_per_band = rows_per_band.clamp(1, th.max(1));
    let bands = th.div_ceil(rows_per_band);
    let planes = h * w;
    let run = |image: usize, b: usize, image_out: *mut f32, parallelism: Parallelism| {
        let tile_rows = b * rows_per_band..((b + 1) * rows_per_band).min(th);
        let inputs: Vec<(&[f32], usize)> = sources
            .iter()
            .map(|&(x, n)| (&x[image * n * planes..(image + 1) * n * planes], n))
            .collect();
        let products = match &packed {
            Some(packed) => Multiply::Registers(packed),
            None => Multiply::Gemm(&u, parallelism),
        };
        // SAFETY: this band writes only its image's output rows 2·tile_rows (see `band`).
        unsafe { band(&inputs, products, g, tile_rows, image_out, epilogue) };
    };
    // SAFETY: the bands' tiles cover every output pixel of every image and channel, once each.
    unsafe { per_task(g.batch, o * oh * ow, bands, run) }
}

/// Bytes of transformed input and products a band of [`Products::Registers`] aims at: what
/// stays in a core's own cache.
const REGISTER_BAND_BYTES: usize = 1 << 20;

/// Values past a plane's last tile that the register products may read: a run of up to four
/// registers of 16 lanes.
const RUN_SLACK: usize = 64;

/// A band's products, with what they need.
enum Multiply<'a> {
    /// `U` as `[16][out][in]`, and how `gemm` may share the work out.
    Gemm(&'a [f32], Parallelism),
    Registers(&'a Packed),
}

/// `U` packed for the register products: for each ξ, each block of output channels as
/// `[in][block]`, at `ξ · out · in + block.start · in`.
struct Packed {
    isa: Isa,
    blocks: Vec<Range<usize>>,
    weights: Vec<f32>,
    /// `(1, 0)` per output channel: the products have no epilogue of their own.
    identity: Vec<(f32, f32)>,
}

impl Packed {
    /// `U` of the filters `weight` (`[out][in][3][3]`), transformed and packed in one pass.
    fn new(isa: Isa, weight: &[f32], o: usize, c: usize) -> Self {
        let blocks = channel_blocks(o, isa.max_block());
        let plane = o * c;
        // SAFETY: the blocks cover the `o` channels once each: every channel's `c` filters (a
        // short `weight` panics at its slice), each into its place in every one of the 16 planes.
        let weights = unsafe {
            written_once(16 * plane, |packed| {
                for block in &blocks {
                    let n = block.len();
                    for (j, channel) in block.clone().enumerate() {
                        let filters =
                            weight[channel * c * 9..(channel + 1) * c * 9].chunks_exact(9);
                        for (i, g) in filters.enumerate() {
                            // Block `block`, input channel i, lane j, of each ξ's plane.
                            let at = block.start * c + i * n + j;
                            for (xi, v) in transform_filter(g).into_iter().enumerate() {
                                packed[xi * plane + at].write(v);
                            }
                        }
                    }
                }
            })
        };
        Packed {
            isa,
            blocks,
            weights,
            identity: vec![(1.0, 0.0); o],
        }
    }

    /// `M[ξ] = U[ξ] · V[ξ]` for the 16 ξ, `v` as `[16][in][stride]` and `m` as
    /// `[16][out][stride]`, `tiles` of each row used.
    ///
    /// # Safety
    /// The CPU has `self.isa`; `stride ≥ tiles + RUN_SLACK`; the slices hold what they describe.
    unsafe fn products(
        &self,
        v: &[f32],
        m: &mut [f32],
        [c, o]: [usize; 2],
        tiles: usize,
        stride: usize,
    ) {
        for xi in 0..16 {
            for block in &self.blocks {
                let task = Row {
                    input: v[xi * c * stride..].as_ptr(),
                    channel_stride: stride,
                    width: stride,
                    in_channels: c,
                    kernel: [1, 1],
                    weights: self.weights[xi * o * c + block.start * c..].as_ptr(),
                    out: m[(xi * o + block.start) * stride..].as_mut_ptr(),
                    out_stride: stride,
                    ow: tiles,
                    affine: &self.identity[block.clone()],
                    relu: false,
                    projection: None,
                    folded: None,
                };
                // SAFETY: the caller's contract; reads stay within a plane's row and its slack.
                unsafe { run_row(self.isa, &task) };
            }
        }
    }
}

/// Tile rows `tile_rows` of one image, its input channels read from `inputs` in order.
///
/// # Safety
/// `out` points at the image's output `[out, oh, ow]`, valid for writes.
unsafe fn band(
    inputs: &[(&[f32], usize)],
    products: Multiply,
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    let [_, ow] = g.output().expect("checked by conv3x3_cat");
    let tw = ow.div_ceil(2);
    let tiles = tile_rows.len() * tw;
    let stride = match products {
        Multiply::Gemm(..) => tiles,
        Multiply::Registers(_) => tiles + RUN_SLACK,
    };
    let (c, o) = (g.in_channels, g.out_channels);
    with_scratch(16 * (c + o) * stride, |scratch| {
        let (v, m) = scratch.split_at_mut(16 * c * stride);
        transform_input(inputs, g, tile_rows.clone(), stride, v);
        match products {
            // SAFETY: the register products' contract holds: `stride` has the slack.
            Multiply::Registers(packed) => unsafe { packed.products(v, m, [c, o], tiles, stride) },
            Multiply::Gemm(u, parallelism) => {
                for xi in 0..16 {
                    // SAFETY: M[ξ] is [o, tiles], U[ξ] [o, c], V[ξ] [c, tiles], row-major.
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
            }
        }
        // SAFETY: the caller's contract.
        unsafe { transform_output(m, g, tile_rows, stride, out, epilogue) };
    });
}

/// The output tiles `Aᵀ M A` of tile rows `tile_rows` from the products `m` (`[16][out][stride]`),
/// through the epilogue into `out`; a tile row at a time, so that every loop runs along `x`.
///
/// # Safety
/// As [`band`].
unsafe fn transform_output(
    m: &[f32],
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    stride: usize,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if Isa::Avx512.available() {
            // SAFETY: the CPU has AVX-512F; the rest is the caller's contract.
            unsafe { transform_output_avx512(m, g, tile_rows, stride, out, epilogue) };
            return;
        }
        if Isa::Avx2.available() {
            // SAFETY: the CPU has AVX2 and FMA; the rest is the caller's contract.
            unsafe { transform_output_avx2(m, g, tile_rows, stride, out, epilogue) };
            return;
        }
    }
    // SAFETY: the caller's contract.
    unsafe { transform_output_body(m, g, tile_rows, stride, out, epilogue) };
}

/// [`transform_output`] built for AVX-512.
///
/// # Safety
/// As [`band`], on a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_output_avx512(
    m: &[f32],
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    stride: usize,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    // SAFETY: the caller's contract.
    unsafe { transform_output_body(m, g, tile_rows, stride, out, epilogue) };
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
    tile_rows: Range<usize>,
    stride: usize,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    // SAFETY: the caller's contract.
    unsafe { transform_output_body(m, g, tile_rows, stride, out, epilogue) };
}

/// # Safety
/// As [`band`].
#[inline(always)]
unsafe fn transform_output_body(
    m: &[f32],
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    stride: usize,
    out: *mut f32,
    epilogue: &Epilogue,
) {
    let [oh, ow] = g.output().expect("checked by conv3x3");
    let tw = ow.div_ceil(2);
    let o = g.out_channels;
    // Aᵀ M: rows y[i][j] of length tw; then each output row, 2·tw wide.
    let mut y = vec![0.0f32; 8 * tw];
    let mut line = vec![0.0f32; 2 * tw];
    for channel in 0..o {
        for (r, ty) in tile_rows.clone().enumerate() {
            let plane = |xi: usize| &m[(xi * o + channel) * stride + r * tw..][..tw];
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

/// `V = Bᵀ d B` of every 4×4 input patch of tile rows `tile_rows`, as `[16][in][stride]` (the
/// input channels read from `inputs` in order): for each tile row, the four zero-padded input
/// rows are combined along `x` (`Bᵀ d`), then each combination is split into the four columns of
/// every tile (`· B`).
fn transform_input(
    inputs: &[(&[f32], usize)],
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    stride: usize,
    v: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if Isa::Avx512.available() {
            // SAFETY: the CPU has AVX-512F.
            unsafe { transform_input_avx512(inputs, g, tile_rows, stride, v) };
            return;
        }
        if Isa::Avx2.available() {
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { transform_input_avx2(inputs, g, tile_rows, stride, v) };
            return;
        }
    }
    transform_input_body(inputs, g, tile_rows, stride, v);
}

/// [`transform_input`] built for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_input_avx2(
    inputs: &[(&[f32], usize)],
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    stride: usize,
    v: &mut [f32],
) {
    transform_input_body(inputs, g, tile_rows, stride, v);
}

/// [`transform_input`] built for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_input_avx512(
    inputs: &[(&[f32], usize)],
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    stride: usize,
    v: &mut [f32],
) {
    transform_input_body(inputs, g, tile_rows, stride, v);
}

#[inline(always)]
fn transform_input_body(
    inputs: &[(&[f32], usize)],
    g: &ConvGeometry,
    tile_rows: Range<usize>,
    stride: usize,
    v: &mut [f32],
) {
    let [h, w] = g.input;
    let [pt, pl, _, _] = g.padding;
    let [_, ow] = g.output().expect("checked by conv3x3_cat");
    let tw = ow.div_ceil(2);
    let xi_stride = g.in_channels * stride;
    let len = 2 * tw + 2;
    let (start, end) = (pl.min(len), (pl + w).min(len));
    let mut d = vec![0.0f32; 4 * len];
    let mut t = vec![0.0f32; 4 * len];
    let planes = inputs
        .iter()
        .flat_map(|&(x, n)| x.chunks_exact(h * w).take(n));
    for (c, plane) in planes.enumerate() {
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
            let base = c * stride + r * tw;
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

    #[test]
    fn products_in_registers_match_the_definition_for_every_block_and_concatenation() {
        use crate::cpu::direct::tests::isas;
        // (input channels, output channels, input size, padding)
        type Case = (usize, usize, [usize; 2], [usize; 4]);
        let cases: &[Case] = &[
            (7, 7, [20, 37], [1, 1, 1, 1]),
            (3, 1, [9, 7], [1, 1, 1, 1]),
            (13, 25, [33, 70], [1, 1, 1, 1]),
            (5, 12, [8, 8], [0, 0, 0, 0]),
            (6, 9, [7, 11], [2, 0, 1, 1]),
            (2, 24, [5, 131], [1, 1, 1, 1]),
        ];
        for isa in isas() {
            for &(c, o, input, padding) in cases {
                let g = ConvGeometry {
                    batch: 2,
                    in_channels: c,
                    input,
                    out_channels: o,
                    kernel: [3, 3],
                    stride: [1, 1],
                    padding,
                };
                let plane = input[0] * input[1];
                let x = values(2 * c * plane, 1);
                let weight = values(o * c * 9, 2);
                let epilogue = Epilogue {
                    scale: Some(values(o, 3)),
                    shift: Some(values(o, 4)),
                    relu: true,
                };
                let want = naive(&x, &weight, &g, &epilogue);
                let products = Products::Registers(isa);
                let got = conv3x3_cat(&[(&x, c)], &weight, &g, &epilogue, products);
                close(&got, &want, &format!("{isa:?} {g:?}"));
                // The same input as two sources, the first channel alone and the rest.
                let split = |from: usize, to: usize| -> Vec<f32> {
                    (0..2)
                        .flat_map(|i| &x[(i * c + from) * plane..(i * c + to) * plane])
                        .copied()
                        .collect()
                };
                let (a, b) = (split(0, 1), split(1, c));
                let cat = conv3x3_cat(&[(&a, 1), (&b, c - 1)], &weight, &g, &epilogue, products);
                assert_eq!(cat, got, "{isa:?} {g:?}: two sources");
            }
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
