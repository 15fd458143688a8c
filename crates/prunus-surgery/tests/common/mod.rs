//! Helpers shared by the surgery tests.
#![allow(dead_code)]

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor};
use prunus_surgery::{ChannelGroup, PruningPlan};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::SplitMix64;

/// A fresh random tensor in `[-1, 1)`.
pub fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

/// Replaces gates and BatchNorm parameters and statistics by random values, so that every
/// slice of them matters: gates of both signs, γ, β and running statistics away from their
/// initial 1, 0, 0, 1.
struct Randomizer {
    path: Vec<String>,
}

impl ModuleMapper for Randomizer {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let range = match self.path.last().map(String::as_str) {
            Some("gate") => (-1.5, 1.5),
            Some("gamma") | Some("running_var") => (0.5, 1.5),
            Some("beta") | Some("running_mean") => (-0.5, 0.5),
            _ => return param,
        };
        let (id, value, mapper) = param.consume();
        let fresh = Tensor::random(
            value.shape(),
            Distribution::Uniform(range.0, range.1),
            &value.device(),
        );
        Param::from_mapped_value(id, fresh, mapper)
    }
}

/// `module` with random gates and BatchNorm state.
pub fn randomize<M: Module>(module: M) -> M {
    module.map(&mut Randomizer { path: Vec::new() })
}

/// A random plan over `groups`: each group keeps a random non-empty subset; every third group
/// is left out of the plan; groups of 3 or more channels lose a channel at both edges half the
/// time, so concatenation boundaries are exercised.
pub fn random_plan(groups: &[ChannelGroup], seed: u64) -> PruningPlan {
    let mut rng = SplitMix64::seed_from_u64(seed);
    let mut plan = PruningPlan::new();
    for group in groups {
        if rng.random_range(0..3) == 0 {
            continue;
        }
        let mut keep: Vec<usize> = (0..group.size)
            .filter(|_| rng.random_range(0..2) == 0)
            .collect();
        if group.size >= 3 && rng.random_range(0..2) == 0 {
            keep.retain(|&i| i != 0 && i != group.size - 1);
        }
        if keep.is_empty() {
            keep.push(rng.random_range(0..group.size));
        }
        plan.set_keep(group.name.clone(), keep);
    }
    plan
}

/// Largest absolute difference of two tensors of the same shape.
pub fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}
