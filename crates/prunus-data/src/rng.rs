//! The scenes' random stream: the same seed gives the same scenes everywhere.

use rand::{Rng as _, SeedableRng};
use rand_xoshiro::SplitMix64;

/// SplitMix64 (Steele, Lea, Flood 2014) from `rand_xoshiro`, value-stable across versions, with
/// the mappings the scene generator has always used. Every draw reads the generator's 64-bit
/// output, so a seed gives the scenes it gave before the generator came from a crate.
#[derive(Debug, Clone)]
pub(crate) struct Rng(SplitMix64);

impl Rng {
    /// A generator for item `index` of a stream `seed`, independent of the other items.
    pub(crate) fn for_item(seed: u64, index: u64) -> Self {
        let mut r = Self(SplitMix64::seed_from_u64(
            seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ));
        r.next_u64();
        r
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`, on 24 bits.
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[low, high)`.
    pub(crate) fn range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in `[0, n)` (Lemire's multiply-shift on 32 bits).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Approximately standard normal and bounded to ±3.46: the Irwin–Hall sum of four uniforms,
    /// rescaled. Scene noise wants no unbounded tails, which is why this is not `rand_distr`'s
    /// normal.
    pub(crate) fn normal(&mut self) -> f32 {
        let s = self.unit() + self.unit() + self.unit() + self.unit();
        (s - 2.0) * 1.732_050_8
    }

    pub(crate) fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate's generator gives the stream of the SplitMix64 that prunus wrote by hand until
    /// 2026-11 (Steele, Lea, Flood 2014, Vigna's `splitmix64.c`), so scenes — and the figures
    /// measured on them — are unchanged.
    #[test]
    fn the_stream_is_the_reference_splitmix64() {
        let reference = |state: &mut u64| {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for seed in [0, 1, 1_234_567, u64::MAX] {
            let mut rng = Rng(SplitMix64::seed_from_u64(seed));
            let mut state = seed;
            for _ in 0..100 {
                assert_eq!(rng.next_u64(), reference(&mut state));
            }
        }
    }
}
