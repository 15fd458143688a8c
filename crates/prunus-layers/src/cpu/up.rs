//! 2×2, stride-2 transposed convolutions — a U-Net's up-sampling — computed directly.
//!
//! Each input pixel `x[c][y][x]` feeds the four output pixels `(2y + i, 2x + j)` alone, so the
//! output is four 1×1 convolutions interleaved. The general path (products per band, then
//! `col2im` adding columns into a zeroed output, then the epilogue in another pass) ran a pruned
//! U-Net's up-sampling at 7 G multiply-adds/s. Here a block of output channels keeps the four
//! taps of a register of input pixels in registers, adds every input channel into them, applies
//! the epilogue and writes the two output rows interleaved: one pass, nothing zeroed.

use std::ops::Range;

use super::direct::{Isa, Lanes};
use super::kernel::{ConvGeometry, Epilogue, per_image_band};

/// Whether the direct kernel takes this transposed convolution, given as the convolution it is
/// the adjoint of (`g`: input the transposed convolution's output, and the other way round):
/// a 2×2 kernel at stride 2 without padding, an output exactly twice the input, rows of 8 pixels
/// or more and at most 512 input channels (the ignored `up_vs_products` test: 5× faster than
/// products and `col2im` at 11 → 6 channels, 1.5× at 256 → 128, 1.2× at 400 → 200, 0.83× at
/// 1024 → 512).
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    let Some([h, w]) = g.output() else {
        return false;
    };
    Isa::detect().is_some()
        && g.kernel == [2, 2]
        && g.stride == [2, 2]
        && g.padding == [0; 4]
        && g.input == [2 * h, 2 * w]
        && w >= 8
        && g.out_channels <= 512
}

/// The transposed convolution of `x` (`[batch, g.out_channels, h, w]`) by `weight`
/// (`[g.out_channels, g.in_channels, 2, 2]`), then `epilogue` on its output channels:
/// `[batch, g.in_channels, 2h, 2w]`.
///
/// # Panics
/// Where [`applies`] is false, or a slice's length does not match the geometry.
pub(crate) fn conv_transpose2x2(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    assert!(
        applies(g),
        "a 2×2, stride-2 transposed convolution on a CPU with AVX2"
    );
    let isa = Isa::detect().expect("checked by applies");
    conv_transpose2x2_with(isa, x, weight, g, epilogue)
}

/// [`conv_transpose2x2`] with the given instructions (which the CPU must have).
pub(crate) fn conv_transpose2x2_with(
    isa: Isa,
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let [h, w] = g.output().expect("checked by applies");
    let (c, o) = (g.out_channels, g.in_channels);
    assert_eq!(x.len(), g.batch * c * h * w, "input length");
    assert_eq!(weight.len(), c * o * 4, "weight length");
    let plan = Plan::new(isa, c, o, weight, epilogue);
    let threads = rayon::current_num_threads().max(1);
    let bands_wanted = (4 * threads).div_ceil(g.batch).clamp(1, h);
    let rows_per_band = h.div_ceil(bands_wanted);
    let bands = h.div_ceil(rows_per_band);
    let run = |x: &[f32], image_out: *mut f32, b: usize, _| {
        let rows = b * rows_per_band..((b + 1) * rows_per_band).min(h);
        // SAFETY: this band writes output rows 2·rows of every channel of the image, only them.
        unsafe { plan.band(x, [h, w], rows, image_out) };
    };
    // SAFETY: the bands cover every input row, so every output row, of every image once each.
    unsafe { per_image_band(x, g.batch, [c * h * w, o * 4 * h * w], bands, run) }
}

/// One call's packed weights and per-channel map.
struct Plan {
    isa: Isa,
    in_channels: usize,
    /// Output channel blocks, with their weights' offset in `weights`.
    blocks: Vec<(Range<usize>, usize)>,
    /// Each block's weights as `[in][block][2 · 2]`, blocks one after another.
    weights: Vec<f32>,
    affine: Vec<(f32, f32)>,
    relu: bool,
}

impl Plan {
    fn new(isa: Isa, c: usize, o: usize, weight: &[f32], epilogue: &Epilogue) -> Self {
        // Four accumulators per channel: 24 of AVX-512's 32 registers, 12 of AVX2's 16.
        let most = match isa {
            Isa::Avx2 => 3,
            Isa::Avx512 => 6,
        };
        let count = o.div_ceil(most).max(1);
        let (mut blocks, mut start) = (Vec::with_capacity(count), 0);
        for i in 0..count {
            let len = o / count + usize::from(i < o % count);
            blocks.push((start..start + len, start * c * 4));
            start += len;
        }
        let mut weights = vec![0.0f32; c * o * 4];
        for (range, offset) in &blocks {
            let n = range.len();
            for ci in 0..c {
                for (j, channel) in range.clone().enumerate() {
                    let src = &weight[(ci * o + channel) * 4..][..4];
                    let dst = offset + (ci * n + j) * 4;
                    weights[dst..dst + 4].copy_from_slice(src);
                }
            }
        }
        let affine = (0..o)
            .map(|ch| {
                let a = epilogue.scale.as_ref().map_or(1.0, |s| s[ch]);
                let b = epilogue.shift.as_ref().map_or(0.0, |s| s[ch]);
                (a, b)
            })
            .collect();
        Plan {
            isa,
            in_channels: c,
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
    unsafe fn band(&self, x: &[f32], [h, w]: [usize; 2], rows: Range<usize>, out: *mut f32) {
        for y in rows {
            for (channels, offset) in &self.blocks {
                let task = UpRow {
                    input: x[y * w..].as_ptr(),
                    plane: h * w,
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
                    match self.isa {
                        Isa::Avx2 => up_row_avx2(&task),
                        Isa::Avx512 => up_row_avx512(&task),
                    }
                }
            }
        }
    }
}

/// One input row into two output rows, for one block of output channels.
struct UpRow<'a> {
    /// Input channel `c` of this row at `input + c · plane`, `w` values.
    input: *const f32,
    plane: usize,
    in_channels: usize,
    w: usize,
    /// `[in][block][2 · 2]`.
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
unsafe fn up_row<V: Lanes, const OB: usize>(row: &UpRow) {
    let w = row.w;
    let mut x0 = 0;
    while x0 < w {
        let n = (w - x0).min(V::N);
        // SAFETY (whole loop): reads stay in the row's `w` values of each channel (a short
        // register goes through `tail`), writes in the block's two rows.
        unsafe {
            let mut acc = [[V::zero(); 4]; OB];
            let mut tail = [0.0f32; 16];
            for c in 0..row.in_channels {
                let src = row.input.add(c * row.plane + x0);
                let v = if n == V::N {
                    V::load(src)
                } else {
                    std::ptr::copy_nonoverlapping(src, tail.as_mut_ptr(), n);
                    V::load(tail.as_ptr())
                };
                let weights = row.weights.add(c * OB * 4);
                for (o, acc) in acc.iter_mut().enumerate() {
                    for (t, a) in acc.iter_mut().enumerate() {
                        *a = v.mul_add(V::splat(*weights.add(o * 4 + t)), *a);
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
        unsafe fn $name(task: &UpRow) {
            // SAFETY: the caller's contract.
            unsafe {
                match task.affine.len() {
                    $($ob => up_row::<$lanes, $ob>(task),)*
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
unsafe fn up_row_avx2(_: &UpRow) {
    unreachable!("Isa::detect finds no x86 instructions elsewhere")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn up_row_avx512(_: &UpRow) {
    unreachable!("Isa::detect finds no x86 instructions elsewhere")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::backward::conv2d_input_grad_products;
    use crate::cpu::direct::tests::isas;
    use crate::cpu::kernel::tests::values;

    fn geometry(batch: usize, c: usize, o: usize, [h, w]: [usize; 2]) -> ConvGeometry {
        ConvGeometry {
            batch,
            in_channels: o,
            input: [2 * h, 2 * w],
            out_channels: c,
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0; 4],
        }
    }

    #[test]
    fn matches_the_products_and_col2im_for_every_block_and_width() {
        for isa in isas() {
            for (c, o, size) in [
                (12, 6, [5, 37]),
                (3, 7, [4, 8]),
                (9, 13, [3, 16]),
                (1, 1, [2, 9]),
                (20, 4, [6, 33]),
            ] {
                let g = geometry(2, c, o, size);
                assert!(applies(&g));
                let x = values(2 * c * size[0] * size[1], 1);
                let weight = values(c * o * 4, 2);
                let e = Epilogue {
                    scale: Some(values(o, 3)),
                    shift: Some(values(o, 4)),
                    relu: true,
                };
                let got = conv_transpose2x2_with(isa, &x, &weight, &g, &e);
                let mut want = conv2d_input_grad_products(&weight, &x, &g);
                let plane = 4 * size[0] * size[1];
                for (i, p) in want.chunks_exact_mut(plane).enumerate() {
                    e.apply(i % o, p);
                }
                assert_eq!(got.len(), want.len());
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{isa:?} {g:?} at {i}: {a} vs {b}"
                    );
                }
            }
        }
        // Padding, another stride, an output not twice the input: the products' path.
        let mut g = geometry(1, 4, 4, [8, 8]);
        g.input = [17, 16];
        assert!(!applies(&g));
    }

    /// Direct vs products and `col2im` on U-Net up-sampling layers, fastest of 30 runs each,
    /// interleaved: `cargo test --release --workspace --lib -- --ignored --nocapture
    /// up_vs_products`.
    #[test]
    #[ignore = "a timing, not a test"]
    fn up_vs_products() {
        use std::time::Instant;
        let Some(isa) = Isa::detect() else {
            return;
        };
        for (c, o, side) in [
            (11, 6, 128),
            (13, 7, 128),
            (32, 16, 128),
            (25, 13, 64),
            (64, 32, 64),
            (49, 25, 32),
            (128, 64, 32),
            (97, 49, 16),
            (256, 128, 16),
            (400, 200, 16),
            (1024, 512, 16),
        ] {
            let g = geometry(1, c, o, [side, side]);
            let x = values(c * side * side, 1);
            let weight = values(c * o * 4, 2);
            let e = Epilogue::default();
            let (mut direct, mut products) = (f64::MAX, f64::MAX);
            for _ in 0..30 {
                let t = Instant::now();
                std::hint::black_box(conv_transpose2x2_with(isa, &x, &weight, &g, &e));
                direct = direct.min(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                std::hint::black_box(conv2d_input_grad_products(&weight, &x, &g));
                products = products.min(t.elapsed().as_secs_f64() * 1e3);
            }
            let gmacs = (o * c * 4 * side * side) as f64 / 1e6;
            println!(
                "{c:>4} → {o:>3} from {side}²: direct {direct:.3} ms ({:.0} GMAC/s), products \
                 {products:.3} ({:.2}×)",
                gmacs / direct,
                products / direct
            );
        }
    }
}
