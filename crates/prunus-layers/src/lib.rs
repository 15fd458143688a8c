//! Importance-gated convolution layers for filter pruning on [Burn](https://burn.dev).
//!
//! Every output channel (filter) of a [`GatedConv2d`] or [`GatedConvTranspose2d`] carries a
//! learnable scalar, its *importance weight* or gate: `y_i = act(g_i · norm(conv(x))_i)`.
//! Training the network with the gates (and an L1 penalty on them, [`gate_l1`]) ranks the
//! filters; the filters with the weakest gates are later removed by `prunus-surgery`.
//!
//! - [`GatedConv2dConfig`] → [`GatedConv2d`], [`GatedConvTranspose2dConfig`] →
//!   [`GatedConvTranspose2d`]: the layers, in Burn's Config/Module style.
//! - [`GateInit`]: how gates start (`Ones`, `Constant`, `Uniform`, `Normal`, `FilterNorm`).
//! - [`gates`], [`gate_l1`]: find the gates of any module; their L1 penalty;
//!   [`norm_scale_l1`]: the BatchNorm scales' (Network Slimming's penalty).
//! - [`set_trainable`]: joint training, gates-only training, or frozen gates.
//! - The prunable description every network declares: [`ChannelGroup`]s (producers, members,
//!   consumers), [`Layers`] access by module path ([`layer_fields!`]), the [`Prunable`]
//!   trait, and the slicing primitives ([`SliceChannels`], [`select_param`],
//!   [`select_batch_norm`], [`select_depthwise`]).
//! - [`record`]: the exact cost of any forward pass, layer by layer.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use prunus_layers::{GateInit, GatedConv2dConfig, gate_l1};
//!
//! let device = Device::flex();
//! let layer = GatedConv2dConfig::new([3, 16])
//!     .with_batch_norm(true)
//!     .with_gate_init(GateInit::Uniform { low: 0.5, high: 1.5 })
//!     .init(&device);
//! let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
//! assert_eq!(layer.forward(x).dims(), [1, 16, 32, 32]);
//! assert!(gate_l1(&layer).unwrap().into_scalar::<f32>() > 0.0);
//! ```

mod activation;
mod checks;
mod conv2d;
mod conv_transpose2d;
mod cpu;
mod gate;
mod gated;
mod group;
mod params;
mod prunable;
mod record;
mod slice;
#[cfg(test)]
mod test_util;

pub use activation::Activation;
pub use conv_transpose2d::{GatedConvTranspose2d, GatedConvTranspose2dConfig};
pub use conv2d::{GatedConv2d, GatedConv2dConfig};
pub use cpu::{cpu_kernels, set_cpu_kernels};
pub use gate::GateInit;
pub use gated::filter_l1_norms;
pub use group::{ChannelGroup, Consumer, consumer, flattened};
pub use params::{
    Trainable, container_type, gate_l1, gate_param_ids, gate_param_paths, gates,
    is_gated_container, norm_scale_l1, set_trainable,
};
pub use prunable::{LayerMut, Layers, Prunable, split_path};
pub use record::{Executed, LayerKind, counted, record};
pub use slice::{
    LayerError, SliceChannels, layer_error, select_batch_norm, select_depthwise, select_param,
};
