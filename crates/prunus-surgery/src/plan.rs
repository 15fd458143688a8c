//! Pruning plans: which channels of each group stay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::SurgeryError;
use prunus_layers::ChannelGroup;

/// The channels each group keeps. A group the plan does not name keeps all its channels.
///
/// Indices may be given in any order; they are kept in ascending order. A plan is checked
/// against a network's groups ([`PruningPlan::validate`]) before any surgery.
///
/// # Example
/// ```
/// use prunus_surgery::{ChannelGroup, PruningPlan, consumer};
///
/// let groups = vec![ChannelGroup::new("conv1", 4, vec![consumer("conv2", 0)])];
/// let plan = PruningPlan::new().keep("conv1", [3, 0]);
/// plan.validate(&groups).unwrap();
/// assert_eq!(plan.kept("conv1"), Some(&[0, 3][..]));
///
/// let bad = PruningPlan::new().keep("conv1", [4]);
/// assert!(bad.validate(&groups).unwrap_err().to_string().contains("conv1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruningPlan {
    keep: BTreeMap<String, Vec<usize>>,
}

impl PruningPlan {
    /// A plan that keeps everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// A plan that keeps the leading `⌈share · size⌉` channels of every group (at least one,
    /// at most all): every group slimmed by the same share, as benchmarks of pruned networks
    /// use.
    ///
    /// # Example
    /// ```
    /// use prunus_surgery::{ChannelGroup, PruningPlan, consumer};
    ///
    /// let groups = vec![ChannelGroup::new("conv1", 10, vec![consumer("conv2", 0)])];
    /// let plan = PruningPlan::leading_share(&groups, 0.25);
    /// assert_eq!(plan.kept("conv1"), Some(&[0, 1, 2][..]));
    /// ```
    pub fn leading_share(groups: &[ChannelGroup], share: f64) -> Self {
        let mut plan = Self::new();
        for group in groups {
            let keep = ((group.size as f64 * share).ceil() as usize).clamp(1, group.size.max(1));
            plan.set_keep(group.name.clone(), 0..keep);
        }
        plan
    }

    /// Keeps `indices` of `group` (replacing what the plan said of it before).
    pub fn keep(
        mut self,
        group: impl Into<String>,
        indices: impl IntoIterator<Item = usize>,
    ) -> Self {
        self.set_keep(group, indices);
        self
    }

    /// Keeps `indices` of `group`, in place.
    pub fn set_keep(&mut self, group: impl Into<String>, indices: impl IntoIterator<Item = usize>) {
        let mut indices: Vec<usize> = indices.into_iter().collect();
        indices.sort_unstable();
        self.keep.insert(group.into(), indices);
    }

    /// The kept indices of `group`, ascending; `None` when the plan does not name it.
    pub fn kept(&self, group: &str) -> Option<&[usize]> {
        self.keep.get(group).map(Vec::as_slice)
    }

    /// Every group the plan names, with its kept indices.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.keep.iter().map(|(g, k)| (g.as_str(), k.as_slice()))
    }

    /// Whether the plan keeps every channel of every group in `groups`.
    pub fn is_identity(&self, groups: &[ChannelGroup]) -> bool {
        groups
            .iter()
            .all(|g| self.kept(&g.name).is_none_or(|k| k.len() == g.size))
    }

    /// Checks the plan against a network's groups: every named group exists, and its indices
    /// are in range, unique, and at least one.
    ///
    /// # Errors
    /// The first problem found, naming its group.
    pub fn validate(&self, groups: &[ChannelGroup]) -> Result<(), SurgeryError> {
        for (name, kept) in &self.keep {
            let group = groups.iter().find(|g| &g.name == name).ok_or_else(|| {
                SurgeryError::UnknownGroup {
                    group: name.clone(),
                }
            })?;
            if kept.is_empty() {
                return Err(SurgeryError::EmptyGroup {
                    group: name.clone(),
                });
            }
            if let Some(&index) = kept.iter().find(|&&i| i >= group.size) {
                return Err(SurgeryError::IndexOutOfRange {
                    group: name.clone(),
                    index,
                    size: group.size,
                });
            }
            if let Some(pair) = kept.windows(2).find(|w| w[0] == w[1]) {
                return Err(SurgeryError::DuplicateIndex {
                    group: name.clone(),
                    index: pair[0],
                });
            }
        }
        Ok(())
    }

    /// The channels of `group` that the plan removes, ascending.
    pub fn removed(&self, group: &ChannelGroup) -> Vec<usize> {
        match self.kept(&group.name) {
            None => Vec::new(),
            Some(kept) => (0..group.size)
                .filter(|i| kept.binary_search(i).is_err())
                .collect(),
        }
    }
}
