//! Direct convolution for narrow layers, in vector registers.
//!
//! A pruned network's layers keep few channels: 7 at full resolution, 13 at half. There a
//! matrix product has little to work with — `im2col` copies each input nine times for a product
//! of a few rows, and Winograd's transforms cost as much as its products — and both ran at a
//! fifth of a wide layer's rate. This kernel keeps a block of output channels × a run of pixels
//! of one output row in registers (up to 12 × 32 values with AVX-512, 6 × 16 with AVX2), and
//! adds every input channel's every tap into it: one load of the input row per tap, one
//! broadcast per weight, the rest fused multiply-adds. The epilogue is applied in registers.
//!
//! Stride 1, any kernel size and padding; the input band is first copied with its zero padding
//! so that the inner loop has no bounds to check. Rows narrower than 32 pixels (a 16² or 24²
//! bottleneck) would leave most lanes of a run idle: there a band's rows, padding included, are
//! one run ([`Row::folded`]), and the tasks share out groups of output channel blocks. x86-64
//! only (AVX-512 or AVX2 + FMA, chosen at run time); elsewhere [`applies`] says no and the
//! matrix products run.

use std::ops::Range;

use super::kernel::{ConvGeometry, Epilogue, Out, per_task, with_scratch, written_once};
use super::pool::max_pool_pair;

/// The vector instructions the kernel is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX2 and FMA: 16 registers of 8 lanes.
    Avx2,
    /// AVX-512F: 32 registers of 16 lanes.
    Avx512,
}

impl Isa {
    /// The best this CPU offers, if any.
    pub(crate) fn detect() -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|isa| isa.available())
    }

    /// Whether this CPU has these instructions.
    pub(crate) fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Isa::Avx512 => has!("avx512f"),
                Isa::Avx2 => has!("avx2") && has!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// Lanes per register.
    pub(super) fn lanes(self) -> usize {
        match self {
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }

    /// Registers the kernels give to accumulators, the rest holding inputs and weights: 12 of
    /// AVX2's 16, 24 of AVX-512's 32.
    pub(super) const fn accumulators(self) -> usize {
        match self {
            Isa::Avx2 => 12,
            Isa::Avx512 => 24,
        }
    }

    /// Most output channels a block keeps in registers: two registers of pixels each.
    pub(super) fn max_block(self) -> usize {
        self.accumulators() / 2
    }
}

/// Whether the direct kernel applies and pays: stride 1, on layers narrow enough that it beats
/// the matrix products.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    Isa::detect().is_some() && g.stride == [1, 1] && narrow(g)
}

/// Where the direct kernel measured faster than `im2col` and Winograd (the ignored
/// `direct_vs_products` test, AVX-512 on Zen 4): it runs at ~100 G multiply-adds/s whatever the
/// width, Winograd gains on it as channels grow and as images grow (more tiles per product). Up
/// to 40 output channels it wins (2–3.7× at 3–16 channels, 1.2–1.4× at 26–40; 1.0 at 32 → 16 on
/// 256², 0.94–0.97 at 40 → 40 on 128²); on 64² images up to 48 (1.1–1.6× at 21–48 → 41–48,
/// 0.83 at 82 → 41), on 32² and smaller up to 200 input and 256 output channels (1.0–2.2× at
/// up to 100 on Zen 4; on a Xeon 1.3–1.6× at 81 → 161, 161 → 161 and 128 → 256, 1.08× at
/// 200 → 200, 0.96× at 256 → 256, 0.87× at 256 → 512); on 3 input channels (a network's first
/// layer, where `im2col` has 27 rows) whatever the output (1.3–2× at 32–64). Rows narrower than
/// 32 pixels are folded into one run per band ([`Row::folded`]), which runs at 55–75 G
/// multiply-adds/s on 16² and 24² (Zen 4): against Winograd's products (what runs there
/// otherwise) 1.16–1.55× at 25, 49, 97 and 128 channels on 16² but about even at 41 → 81 and
/// 81 → 81 (0.73–1.15, 0.96), 1.7× at 49 → 97 on 24²; behind them from 160 channels
/// (0.72–0.98), on 8² rows (0.8) and below 16 channels, where the fixed costs of a call
/// dominate.
fn narrow(g: &ConvGeometry) -> bool {
    let [oh, ow] = g.output().unwrap_or([0, 0]);
    let channels = |out: usize, input: usize| g.out_channels <= out && g.in_channels <= input;
    let pixels = oh * ow;
    let folds = ow >= 16 && g.in_channels >= 16 && channels(128, 128);
    (ow >= FOLD_BELOW || folds)
        && (channels(40, 64)
            || g.in_channels <= 4
            || (pixels <= 64 * 64 && channels(48, 64))
            || (pixels <= 32 * 32 && channels(256, 200)))
}

/// The concatenation along the channels of `sources` (each `(values, channels)`, `[batch,
/// channels, h, w]`), read where they are, convolved with `weight` at stride 1, then `epilogue`,
/// by the direct kernel with the best instructions this CPU has; as [`super::kernel::conv2d`].
///
/// # Panics
/// When the CPU has neither AVX-512 nor AVX2 + FMA, the stride is not 1, a slice's length does
/// not match the geometry, or the sources' channels do not add up to the geometry's.
pub(crate) fn conv2d_cat(
    sources: &[(&[f32], usize)],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let isa = Isa::detect().expect("the direct kernel needs AVX2 + FMA or AVX-512");
    conv2d_cat_with(isa, sources, weight, g, epilogue)
}

/// [`conv2d_cat`] of one source with the given instructions (which the CPU must have).
#[cfg(test)]
pub(crate) fn conv2d_with(
    isa: Isa,
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    conv2d_cat_with(isa, &[(x, g.in_channels)], weight, g, epilogue)
}

/// [`conv2d_cat`] with the given instructions (which the CPU must have).
pub(crate) fn conv2d_cat_with(
    isa: Isa,
    sources: &[(&[f32], usize)],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    convolve(isa, sources, weight, g, epilogue, None, false).0
}

/// A 1×1 convolution to one channel (`weights` per input channel, then `bias`) applied to the
/// output of a convolution, in the convolution's registers: its output is never written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projection<'a> {
    /// One weight per output channel of the convolution.
    pub(crate) weights: &'a [f32],
    pub(crate) bias: f32,
}

/// Whether [`conv2d_projected`] takes `g`: the direct kernel applies and one block of output
/// channels holds them all.
pub(crate) fn projects(g: &ConvGeometry) -> bool {
    applies(g) && Isa::detect().is_some_and(|isa| g.out_channels <= isa.max_block())
}

/// `projection(epilogue(conv(x)))`: the convolution of `x` (`[batch, in, h, w]`) by the direct
/// kernel, its epilogue, then a 1×1 convolution to one channel, `[batch, 1, oh, ow]`, in one pass
/// that keeps the convolution's output in registers (a U-Net's last layer and its head).
///
/// # Panics
/// Where [`projects`] says no, or a slice's length does not match the geometry.
pub(crate) fn conv2d_projected(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
    projection: Projection,
) -> Vec<f32> {
    assert!(projects(g), "the direct kernel projects this layer");
    assert_eq!(
        projection.weights.len(),
        g.out_channels,
        "projection weights"
    );
    let isa = Isa::detect().expect("checked by projects");
    let source = [(x, g.in_channels)];
    convolve(isa, &source, weight, g, epilogue, Some(projection), false).0
}

/// Whether [`conv2d_pooled`] takes `g`: the direct kernel applies and the output's sides are
/// even.
pub(crate) fn pools(g: &ConvGeometry) -> bool {
    let even = g
        .output()
        .is_some_and(|[oh, ow]| oh >= 2 && ow >= 2 && oh % 2 == 0 && ow % 2 == 0);
    applies(g) && even
}

/// `(y, maxpool(y))` where `y = epilogue(conv(x))` by the direct kernel and `maxpool` is a 2×2
/// max-pool at stride 2 (a U-Net encoder level's skip and the next level's input): each pair of
/// rows is pooled as soon as it is written, while it is in cache, instead of read back later.
///
/// # Panics
/// Where [`pools`] says no, or a slice's length does not match the geometry.
pub(crate) fn conv2d_pooled(
    x: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
) -> (Vec<f32>, Vec<f32>) {
    assert!(pools(g), "the direct kernel pools this layer");
    let isa = Isa::detect().expect("checked by pools");
    convolve(isa, &[(x, g.in_channels)], weight, g, epilogue, None, true)
}

/// [`conv2d_cat_with`], [`conv2d_projected`] with `projection`, or [`conv2d_pooled`] with
/// `pool` (the pooled output second, empty without `pool`).
fn convolve(
    isa: Isa,
    sources: &[(&[f32], usize)],
    weight: &[f32],
    g: &ConvGeometry,
    epilogue: &Epilogue,
    projection: Option<Projection>,
    pool: bool,
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(g.stride, [1, 1], "the direct kernel is for stride 1");
    let [h, w] = g.input;
    let [oh, ow] = g.output().expect("the kernel fits the padded input");
    let channels: usize = sources.iter().map(|&(_, c)| c).sum();
    assert_eq!(channels, g.in_channels, "the sources' channels");
    for &(x, c) in sources {
        assert_eq!(x.len(), g.batch * c * h * w, "input length");
    }
    assert_eq!(weight.len(), g.out_channels * g.depth(), "weight length");
    let plan = Plan::new(isa, g, weight, epilogue, projection);
    let out_channels = if projection.is_some() {
        1
    } else {
        g.out_channels
    };
    let threads = rayon::current_num_threads().max(1);
    // Four tasks per thread (load balance), bands small enough to stay in the last-level cache.
    // Folded rows: as few bands as that allows (every band's rows are one run), the tasks then
    // taking groups of output channel blocks.
    let bands_wanted = (4 * threads).div_ceil(g.batch).clamp(1, oh.max(1));
    let max_rows = ((1 << 22) / (4 * g.in_channels * plan.width)).max(1);
    let rows_wanted = if plan.folded {
        oh
    } else {
        oh.div_ceil(bands_wanted)
    };
    let mut rows_per_band = rows_wanted.min(max_rows).max(1);
    // Pooling: whole pairs of rows in every band.
    rows_per_band += usize::from(pool) * (rows_per_band % 2);
    let bands = oh.div_ceil(rows_per_band);
    let groups = match plan.folded {
        false => 1,
        true => (4 * threads).div_ceil(g.batch * bands),
    };
    let n = plan.blocks.len();
    // At least one group, empty without output channels (then the tasks write nothing).
    let mut groups = channel_blocks(n, n.div_ceil(groups.clamp(1, n.max(1))));
    if groups.is_empty() {
        groups.push(0..0);
    }
    let tasks = bands * groups.len();
    let pooled_image = g.out_channels * (oh / 2) * (ow / 2);
    let pooled_len = if pool { g.batch * pooled_image } else { 0 };
    let mut pooled: Vec<f32> = Vec::with_capacity(pooled_len);
    let pooled_at = Out(pooled.as_mut_ptr());
    let rows = |b: usize| b * rows_per_band..((b + 1) * rows_per_band).min(oh);
    let inputs = |image: usize| -> Vec<(&[f32], usize)> {
        let planes = h * w;
        sources
            .iter()
            .map(|&(x, c)| (&x[image * c * planes..(image + 1) * c * planes], c))
            .collect()
    };
    // Groups of blocks: each band padded once, before the tasks that share it.
    let band_len = plan.band_len(rows_per_band);
    let mut shared = Vec::new();
    if groups.len() > 1 {
        shared = vec![0.0f32; g.batch * bands * band_len];
        for (t, band) in shared.chunks_mut(band_len).enumerate() {
            plan.fill(&inputs(t / bands), rows(t % bands), band);
        }
    }
    let run = |image: usize, task: usize, image_out: *mut f32, _| {
        let (b, blocks) = (task / groups.len(), groups[task % groups.len()].clone());
        // SAFETY: within the pooled output's capacity (`pool` only).
        let pool_out = pool.then(|| unsafe { pooled_at.get().add(image * pooled_image) });
        // SAFETY: this task writes its band's rows of its blocks' output channels of the image,
        // and only them (and, pooling, their pooled rows); a shared band is `band_len` long.
        unsafe {
            match groups.len() {
                1 => plan.band(&inputs(image), rows(b), blocks, image_out, pool_out),
                _ => {
                    let band = &shared[(image * bands + b) * band_len..][..band_len];
                    plan.compute(band, rows(b), blocks, image_out, pool_out)
                }
            }
        }
    };
    // SAFETY: the bands × groups of blocks cover every row of every image and output channel,
    // once each.
    let out = unsafe { per_task(g.batch, out_channels * oh * ow, tasks, run) };
    // SAFETY: pooling, the bands' pairs of rows cover every pooled row of every image.
    unsafe { pooled.set_len(pooled_len) };
    (out, pooled)
}

/// One layer's call: its geometry, packed weights and per-channel affine map.
struct Plan<'a> {
    isa: Isa,
    g: &'a ConvGeometry,
    /// Output channel blocks `o0..o0 + n`, with their weights' offset in `weights`.
    blocks: Vec<(Range<usize>, usize)>,
    /// Each block's weights as `[in][kh][kw][block]`, blocks one after another.
    weights: Vec<f32>,
    /// `(scale, shift)` per output channel.
    affine: Vec<(f32, f32)>,
    relu: bool,
    /// The 1×1 convolution to one channel applied in registers (then one block holds every
    /// output channel, and the output has one channel).
    projection: Option<Projection<'a>>,
    /// Width of a row of the padded input band: the output, plus the longest run of registers
    /// a block reads past its last pixel, plus the kernel's overhang; folded, the padded input's.
    width: usize,
    /// Whether each band's rows are one run ([`Row::folded`]): rows narrower than
    /// [`FOLD_BELOW`], which would leave most lanes of a run idle.
    folded: bool,
}

/// Output rows narrower than this are folded into one run per band ([`Row::folded`]).
const FOLD_BELOW: usize = 32;

impl<'a> Plan<'a> {
    fn new(
        isa: Isa,
        g: &'a ConvGeometry,
        weight: &[f32],
        epilogue: &Epilogue,
        projection: Option<Projection<'a>>,
    ) -> Self {
        let (o, depth) = (g.out_channels, g.depth());
        let blocks: Vec<_> = channel_blocks(o, isa.max_block())
            .into_iter()
            .map(|range| {
                let offset = range.start * depth;
                (range, offset)
            })
            .collect();
        // SAFETY: the blocks cover the `o` channels once each, every channel's `depth` taps (a
        // short `weight` panics at its slice, before the buffer is used).
        let weights = unsafe {
            written_once(o * depth, |weights| {
                for (range, offset) in &blocks {
                    let n = range.len();
                    for (j, channel) in range.clone().enumerate() {
                        for (t, &v) in weight[channel * depth..(channel + 1) * depth]
                            .iter()
                            .enumerate()
                        {
                            weights[offset + t * n + j].write(v);
                        }
                    }
                }
            })
        };
        let affine = epilogue.affine(o);
        let [_, ow] = g.output().expect("checked by conv2d_with");
        let folded = ow < FOLD_BELOW;
        let overrun = if folded { 0 } else { 4 * isa.lanes() };
        Plan {
            isa,
            g,
            blocks,
            weights,
            affine,
            relu: epilogue.relu,
            projection,
            width: ow + overrun + g.kernel[1] - 1,
            folded,
        }
    }

    /// Output rows `rows` of one image, the channels of blocks `blocks`.
    ///
    /// # Safety
    /// `out` points at the image's output `[out, oh, ow]`, valid for writes; the CPU has `isa`;
    /// `pooled`, if any, at its pooled output `[out, oh / 2, ow / 2]`, `rows` starting at an
    /// even row and holding whole pairs.
    unsafe fn band(
        &self,
        inputs: &[(&[f32], usize)],
        rows: Range<usize>,
        blocks: Range<usize>,
        out: *mut f32,
        pooled: Option<*mut f32>,
    ) {
        with_scratch(self.band_len(rows.len()), |band| {
            self.fill(inputs, rows.clone(), band);
            // SAFETY: the caller's contract; `band` holds the band.
            unsafe { self.compute(band, rows, blocks, out, pooled) }
        });
    }

    /// The length of the padded input band of `rows` output rows (a folded run reads up to 4
    /// registers past the last channel's last row).
    fn band_len(&self, rows: usize) -> usize {
        let padded_rows = rows + self.g.kernel[0] - 1;
        self.g.in_channels * padded_rows * self.width + 4 * self.isa.lanes()
    }

    /// The padded input band of output rows `rows` of one image (its sources `inputs`) into
    /// `band` (`[in][rows + kh − 1][width]`).
    fn fill(&self, inputs: &[(&[f32], usize)], rows: Range<usize>, band: &mut [f32]) {
        let g = self.g;
        let padded_rows = rows.len() + g.kernel[0] - 1;
        let (padded, [pt, pl, _, _]) = (rows.start..rows.start + padded_rows, g.padding);
        let mut first = 0;
        for &(x, channels) in inputs {
            let len = channels * padded_rows * self.width;
            let dst = &mut band[first..first + len];
            pad(
                x,
                channels,
                g.input,
                [pt, pl],
                g.padding[3],
                padded.clone(),
                self.width,
                dst,
            );
            first += len;
        }
    }

    /// [`Plan::band`] from its padded input band ([`Plan::fill`]).
    ///
    /// # Safety
    /// As [`Plan::band`]; `band` is [`Plan::band_len`] long.
    unsafe fn compute(
        &self,
        band: &[f32],
        rows: Range<usize>,
        blocks: Range<usize>,
        out: *mut f32,
        pooled: Option<*mut f32>,
    ) {
        let g = self.g;
        let padded_rows = rows.len() + g.kernel[0] - 1;
        let [oh, ow] = g.output().expect("checked by conv2d_with");
        let blocks = &self.blocks[blocks];
        let channels =
            blocks.first().map_or(0, |b| b.0.start)..blocks.last().map_or(0, |b| b.0.end);
        // Rows `r` of the band as one run each, or all of them as one.
        let runs = match self.folded {
            false => rows
                .clone()
                .map(|y| (y, y - rows.start, ow, None))
                .collect::<Vec<_>>(),
            true => {
                let length = (rows.len() - 1) * self.width + ow;
                vec![(rows.start, 0, length, Some([self.width, ow]))]
            }
        };
        for (y, r, length, folded) in runs {
            for (channels, offset) in blocks {
                let task = Row {
                    input: band[r * self.width..].as_ptr(),
                    channel_stride: padded_rows * self.width,
                    width: self.width,
                    in_channels: g.in_channels,
                    kernel: g.kernel,
                    weights: self.weights[*offset..].as_ptr(),
                    // SAFETY: (channels.start, y, 0) lies in the image's output.
                    out: unsafe { out.add((channels.start * oh + y) * ow) },
                    out_stride: oh * ow,
                    ow: length,
                    affine: &self.affine[channels.clone()],
                    relu: self.relu,
                    projection: self.projection,
                    folded,
                };
                // SAFETY: the CPU has `isa` (the caller's contract); `task` is in bounds.
                unsafe { run_row(self.isa, &task) };
            }
            let Some(pooled) = pooled else { continue };
            let last = if folded.is_some() { rows.end } else { y + 1 };
            for y in (y..last).filter(|y| y % 2 == 1) {
                // SAFETY: rows y − 1 and y of these channels were written just above, by
                // this task; the pooled row y / 2 of these channels is this task's alone.
                unsafe { pool_pair(out, pooled, channels.clone(), [oh, ow], y) };
            }
        }
    }
}

/// Max-pools rows `y − 1` and `y` of channels `channels` of `out` (`[_, oh, ow]`) into row
/// `y / 2` of `pooled` (`[_, oh / 2, ow / 2]`).
///
/// # Safety
/// The rows are written and readable; the pooled rows are valid for writes.
unsafe fn pool_pair(
    out: *const f32,
    pooled: *mut f32,
    channels: Range<usize>,
    [oh, ow]: [usize; 2],
    y: usize,
) {
    let (ph, pw) = (oh / 2, ow / 2);
    for c in channels {
        // SAFETY: the caller's contract.
        unsafe {
            let first = out.add((c * oh + y - 1) * ow);
            let rows = std::slice::from_raw_parts(first, 2 * ow);
            let dst = pooled.add((c * ph + y / 2) * pw);
            let dst = std::slice::from_raw_parts_mut(dst, pw);
            max_pool_pair(&rows[..ow], &rows[ow..], dst);
        }
    }
}

/// `channels` output channels in as few blocks of at most `most` as possible, their sizes
/// differing by one at most (7 in blocks of 6 is 4 + 3, not 6 + 1).
pub(super) fn channel_blocks(channels: usize, most: usize) -> Vec<Range<usize>> {
    let count = channels.div_ceil(most.max(1));
    let mut start = 0;
    (0..count)
        .map(|i| {
            let len = channels / count + usize::from(i < channels % count);
            start += len;
            start - len..start
        })
        .collect()
}

/// Rows `rows` (padded coordinates) of every channel of `x` (`channels` planes of `[h, w]`) into
/// `band` (`[channels][rows][width]`), the input placed `[top, left]` into the padding, zeros
/// before it, in rows outside it, and in the `right` columns after it. Columns further right
/// are left as they were: the kernels read them only for lanes past the output row's end,
/// which they never store (and the zeroing of every row's tail cost as much as its copy on a
/// narrow layer).
#[allow(clippy::too_many_arguments)]
pub(super) fn pad(
    x: &[f32],
    channels: usize,
    [h, w]: [usize; 2],
    [top, left]: [usize; 2],
    right: usize,
    rows: Range<usize>,
    width: usize,
    band: &mut [f32],
) {
    let end = (left + w + right).min(width);
    for c in 0..channels {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for (r, row) in rows.clone().enumerate() {
            let dst = &mut band[(c * rows.len() + r) * width..(c * rows.len() + r + 1) * width];
            let iy = row.wrapping_sub(top);
            if iy >= h {
                dst[..end].fill(0.0);
                continue;
            }
            dst[..left].fill(0.0);
            dst[left..left + w].copy_from_slice(&plane[iy * w..(iy + 1) * w]);
            dst[left + w..end].fill(0.0);
        }
    }
}

/// One output row of one block of output channels.
pub(super) struct Row<'a> {
    /// The padded input at this output row: channel `c`, kernel row `ky`, column `x` at
    /// `c · channel_stride + ky · width + x`.
    pub(super) input: *const f32,
    pub(super) channel_stride: usize,
    pub(super) width: usize,
    pub(super) in_channels: usize,
    pub(super) kernel: [usize; 2],
    /// The block's weights, `[in][kh][kw][block]`.
    pub(super) weights: *const f32,
    /// Output channel `j` of the block, this row, at `out + j · out_stride`.
    pub(super) out: *mut f32,
    pub(super) out_stride: usize,
    pub(super) ow: usize,
    /// `(scale, shift)` of the block's channels.
    pub(super) affine: &'a [(f32, f32)],
    pub(super) relu: bool,
    /// A 1×1 convolution to one channel of the block's outputs (the block then holds every
    /// output channel): its one row is stored at `out`, the block's rows are not.
    pub(super) projection: Option<Projection<'a>>,
    /// Rows folded into one run, `Some([width, ow])`: the run is several output rows of `width`
    /// pixels laid end to end (the padded input's rows), of which the first `ow` are real, and
    /// `ow` above is the run's length. Pixel `f` of the run is row `f / width`, column `f %
    /// width`, stored at `out + (f / width) · ow + f % width` when the column is real.
    pub(super) folded: Option<[usize; 2]>,
}

/// Runs one row of one block (of at most [`Isa::max_block`] channels) with `isa`.
///
/// # Safety
/// The CPU has `isa`; `task`'s pointers cover what it describes, the input rows at least `ow`
/// rounded up to 4 registers, plus the kernel's overhang, wide.
pub(super) unsafe fn run_row(isa: Isa, task: &Row) {
    // SAFETY: the caller's contract.
    unsafe {
        match isa {
            Isa::Avx2 => row_avx2(task),
            Isa::Avx512 => row_avx512(task),
        }
    }
}

/// One register's worth of lanes and the operations the kernels need.
pub(super) trait Lanes: Copy {
    const N: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// `self · b + c`.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    unsafe fn max(self, b: Self) -> Self;
    /// The lanes of `self` and `b` interleaved, `self[0], b[0], self[1], b[1], …`, as two
    /// registers.
    unsafe fn zip(self, b: Self) -> (Self, Self);
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    use super::Lanes;

    #[derive(Clone, Copy)]
    pub(in crate::cpu) struct Avx2(__m256);

    impl Lanes for Avx2 {
        const N: usize = 8;
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zero() -> Self {
            Avx2(_mm256_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(v: f32) -> Self {
            Avx2(_mm256_set1_ps(v))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller's contract: 8 readable values at `p`.
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller's contract: 8 writable values at `p`.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            Avx2(_mm256_fmadd_ps(self.0, b.0, c.0))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn max(self, b: Self) -> Self {
            Avx2(_mm256_max_ps(self.0, b.0))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zip(self, b: Self) -> (Self, Self) {
            // a0 b0 a1 b1 | a4 b4 a5 b5 and a2 b2 a3 b3 | a6 b6 a7 b7, then the halves in order.
            let (lo, hi) = (
                _mm256_unpacklo_ps(self.0, b.0),
                _mm256_unpackhi_ps(self.0, b.0),
            );
            (
                Avx2(_mm256_permute2f128_ps::<0x20>(lo, hi)),
                Avx2(_mm256_permute2f128_ps::<0x31>(lo, hi)),
            )
        }
    }

    #[derive(Clone, Copy)]
    pub(in crate::cpu) struct Avx512(__m512);

    impl Lanes for Avx512 {
        const N: usize = 16;
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn zero() -> Self {
            Avx512(_mm512_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn splat(v: f32) -> Self {
            Avx512(_mm512_set1_ps(v))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller's contract: 16 readable values at `p`.
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller's contract: 16 writable values at `p`.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            Avx512(_mm512_fmadd_ps(self.0, b.0, c.0))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn max(self, b: Self) -> Self {
            Avx512(_mm512_max_ps(self.0, b.0))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn zip(self, b: Self) -> (Self, Self) {
            // Index i < 16 picks self[i], 16 + i picks b[i].
            let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            let high =
                _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            (
                Avx512(_mm512_permutex2var_ps(self.0, low, b.0)),
                Avx512(_mm512_permutex2var_ps(self.0, high, b.0)),
            )
        }
    }
}

/// One row of one block: `OB` output channels × runs of `P` registers of pixels.
///
/// # Safety
/// The CPU has what `V` needs; `row`'s pointers cover what it describes, the input rows at least
/// `ow` rounded up to `P · V::N`, plus the kernel's overhang, wide.
#[inline(always)]
unsafe fn row<V: Lanes, const P: usize, const OB: usize>(row: &Row) {
    let run = P * V::N;
    let [kh, kw] = row.kernel;
    let mut x0 = 0;
    while x0 < row.ow {
        // SAFETY (whole loop): reads stay in the padded band (the caller's contract), writes in
        // the block's channels of this row.
        unsafe {
            let mut acc = [[V::zero(); P]; OB];
            for c in 0..row.in_channels {
                for ky in 0..kh {
                    let input = row.input.add(c * row.channel_stride + ky * row.width + x0);
                    let weights = row.weights.add((c * kh + ky) * kw * OB);
                    for kx in 0..kw {
                        let mut v = [V::zero(); P];
                        for (p, v) in v.iter_mut().enumerate() {
                            *v = V::load(input.add(kx + p * V::N));
                        }
                        for (o, acc) in acc.iter_mut().enumerate() {
                            let w = V::splat(*weights.add(kx * OB + o));
                            for (a, v) in acc.iter_mut().zip(&v) {
                                *a = v.mul_add(w, *a);
                            }
                        }
                    }
                }
            }
            // The epilogue on the accumulators in place, in loops small enough to unroll, so
            // that they stay in registers (a larger body here kept them on the stack, zeroed by
            // a call to `memset` at every run: 3–7% of a pruned network's pass).
            let zero = V::zero();
            for (o, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `affine` has the block's `OB` channels (`rows_for` matched its length).
                let (a, b) = *row.affine.get_unchecked(o);
                let (a, b) = (V::splat(a), V::splat(b));
                for y in acc.iter_mut() {
                    *y = y.mul_add(a, b);
                    if row.relu {
                        *y = y.max(zero);
                    }
                }
            }
            match row.projection {
                Some(projection) => {
                    let mut projected = [V::splat(projection.bias); P];
                    for (o, acc) in acc.iter().enumerate() {
                        // SAFETY: one projection weight per output channel (`conv2d_projected`).
                        let w = V::splat(*projection.weights.get_unchecked(o));
                        for (q, y) in projected.iter_mut().zip(acc) {
                            *q = y.mul_add(w, *q);
                        }
                    }
                    store_block(row, &[projected], x0);
                }
                None => store_block(row, &acc, x0),
            }
        }
        x0 += run;
    }
}

/// Most values of one run of one block: 24 registers of 16 lanes (AVX-512's accumulators).
const MOST_RUN_VALUES: usize = 24 * 16;

/// Stores the run of pixels `x0..x0 + P · N` of `row` from `y` (`OB` channels × `P`
/// registers), those it has: a whole run of a row straight from the registers, a run's edge
/// or folded rows through a buffer, out of line.
///
/// # Safety
/// The CPU has what `V` needs; `row.out` is valid for writes of the block's channels' pixels.
#[inline(always)]
unsafe fn store_block<V: Lanes, const P: usize, const OB: usize>(
    row: &Row,
    y: &[[V; P]; OB],
    x0: usize,
) {
    let run = P * V::N;
    // SAFETY: the caller's contract; the buffer holds `OB · run` values (at most 24 registers).
    unsafe {
        if row.folded.is_none() && x0 + run <= row.ow {
            for (o, y) in y.iter().enumerate() {
                let dst = row.out.add(o * row.out_stride + x0);
                for (p, y) in y.iter().enumerate() {
                    y.store(dst.add(p * V::N));
                }
            }
            return;
        }
        const { assert!(OB * P * V::N <= MOST_RUN_VALUES) };
        let mut lanes = std::mem::MaybeUninit::<[f32; MOST_RUN_VALUES]>::uninit();
        let lanes = lanes.as_mut_ptr().cast::<f32>();
        for (o, y) in y.iter().enumerate() {
            for (p, y) in y.iter().enumerate() {
                y.store(lanes.add(o * run + p * V::N));
            }
        }
        let values = std::slice::from_raw_parts(lanes, OB * run);
        store_edge(row, values, run, x0);
    }
}

/// Stores the real pixels among `x0..x0 + run` (before `row.ow`) of each channel's `run`
/// values in `values` (channel after channel): the tail of a row, or folded rows (pixel `f` is
/// row `f / width`, column `f % width`, real when the column is below the output's width).
///
/// # Safety
/// `row.out` is valid for writes of the block's channels' real pixels before `row.ow`.
#[inline(never)]
unsafe fn store_edge(row: &Row, values: &[f32], run: usize, x0: usize) {
    let stop = (x0 + run).min(row.ow);
    for (o, values) in values.chunks_exact(run).enumerate() {
        // SAFETY: the caller's contract; only real pixels before `row.ow` are written.
        unsafe {
            let dst = row.out.add(o * row.out_stride);
            let Some([width, ow]) = row.folded else {
                let n = stop.saturating_sub(x0);
                std::ptr::copy_nonoverlapping(values.as_ptr(), dst.add(x0), n);
                continue;
            };
            let mut f = x0;
            while f < stop {
                let (r, x) = (f / width, f % width);
                if x < ow {
                    let n = (ow - x).min(stop - f);
                    let src = values.as_ptr().add(f - x0);
                    std::ptr::copy_nonoverlapping(src, dst.add(r * ow + x), n);
                    f += n;
                } else {
                    f += width - x;
                }
            }
        }
    }
}

/// [`row`] for a block of as many channels as the task has: as many registers of pixels as
/// [`Isa::accumulators`] allows, at most 4.
macro_rules! rows_for {
    ($name:ident, $lanes:ty, $features:literal, $isa:expr, [$($ob:literal),*]) => {
        /// # Safety
        /// As [`row`], on a CPU with these instructions.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(task: &Row) {
            const fn registers(ob: usize) -> usize {
                let p = $isa.accumulators() / ob;
                if p > 4 { 4 } else if p < 1 { 1 } else { p }
            }
            // SAFETY: the caller's contract.
            unsafe {
                match task.affine.len() {
                    $($ob => row::<$lanes, { registers($ob) }, $ob>(task),)*
                    n => unreachable!("blocks hold at most {} channels, not {n}", $isa.max_block()),
                }
            }
        }
    };
}

rows_for!(
    row_avx2,
    x86::Avx2,
    "avx2,fma",
    Isa::Avx2,
    [1, 2, 3, 4, 5, 6]
);
rows_for!(
    row_avx512,
    x86::Avx512,
    "avx512f",
    Isa::Avx512,
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
);

#[cfg(not(target_arch = "x86_64"))]
unsafe fn row_avx2(_: &Row) {
    unreachable!("Isa::detect finds no x86 instructions elsewhere")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn row_avx512(_: &Row) {
    unreachable!("Isa::detect finds no x86 instructions elsewhere")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::kernel::tests::{close, naive, values};

    /// The instruction sets this CPU has, best first.
    pub(crate) fn isas() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .filter(|isa| isa.available())
            .collect()
    }

    #[test]
    fn matches_the_definition_for_every_block_size_width_and_padding() {
        let isas = isas();
        if isas.is_empty() {
            eprintln!("no AVX2 or AVX-512 here: the direct kernel is not used");
            return;
        }
        // (input channels, output channels, input size, kernel, padding)
        type Case = (usize, usize, [usize; 2], usize, [usize; 4]);
        let cases: &[Case] = &[
            (3, 7, [20, 37], 3, [1, 1, 1, 1]),
            (7, 7, [16, 16], 3, [1, 1, 1, 1]),
            (13, 13, [9, 70], 3, [1, 1, 1, 1]),
            (5, 16, [11, 33], 3, [0, 0, 0, 0]),
            (2, 25, [8, 17], 3, [2, 0, 1, 2]),
            (6, 11, [7, 5], 1, [0, 0, 0, 0]),
            (4, 9, [12, 31], 5, [2, 2, 2, 2]),
            (1, 1, [3, 3], 3, [0, 0, 0, 0]),
            // Rows of 32 pixels and more: whole runs, runs at both edges, one run reaching both
            // (every block size's run length), no padding, asymmetric padding, 5×5 and 1×1,
            // padding wider than the kernel's overhang (rows and columns wholly in it), a
            // single input row.
            (3, 5, [6, 64], 3, [1, 1, 1, 1]),
            (4, 12, [5, 100], 3, [1, 1, 1, 1]),
            (2, 40, [3, 130], 3, [1, 1, 1, 1]),
            (5, 16, [11, 40], 3, [0, 0, 0, 0]),
            (2, 25, [8, 40], 3, [2, 0, 1, 2]),
            (4, 9, [12, 40], 5, [2, 2, 2, 2]),
            (6, 11, [7, 45], 1, [0, 0, 0, 0]),
            (3, 4, [4, 36], 3, [3, 3, 3, 3]),
            (2, 3, [1, 50], 3, [1, 1, 1, 1]),
            // Folded rows: many blocks (groups of them per task), 1×1, two bands.
            (9, 40, [16, 16], 3, [1, 1, 1, 1]),
            (5, 30, [10, 12], 1, [0, 0, 0, 0]),
            (100, 2, [500, 20], 3, [1, 1, 1, 1]),
        ];
        for isa in isas {
            for &(c, o, input, k, padding) in cases {
                let g = ConvGeometry {
                    batch: 2,
                    in_channels: c,
                    input,
                    out_channels: o,
                    kernel: [k, k],
                    stride: [1, 1],
                    padding,
                };
                let x = values(2 * c * input[0] * input[1], 1);
                let weight = values(o * g.depth(), 2);
                for epilogue in [
                    Epilogue::default(),
                    Epilogue {
                        scale: Some(values(o, 3)),
                        shift: Some(values(o, 4)),
                        relu: true,
                    },
                ] {
                    let got = conv2d_with(isa, &x, &weight, &g, &epilogue);
                    let want = naive(&x, &weight, &g, &epilogue);
                    close(&got, &want, &format!("{isa:?} {g:?}"));
                }
            }
        }
    }

    #[test]
    fn a_projection_matches_the_definition_for_every_block_size() {
        for isa in isas() {
            for (c, o, input) in [
                (3, 1, [5, 40]),
                (7, 5, [6, 37]),
                (4, isa.max_block(), [3, 70]),
                (6, isa.max_block(), [7, 20]),
            ] {
                let g = ConvGeometry {
                    batch: 2,
                    in_channels: c,
                    input,
                    out_channels: o,
                    kernel: [3, 3],
                    stride: [1, 1],
                    padding: [1, 1, 1, 1],
                };
                let x = values(2 * c * input[0] * input[1], 1);
                let weight = values(o * g.depth(), 2);
                let e = Epilogue {
                    scale: Some(values(o, 3)),
                    shift: Some(values(o, 4)),
                    relu: true,
                };
                let (weights, bias) = (values(o, 5), 0.25);
                let projection = Projection {
                    weights: &weights,
                    bias,
                };
                let source = [(x.as_slice(), c)];
                let (got, _) = convolve(isa, &source, &weight, &g, &e, Some(projection), false);
                let full = naive(&x, &weight, &g, &e);
                let plane = input[0] * input[1];
                let want: Vec<f32> = (0..2 * plane)
                    .map(|i| {
                        let (image, p) = (i / plane, i % plane);
                        let channel = |j: usize| full[(image * o + j) * plane + p];
                        bias + (0..o).map(|j| weights[j] * channel(j)).sum::<f32>()
                    })
                    .collect();
                close(&got, &want, &format!("{isa:?} {c} → {o} → 1"));
            }
        }
    }

    #[test]
    fn rows_pooled_as_they_are_written_match_the_definition() {
        for isa in isas() {
            // Bands of odd and even rows, one band and many, 1 and 2 images.
            for (batch, c, o, input) in [
                (2, 3, 5, [6, 40]),
                (1, 7, 13, [34, 36]),
                (2, 4, 2, [2, 64]),
                // Folded rows: groups of blocks, two bands.
                (2, 5, 30, [16, 16]),
                (1, 100, 3, [500, 20]),
            ] {
                let g = ConvGeometry {
                    batch,
                    in_channels: c,
                    input,
                    out_channels: o,
                    kernel: [3, 3],
                    stride: [1, 1],
                    padding: [1, 1, 1, 1],
                };
                let x = values(batch * c * input[0] * input[1], 1);
                let weight = values(o * g.depth(), 2);
                let e = Epilogue {
                    shift: Some(values(o, 4)),
                    relu: true,
                    ..Epilogue::default()
                };
                let source = [(x.as_slice(), c)];
                let (y, pooled) = convolve(isa, &source, &weight, &g, &e, None, true);
                let want = naive(&x, &weight, &g, &e);
                close(&y, &want, &format!("{isa:?} {g:?}"));
                let [h, w] = input;
                let planes = batch * o;
                let pool = super::super::pool::PoolGeometry {
                    input,
                    kernel: [2, 2],
                    stride: [2, 2],
                };
                let want_pooled = super::super::pool::max_pool2d(&want, planes, &pool);
                assert_eq!(pooled.len(), planes * (h / 2) * (w / 2));
                close(&pooled, &want_pooled, &format!("pooled {isa:?} {g:?}"));
            }
        }
    }

    #[test]
    fn channel_blocks_are_as_few_and_as_even_as_can_be() {
        assert_eq!(channel_blocks(7, 6), [0..4, 4..7]);
        assert_eq!(channel_blocks(13, 6), [0..5, 5..9, 9..13]);
        assert_eq!(channel_blocks(12, 12).len(), 1);
        assert_eq!(channel_blocks(12, 12)[0], 0..12);
        assert_eq!(channel_blocks(25, 12), [0..9, 9..17, 17..25]);
        assert!(channel_blocks(0, 6).is_empty());
    }

    #[test]
    fn reads_concatenated_sources_where_they_are() {
        let Some(isa) = Isa::detect() else {
            return;
        };
        let g = ConvGeometry {
            batch: 2,
            in_channels: 7,
            input: [6, 35],
            out_channels: 5,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1, 1, 1],
        };
        let plane = 6 * 35;
        let (a, b) = (values(2 * 3 * plane, 1), values(2 * 4 * plane, 2));
        // The concatenation, image by image: a's 3 channels, then b's 4.
        let mut cat = Vec::new();
        for image in 0..2 {
            cat.extend_from_slice(&a[image * 3 * plane..(image + 1) * 3 * plane]);
            cat.extend_from_slice(&b[image * 4 * plane..(image + 1) * 4 * plane]);
        }
        let weight = values(5 * g.depth(), 3);
        let e = Epilogue {
            relu: true,
            ..Epilogue::default()
        };
        let got = conv2d_cat_with(isa, &[(&a, 3), (&b, 4)], &weight, &g, &e);
        assert_eq!(got, conv2d_with(isa, &cat, &weight, &g, &e));
    }

    /// The direct kernel against `im2col` and Winograd on the narrow layers of pruned networks,
    /// fastest of 30 runs each, interleaved: `cargo test --release --workspace --lib --
    /// --ignored --nocapture direct_vs_products`.
    #[test]
    #[ignore = "a timing, not a test"]
    fn direct_vs_products() {
        use crate::cpu::kernel::conv2d_im2col;
        use crate::cpu::winograd;
        use std::time::Instant;
        let Some(isa) = Isa::detect() else {
            return;
        };
        for (c, o, side) in [
            (3, 7, 256),
            (3, 16, 256),
            (3, 32, 256),
            (3, 64, 256),
            (3, 64, 512),
            (7, 7, 256),
            (14, 7, 256),
            (21, 21, 512),
            (42, 21, 512),
            (8, 8, 256),
            (16, 16, 256),
            (32, 16, 256),
            (13, 13, 128),
            (26, 13, 128),
            (32, 32, 128),
            (25, 25, 64),
            (50, 25, 64),
            (49, 49, 32),
            (40, 40, 128),
            (48, 48, 128),
            (56, 56, 128),
            (40, 40, 64),
            (21, 41, 64),
            (41, 41, 64),
            (82, 41, 64),
            (48, 48, 64),
            (41, 41, 128),
            (40, 80, 128),
            (32, 64, 128),
            (21, 41, 128),
            (16, 32, 256),
            (96, 48, 64),
            (100, 50, 64),
            (50, 50, 64),
            (97, 97, 16),
            (194, 97, 16),
            (100, 100, 32),
            (64, 64, 128),
            (64, 64, 256),
            (128, 128, 64),
            (256, 256, 32),
            (512, 512, 16),
            (25, 49, 64),
            (49, 49, 64),
            (98, 49, 64),
            (49, 97, 32),
            (97, 97, 32),
            (128, 128, 128),
            (128, 64, 128),
            (256, 128, 64),
            (256, 256, 64),
            (64, 128, 128),
            (96, 96, 128),
            (81, 161, 32),
            (161, 161, 32),
            (161, 161, 16),
            (128, 256, 32),
            (200, 200, 32),
            (256, 512, 32),
            (162, 324, 16),
            (324, 324, 16),
            (256, 256, 16),
            (13, 13, 16),
            (41, 81, 16),
            (81, 81, 16),
            (25, 25, 16),
            (49, 49, 16),
            (128, 128, 16),
            (200, 200, 16),
            (50, 50, 8),
            (97, 97, 8),
            (194, 97, 8),
            (100, 100, 4),
            (49, 97, 24),
            (97, 97, 24),
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
            let (mut direct, mut wino, mut im2col) = (f64::MAX, f64::MAX, f64::MAX);
            let mut registers = f64::MAX;
            let in_registers = winograd::Products::Registers(isa);
            for _ in 0..30 {
                let t = Instant::now();
                std::hint::black_box(conv2d_with(isa, &x, &weight, &g, &e));
                direct = direct.min(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let sources = [(&x[..], c)];
                std::hint::black_box(winograd::conv3x3_cat(
                    &sources,
                    &weight,
                    &g,
                    &e,
                    in_registers,
                ));
                registers = registers.min(t.elapsed().as_secs_f64() * 1e3);
                if winograd::applies(&g) {
                    let t = Instant::now();
                    std::hint::black_box(winograd::conv3x3(&x, &weight, &g, &e));
                    wino = wino.min(t.elapsed().as_secs_f64() * 1e3);
                }
                let t = Instant::now();
                std::hint::black_box(conv2d_im2col(&x, &weight, &g, &e));
                im2col = im2col.min(t.elapsed().as_secs_f64() * 1e3);
            }
            let gmacs = (o * c * 9 * side * side) as f64 / 1e6;
            println!(
                "{c:>3} → {o:>3} at {side}²: direct {direct:.3} ms ({:.0} GMAC/s), Winograd \
                 {}, im2col {im2col:.3} (direct {:.2}× the best product); Winograd in registers \
                 {registers:.3} ({:.2}× direct)",
                gmacs / direct,
                if wino < f64::MAX {
                    format!("{wino:.3}")
                } else {
                    "-".into()
                },
                wino.min(im2col) / direct,
                direct / registers
            );
        }
    }
}
