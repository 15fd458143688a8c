//! The convolution kernel itself, on plain slices: NCHW in, NCHW out, one matrix product per
//! band of output rows, with a per-channel affine map and ReLU applied while the band is still in
//! cache.
//!
//! For each image and band of output rows, the band's receptive fields are laid out as columns
//! (`im2col`, `[in · kh · kw, pixels]`, in a buffer each thread keeps between calls) and the
//! output band is `weight [out, in · kh · kw] × columns`, written straight into the output
//! tensor: no layout conversion, no scatter, no fresh allocation but the output's. Bands run in
//! parallel on rayon's pool; when there are too few to share out, the product itself is
//! parallel instead.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::winograd::Products;

/// Geometry of one 2-d convolution (no groups, no dilation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub padding: [usize; 4],
}

impl ConvGeometry {
    /// Output `[height, width]`, or `None` when the kernel does not fit the padded input.
    pub fn output(&self) -> Option<[usize; 2]> {
        let [pt, pl, pb, pr] = self.padding;
        let side = |size: usize, before: usize, after: usize, k: usize, s: usize| {
            let padded = size + before + after;
            (padded >= k && s > 0).then(|| (padded - k) / s + 1)
        };
        Some([
            side(self.input[0], pt, pb, self.kernel[0], self.stride[0])?,
            side(self.input[1], pl, pr, self.kernel[1], self.stride[1])?,
        ])
    }

    /// Rows of the column matrix: `in · kh · kw`.
    pub fn depth(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }
}

/// What happens to each output channel after the product: `act(scale[o] · z + shift[o])`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Epilogue {
    /// Per-channel factor (1 when `None`).
    pub scale: Option<Vec<f32>>,
    /// Per-channel offset (0 when `None`).
    pub shift: Option<Vec<f32>>,
    /// Whether ReLU follows.
    pub relu: bool,
}

impl Epilogue {
    /// `(scale, shift)` of each of `channels` output channels.
    pub(crate) fn affine(&self, channels: usize) -> Vec<(f32, f32)> {
        (0..channels)
            .map(|c| {
                let a = self.scale.as_ref().map_or(1.0, |s| s[c]);
                let b = self.shift.as_ref().map_or(0.0, |s| s[c]);
                (a, b)
            })
            .collect()
    }

    /// Maps `values`, all of output channel `channel`, in place.
    pub(crate) fn apply(&self, channel: usize, values: &mut [f32]) {
        let a = self.scale.as_ref().map_or(1.0, |s| s[channel]);
        let b = self.shift.as_ref().map_or(0.0, |s| s[channel]);
        match (a == 1.0 && b == 0.0, self.relu) {
            (true, false) => {}
            (true, true) => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            (false, false) => values.iter_mut().for_each(|v| *v = *v * a + b),
            (false, true) => values.iter_mut().for_each(|v| *v = (*v * a + b).max(0.0)),
        }
    }
}

/// Bytes of column matrix a band aims at: large enough that the weights' packing is paid over
/// many pixels, small enough to stay in the last-level cache beside them.
const BAND_BYTES: usize = 4 << 20;
/// Fewest pixels in a band (unless the image has fewer).
const MIN_BAND_PIXELS: usize = 256;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of at least `len` values (contents unspecified),
/// kept between calls so that bands allocate nothing.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    // Taken out of the thread's slot rather than borrowed: a parallel product may run another
    // band on this thread meanwhile, which then finds the slot empty and allocates its own.
    let mut buffer = SCRATCH.with(RefCell::take);
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let result = f(&mut buffer[..len]);
    SCRATCH.with(|slot| *slot.borrow_mut() = buffer);
    result
}

/// The output pointer, shared by the tasks that write disjoint parts of it ([`per_band`]).
#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32);
// SAFETY: every task writes a disjoint set of output elements (its image's rows of its band),
// and the buffer outlives the parallel loop.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Runs `task(t, parallelism)` for `t` in `0..tasks`: in parallel on rayon's pool when there
/// are at least as many tasks as threads, else one after another, each product itself parallel.
pub(crate) fn run_tasks(tasks: usize, task: impl Fn(usize, Parallelism) + Sync) {
    let threads = rayon::current_num_threads().max(1);
    if tasks >= threads || threads == 1 {
        (0..tasks)
            .into_par_iter()
            .for_each(|t| task(t, Parallelism::None));
    } else {
        (0..tasks).for_each(|t| task(t, Parallelism::Rayon(threads)));
    }
}

/// Runs `band(x_image, image_out, b, parallelism)` for every image and band `b` in `0..bands`
/// (in parallel or not, as [`run_tasks`] decides) and returns the output `[batch, out, oh, ow]`;
/// `image_out` points at the image's output `[out, oh, ow]`.
///
/// # Safety
/// Together the calls for an image write every element of its output, no two calls the same.
pub(crate) unsafe fn per_band(
    x: &[f32],
    g: &ConvGeometry,
    bands: usize,
    band: impl Fn(&[f32], *mut f32, usize, Parallelism) + Sync,
) -> Vec<f32> {
    let [h, w] = g.input;
    let [oh, ow] = g.output().expect("checked by the caller");
    let sizes = [g.in_channels * h * w, g.out_channels * oh * ow];
    // SAFETY: the caller's contract.
    unsafe { per_image_band(x, g.batch, sizes, bands, band) }
}

/// [`per_band`] for images of `sizes = [input, output]` values each.
///
/// # Safety
/// As [`per_band`].
pub(crate) unsafe fn per_image_band(
    x: &[f32],
    batch: usize,
    [image_len, out_image_len]: [usize; 2],
    bands: usize,
    band: impl Fn(&[f32], *mut f32, usize, Parallelism) + Sync,
) -> Vec<f32> {
    let task = |image: usize, b: usize, image_out: *mut f32, parallelism: Parallelism| {
        band(
            &x[image * image_len..(image + 1) * image_len],
            image_out,
            b,
            parallelism,
        )
    };
    // SAFETY: the caller's contract.
    unsafe { per_task(batch, out_image_len, bands, task) }
}

/// Runs `task(image, b, image_out, parallelism)` for every image and band `b` in `0..bands` (in
/// parallel or not, as [`run_tasks`] decides) and returns the output, `out_image_len` values per
/// image; `image_out` points at the image's.
///
/// # Safety
/// As [`per_band`].
pub(crate) unsafe fn per_task(
    batch: usize,
    out_image_len: usize,
    bands: usize,
    task: impl Fn(usize, usize, *mut f32, Parallelism) + Sync,
) -> Vec<f32> {
    let out_len = batch * out_image_len;
    let mut out: Vec<f32> = Vec::with_capacity(out_len);
    let dst = Out(out.as_mut_ptr());
    run_tasks(batch * bands, |t, parallelism| {
        let (image, b) = (t / bands, t % bands);
        // SAFETY: within `out_len`; what the task writes there is the caller's contract.
        let image_out = unsafe { dst.get().add(image * out_image_len) };
        task(image, b, image_out, parallelism);
    });
    // SAFETY: the caller's contract: every element was written.
    unsafe { out.set_len(out_len) };
    out
}

/// `len` values written by `fill(values)`, with no zeroing pass before (a layer's packed
/// weights, rebuilt at every call: the zeroing cost as much as the packing).
///
/// # Safety
/// `fill` writes every one of the `len` values.
pub(super) unsafe fn written_once(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` values (the caller's contract).
    unsafe { values.set_len(len) };
    values
}

/// Output rows per band and bands per image: about [`BAND_BYTES`] of columns per band.
pub(crate) fn bands(g: &ConvGeometry) -> (usize, usize) {
    let [oh, ow] = g.output().expect("checked by the caller");
    let target = (BAND_BYTES / (4 * g.depth().max(1))).max(MIN_BAND_PIXELS);
    let rows_per_band = target.div_ceil(ow.max(1)).clamp(1, oh.max(1));
    (rows_per_band, oh.div_ceil(rows_per_band))
}

/// `x` (`[batch, in, h, w]`) convolved with `weight` (`[out, in, kh, kw]`), then `epilogue`;
/// NCHW, `[batch, out, oh, ow]`.
///
/// # Panics
/// When a slice's length does not match the geometry or the kernel does not fit.
pub(crate) fn conv2d(
    x: &[f32],
    weight: &[f32],
    geometry: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let g = geometry;
    conv2d_cat(
        Kernel::choose(g),
        &[(x, g.in_channels)],
        weight,
        g,
        epilogue,
    )
}

/// Which kernel computes a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// The direct kernel ([`super::direct`]): narrow layers and first layers.
    Direct,
    /// Winograd's F(2×2, 3×3) ([`super::winograd`]), its products computed as given.
    Winograd(Products),
    /// `im2col` and one matrix product per band: the rest.
    Im2col,
}

impl Kernel {
    /// The fastest kernel for `g`, by the rules each kernel measured: the direct kernel where it
    /// applies, then Winograd in registers, then Winograd's `gemm` products, then `im2col`.
    pub(crate) fn choose(g: &ConvGeometry) -> Kernel {
        if super::direct::applies(g) {
            Kernel::Direct
        } else if let Some(isa) = super::winograd::in_registers(g) {
            Kernel::Winograd(Products::Registers(isa))
        } else if super::winograd::applies(g) {
            Kernel::Winograd(Products::Gemm)
        } else {
            Kernel::Im2col
        }
    }

    /// Whether [`conv2d_cat`] with it reads several sources where they are: the direct kernel
    /// and Winograd in registers (the ones a decoder's concatenations were measured with).
    pub(crate) fn reads_sources(self) -> bool {
        matches!(
            self,
            Kernel::Direct | Kernel::Winograd(Products::Registers(_))
        )
    }
}

/// [`conv2d`] of the concatenation along the channels of `sources` (each `(values, channels)`,
/// `[batch, channels, h, w]`) by `kernel`, the sources read where they are.
///
/// # Panics
/// As [`conv2d`], when the sources' channels do not add up to the geometry's, and when
/// `kernel` is [`Kernel::Im2col`] with other than one source.
pub(crate) fn conv2d_cat(
    kernel: Kernel,
    sources: &[(&[f32], usize)],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    match kernel {
        Kernel::Direct => super::direct::conv2d_cat(sources, weight, g, epilogue),
        Kernel::Winograd(products) => {
            super::winograd::conv3x3_cat(sources, weight, g, epilogue, products)
        }
        Kernel::Im2col => {
            let [(x, _)] = sources else {
                panic!("im2col reads one source, not {}", sources.len())
            };
            conv2d_im2col(x, weight, g, epilogue)
        }
    }
}

/// [`conv2d`] by `im2col` and matrix products, whatever the geometry.
pub(crate) fn conv2d_im2col(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let [h, w] = g.input;
    let [oh, ow] = g.output().expect("the kernel fits the padded input");
    assert_eq!(x.len(), g.batch * g.in_channels * h * w, "input length");
    assert_eq!(weight.len(), g.out_channels * g.depth(), "weight length");
    let pixels = oh * ow;
    let (rows_per_band, bands) = bands(g);
    let run = |x: &[f32], image_out: *mut f32, b: usize, parallelism: Parallelism| {
        let rows = b * rows_per_band..((b + 1) * rows_per_band).min(oh);
        // SAFETY: this band's rows of the image are written by it alone; `gemm` with
        // `read_dst = false` writes every element of its destination.
        unsafe {
            let band_out = image_out.add(rows.start * ow);
            band(x, weight, g, rows, band_out, pixels, epilogue, parallelism)
        };
    };
    // SAFETY: the bands cover every row of every image and output channel, once each.
    unsafe { per_band(x, g, bands, run) }
}

/// One band of output rows of one image.
///
/// # Safety
/// `out` points at the band's first pixel of output channel 0 in a buffer whose channels are
/// `channel_stride` apart, valid for writes of every channel's band.
#[allow(clippy::too_many_arguments)]
unsafe fn band(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    rows: std::ops::Range<usize>,
    out: *mut f32,
    channel_stride: usize,
    epilogue: &Epilogue,
    parallelism: Parallelism,
) {
    let [_, ow] = g.output().expect("checked by conv2d");
    let n = rows.len() * ow;
    let k = g.depth();
    with_scratch(k * n, |columns| {
        im2col(x, g, rows.clone(), columns);
        // SAFETY: dst is `[out, n]` with rows `channel_stride` apart (the caller's contract);
        // lhs is the weight `[out, k]`, rhs the columns `[k, n]`, both row-major and in bounds.
        unsafe {
            gemm::gemm(
                g.out_channels,
                n,
                k,
                out,
                1,
                channel_stride as isize,
                false,
                weight.as_ptr(),
                1,
                k as isize,
                columns.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    });
    for channel in 0..g.out_channels {
        // SAFETY: within the channel's band, which this task alone writes.
        let values =
            unsafe { std::slice::from_raw_parts_mut(out.add(channel * channel_stride), n) };
        epilogue.apply(channel, values);
    }
}

/// The columns of output rows `rows`: row `(c, ky, kx)`, column `(y − rows.start) · ow + x` holds
/// the input pixel that kernel tap `(ky, kx)` of channel `c` sees from output pixel `(y, x)`, or 0
/// in the padding.
pub(crate) fn im2col(
    x: &[f32],
    g: &ConvGeometry,
    rows: std::ops::Range<usize>,
    columns: &mut [f32],
) {
    let [h, w] = g.input;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [pt, pl, _, _] = g.padding;
    let [_, ow] = g.output().expect("checked by conv2d");
    let n = rows.len() * ow;
    let valid = |kx| valid_columns(g, kx);
    for c in 0..g.in_channels {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let row = ((c * kh + ky) * kw + kx) * n;
                let dst = &mut columns[row..row + n];
                let xs = valid(kx);
                for (i, y) in rows.clone().enumerate() {
                    let line = &mut dst[i * ow..(i + 1) * ow];
                    let iy = (y * sh + ky).wrapping_sub(pt);
                    if iy >= h || xs.is_empty() {
                        line.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy * w..(iy + 1) * w];
                    line[..xs.start].fill(0.0);
                    line[xs.end..].fill(0.0);
                    let ix0 = xs.start * sw + kx - pl;
                    if sw == 1 {
                        line[xs.clone()].copy_from_slice(&src[ix0..ix0 + xs.len()]);
                    } else {
                        for (j, v) in line[xs.clone()].iter_mut().enumerate() {
                            *v = src[ix0 + j * sw];
                        }
                    }
                }
            }
        }
    }
}

/// Output columns `x` whose kernel tap `kx` lands inside the input: `pl ≤ x·sw + kx < w + pl`.
pub(crate) fn valid_columns(g: &ConvGeometry, kx: usize) -> std::ops::Range<usize> {
    let [_, w] = g.input;
    let [_, pl, _, _] = g.padding;
    let sw = g.stride[1];
    let [_, ow] = g.output().expect("checked by the caller");
    let first = pl.saturating_sub(kx).div_ceil(sw);
    let end = (w + pl).saturating_sub(kx).div_ceil(sw).min(ow);
    first.min(end)..end
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The definition, one output at a time.
    pub(crate) fn naive(x: &[f32], weight: &[f32], g: &ConvGeometry, e: &Epilogue) -> Vec<f32> {
        let [h, w] = g.input;
        let [kh, kw] = g.kernel;
        let [oh, ow] = g.output().unwrap();
        let mut out = vec![0.0; g.batch * g.out_channels * oh * ow];
        for b in 0..g.batch {
            for o in 0..g.out_channels {
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0f64;
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
                                    acc += x[xi] as f64 * weight[wi] as f64;
                                }
                            }
                        }
                        let a = e.scale.as_ref().map_or(1.0, |s| s[o]);
                        let s = e.shift.as_ref().map_or(0.0, |s| s[o]);
                        let mut v = acc as f32 * a + s;
                        if e.relu {
                            v = v.max(0.0);
                        }
                        out[((b * g.out_channels + o) * oh + y) * ow + xo] = v;
                    }
                }
            }
        }
        out
    }

    /// `got` equals `want` to within 1e-4, relative beyond 1; `what` names the case.
    pub(crate) fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{what} at {i}: {a} vs {b}"
            );
        }
    }

    /// Deterministic values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn check(g: ConvGeometry, e: Epilogue) {
        let [h, w] = g.input;
        let x = values(g.batch * g.in_channels * h * w, 1);
        let weight = values(g.out_channels * g.depth(), 2);
        let got = conv2d_im2col(&x, &weight, &g, &e);
        let want = naive(&x, &weight, &g, &e);
        close(&got, &want, &format!("{g:?}"));
    }

    fn geometry(
        batch: usize,
        channels: [usize; 2],
        input: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: [usize; 4],
    ) -> ConvGeometry {
        ConvGeometry {
            batch,
            in_channels: channels[0],
            input,
            out_channels: channels[1],
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding,
        }
    }

    #[test]
    fn matches_the_definition_on_every_padding_and_stride() {
        let affine = Epilogue {
            scale: Some(values(7, 3)),
            shift: Some(values(7, 4)),
            relu: true,
        };
        for (kernel, stride, padding) in [
            (3, 1, [1, 1, 1, 1]),
            (3, 2, [1, 1, 1, 1]),
            (3, 1, [0, 0, 0, 0]),
            (1, 1, [0, 0, 0, 0]),
            (2, 2, [0, 1, 1, 0]),
            (5, 3, [2, 0, 1, 2]),
        ] {
            let g = geometry(2, [5, 7], [11, 9], kernel, stride, padding);
            check(g, affine.clone());
            check(g, Epilogue::default());
        }
    }

    #[test]
    fn bands_and_parallel_products_cover_the_whole_output() {
        // Wide enough for several bands per image (more tasks than threads), and a single
        // small image (fewer tasks than threads: the product runs in parallel instead).
        let relu = Epilogue {
            relu: true,
            ..Epilogue::default()
        };
        check(
            geometry(1, [64, 9], [70, 40], 3, 1, [1, 1, 1, 1]),
            relu.clone(),
        );
        check(geometry(1, [3, 33], [5, 4], 3, 2, [1, 1, 1, 1]), relu);
    }

    #[test]
    fn a_kernel_larger_than_the_padded_input_has_no_output() {
        let g = geometry(1, [1, 1], [2, 2], 5, 1, [1, 1, 1, 1]);
        assert_eq!(g.output(), None);
    }
}
