//! # prunus-plan
//!
//! Which filters to remove, and how far to go:
//! - [`criteria`](score): importance scores per channel — the learned gate |g| (the method's
//!   criterion), filter L1/L2 norms, BatchNorm |γ|, first-order Taylor on the gate
//!   ([`TaylorScores`]), random;
//! - [`plan_removal`]: a [`PruningPlan`](prunus_surgery::PruningPlan) that removes a number of
//!   the least important channels, ranked globally (scores normalised per layer) or per layer,
//!   with `min_channels`, `round_to` and an ignore list;
//! - [`search`]: the error-tolerance search — prune in steps while the validation metric stays
//!   within the tolerance, halve the step and roll back when it does not;
//! - [`RunFolder`]: the search's state and last accepted network after every step, so that any
//!   caller of the search resumes where it stopped.
//!
//! The search is generic: a [`SearchHost`] supplies evaluation, scores, FLOPs and optional
//! fine-tuning, so any [`Prunable`](prunus_surgery::Prunable) network and any metric work.
//! The `prunus` facade's `prune_to_tolerance()` is such a host.
//!
//! ```
//! use burn::tensor::Device;
//! use prunus_models::UNetConfig;
//! use prunus_plan::{Criterion, PlannerConfig, plan_removal, score};
//! use prunus_surgery::{Prunable, prune};
//!
//! let device = Device::flex();
//! let unet = UNetConfig::standard(3, 1, 8, 2).init(&device).unwrap();
//! let scores = score(&unet, Criterion::L1, 0).unwrap();
//! let groups = unet.channel_groups();
//! let plan = plan_removal(&groups, &scores, 10, &PlannerConfig::default()).unwrap();
//! let slim = prune(unet, &plan).unwrap();
//! let left: usize = slim.channel_groups().iter().map(|g| g.size).sum();
//! assert_eq!(left, groups.iter().map(|g| g.size).sum::<usize>() - 10);
//! ```

mod criteria;
mod error;
mod planner;
mod run;
mod search;

pub use criteria::{Criterion, Scores, TaylorScores, score};
pub use error::{PlanError, RunError};
pub use planner::{PlannerConfig, Ranking, plan_removal, removed_count};
pub use run::{RUN_STATE, RUN_WEIGHTS, RunFolder};
pub use search::{
    Constraint, DEFAULT_METRIC, Evaluation, Judgement, SearchConfig, SearchHost, SearchState,
    StepRecord, StopReason, Targets, Tolerance, search,
};
