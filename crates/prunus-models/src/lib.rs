//! U-Net and TernausNet with importance-gated convolutions, of any width, and their exact cost.
//!
//! - [`UNetConfig`] → [`UNet`]: the BatchNorm U-Net (in-channels, classes, base width, depth —
//!   or every width explicitly).
//! - [`TernausNetConfig`] → [`TernausNet`]: U-Net with a VGG11 encoder; pretrained encoder
//!   weights load from torchvision's `.pth` with [`TernausNet::load_vgg11_encoder`].
//! - [`Costed`] → [`CostReport`]: parameters, gates and multiply-adds per layer and in total,
//!   counted from a configuration (FLOPs = 2 × multiply-adds).
//!
//! Every width lives in the configuration, so a pruned network is the same network with a
//! configuration of smaller widths.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use prunus_models::{Costed, TernausNetConfig, UNetConfig};
//!
//! // The reference networks' exact costs at 256×256.
//! let ternausnet = TernausNetConfig::standard(1, 32).cost([256, 256]).unwrap();
//! assert_eq!(ternausnet.params(), 22_927_393);
//! let unet = UNetConfig::standard(3, 1, 64, 4).cost([256, 256]).unwrap();
//! assert_eq!(unet.macs(), 48_167_387_136);
//!
//! // A tiny U-Net with uneven widths builds and runs.
//! let device = Device::flex();
//! let config = UNetConfig::new(3, 2, vec![[3, 5], [7, 2]], vec![[1, 4, 6]]);
//! let net = config.init(&device).unwrap();
//! let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
//! assert_eq!(net.forward(x).dims(), [2, 2, 8, 8]);
//! ```

mod cost;
mod error;
mod input;
mod ternausnet;
mod unet;

pub use cost::{CostReport, Costed, LayerCost, LayerKind, MAX_WIDTH, measure_cost};
pub use error::ModelError;
pub use ternausnet::{DECODER_BLOCKS, DecoderBlock, ENCODER_LAYERS, TernausNet, TernausNetConfig};
pub use unet::{DoubleConv, MAX_DEPTH, UNet, UNetConfig, UpBlock};
