//! Importance criteria: one score per channel of every group, higher = more important.

use std::collections::BTreeMap;

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use prunus_layers::filter_l1_norms;
use prunus_surgery::{ChannelGroup, LayerMut, Prunable};
use rand::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::error::PlanError;

/// How a channel's importance is measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Criterion {
    /// |g|, the magnitude of the channel's learned gate (the method's criterion), read as it
    /// folds into a BatchNorm: |g·γ| for producers with one.
    Gate,
    /// The gate on the effective filter's scale: |g·γ| for producers with a BatchNorm (as
    /// [`Gate`](Self::Gate)); |g|·‖W_f‖₂ / mean ‖W‖₂ of the layer for producers without one
    /// (transposed convolutions, all of TernausNet), where the weights can grow to make up for a
    /// small gate. The layer mean keeps the scores on the gates' scale.
    GateNorm,
    /// L1 norm of the producer's filter.
    L1,
    /// L2 norm of the producer's filter.
    L2,
    /// |γ| of the producer's BatchNorm (network slimming); the filter L1 norm for producers
    /// without one.
    BatchNormGamma,
    /// First-order Taylor on the gate (Molchanov et al. 2019): (g · ∂L/∂g)² averaged over
    /// training batches.
    Taylor,
    /// Uniform random scores (a baseline), from this seed and the step.
    Random {
        /// Seed of the scores.
        seed: u64,
    },
}

impl Criterion {
    /// A short name: `gate`, `gate-norm`, `l1`, `l2`, `bn-gamma`, `taylor`, `random`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gate => "gate",
            Self::GateNorm => "gate-norm",
            Self::L1 => "l1",
            Self::L2 => "l2",
            Self::BatchNormGamma => "bn-gamma",
            Self::Taylor => "taylor",
            Self::Random { .. } => "random",
        }
    }

    /// Whether this criterion's scores are comparable across layers as they are: gates (all
    /// start at 1 under one penalty, and a gate at 0 is a dead filter in any layer) and Taylor
    /// scores (an estimated change of the loss). Filter norms and |γ| are not: layers differ in
    /// fan-in and weight scale, so [`Ranking::Global`](crate::Ranking::Global) normalises them
    /// per layer.
    pub fn shared_scale(&self) -> bool {
        matches!(self, Self::Gate | Self::GateNorm | Self::Taylor)
    }

    /// Whether this criterion reads the gates (and scores a group of several producers by its
    /// strongest gated one).
    fn reads_gates(&self) -> bool {
        matches!(self, Self::Gate | Self::GateNorm)
    }
}

/// Scores of every channel of every group, by group name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    groups: BTreeMap<String, Vec<f32>>,
    /// Whether the scores of different layers are on one scale (see [`Scores::shared_scale`]).
    #[serde(default)]
    shared: bool,
}

impl Scores {
    /// No scores yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the scores as comparable across layers as they are (gates all start at 1 under
    /// the same penalty; a Taylor score estimates a change of the loss), so
    /// [`Ranking::Global`](crate::Ranking::Global) ranks them without per-layer normalisation.
    pub fn with_shared_scale(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Whether the scores of different layers are on one scale.
    pub fn shared_scale(&self) -> bool {
        self.shared
    }

    /// Sets the scores of `group`, one per channel.
    pub fn insert(&mut self, group: impl Into<String>, scores: Vec<f32>) {
        self.groups.insert(group.into(), scores);
    }

    /// The scores of `group`.
    pub fn get(&self, group: &str) -> Option<&[f32]> {
        self.groups.get(group).map(Vec::as_slice)
    }

    /// Every group with its scores.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f32])> {
        self.groups.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Checks there is one finite score per channel of every group in `groups`.
    ///
    /// # Errors
    /// [`PlanError::Scores`] naming the first group that is missing or does not match.
    pub fn check(&self, groups: &[ChannelGroup]) -> Result<(), PlanError> {
        for group in groups {
            let bad = |reason: String| PlanError::Scores {
                group: group.name.clone(),
                reason,
            };
            let scores = self.get(&group.name).ok_or_else(|| bad("missing".into()))?;
            if scores.len() != group.size {
                return Err(bad(format!(
                    "{} scores for {} channels",
                    scores.len(),
                    group.size
                )));
            }
            if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
                return Err(bad(format!("score of channel {i} is {}", scores[i])));
            }
        }
        Ok(())
    }

    /// Each group's scores divided by the group's mean (groups whose mean is 0 stay as they
    /// are), so that a global ranking compares channels with their own layer.
    pub fn normalized_per_layer(&self) -> Self {
        let groups = self
            .groups
            .iter()
            .map(|(name, s)| {
                let mean = s.iter().map(|&v| v as f64).sum::<f64>() / s.len().max(1) as f64;
                let s = if mean > 0.0 {
                    s.iter().map(|&v| (v as f64 / mean) as f32).collect()
                } else {
                    s.clone()
                };
                (name.clone(), s)
            })
            .collect();
        Self {
            groups,
            shared: false,
        }
    }
}

/// ‖W_f‖₂ of every filter of a 4-d weight whose filters lie along `axis`.
fn filter_l2_norms(weight: Tensor<4>, axis: usize) -> Tensor<1> {
    let squared = weight.powi_scalar(2).swap_dims(0, axis);
    let n = squared.dims()[0];
    squared
        .reshape([n as i32, -1])
        .sum_dim(1)
        .sqrt()
        .reshape([n])
}

fn read(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .try_to_vec::<f32>()
        .expect("a float tensor reads as f32")
}

/// What a criterion reads from a producer.
fn producer_scores(
    layer: LayerMut<'_>,
    criterion: Criterion,
    group: &str,
) -> Result<Vec<f32>, PlanError> {
    let missing = |reason: &str| PlanError::Criterion {
        group: group.to_string(),
        reason: reason.to_string(),
    };
    // (weight, filter axis, gate, BatchNorm γ)
    let (weight, axis, gate, gamma) = match layer {
        LayerMut::Gated(l) => (
            l.conv.weight.val(),
            0,
            l.gate.as_ref().map(|g| g.val()),
            l.norm.as_ref().map(|n| n.gamma.val()),
        ),
        LayerMut::GatedTranspose(l) => (
            l.conv.weight.val(),
            1,
            l.gate.as_ref().map(|g| g.val()),
            l.norm.as_ref().map(|n| n.gamma.val()),
        ),
        LayerMut::Conv(l) => (l.weight.val(), 0, None, None),
        LayerMut::ConvTranspose(l) => (l.weight.val(), 1, None, None),
        LayerMut::Linear(l) => {
            let [i, o] = l.weight.dims();
            (l.weight.val().reshape([i, o, 1, 1]), 1, None, None)
        }
        LayerMut::BatchNorm(_) => {
            return Err(missing(
                "a BatchNorm cannot be a producer (declare it a member)",
            ));
        }
    };
    match criterion {
        // The gate's effective scale: after BatchNorm, γ can absorb any scale the gate loses, so
        // the gate is read as it folds into the norm, |g·γ|; without a norm, |g| (gate) or |g| on
        // the filter's norm over the layer's mean (gate-norm).
        Criterion::Gate | Criterion::GateNorm => {
            let g = gate.ok_or_else(|| {
                missing(&format!(
                    "the {} criterion needs a gated producer (gates not folded)",
                    criterion.name()
                ))
            })?;
            Ok(read(match gamma {
                Some(gamma) => (g * gamma).abs(),
                None if criterion == Criterion::GateNorm => {
                    let norms = filter_l2_norms(weight, axis);
                    let mean = norms.clone().mean().clamp_min(f32::MIN_POSITIVE);
                    g.abs() * norms / mean
                }
                None => g.abs(),
            }))
        }
        Criterion::L1 => Ok(read(filter_l1_norms(weight, axis))),
        Criterion::L2 => Ok(read(filter_l2_norms(weight, axis))),
        // Producers without a BatchNorm (U-Net's transposed convolutions, TernausNet) fall back
        // to their filters' L1 norm; scores are compared within a layer after normalisation.
        Criterion::BatchNormGamma => Ok(match gamma {
            Some(g) => read(g.abs()),
            None => read(filter_l1_norms(weight, axis)),
        }),
        Criterion::Taylor => Err(missing(
            "Taylor scores come from gradients: use TaylorScores",
        )),
        Criterion::Random { .. } => unreachable!("random scores need no layer"),
    }
}

/// Scores every channel of every group of `model` by `criterion`, read from each group's
/// producers: for a group with several (a residual stream), the largest gate score, or the sum
/// of the filter-norm and γ scores. `step` varies the [`Criterion::Random`] scores between pruning steps.
///
/// # Errors
/// [`PlanError::Criterion`] when a producer lacks what the criterion reads (a gate for
/// [`Criterion::Gate`]), and for
/// [`Criterion::Taylor`], which needs gradients ([`TaylorScores`]).
pub fn score<M: Prunable>(model: &M, criterion: Criterion, step: u64) -> Result<Scores, PlanError> {
    let groups = model.channel_groups();
    let mut scores = Scores::new();
    if let Criterion::Random { seed } = criterion {
        for (g, group) in groups.iter().enumerate() {
            let mut rng = SplitMix64::seed_from_u64(
                seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (g as u64) << 32,
            );
            let values = (0..group.size)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
                .collect();
            scores.insert(group.name.clone(), values);
        }
        return Ok(scores);
    }
    let mut model = model.clone();
    for group in &groups {
        let mut sum: Option<Vec<f32>> = None;
        let mut first_error = None;
        for producer in &group.producers {
            let layer = model
                .layer_mut(producer)
                .ok_or_else(|| PlanError::Criterion {
                    group: group.name.clone(),
                    reason: format!("the network has no layer {producer}"),
                })?;
            match producer_scores(layer, criterion, &group.name) {
                // Several producers (a residual stream): a gate scores the channel by its
                // strongest producer, so that a stream is on the scale of a single layer; filter
                // norms and γ, compared within a group, add up.
                Ok(values) => match &mut sum {
                    Some(sum) if criterion.reads_gates() => {
                        sum.iter_mut().zip(values).for_each(|(s, v)| *s = s.max(v))
                    }
                    Some(sum) => sum.iter_mut().zip(values).for_each(|(s, v)| *s += v),
                    None => sum = Some(values),
                },
                // With several producers, the gate criterion reads the gated ones.
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match (sum, first_error) {
            (Some(sum), None) => scores.insert(group.name.clone(), sum),
            (Some(sum), Some(_)) if criterion.reads_gates() => {
                scores.insert(group.name.clone(), sum)
            }
            (_, Some(e)) => return Err(e),
            (None, None) => unreachable!("a checked group has a producer"),
        }
    }
    Ok(scores.with_shared_scale(criterion.shared_scale()))
}

/// Accumulates first-order Taylor scores (g · ∂L/∂g)² over batches (Molchanov et al. 2019: the
/// squared first-order estimate of the loss change when the gate goes to 0, per batch, then
/// averaged; several producers of one group add up).
///
/// After each backward pass of a model on an autodiff device, call [`add`](Self::add) with the
/// model and its gradients; [`scores`](Self::scores) gives the mean over the batches added.
#[derive(Debug, Clone, Default)]
pub struct TaylorScores {
    sums: BTreeMap<String, Vec<f64>>,
    batches: usize,
}

impl TaylorScores {
    /// No batches yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (g · ∂L/∂g)² of every group's gate for one batch's gradients
    /// (`GradientsParams::from_grads(loss.backward(), model)`).
    ///
    /// # Errors
    /// [`PlanError::Criterion`] for a producer without a gate or a gate without a gradient.
    pub fn add<M: Prunable>(
        &mut self,
        model: &M,
        grads: &GradientsParams,
    ) -> Result<(), PlanError> {
        let mut model = model.clone();
        for group in model.channel_groups() {
            let missing = |reason: &str| PlanError::Criterion {
                group: group.name.clone(),
                reason: reason.to_string(),
            };
            let mut values: Option<Vec<f32>> = None;
            for producer in &group.producers {
                let Some((id, gate)) = model
                    .layer_mut(producer)
                    .and_then(|l| l.gate().map(|g| (g.id, g.val())))
                else {
                    continue;
                };
                let grad: Tensor<1> = grads
                    .get(id)
                    .ok_or_else(|| missing("the gate has no gradient (is it trainable?)"))?;
                let these = read((gate.inner() * grad).powi_scalar(2));
                match &mut values {
                    Some(v) => v.iter_mut().zip(these).for_each(|(s, x)| *s += x),
                    None => values = Some(these),
                }
            }
            let values =
                values.ok_or_else(|| missing("the Taylor criterion needs a gated producer"))?;
            let sums = self
                .sums
                .entry(group.name.clone())
                .or_insert_with(|| vec![0.0; values.len()]);
            for (s, v) in sums.iter_mut().zip(values) {
                *s += v as f64;
            }
        }
        self.batches += 1;
        Ok(())
    }

    /// Number of batches added.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// The mean score over the batches added.
    pub fn scores(&self) -> Scores {
        let mut scores = Scores::new();
        let n = self.batches.max(1) as f64;
        for (name, sums) in &self.sums {
            scores.insert(name.clone(), sums.iter().map(|s| (s / n) as f32).collect());
        }
        scores.with_shared_scale(true)
    }
}
