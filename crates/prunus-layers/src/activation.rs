//! The activation that follows a gate.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// The activation applied after the gate of a gated layer.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum Activation {
    /// `max(x, 0)`. A gate of 0 then gives an exact 0, whatever the bias.
    Relu,
    /// No activation: the gated output is passed on as it is.
    Identity,
}

// `#[derive(Default)]` would need `#[default]` on a variant, which `derive(Config)` copies onto
// its serde shadow type, where it does not compile.
#[allow(clippy::derivable_impls)]
impl Default for Activation {
    fn default() -> Self {
        Self::Relu
    }
}

impl Activation {
    /// Applies the activation.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => relu(x),
            Self::Identity => x,
        }
    }
}
