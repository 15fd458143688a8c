//! Channel surgery for gated CNNs: remove any set of filters exactly, fold gates, and save
//! pruned networks as self-describing files.
//!
//! - [`ChannelGroup`]: the channels that must go together — a producer's filters and the
//!   matching input channels of every consumer (next conv, transposed conv, the slice of a
//!   decoder conv's input that a skip concatenation feeds).
//! - [`Prunable`]: a network that lists its groups and gives access to its layers; implemented
//!   for [`UNet`](prunus_models::UNet), [`TernausNet`](prunus_models::TernausNet) and
//!   [`Network`]. The slicing primitives ([`SliceChannels`], [`select_param`],
//!   [`select_batch_norm`]) make any CNN prunable.
//! - [`PruningPlan`] → [`prune`]: the slimmer network, exactly equal to the original with the
//!   removed filters' gates at 0 ([`close_removed_gates`]).
//! - [`fold_gates`]: gates multiplied into the weights, no inference overhead;
//!   [`fold_batch_norms`] / [`fold_for_inference`]: BatchNorms folded into the convolutions too.
//! - [`ModelFile`]: architecture, weights and provenance in one file; [`ModelFile::load`]
//!   rebuilds the network with no other input.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use prunus_models::{Costed, UNetConfig};
//! use prunus_surgery::{Prunable, PruningPlan, close_removed_gates, prune};
//!
//! let device = Device::flex();
//! let unet = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
//! // Keep 2 of the 4 filters of the first convolution and 3 of the bottleneck's 16.
//! let plan = PruningPlan::new()
//!     .keep("encoder.0.conv1", [1, 3])
//!     .keep("encoder.2.conv2", [0, 7, 15]);
//! let pruned = prune(unet.clone(), &plan).unwrap();
//! assert_eq!(pruned.config().encoder[0], [2, 4]);
//! assert!(pruned.cost([32, 32]).unwrap().macs() < unet.cost([32, 32]).unwrap().macs());
//!
//! // Pruned output == original output with the removed gates at 0.
//! let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
//! let expected = close_removed_gates(unet, &plan).unwrap().forward(x.clone());
//! let diff = (pruned.forward(x) - expected).abs().max().into_scalar::<f32>();
//! assert!(diff <= 1e-5);
//! ```

mod error;
mod file;
mod fold;
mod group;
mod identity;
mod network;
mod networks;
mod plan;
mod prunable;
mod slice;

pub use error::SurgeryError;
pub use file::{
    CostSummary, MAX_INPUT_SIDE, ModelFile, ModelHeader, Provenance, fnv1a, write_atomic,
};
pub use group::{ChannelGroup, Consumer, consumer};
pub use identity::{first_non_finite, model_digest};
pub use network::{Architecture, Network};
pub use plan::PruningPlan;
pub use prunable::{
    LayerMut, Prunable, close_removed_gates, fold_batch_norms, fold_for_inference, fold_gates,
    prune,
};
pub use slice::{SliceChannels, select_batch_norm, select_param};
