//! Memory a command will need, estimated from the cost model before anything is allocated, so
//! that an absurd size is refused with a figure instead of aborting the process half-way.

use prunus_models::CostReport;

use crate::error::Error;

/// Keeps the memory the process frees for its next allocations instead of handing it back to the
/// operating system at once; call it first thing in `main`.
///
/// Every layer of a forward pass allocates its output afresh and frees its input: tens of MB
/// each, many times a second. glibc returns such blocks to the system as they are freed and
/// pays page faults and TLB shootdowns to get them back (a quarter of the time of a pruned U-Net
/// segmenting a 5000×5000 image, measured with `perf`). Asking it to keep 512 MiB of slack at the
/// top of its heap (`M_TOP_PAD`) made that run 1.75× faster with 4% more peak memory
/// (docs/benchmarks.md). Blocks above glibc's mmap threshold bypass the heap and are unmapped
/// when freed whatever the pad: the threshold is raised to its largest, 32 MiB, so that a
/// training step's activations and gradients come from the heap too (a TernausNet Adam step on
/// 256² 1.2× faster; forward passes unchanged). The `prunus` binary and the examples call it;
/// elsewhere than Linux with glibc it does nothing.
///
/// ```
/// prunus::keep_freed_memory();
/// ```
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a tuning parameter of glibc's allocator; it is safe to call at
    // any time, from any thread.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 512 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

/// Bytes per value: prunus computes in `f32`.
const F32: u64 = 4;

/// What a forward (or forward and backward) pass of `batch` images is expected to need, in
/// bytes, from the network's cost report:
///
/// - the weights and gates, four times over when `training` (weights, gradients, Adam's two
///   moments);
/// - every layer's output for every image, three times over when `training` (the forward
///   output, what autodiff keeps of it, and its gradient);
/// - the largest unfolded input of a convolution (`k² · in` values per output pixel: the
///   matrix a backend's im2col builds), once;
/// - the input batch (an image and a mask).
///
/// An upper bound for inference (a forward pass frees what the next layers no longer need),
/// about right for training.
pub fn memory_needed(cost: &CostReport, batch: usize, training: bool) -> u64 {
    let [h, w] = cost.input_size.map(|s| s as u64);
    let weights = (cost.params() + cost.gates()).saturating_mul(F32);
    let unfolded = cost.layers.iter().fold(0u64, |most, l| {
        let [oh, ow] = l.output_size.map(|s| s as u64);
        let k2_in = (l.kernel_size * l.kernel_size * l.in_channels) as u64;
        most.max(oh.saturating_mul(ow).saturating_mul(k2_in))
    });
    let per_image = cost
        .activations()
        .saturating_add(h.saturating_mul(w).saturating_mul(4))
        .saturating_mul(F32);
    let unfolded = unfolded.saturating_mul(F32);
    let (weight_copies, activation_copies) = if training { (4, 3) } else { (1, 1) };
    let batch = batch.max(1) as u64;
    weights
        .saturating_mul(weight_copies)
        .saturating_add(
            per_image
                .saturating_mul(batch)
                .saturating_mul(activation_copies),
        )
        .saturating_add(unfolded.saturating_mul(batch))
}

/// Memory this machine can give now (`MemAvailable` of `/proc/meminfo`), in bytes; `None`
/// where that is not known (not Linux).
pub fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb.saturating_mul(1024))
}

/// Refuses `what` when [`memory_needed`] exceeds [`memory_available`]; returns the estimate.
/// The host's memory is the bound checked (on a GPU the device's own memory may be the
/// tighter one, which Burn does not report).
///
/// # Errors
/// [`Error::OutOfMemory`] with the estimate and what is available.
pub fn check_memory(
    what: &str,
    cost: &CostReport,
    batch: usize,
    training: bool,
) -> Result<u64, Error> {
    let needed = memory_needed(cost, batch, training);
    match memory_available() {
        Some(available) if needed > available => Err(Error::OutOfMemory {
            what: what.to_string(),
            needed,
            available,
        }),
        _ => Ok(needed),
    }
}

/// `1536` → `"1.5 KiB"`, for messages.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if bytes == u64::MAX {
        return "more than 16 EiB".into();
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use prunus_models::{Costed, UNetConfig};

    #[test]
    fn the_estimate_counts_weights_and_activations_by_hand() {
        // Base 4, depth 1, 8×8: encoder 3→4→4, pool, 4→8→8; up 8→4 (2×2); 8→4→4; head 4→1.
        let cost = UNetConfig::standard(3, 1, 4, 1).cost([8, 8]).unwrap();
        let outputs = 64 * (4 + 4) + 16 * (8 + 8) + 64 * (4 + 4 + 4 + 1);
        assert_eq!(cost.activations(), outputs);
        let weights = 4 * (cost.params() + cost.gates());
        let input = 4 * 64 * 4;
        // The widest unfolding: decoder conv1, 3·3·8 inputs per pixel at 8×8.
        let unfolded = 4 * 64 * 9 * 8;
        assert_eq!(
            memory_needed(&cost, 2, false),
            weights + 2 * (4 * outputs + input) + 2 * unfolded
        );
        assert_eq!(
            memory_needed(&cost, 2, true),
            4 * weights + 3 * 2 * (4 * outputs + input) + 2 * unfolded
        );
    }

    #[test]
    fn an_absurd_size_is_refused_with_the_estimate() {
        let cost = UNetConfig::standard(3, 1, 16, 4)
            .cost([100_000, 100_000])
            .unwrap();
        let err = check_memory("eval", &cost, 16, false).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("eval would need about"), "{text}");
        assert!(text.contains("TiB") || text.contains("PiB"), "{text}");
        assert!(memory_needed(&cost, usize::MAX, true) == u64::MAX);
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
