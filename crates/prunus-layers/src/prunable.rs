//! The prunable description of a network: access to its layers by module path, and the
//! [`Prunable`] trait that lists its channel groups.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;

use crate::group::ChannelGroup;
use crate::slice::{
    LayerError, SliceChannels, indices, layer_error, select_batch_norm, select_depthwise,
};
use crate::{GatedConv2d, GatedConvTranspose2d};

/// Mutable access to one layer of a network, by kind.
#[derive(Debug)]
pub enum LayerMut<'a> {
    /// A gated convolution.
    Gated(&'a mut GatedConv2d),
    /// A gated transposed convolution.
    GatedTranspose(&'a mut GatedConvTranspose2d),
    /// A plain convolution (e.g. the output layer, which only consumes).
    Conv(&'a mut Conv2d),
    /// A plain transposed convolution.
    ConvTranspose(&'a mut ConvTranspose2d),
    /// A fully connected layer (weight `[in, out]`).
    Linear(&'a mut Linear),
    /// A stand-alone BatchNorm.
    BatchNorm(&'a mut BatchNorm),
}

/// Replaces `layer` by its slice on outputs or inputs.
fn apply<L: SliceChannels>(
    layer: &mut L,
    path: &str,
    keep: &[usize],
    outputs: bool,
) -> Result<(), LayerError> {
    *layer = if outputs {
        layer.select_outputs(path, keep)?
    } else {
        layer.select_inputs(path, keep)?
    };
    Ok(())
}

/// `param` with the entries `zeroed` along `axis` set to 0 (its id and gradient state kept).
fn zero_along<const D: usize>(
    param: &mut Param<Tensor<D>>,
    axis: usize,
    zeroed: &[usize],
) -> Result<(), LayerError> {
    let value = param.val();
    let size = value.dims()[axis];
    if let Some(&bad) = zeroed.iter().find(|&&i| i >= size) {
        return Err(layer_error(
            "",
            format!("channel {bad} is out of range ({size} channels)"),
        ));
    }
    let mut mask = vec![1.0f32; size];
    for &i in zeroed {
        mask[i] = 0.0;
    }
    let mut shape = [1usize; D];
    shape[axis] = size;
    let mask = Tensor::<1>::from_floats(mask.as_slice(), &value.device()).reshape(shape);
    let require = param.is_require_grad();
    *param = Param::initialized(param.id, (value * mask).detach()).set_require_grad(require);
    Ok(())
}

fn zero_norm(norm: &mut BatchNorm, zeroed: &[usize]) -> Result<(), LayerError> {
    zero_along(&mut norm.gamma, 0, zeroed)?;
    zero_along(&mut norm.beta, 0, zeroed)
}

/// Zeroes output channels of a conv (+ norm): filters along `axis`, bias, γ and β.
fn zero_conv_outputs(
    weight: &mut Param<Tensor<4>>,
    bias: &mut Option<Param<Tensor<1>>>,
    norm: Option<&mut BatchNorm>,
    axis: usize,
    zeroed: &[usize],
) -> Result<(), LayerError> {
    zero_along(weight, axis, zeroed)?;
    if let Some(b) = bias {
        zero_along(b, 0, zeroed)?;
    }
    if let Some(norm) = norm {
        zero_norm(norm, zeroed)?;
    }
    Ok(())
}

impl LayerMut<'_> {
    /// `[in, out]` channels (a BatchNorm's are its width twice; a `Linear`'s are features).
    pub fn channels(&self) -> [usize; 2] {
        match self {
            Self::Gated(l) => l.channels(),
            Self::GatedTranspose(l) => SliceChannels::channels(&**l),
            Self::Conv(l) => SliceChannels::channels(&**l),
            Self::ConvTranspose(l) => SliceChannels::channels(&**l),
            Self::Linear(l) => SliceChannels::channels(&**l),
            Self::BatchNorm(l) => {
                let [n] = l.gamma.dims();
                [n, n]
            }
        }
    }

    /// The kind of layer, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Gated(_) => "GatedConv2d",
            Self::GatedTranspose(_) => "GatedConvTranspose2d",
            Self::Conv(_) => "Conv2d",
            Self::ConvTranspose(_) => "ConvTranspose2d",
            Self::Linear(_) => "Linear",
            Self::BatchNorm(_) => "BatchNorm",
        }
    }

    /// Keeps only the output channels `keep` (a producer's slice).
    ///
    /// # Errors
    /// When an index is out of range, the layer is grouped, or it is a BatchNorm (a member).
    pub fn slice_outputs(&mut self, path: &str, keep: &[usize]) -> Result<(), LayerError> {
        match self {
            Self::Gated(l) => apply(&mut **l, path, keep, true),
            Self::GatedTranspose(l) => apply(&mut **l, path, keep, true),
            Self::Conv(l) => apply(&mut **l, path, keep, true),
            Self::ConvTranspose(l) => apply(&mut **l, path, keep, true),
            Self::Linear(l) => apply(&mut **l, path, keep, true),
            Self::BatchNorm(_) => self.slice_in_step(path, keep),
        }
    }

    /// Keeps only the input channels `keep` (a consumer's slice).
    ///
    /// # Errors
    /// When an index is out of range, the layer is grouped, or it is a BatchNorm.
    pub fn slice_inputs(&mut self, path: &str, keep: &[usize]) -> Result<(), LayerError> {
        match self {
            Self::Gated(l) => apply(&mut **l, path, keep, false),
            Self::GatedTranspose(l) => apply(&mut **l, path, keep, false),
            Self::Conv(l) => apply(&mut **l, path, keep, false),
            Self::ConvTranspose(l) => apply(&mut **l, path, keep, false),
            Self::Linear(l) => apply(&mut **l, path, keep, false),
            Self::BatchNorm(_) => Err(layer_error(
                path,
                "a BatchNorm reads its channels one by one: declare it a member of the group",
            )),
        }
    }

    /// Keeps only the channels `keep` of a per-channel layer (a member's slice): a BatchNorm,
    /// or a depthwise convolution (inputs, outputs and groups together).
    ///
    /// # Errors
    /// When the layer does not act on each channel separately, or an index is out of range.
    pub fn slice_in_step(&mut self, path: &str, keep: &[usize]) -> Result<(), LayerError> {
        match self {
            Self::BatchNorm(l) => {
                let idx = indices(path, "BatchNorm", keep, l.gamma.dims()[0], &l.gamma.val())?;
                **l = select_batch_norm(l, &idx);
                Ok(())
            }
            Self::Conv(l) => {
                **l = select_depthwise(l, path, keep)?;
                Ok(())
            }
            Self::Gated(l) => {
                let conv = select_depthwise(&l.conv, path, keep)?;
                let idx = indices(
                    path,
                    "depthwise",
                    keep,
                    l.channels()[1],
                    &l.conv.weight.val(),
                )?;
                l.norm = l.norm.as_ref().map(|n| select_batch_norm(n, &idx));
                l.gate = l.gate.as_ref().map(|g| crate::select_param(g, 0, &idx));
                l.conv = conv;
                Ok(())
            }
            other => Err(layer_error(
                path,
                format!(
                    "a {} mixes channels, so it cannot be a member of a group (members are \
                     BatchNorms and depthwise convolutions); declare it a producer or consumer",
                    other.kind()
                ),
            )),
        }
    }

    /// The layer's gate, when it is a gated layer that still has one.
    pub fn gate(&self) -> Option<&Param<Tensor<1>>> {
        match self {
            Self::Gated(l) => l.gate.as_ref(),
            Self::GatedTranspose(l) => l.gate.as_ref(),
            _ => None,
        }
    }

    /// The layer's gate slot, for gated layers.
    pub fn gate_mut(&mut self) -> Option<&mut Option<Param<Tensor<1>>>> {
        match self {
            Self::Gated(l) => Some(&mut l.gate),
            Self::GatedTranspose(l) => Some(&mut l.gate),
            _ => None,
        }
    }

    /// Makes the output channels `closed` exactly 0 before the activation: a gated layer's
    /// gates go to 0; an ungated layer loses those filters' weights, bias, BatchNorm `γ` and
    /// `β`; a BatchNorm its `γ` and `β`.
    ///
    /// # Errors
    /// When an index is out of range.
    pub fn close_outputs(&mut self, path: &str, closed: &[usize]) -> Result<(), LayerError> {
        let named = |e: LayerError| layer_error(path, e.reason);
        match self {
            Self::Gated(l) => match &mut l.gate {
                Some(gate) => zero_along(gate, 0, closed),
                None => zero_conv_outputs(
                    &mut l.conv.weight,
                    &mut l.conv.bias,
                    l.norm.as_mut(),
                    0,
                    closed,
                ),
            },
            Self::GatedTranspose(l) => match &mut l.gate {
                Some(gate) => zero_along(gate, 0, closed),
                None => zero_conv_outputs(
                    &mut l.conv.weight,
                    &mut l.conv.bias,
                    l.norm.as_mut(),
                    1,
                    closed,
                ),
            },
            Self::Conv(l) => zero_conv_outputs(&mut l.weight, &mut l.bias, None, 0, closed),
            Self::ConvTranspose(l) => {
                zero_conv_outputs(&mut l.weight, &mut l.bias, None, 1, closed)
            }
            Self::Linear(l) => {
                zero_along(&mut l.weight, 1, closed)?;
                match &mut l.bias {
                    Some(b) => zero_along(b, 0, closed),
                    None => Ok(()),
                }
            }
            Self::BatchNorm(l) => zero_norm(l, closed),
        }
        .map_err(named)
    }

    /// Zeroes the weights that read the inputs `inputs`, so the layer ignores them.
    ///
    /// # Errors
    /// When an index is out of range, or the layer is a grouped convolution or a BatchNorm.
    pub fn zero_inputs(&mut self, path: &str, inputs: &[usize]) -> Result<(), LayerError> {
        let named = |e: LayerError| layer_error(path, e.reason);
        let ungrouped = |groups: usize| {
            if groups == 1 {
                Ok(())
            } else {
                Err(layer_error(
                    path,
                    "a grouped convolution cannot be a consumer",
                ))
            }
        };
        match self {
            Self::Gated(l) => {
                ungrouped(l.conv.groups)?;
                zero_along(&mut l.conv.weight, 1, inputs).map_err(named)
            }
            Self::GatedTranspose(l) => {
                ungrouped(l.conv.groups)?;
                zero_along(&mut l.conv.weight, 0, inputs).map_err(named)
            }
            Self::Conv(l) => {
                ungrouped(l.groups)?;
                zero_along(&mut l.weight, 1, inputs).map_err(named)
            }
            Self::ConvTranspose(l) => {
                ungrouped(l.groups)?;
                zero_along(&mut l.weight, 0, inputs).map_err(named)
            }
            Self::Linear(l) => zero_along(&mut l.weight, 0, inputs).map_err(named),
            Self::BatchNorm(_) => Err(layer_error(
                path,
                "a BatchNorm cannot be a consumer: declare it a member",
            )),
        }
    }
}

/// Access to the layers of a module by module path, relative to the module: `""` is the
/// module itself, `"blocks.0.conv1"` a field of an element of a field.
///
/// Implemented for every layer [`LayerMut`] names, for `Vec<T>` (by index) and `Option<T>`;
/// implement it for your own blocks with [`layer_fields!`](crate::layer_fields).
pub trait Layers {
    /// The layer at `path`, or `None` when there is none.
    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>>;
}

macro_rules! leaf {
    ($ty:ty, $variant:ident) => {
        impl Layers for $ty {
            fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>> {
                path.is_empty().then(|| LayerMut::$variant(self))
            }
        }
    };
}

leaf!(GatedConv2d, Gated);
leaf!(GatedConvTranspose2d, GatedTranspose);
leaf!(Conv2d, Conv);
leaf!(ConvTranspose2d, ConvTranspose);
leaf!(Linear, Linear);
leaf!(BatchNorm, BatchNorm);

impl<T: Layers> Layers for Vec<T> {
    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>> {
        let (index, rest) = split_path(path);
        self.get_mut(index.parse::<usize>().ok()?)?.layer_mut(rest)
    }
}

impl<T: Layers> Layers for Option<T> {
    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>> {
        self.as_mut()?.layer_mut(path)
    }
}

/// `"a.b.c"` → `("a", "b.c")`; `"a"` → `("a", "")`.
pub fn split_path(path: &str) -> (&str, &str) {
    path.split_once('.').unwrap_or((path, ""))
}

/// Writes `fn layer_mut` for a struct whose fields are layers or blocks: inside
/// `impl Prunable for Net { … }` or `impl Layers for Block { … }`, list the fields that hold
/// layers.
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::Device;
/// use prunus_layers::{GatedConv2d, GatedConv2dConfig, Layers, LayerMut, layer_fields};
///
/// #[derive(Module, Debug)]
/// struct Block {
///     convs: Vec<GatedConv2d>,
///     fc: Linear,
/// }
///
/// impl Layers for Block {
///     layer_fields!(convs, fc);
/// }
///
/// let device = Device::flex();
/// let mut block = Block {
///     convs: vec![GatedConv2dConfig::new([3, 8]).init(&device)],
///     fc: LinearConfig::new(8, 2).init(&device),
/// };
/// assert!(matches!(block.layer_mut("convs.0"), Some(LayerMut::Gated(_))));
/// assert!(matches!(block.layer_mut("fc"), Some(LayerMut::Linear(_))));
/// assert!(block.layer_mut("convs.1").is_none());
/// ```
#[macro_export]
macro_rules! layer_fields {
    ($($field:ident),* $(,)?) => {
        fn layer_mut(&mut self, path: &str) -> ::core::option::Option<$crate::LayerMut<'_>> {
            let (head, rest) = $crate::split_path(path);
            match head {
                $(::core::stringify!($field) => $crate::Layers::layer_mut(&mut self.$field, rest),)*
                _ => ::core::option::Option::None,
            }
        }
    };
}

/// A network whose filters can be removed: it lists its channel groups and gives access to
/// its layers by module path.
///
/// Implementing it is all a custom CNN needs for surgery (`prunus_surgery::prune`,
/// `close_removed_gates`, `fold_gates`, `verify_prunable`) and for `prune_to_tolerance`.
/// [`layer_fields!`](crate::layer_fields) writes `layer_mut`. The output layer must not be a
/// group's producer.
pub trait Prunable: Module + Sized {
    /// Every prunable channel group, with its producers, members and consumers.
    fn channel_groups(&self) -> Vec<ChannelGroup>;

    /// The layer at `path`, or `None` when there is none.
    fn layer_mut(&mut self, path: &str) -> Option<LayerMut<'_>>;
}
