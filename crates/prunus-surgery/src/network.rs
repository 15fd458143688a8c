//! A network of either bundled family, as a model file holds it.

use burn::module::Module;
use burn::store::{ApplyResult, BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Tensor};
use prunus_models::{
    CostReport, Costed, ModelError, TernausNet, TernausNetConfig, UNet, UNetConfig,
};
use serde::{Deserialize, Serialize};

use prunus_layers::{ChannelGroup, LayerMut, Prunable};

use crate::file::{ModelHeader, check_bundled};
use crate::rebuild::Rebuild;

/// A network's family and full configuration (every width): all it takes to rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", content = "config", rename_all = "lowercase")]
pub enum Architecture {
    /// A U-Net.
    UNet(UNetConfig),
    /// A TernausNet.
    TernausNet(TernausNetConfig),
}

impl Architecture {
    /// The family's name: `"unet"` or `"ternausnet"`.
    pub fn family(&self) -> &'static str {
        match self {
            Self::UNet(_) => "unet",
            Self::TernausNet(_) => "ternausnet",
        }
    }

    /// Builds a fresh network of this architecture.
    ///
    /// # Errors
    /// When the configuration is invalid.
    pub fn init(&self, device: &Device) -> Result<Network, ModelError> {
        Ok(match self {
            Self::UNet(c) => Network::UNet(c.init(device)?),
            Self::TernausNet(c) => Network::TernausNet(c.init(device)?),
        })
    }
}

impl Costed for Architecture {
    fn cost(&self, input_size: [usize; 2]) -> Result<CostReport, ModelError> {
        match self {
            Self::UNet(c) => c.cost(input_size),
            Self::TernausNet(c) => c.cost(input_size),
        }
    }
}

/// A U-Net or a TernausNet.
// The variants differ in size, but a network is built once and moved rarely: boxing them would
// only add an indirection to every layer access.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    /// A U-Net.
    UNet(UNet),
    /// A TernausNet.
    TernausNet(TernausNet),
}

impl Network {
    /// The network's architecture, its widths read from its weights.
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::UNet(n) => Architecture::UNet(n.config()),
            Self::TernausNet(n) => Architecture::TernausNet(n.config()),
        }
    }

    /// Class logits for every pixel, or an error for an input the network cannot take.
    ///
    /// # Shapes
    /// - `input`: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_classes, height, width]`
    pub fn try_forward(&self, input: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        match self {
            Self::UNet(n) => n.try_forward(input),
            Self::TernausNet(n) => n.try_forward(input),
        }
    }

    /// Class logits for every pixel.
    ///
    /// # Panics
    /// When the input does not fit (see [`Network::try_forward`]).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        match self {
            Self::UNet(n) => n.forward(input),
            Self::TernausNet(n) => n.forward(input),
        }
    }
}

impl Costed for Network {
    fn cost(&self, input_size: [usize; 2]) -> Result<CostReport, ModelError> {
        self.architecture().cost(input_size)
    }
}

impl Prunable for Network {
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        match self {
            Self::UNet(n) => n.channel_groups(),
            Self::TernausNet(n) => n.channel_groups(),
        }
    }

    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>> {
        match self {
            Self::UNet(n) => n.layer_mut(path),
            Self::TernausNet(n) => n.layer_mut(path),
        }
    }
}

impl Rebuild for Network {
    type Architecture = Architecture;

    fn architecture(&self) -> Architecture {
        Network::architecture(self)
    }

    fn rebuild(architecture: &Architecture, device: &Device) -> Result<Self, String> {
        architecture.init(device).map_err(|e| e.to_string())
    }

    /// U-Net has a BatchNorm after every 3×3 convolution until they are folded; TernausNet has
    /// none to fold.
    fn norms_folded(&self) -> bool {
        match self {
            Self::UNet(n) => n.encoder[0].conv1.norm.is_none(),
            Self::TernausNet(_) => false,
        }
    }

    fn check(header: &ModelHeader, weights_len: u64) -> Result<(), String> {
        check_bundled(header, weights_len)
    }

    // The weights of the family's own network, without the variant's name in their paths.
    fn save_weights(&self, store: &mut BurnpackStore) -> Result<(), String> {
        match self {
            Self::UNet(n) => n.save_into(store),
            Self::TernausNet(n) => n.save_into(store),
        }
        .map_err(|e| e.to_string())
    }

    fn load_weights(&mut self, store: &mut BurnpackStore) -> Result<ApplyResult, String> {
        match self {
            Self::UNet(n) => n.load_from(store),
            Self::TernausNet(n) => n.load_from(store),
        }
        .map_err(|e| e.to_string())
    }
}

impl From<UNet> for Network {
    fn from(n: UNet) -> Self {
        Self::UNet(n)
    }
}

impl From<TernausNet> for Network {
    fn from(n: TernausNet) -> Self {
        Self::TernausNet(n)
    }
}
