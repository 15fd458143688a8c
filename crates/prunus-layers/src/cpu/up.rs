//! Stride-2 up-sampling — a U-Net's 2×2 and TernausNet's 3×3 transposed convolutions —
//! computed directly.
//!
//! Each output pixel `(2y + i, 2x + j)` of such a layer is a small convolution of the input
//! around `(y, x)` whose taps depend only on its phase `(i, j)`: for the 2×2 kernel the one tap
//! `w[i][j]` (four 1×1 convolutions, interleaved), for the 3×3 one with padding 1 and output
//! padding 1 one, two, two and four taps (`w[1][1]`; `w[1][2], w[1][0]`; `w[2][1], w[0][1]`;
//! `w[2][2], w[2][0], w[0][2], w[0][0]`) on the input at `(y, x)`, `(y, x + 1)`, `(y + 1, x)` and
//! `(y + 1, x + 1)`. The general path (products per band, then `col2im` adding columns into a
//! zeroed output, then the epilogue in another pass) ran a pruned U-Net's up-sampling at 7 G
//! multiply-adds/s. Here a block of output channels keeps the four phases of a register of input
//! pixels in registers, adds every input channel into them, applies the epilogue and writes the
//! two output rows interleaved: one pass, nothing zeroed.

use std::ops::Range;

use super::direct::{Isa, Lanes, channel_blocks, pad};
use super::kernel::{ConvGeometry, Epilogue, per_image_band, with_scratch, written_once};

/// The up-sampling layers the kernel computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 2×2 kernel, stride 2, no padding.
    Two,
    /// 3×3 kernel, stride 2, padding 1, output padding 1.
    Three,
}

impl Kind {
    /// The kind of the transposed convolution `g` is the adjoint of (`g`'s input is the
    /// transposed convolution's output, and the other way round), if the kernel computes it.
    fn of(g: &ConvGeometry) -> Option<Kind> {
        let [h, w] = g.output()?;
        let kind = match (g.kernel, g.padding) {
            ([2, 2], [0, 0, 0, 0]) => Kind::Two,
            ([3, 3], [1, 1, 1, 1]) => Kind::Three,
            _ => return None,
        };
        (g.stride == [2, 2] && g.input == [2 * h, 2 * w]).then_some(kind)
    }

    /// Weights per input and output channel.
    fn taps(self) -> usize {
        match self {
            Kind::Two => 4,
            Kind::Three => 9,
        }
    }
}

/// Whether the direct kernel takes this transposed convolution, given as the convolution it is
/// the adjoint of (`g`: input the transposed convolution's output, and the other way round):
/// a 2×2 kernel at stride 2 without padding or TernausNet's 3×3 one (stride 2, padding 1,
/// output padding 1), an output exactly twice the input, rows of 8 pixels or more and at most
/// 256 input channels. Measured by the ignored `up_vs_products` test against products and
/// `col2im`: 2×2 4.5× faster at 11 → 6 channels, 1.2× at 256 → 128, 0.94× at 400 → 200; 3×3
/// 8× at 8 → 8, 1.4× at 256 → 128, 0.84× at 512 → 256.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    let wide_enough = g.output().is_some_and(|[_, w]| w >= 8);
    Isa::detect().is_some() && Kind::of(g).is_some() && wide_enough && g.out_channels <= 256
}

/// The transposed convolution of `x` (`[batch, g.out_channels, h, w]`) by `weight`
/// (`[g.out_channels, g.in_channels, k, k]`), then `epilogue` on its output channels:
/// `[batch, g.in_channels, 2h, 2w]`.
///
/// # Panics
/// Where [`applies`] is false, or a slice's length does not match the geometry.
pub(crate) fn conv_transpose_up(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    assert!(applies(g), "a stride-2 up-sampling on a CPU with AVX2");
    let isa = Isa::detect().expect("checked by applies");
    conv_transpose_up_with(isa, x, weight, g, epilogue)
}

/// [`conv_transpose_up`] with the given instructions (which the CPU must have).
pub(crate) fn conv_transpose_up_with(
    isa: Isa,
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let kind = Kind::of(g).expect("checked by applies");
    let [h, w] = g.output().expect("checked by applies");
    let (c, o) = (g.out_channels, g.in_channels);
    assert_eq!(x.len(), g.batch * c * h * w, "input length");
    assert_eq!(weight.len(), c * o * kind.taps(), "weight length");
    let plan = Plan::new(isa, kind, [c, o], [h, w], weight, epilogue);
    let threads = rayon::current_num_threads().max(1);
    let bands_wanted = (4 * threads).div_ceil(g.batch).clamp(1, h);
    let rows_per_band = h.div_ceil(bands_wanted);
    let bands = h.div_ceil(rows_per_band);
    let run = |x: &[f32], image_out: *mut f32, b: usize, _| {
        let rows = b * rows_per_band..((b + 1) * rows_per_band).min(h);
        // SAFETY: this band writes output rows 2·rows of every channel of the image, only them.
        unsafe { plan.band(x, rows, image_out) };
    };
    // SAFETY: the bands cover every input row, so every output row, of every image once each.
    unsafe { per_image_band(x, g.batch, [c * h * w, o * 4 * h * w], bands, run) }
}

/// One call's packed weights and per-channel map.
struct Plan {
    isa: Isa,
    kind: Kind,
    in_channels: usize,
    input: [usize; 2],
    /// Width of a row of the padded input band: whole registers, and a zero past the last pixel.
    width: usize,
    /// Output channel blocks, with their weights' offset in `weights`.
    blocks: Vec<(Range<usize>, usize)>,
    /// Each block's weights as `[in][block][taps]`, blocks one after another, each channel's
    /// taps in the order the phases use them.
    weights: Vec<f32>,
    affine: Vec<(f32, f32)>,
    relu: bool,
}

impl Plan {
    fn new(
        isa: Isa,
        kind: Kind,
        [c, o]: [usize; 2],
        input: [usize; 2],
        weight: &[f32],
        epilogue: &Epilogue,
    ) -> Self {
        // Four accumulators per channel: one register of pixels, four phases.
        let (most, lanes) = (isa.accumulators() / 4, isa.lanes());
        let taps = kind.taps();
        // The phases' taps, as indices of the 3×3 kernel (row-major).
        let order: &[usize] = match kind {
            Kind::Two => &[0, 1, 2, 3],
            Kind::Three => &[4, 5, 3, 7, 1, 8, 6, 2, 0],
        };
        let blocks: Vec<_> = channel_blocks(o, most)
            .into_iter()
            .map(|range| {
                let offset = range.start * c * taps;
                (range, offset)
            })
            .collect();
        // SAFETY: the blocks cover the `o` channels once each, every input channel's `taps`
        // values of each (`order` holds `taps` indices).
        let weights = unsafe {
            written_once(c * o * taps, |weights| {
                for (range, offset) in &blocks {
                    let n = range.len();
                    for ci in 0..c {
                        for (j, channel) in range.clone().enumerate() {
                            let src = &weight[(ci * o + channel) * taps..][..taps];
                            let dst = offset + (ci * n + j) * taps;
                            for (d, &t) in weights[dst..dst + taps].iter_mut().zip(order) {
                                d.write(src[t]);
                            }
                        }
                    }
                }
            })
        };
        let affine = epilogue.affine(o);
        Plan {
            isa,
            kind,
            in_channels: c,
            input,
            width: input[1].div_ceil(lanes) * lanes + 1,
            blocks,
            weights,
            affine,
            relu: epilogue.relu,
        }
    }

    /// Input rows `rows` of one image (`x`, `[in, h, w]`) into its output.
    ///
    /// # Safety
    /// `out` points at the image's output `[out, 2h, 2w]`, valid for writes; the CPU has `isa`.
    unsafe fn band(&self, x: &[f32], rows: Range<usize>, out: *mut f32) {
        let [h, w] = self.input;
        // The band's rows and the one below it (the 3×3 kernel's second input row), zero-padded.
        let padded_rows = rows.len() + 1;
        with_scratch(self.in_channels * padded_rows * self.width, |band| {
            let padded = rows.start..rows.start + padded_rows;
            pad(
                x,
                self.in_channels,
                [h, w],
                [0, 0],
                1,
                padded,
                self.width,
                band,
            );
            for (r, y) in rows.enumerate() {
                for (channels, offset) in &self.blocks {
                    let task = UpRow {
                        input: band[r * self.width..].as_ptr(),
                        channel_stride: padded_rows * self.width,
                        width: self.width,
                        in_channels: self.in_channels,
                        w,
                        weights: self.weights[*offset..].as_ptr(),
                        // SAFETY: (channels.start, 2y, 0) lies in the image's output.
                        out: unsafe { out.add((channels.start * 2 * h + 2 * y) * 2 * w) },
                        out_plane: 4 * h * w,
                        affine: &self.affine[channels.clone()],
                        relu: self.relu,
                    };
                    // SAFETY: the CPU has `isa` (the caller's contract); `task` is in bounds.
                    unsafe {
                        match (self.isa, self.kind) {
                            (Isa::Avx2, Kind::Two) => up_row_avx2::<false>(&task),
                            (Isa::Avx2, Kind::Three) => up_row_avx2::<true>(&task),
                            (Isa::Avx512, Kind::Two) => up_row_avx512::<false>(&task),
                            (Isa::Avx512, Kind::Three) => up_row_avx512::<true>(&task),
                        }
                    }
                }
            }
        });
    }
}

/// One input row into two output rows, for one block of output channels.
struct UpRow<'a> {
    /// The padded input at this row: channel `c`, row `y + r`, column `x` at
    /// `input + c · channel_stride + r · width + x`.
    input: *const f32,
    channel_stride: usize,
    width: usize,
    in_channels: usize,
    /// Input pixels per row.
    w: usize,
    /// `[in][block][taps]`.
    weights: *const f32,
    /// The block's first channel, output row `2y`; row `2y + 1` follows `2w` later.
    out: *mut f32,
    out_plane: usize,
    affine: &'a [(f32, f32)],
    relu: bool,
}

/// # Safety
/// The CPU has what `V` needs; `row`'s pointers cover what it describes.
#[inline(always)]
unsafe fn up_row<V: Lanes, const OB: usize, const THREE: bool>(row: &UpRow) {
    let w = row.w;
    let taps = if THREE { 9 } else { 4 };
    let mut x0 = 0;
    while x0 < w {
        let n = (w - x0).min(V::N);
        // SAFETY (whole loop): reads stay in the padded band (whole registers, one zero past
        // the row), writes in the block's two rows.
        unsafe {
            let mut acc = [[V::zero(); 4]; OB];
            for c in 0..row.in_channels {
                let src = row.input.add(c * row.channel_stride + x0);
                let v00 = V::load(src);
                let weights = row.weights.add(c * OB * taps);
                if THREE {
                    let v01 = V::load(src.add(1));
                    let v10 = V::load(src.add(row.width));
                    let v11 = V::load(src.add(row.width + 1));
                    for (o, acc) in acc.iter_mut().enumerate() {
                        // (No closures here: they would not inherit the target features.)
                        let t = weights.add(o * 9);
                        let (t0, t1, t2) = (V::splat(*t), V::splat(*t.add(1)), V::splat(*t.add(2)));
                        let (t3, t4) = (V::splat(*t.add(3)), V::splat(*t.add(4)));
                        let (t5, t6) = (V::splat(*t.add(5)), V::splat(*t.add(6)));
                        let (t7, t8) = (V::splat(*t.add(7)), V::splat(*t.add(8)));
                        acc[0] = v00.mul_add(t0, acc[0]);
                        acc[1] = v01.mul_add(t2, v00.mul_add(t1, acc[1]));
                        acc[2] = v10.mul_add(t4, v00.mul_add(t3, acc[2]));
                        let a3 = v01.mul_add(t6, v00.mul_add(t5, acc[3]));
                        acc[3] = v11.mul_add(t8, v10.mul_add(t7, a3));
                    }
                } else {
                    for (o, acc) in acc.iter_mut().enumerate() {
                        for (t, a) in acc.iter_mut().enumerate() {
                            *a = v00.mul_add(V::splat(*weights.add(o * 4 + t)), *a);
                        }
                    }
                }
            }
            let zero = V::zero();
            for (o, acc) in acc.iter().enumerate() {
                let (a, b) = row.affine[o];
                let (a, b) = (V::splat(a), V::splat(b));
                for i in 0..2 {
                    let even = affine(acc[2 * i], a, b, row.relu, zero);
                    let odd = affine(acc[2 * i + 1], a, b, row.relu, zero);
                    let (first, second) = even.zip(odd);
                    let dst = row.out.add(o * row.out_plane + i * 2 * w + 2 * x0);
                    if n == V::N {
                        first.store(dst);
                        second.store(dst.add(V::N));
                    } else {
                        let mut lanes = [0.0f32; 32];
                        first.store(lanes.as_mut_ptr());
                        second.store(lanes.as_mut_ptr().add(V::N));
                        std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, 2 * n);
                    }
                }
            }
        }
        x0 += V::N;
    }
}

/// `max(a · v + b, 0)`, or without the maximum.
///
/// # Safety
/// The CPU has what `V` needs.
#[inline(always)]
unsafe fn affine<V: Lanes>(v: V, a: V, b: V, relu: bool, zero: V) -> V {
    // SAFETY: the caller's contract.
    unsafe {
        let y = v.mul_add(a, b);
        if relu { y.max(zero) } else { y }
    }
}

/// [`up_row`] for a block of as many channels as the task has.
macro_rules! up_rows_for {
    ($name:ident, $lanes:ty, $features:literal, [$($ob:literal),*]) => {
        /// # Safety
        /// As [`up_row`], on a CPU with these instructions.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const THREE: bool>(task: &UpRow) {
            // SAFETY: the caller's contract.
            unsafe {
                match task.affine.len() {
                    $($ob => up_row::<$lanes, $ob, THREE>(task),)*
                    n => unreachable!("no block of {n} channels"),
                }
            }
        }
    };
}

up_rows_for!(up_row_avx2, super::direct::x86::Avx2, "avx2,fma", [1, 2, 3]);
up_rows_for!(
    up_row_avx512,
    super::direct::x86::Avx512,
    "avx512f",
    [1, 2, 3, 4, 5, 6]
);

#[cfg(not(target_arch = "x86_64"))]
unsafe fn up_row_avx2<const THREE: bool>(_: &UpRow) {
    unreachable!("Isa::detect finds no x86 instructions elsewhere")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn up_row_avx512<const THREE: bool>(_: &UpRow) {
    unreachable!("Isa::detect finds no x86 instructions elsewhere")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::backward::conv2d_input_grad_products;
    use crate::cpu::direct::tests::isas;
    use crate::cpu::kernel::tests::{close, values};

    /// The convolution a 2×2 (`k = 2`) or TernausNet's 3×3 (`k = 3`) up-sampling of `c → o`
    /// channels from `[h, w]` is the adjoint of.
    fn geometry(k: usize, batch: usize, [c, o]: [usize; 2], [h, w]: [usize; 2]) -> ConvGeometry {
        ConvGeometry {
            batch,
            in_channels: o,
            input: [2 * h, 2 * w],
            out_channels: c,
            kernel: [k, k],
            stride: [2, 2],
            padding: [k - 2; 4],
        }
    }

    #[test]
    fn matches_the_products_and_col2im_for_every_block_width_and_kernel() {
        for isa in isas() {
            for (k, channels, size) in [
                (2, [12, 6], [5, 37]),
                (2, [3, 7], [4, 8]),
                (2, [9, 13], [3, 16]),
                (2, [1, 1], [2, 9]),
                (2, [20, 4], [6, 33]),
                (3, [12, 6], [5, 37]),
                (3, [3, 7], [4, 8]),
                (3, [9, 13], [3, 16]),
                (3, [1, 1], [1, 9]),
                (3, [20, 4], [6, 33]),
            ] {
                let [c, o] = channels;
                let g = geometry(k, 2, channels, size);
                assert!(applies(&g), "{g:?}");
                let x = values(2 * c * size[0] * size[1], 1);
                let weight = values(c * o * k * k, 2);
                let e = Epilogue {
                    scale: Some(values(o, 3)),
                    shift: Some(values(o, 4)),
                    relu: true,
                };
                let got = conv_transpose_up_with(isa, &x, &weight, &g, &e);
                let mut want = conv2d_input_grad_products(&weight, &x, &g);
                let plane = 4 * size[0] * size[1];
                for (i, p) in want.chunks_exact_mut(plane).enumerate() {
                    e.apply(i % o, p);
                }
                close(&got, &want, &format!("{isa:?} {g:?}"));
            }
        }
        // An output not twice the input (no output padding), other padding, rows too short.
        let mut g = geometry(3, 1, [4, 4], [8, 8]);
        g.input = [15, 15];
        assert!(!applies(&g));
        let mut g = geometry(2, 1, [4, 4], [8, 8]);
        g.padding = [1; 4];
        assert!(!applies(&g));
        assert!(!applies(&geometry(2, 1, [4, 4], [8, 7])));
    }

    /// Direct vs products and `col2im` on U-Net and TernausNet up-sampling layers, fastest of 30 runs each,
    /// interleaved: `cargo test --release --workspace --lib -- --ignored --nocapture
    /// up_vs_products`.
    #[test]
    #[ignore = "a timing, not a test"]
    fn up_vs_products() {
        use std::time::Instant;
        let Some(isa) = Isa::detect() else {
            return;
        };
        for (k, c, o, side) in [
            (2, 11, 6, 128),
            (2, 13, 7, 128),
            (2, 32, 16, 128),
            (2, 25, 13, 64),
            (2, 64, 32, 64),
            (2, 49, 25, 32),
            (2, 128, 64, 32),
            (2, 97, 49, 16),
            (2, 256, 128, 16),
            (2, 400, 200, 16),
            (2, 1024, 512, 16),
            (3, 8, 8, 128),
            (3, 25, 10, 128),
            (3, 64, 32, 128),
            (3, 50, 20, 64),
            (3, 128, 64, 64),
            (3, 100, 40, 32),
            (3, 256, 128, 32),
            (3, 200, 80, 16),
            (3, 512, 256, 16),
            (3, 512, 256, 8),
        ] {
            let g = geometry(k, 1, [c, o], [side, side]);
            let x = values(c * side * side, 1);
            let weight = values(c * o * k * k, 2);
            let e = Epilogue::default();
            let (mut direct, mut products) = (f64::MAX, f64::MAX);
            for _ in 0..30 {
                let t = Instant::now();
                std::hint::black_box(conv_transpose_up_with(isa, &x, &weight, &g, &e));
                direct = direct.min(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                std::hint::black_box(conv2d_input_grad_products(&weight, &x, &g));
                products = products.min(t.elapsed().as_secs_f64() * 1e3);
            }
            let gmacs = (o * c * k * k * side * side) as f64 / 1e6;
            println!(
                "{k}×{k} {c:>4} → {o:>3} from {side}²: direct {direct:.3} ms ({:.0} GMAC/s), products \
                 {products:.3} ({:.2}×)",
                gmacs / direct,
                products / direct
            );
        }
    }
}
