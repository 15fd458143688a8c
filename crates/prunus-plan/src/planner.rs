//! From scores and constraints to a [`PruningPlan`] that removes a requested number of channels.

use std::cmp::Ordering;

use prunus_surgery::{ChannelGroup, PruningPlan};
use serde::{Deserialize, Serialize};

use crate::criteria::Scores;
use crate::error::PlanError;

/// How channels are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ranking {
    /// One ranking over all groups: on the raw scores when they share one scale across layers
    /// ([`Scores::shared_scale`]: gates, Taylor), on scores normalised per layer otherwise.
    Global,
    /// Scores normalised per layer (divided by the layer's mean), then one ranking over all
    /// groups: layers lose different shares.
    Normalized,
    /// One ranking over all groups on the raw scores.
    Absolute,
    /// Each group ranked on its own and cut by the same share.
    PerLayer,
}

/// Constraints of the planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannerConfig {
    /// How channels are compared.
    pub ranking: Ranking,
    /// Channels every group keeps at least (≥ 1).
    pub min_channels: usize,
    /// Kept widths are rounded up to a multiple of this (1: no rounding). Hardware often runs
    /// multiples of 8 or 16 faster.
    pub round_to: usize,
    /// Groups never pruned: a name matches a group whose name equals it or starts with it
    /// followed by `.`.
    pub ignore: Vec<String>,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            ranking: Ranking::Global,
            min_channels: 1,
            round_to: 1,
            ignore: Vec::new(),
        }
    }
}

impl PlannerConfig {
    /// Checks the constraints.
    ///
    /// # Errors
    /// [`PlanError::Config`] for `min_channels` or `round_to` of 0.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.min_channels == 0 {
            return Err(PlanError::config("min_channels", "must be at least 1"));
        }
        if self.round_to == 0 {
            return Err(PlanError::config("round_to", "must be at least 1"));
        }
        Ok(())
    }

    /// True when `group` is on the ignore list.
    pub fn ignores(&self, group: &str) -> bool {
        self.ignore.iter().any(|i| {
            group == i
                || group
                    .strip_prefix(i.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// The most channels `group` may lose under these constraints.
    pub fn removable(&self, group: &ChannelGroup) -> usize {
        if self.ignores(&group.name) {
            return 0;
        }
        let floor = self.min_channels.min(group.size);
        group.size - floor
    }

    /// Channels of the non-ignored groups: what a step's fraction is taken of.
    pub fn prunable_channels(&self, groups: &[ChannelGroup]) -> usize {
        groups
            .iter()
            .filter(|g| !self.ignores(&g.name))
            .map(|g| g.size)
            .sum()
    }
}

/// Indices of `scores` from least to most important; ties broken by index.
fn ascending(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        scores[a]
            .partial_cmp(&scores[b])
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    });
    order
}

/// A plan that removes up to `count` of the least important channels of `groups`.
///
/// Removes exactly `count` when the constraints allow it; fewer when `round_to` rounds a
/// group's kept width up, or when fewer channels are removable. Deterministic: ties go to the
/// lower group name and channel index. Groups the plan does not touch are left out of it.
///
/// # Errors
/// [`PlanError::Config`] for bad constraints, [`PlanError::Scores`] for scores that do not
/// match `groups`.
pub fn plan_removal(
    groups: &[ChannelGroup],
    scores: &Scores,
    count: usize,
    config: &PlannerConfig,
) -> Result<PruningPlan, PlanError> {
    config.validate()?;
    scores.check(groups)?;
    let mut remove: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    match config.ranking {
        Ranking::Global | Ranking::Normalized | Ranking::Absolute => {
            let normalize = match config.ranking {
                Ranking::Normalized => true,
                Ranking::Absolute => false,
                _ => !scores.shared_scale(),
            };
            let normalized = if normalize {
                scores.normalized_per_layer()
            } else {
                scores.clone()
            };
            // Every group's channels, least important first; then a k-way merge.
            let orders: Vec<(Vec<usize>, &[f32])> = groups
                .iter()
                .map(|g| {
                    let s = normalized.get(&g.name).expect("checked");
                    (ascending(s), s)
                })
                .collect();
            let mut heads = vec![0usize; groups.len()];
            for _ in 0..count {
                let mut best: Option<(usize, f32)> = None;
                for (gi, group) in groups.iter().enumerate() {
                    if heads[gi] >= config.removable(group) {
                        continue;
                    }
                    let (order, s) = &orders[gi];
                    let value = s[order[heads[gi]]];
                    if best.is_none_or(|(_, b)| value < b) {
                        best = Some((gi, value));
                    }
                }
                let Some((gi, _)) = best else { break };
                remove[gi].push(orders[gi].0[heads[gi]]);
                heads[gi] += 1;
            }
        }
        Ranking::PerLayer => {
            let total = config.prunable_channels(groups).max(1);
            let share = count as f64 / total as f64;
            for (gi, group) in groups.iter().enumerate() {
                let n = ((group.size as f64 * share).round() as usize).min(config.removable(group));
                let order = ascending(scores.get(&group.name).expect("checked"));
                remove[gi] = order[..n].to_vec();
            }
        }
    }

    let mut plan = PruningPlan::new();
    for (gi, group) in groups.iter().enumerate() {
        let mut removed = std::mem::take(&mut remove[gi]);
        if removed.is_empty() {
            continue;
        }
        // Round the kept width up to a multiple of round_to: give back the most important of
        // the removed channels.
        let kept = group.size - removed.len();
        let rounded = kept.div_ceil(config.round_to) * config.round_to;
        let rounded = rounded.min(group.size);
        if rounded > kept {
            let s = scores.get(&group.name).expect("checked");
            removed.sort_by(|&a, &b| s[a].partial_cmp(&s[b]).unwrap_or(Ordering::Equal));
            removed.truncate(group.size - rounded);
        }
        if removed.is_empty() {
            continue;
        }
        let keep = (0..group.size).filter(|i| !removed.contains(i));
        plan.set_keep(group.name.clone(), keep);
    }
    Ok(plan)
}

/// Number of channels `plan` removes from `groups`.
pub fn removed_count(groups: &[ChannelGroup], plan: &PruningPlan) -> usize {
    groups
        .iter()
        .filter_map(|g| plan.kept(&g.name).map(|k| g.size - k.len()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prunus_surgery::consumer;

    fn groups() -> Vec<ChannelGroup> {
        vec![
            ChannelGroup::new("a", 4, vec![consumer("b", 0)]),
            ChannelGroup::new("b", 6, vec![consumer("head", 0)]),
        ]
    }

    fn scores() -> Scores {
        let mut s = Scores::new();
        // a's mean is 2.5, b's 10: normalised a = [0.4, 0.8, 1.2, 1.6], b = [0.1, 0.5, 0.9, 1.1, 1.5, 1.9]
        s.insert("a", vec![1.0, 2.0, 3.0, 4.0]);
        s.insert("b", vec![1.0, 5.0, 9.0, 11.0, 15.0, 19.0]);
        s
    }

    #[test]
    fn global_ranking_uses_per_layer_normalisation() {
        let plan = plan_removal(&groups(), &scores(), 3, &PlannerConfig::default()).unwrap();
        // Lowest three normalised: b0 (0.1), a0 (0.4), b1 (0.5).
        assert_eq!(plan.kept("a"), Some(&[1, 2, 3][..]));
        assert_eq!(plan.kept("b"), Some(&[2, 3, 4, 5][..]));
        assert_eq!(removed_count(&groups(), &plan), 3);
    }

    #[test]
    fn shared_scale_scores_rank_on_raw_values() {
        // Raw: a = [1, 2, 3, 4], b = [1, 5, …]: the lowest three are a0, b0 (ties go to the
        // lower group name, a) and a1 — where normalised ranking takes b0, a0, b1.
        let shared = scores().with_shared_scale(true);
        for ranking in [Ranking::Global, Ranking::Absolute] {
            let config = PlannerConfig {
                ranking,
                ..PlannerConfig::default()
            };
            let plan = plan_removal(&groups(), &shared, 3, &config).unwrap();
            assert_eq!(plan.kept("a"), Some(&[2, 3][..]), "{ranking:?}");
            assert_eq!(plan.kept("b"), Some(&[1, 2, 3, 4, 5][..]), "{ranking:?}");
        }
        // Normalized forces per-layer normalisation even for shared-scale scores.
        let config = PlannerConfig {
            ranking: Ranking::Normalized,
            ..PlannerConfig::default()
        };
        let plan = plan_removal(&groups(), &shared, 3, &config).unwrap();
        assert_eq!(plan.kept("a"), Some(&[1, 2, 3][..]));
        assert_eq!(plan.kept("b"), Some(&[2, 3, 4, 5][..]));
    }

    #[test]
    fn min_channels_and_ignore_hold() {
        let config = PlannerConfig {
            min_channels: 3,
            ignore: vec!["b".into()],
            ..PlannerConfig::default()
        };
        let plan = plan_removal(&groups(), &scores(), 10, &config).unwrap();
        assert_eq!(plan.kept("a"), Some(&[1, 2, 3][..]));
        assert_eq!(plan.kept("b"), None);
        assert_eq!(config.prunable_channels(&groups()), 4);
    }

    #[test]
    fn round_to_rounds_kept_width_up() {
        let config = PlannerConfig {
            round_to: 4,
            ..PlannerConfig::default()
        };
        // Removing 3 of b (6 → 3 kept) rounds up to 4 kept: only 2 removed from b.
        let mut s = scores();
        s.insert("a", vec![9.0, 9.0, 9.0, 9.0]);
        let plan = plan_removal(&groups(), &s, 3, &config).unwrap();
        let kept_b = plan.kept("b").unwrap();
        assert_eq!(kept_b.len(), 4);
        assert_eq!(kept_b, &[2, 3, 4, 5]);
    }

    #[test]
    fn per_layer_cuts_each_group_by_the_same_share() {
        let config = PlannerConfig {
            ranking: Ranking::PerLayer,
            ..PlannerConfig::default()
        };
        let plan = plan_removal(&groups(), &scores(), 5, &config).unwrap();
        assert_eq!(plan.kept("a").unwrap().len(), 2);
        assert_eq!(plan.kept("b").unwrap().len(), 3);
    }

    #[test]
    fn mismatched_scores_name_the_group() {
        let mut s = scores();
        s.insert("b", vec![1.0]);
        let err = plan_removal(&groups(), &s, 1, &PlannerConfig::default()).unwrap_err();
        assert!(err.to_string().contains("group b"), "{err}");
        let bad = PlannerConfig {
            min_channels: 0,
            ..PlannerConfig::default()
        };
        assert!(plan_removal(&groups(), &scores(), 1, &bad).is_err());
    }
}
