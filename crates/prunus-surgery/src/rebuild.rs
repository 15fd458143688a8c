//! Networks a model file can rebuild: a serialisable architecture that builds the network again.

use std::fmt::Debug;

use burn::module::Module;
use burn::store::{ApplyResult, BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use serde::Serialize;
use serde::de::DeserializeOwned;

use prunus_layers::Prunable;

use crate::file::ModelHeader;

/// A network whose architecture — every width, as it is now — is a serialisable value that
/// builds the network again. [`ModelFile`](crate::ModelFile) stores that value as JSON beside
/// the weights, so a pruned network of any such type is saved and loaded with nothing else.
///
/// Implemented for [`Network`](crate::Network) (U-Net and TernausNet); for your own network,
/// read the widths from its layers and build it from them:
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_layers::{ChannelGroup, GatedConv2d, GatedConv2dConfig, Prunable, counted,
///     flattened, layer_fields};
/// use prunus_models::measure_cost;
/// use prunus_surgery::{ModelFile, PruningPlan, Rebuild, prune};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Module, Debug)]
/// struct Tiny { conv: GatedConv2d, head: Linear }
///
/// impl Tiny {
///     fn forward(&self, x: Tensor<4>) -> Tensor<2> {
///         let y = self.conv.forward(x);
///         let [batch, c, h, w] = y.dims();
///         counted::linear(&self.head, y.reshape([batch, c * h * w]))
///     }
/// }
///
/// impl Prunable for Tiny {
///     layer_fields!(conv, head);
///     fn channel_groups(&self) -> Vec<ChannelGroup> {
///         let width = self.conv.channels()[1];
///         vec![ChannelGroup::new("conv", width, vec![flattened("head", 0, 16)])]
///     }
/// }
///
/// // What the file needs: every width, and a way to build the network from them.
/// #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
/// struct TinyWidths { width: usize }
///
/// impl Rebuild for Tiny {
///     type Architecture = TinyWidths;
///     fn architecture(&self) -> TinyWidths {
///         TinyWidths { width: self.conv.channels()[1] }
///     }
///     fn rebuild(a: &TinyWidths, device: &Device) -> Result<Self, String> {
///         Ok(Tiny {
///             conv: GatedConv2dConfig::new([1, a.width]).init(device),
///             head: LinearConfig::new(a.width * 16, 2).init(device),
///         })
///     }
/// }
///
/// let device = Device::flex();
/// let net = Tiny::rebuild(&TinyWidths { width: 6 }, &device).unwrap();
/// let x = Tensor::<4>::random([2, 1, 4, 4], Distribution::Default, &device);
/// let cost = measure_cost(&net, x.clone(), |n, x| n.forward(x));
/// let pruned = prune(net, &PruningPlan::new().keep("conv", [0, 2, 5])).unwrap();
/// let file = ModelFile::unpruned(pruned, &cost);
///
/// let back: ModelFile<Tiny> = ModelFile::from_bytes(&file.to_bytes().unwrap(), &device).unwrap();
/// assert_eq!(back.network.architecture(), TinyWidths { width: 3 });
/// let diff = (back.network.forward(x.clone()) - file.network.forward(x)).abs().max();
/// assert_eq!(diff.into_scalar::<f32>(), 0.0);
/// ```
pub trait Rebuild: Prunable + Module + Sized {
    /// Every width of the network: serialised into the model file's header.
    type Architecture: Serialize + DeserializeOwned + Clone + Debug + PartialEq;

    /// The architecture of the network as it is now (pruned widths included).
    fn architecture(&self) -> Self::Architecture;

    /// A network of `architecture` with fresh weights (the file's weights are loaded into it).
    ///
    /// # Errors
    /// When the architecture is invalid; the message is reported with the file's name.
    fn rebuild(architecture: &Self::Architecture, device: &Device) -> Result<Self, String>;

    /// Whether the network's BatchNorms are folded into its convolutions, so that a network
    /// rebuilt from its architecture must fold them too before the weights load. By default:
    /// no gated producer or member carries a BatchNorm (also true for a network that never had
    /// any, where folding changes nothing).
    fn norms_folded(&self) -> bool {
        crate::file::no_gated_norms(self)
    }

    /// Checks a header read from a file before anything is built for it, given the length of
    /// the file's weights in bytes: a corrupt header must not allocate without bound (e.g. a
    /// width of 10⁹). Accepts every header by default.
    ///
    /// # Errors
    /// What is wrong with the header.
    fn check(header: &ModelHeader<Self::Architecture>, weights_len: u64) -> Result<(), String> {
        let _ = (header, weights_len);
        Ok(())
    }

    /// Writes the weights into `store` (Burn's module paths).
    ///
    /// # Errors
    /// When a tensor cannot be serialised.
    fn save_weights(&self, store: &mut BurnpackStore) -> Result<(), String> {
        self.save_into(store).map_err(|e| e.to_string())
    }

    /// Loads the weights from `store` into the network.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn load_weights(&mut self, store: &mut BurnpackStore) -> Result<ApplyResult, String> {
        self.load_from(store).map_err(|e| e.to_string())
    }
}
