//! Channel surgery for gated CNNs: remove any set of filters exactly, fold gates, and save
//! pruned networks as self-describing files.
//!
//! - [`ChannelGroup`]: the channels that must go together — the filters of every producer
//!   (several for a residual `add`), the channels of per-channel members (BatchNorm, depthwise
//!   convolutions) and the matching inputs of every consumer (next conv, transposed conv, the
//!   slice of a decoder conv's input that a skip concatenation feeds, a `Linear` after a
//!   flatten). Declared by each network beside its layers (`prunus-layers` holds the
//!   description, re-exported here).
//! - [`Prunable`]: a network that lists its groups and gives access to its layers
//!   ([`layer_fields!`] writes that part); implemented for [`UNet`](prunus_models::UNet),
//!   [`TernausNet`](prunus_models::TernausNet) and [`Network`].
//! - [`verify_prunable`]: proves a declaration against the network — closing random channels
//!   must equal removing them — and names the group and layer at fault.
//! - [`PruningPlan`] → [`prune`]: the slimmer network, exactly equal to the original with the
//!   removed filters' gates at 0 ([`close_removed_gates`]).
//! - [`fold_gates`]: gates multiplied into the weights, no inference overhead;
//!   [`fold_batch_norms`] / [`fold_for_inference`]: BatchNorms folded into the convolutions too.
//! - [`ModelFile`]: architecture, weights and provenance in one file; [`ModelFile::load`]
//!   rebuilds the network with no other input — a bundled [`Network`], or any network that
//!   implements [`Rebuild`] (a serialisable architecture that builds it).
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
mod identity;
mod network;
mod plan;
mod prunable;
mod rebuild;
mod verify;

pub use error::{ModelFileError, SurgeryError, WriteError};
pub use file::{
    CostSummary, MAX_INPUT_SIDE, ModelFile, ModelHeader, Provenance, checksum, write_atomic,
};
pub use identity::{first_non_finite, model_digest};
pub use network::{Architecture, Network};
pub use plan::PruningPlan;
pub use prunable::{close_removed_gates, fold_batch_norms, fold_for_inference, fold_gates, prune};
pub use prunus_layers::{
    ChannelGroup, Consumer, LayerMut, Layers, Prunable, SliceChannels, consumer, flattened,
    layer_fields, select_batch_norm, select_depthwise, select_param,
};
pub use rebuild::Rebuild;
pub use verify::{VERIFY_TOLERANCE, verify_prunable};
