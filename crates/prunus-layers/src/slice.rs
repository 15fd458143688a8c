//! Slicing primitives: keep selected output or input channels of one layer.
//!
//! One function per layer kind and axis, public so that any CNN can be made
//! [`Prunable`](crate::Prunable). Every function checks its indices and returns a new layer;
//! the input layer is left as it is.

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::{Int, Tensor, TensorData};

use crate::{GatedConv2d, GatedConvTranspose2d};

/// A layer that cannot be sliced as asked, or a declaration that does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layer `{layer}`: {reason}")]
pub struct LayerError {
    /// The layer's module path.
    pub layer: String,
    /// What is wrong.
    pub reason: String,
}

/// A [`LayerError`] for `layer`.
pub fn layer_error(layer: &str, reason: impl Into<String>) -> LayerError {
    LayerError {
        layer: layer.to_string(),
        reason: reason.into(),
    }
}

/// A layer whose output and input channels can be sliced.
///
/// Implemented for Burn's [`Conv2d`], [`ConvTranspose2d`] and [`Linear`] and prunus' gated
/// layers. Only ungrouped convolutions (`groups == 1`) can be sliced on one axis; a depthwise
/// convolution is cut on both at once ([`select_depthwise`]).
pub trait SliceChannels: Sized {
    /// `[in, out]` channels.
    fn channels(&self) -> [usize; 2];

    /// The layer with only the output channels `keep` (sorted, unique, in range), in that
    /// order: filter weights, bias, BatchNorm and gate entries alike.
    ///
    /// # Errors
    /// When an index is out of range or the layer is grouped; `layer` names it in the error.
    fn select_outputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError>;

    /// The layer with only the input channels `keep` (sorted, unique, in range).
    ///
    /// # Errors
    /// As [`SliceChannels::select_outputs`].
    fn select_inputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError>;
}

/// `keep` as an index tensor on `tensor`'s device, after checking it against `size`.
pub(crate) fn indices<const D: usize>(
    layer: &str,
    what: &str,
    keep: &[usize],
    size: usize,
    tensor: &Tensor<D>,
) -> Result<Tensor<1, Int>, LayerError> {
    if keep.is_empty() {
        return Err(layer_error(layer, format!("no {what} channel kept")));
    }
    if let Some(&bad) = keep.iter().find(|&&i| i >= size) {
        return Err(layer_error(
            layer,
            format!("{what} channel {bad} is out of range ({size} channels)"),
        ));
    }
    let values: Vec<i64> = keep.iter().map(|&i| i as i64).collect();
    Ok(Tensor::from_data(
        TensorData::new(values, [keep.len()]),
        &tensor.device(),
    ))
}

/// `param` with only the entries `keep` along `dim`, as a new trainable parameter.
pub fn select_param<const D: usize>(
    param: &Param<Tensor<D>>,
    dim: usize,
    keep: &Tensor<1, Int>,
) -> Param<Tensor<D>> {
    let value = param.val();
    // Detached: the slice of a tracked tensor is not a leaf, and a parameter must be one.
    let selected = value.clone().select(dim, keep.clone()).detach();
    Param::from_tensor(selected)
        .set_require_grad(value.is_require_grad() || param.is_require_grad())
}

/// A BatchNorm with only the channels `keep`: `γ`, `β` and both running statistics.
pub fn select_batch_norm(norm: &BatchNorm, keep: &Tensor<1, Int>) -> BatchNorm {
    let running =
        |state: &RunningState<Tensor<1>>| RunningState::new(state.value().select(0, keep.clone()));
    BatchNorm {
        gamma: select_param(&norm.gamma, 0, keep),
        beta: select_param(&norm.beta, 0, keep),
        training: norm.training.clone(),
        running_mean: running(&norm.running_mean),
        running_var: running(&norm.running_var),
        momentum: norm.momentum,
        epsilon: norm.epsilon,
    }
}

fn check_ungrouped(layer: &str, groups: usize) -> Result<(), LayerError> {
    if groups == 1 {
        Ok(())
    } else {
        Err(layer_error(
            layer,
            format!("a grouped convolution ({groups} groups) cannot be sliced"),
        ))
    }
}

impl SliceChannels for Conv2d {
    fn channels(&self) -> [usize; 2] {
        let [out, input, _, _] = self.weight.dims();
        [input * self.groups, out]
    }

    fn select_outputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
        check_ungrouped(layer, self.groups)?;
        let weight = self.weight.val();
        let idx = indices(layer, "output", keep, self.channels()[1], &weight)?;
        Ok(Conv2d {
            weight: select_param(&self.weight, 0, &idx),
            bias: self.bias.as_ref().map(|b| select_param(b, 0, &idx)),
            ..self.clone()
        })
    }

    fn select_inputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
        check_ungrouped(layer, self.groups)?;
        let weight = self.weight.val();
        let idx = indices(layer, "input", keep, self.channels()[0], &weight)?;
        Ok(Conv2d {
            weight: select_param(&self.weight, 1, &idx),
            ..self.clone()
        })
    }
}

impl SliceChannels for ConvTranspose2d {
    fn channels(&self) -> [usize; 2] {
        let [input, out, _, _] = self.weight.dims();
        [input, out * self.groups]
    }

    // The weight is `[in, out, k, k]`: outputs are axis 1, and `channels` must follow.
    fn select_outputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
        check_ungrouped(layer, self.groups)?;
        let weight = self.weight.val();
        let idx = indices(layer, "output", keep, self.channels()[1], &weight)?;
        Ok(ConvTranspose2d {
            weight: select_param(&self.weight, 1, &idx),
            bias: self.bias.as_ref().map(|b| select_param(b, 0, &idx)),
            channels: [self.channels[0], keep.len()],
            ..self.clone()
        })
    }

    fn select_inputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
        check_ungrouped(layer, self.groups)?;
        let weight = self.weight.val();
        let idx = indices(layer, "input", keep, self.channels()[0], &weight)?;
        Ok(ConvTranspose2d {
            weight: select_param(&self.weight, 0, &idx),
            channels: [keep.len(), self.channels[1]],
            ..self.clone()
        })
    }
}

impl SliceChannels for Linear {
    fn channels(&self) -> [usize; 2] {
        self.weight.dims()
    }

    // The weight is `[in, out]`.
    fn select_outputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
        let weight = self.weight.val();
        let idx = indices(layer, "output", keep, self.channels()[1], &weight)?;
        Ok(Linear {
            weight: select_param(&self.weight, 1, &idx),
            bias: self.bias.as_ref().map(|b| select_param(b, 0, &idx)),
        })
    }

    fn select_inputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
        let weight = self.weight.val();
        let idx = indices(layer, "input", keep, self.channels()[0], &weight)?;
        Ok(Linear {
            weight: select_param(&self.weight, 0, &idx),
            bias: self.bias.clone(),
        })
    }
}

/// A depthwise convolution (`groups == in == out`) with only the channels `keep`, cut on
/// both axes at once: the filters, bias and group count.
///
/// # Errors
/// When the convolution is not depthwise or an index is out of range.
pub fn select_depthwise(conv: &Conv2d, layer: &str, keep: &[usize]) -> Result<Conv2d, LayerError> {
    let [out, per_group, _, _] = conv.weight.dims();
    if per_group != 1 || conv.groups != out {
        return Err(layer_error(
            layer,
            format!(
                "only a depthwise convolution (one input per group) can be cut in step with a                  group; this one has {} groups of {per_group} inputs",
                conv.groups
            ),
        ));
    }
    let idx = indices(layer, "depthwise", keep, out, &conv.weight.val())?;
    Ok(Conv2d {
        weight: select_param(&conv.weight, 0, &idx),
        bias: conv.bias.as_ref().map(|b| select_param(b, 0, &idx)),
        groups: keep.len(),
        ..conv.clone()
    })
}

/// Slices the norm and gate of a gated layer whose convolution was already sliced.
macro_rules! gated_slice {
    ($layer:ty) => {
        impl SliceChannels for $layer {
            fn channels(&self) -> [usize; 2] {
                self.conv.channels()
            }

            fn select_outputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
                let conv = self.conv.select_outputs(layer, keep)?;
                let idx = indices(
                    layer,
                    "output",
                    keep,
                    self.channels()[1],
                    &conv.weight.val(),
                )?;
                Ok(Self {
                    conv,
                    norm: self.norm.as_ref().map(|n| select_batch_norm(n, &idx)),
                    gate: self.gate.as_ref().map(|g| select_param(g, 0, &idx)),
                    activation: self.activation,
                })
            }

            fn select_inputs(&self, layer: &str, keep: &[usize]) -> Result<Self, LayerError> {
                Ok(Self {
                    conv: self.conv.select_inputs(layer, keep)?,
                    norm: self.norm.clone(),
                    gate: self.gate.clone(),
                    activation: self.activation,
                })
            }
        }
    };
}

gated_slice!(GatedConv2d);
gated_slice!(GatedConvTranspose2d);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::Device;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn transposed_conv_outputs_are_axis_one_and_update_channels() {
        let device = Device::flex();
        let conv = ConvTranspose2dConfig::new([3, 5], [2, 2]).init(&device);
        let sliced = conv.select_outputs("up", &[1, 4]).unwrap();
        assert_eq!(sliced.weight.dims(), [3, 2, 2, 2]);
        assert_eq!(sliced.channels, [3, 2]);
        let expected = conv.weight.val().slice([0..3, 4..5, 0..2, 0..2]);
        let got = sliced.weight.val().slice([0..3, 1..2, 0..2, 0..2]);
        assert_eq!(values(got), values(expected));
        let bias = values(conv.bias.unwrap().val());
        assert_eq!(values(sliced.bias.unwrap().val()), vec![bias[1], bias[4]]);
    }

    #[test]
    fn transposed_conv_inputs_are_axis_zero() {
        let device = Device::flex();
        let conv = ConvTranspose2dConfig::new([4, 2], [3, 3]).init(&device);
        let sliced = conv.select_inputs("up", &[0, 3]).unwrap();
        assert_eq!(sliced.weight.dims(), [2, 2, 3, 3]);
        assert_eq!(sliced.channels, [2, 2]);
    }

    #[test]
    fn conv_inputs_are_axis_one_and_keep_the_bias() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([4, 3], [3, 3]).init(&device);
        let sliced = conv.select_inputs("c", &[2]).unwrap();
        assert_eq!(sliced.weight.dims(), [3, 1, 3, 3]);
        assert_eq!(
            values(sliced.weight.val()),
            values(conv.weight.val().slice([0..3, 2..3, 0..3, 0..3]))
        );
        assert_eq!(
            values(sliced.bias.unwrap().val()),
            values(conv.bias.unwrap().val())
        );
    }

    #[test]
    fn out_of_range_and_empty_selections_name_the_layer() {
        let conv = Conv2dConfig::new([2, 2], [1, 1]).init(&Device::flex());
        let err = conv.select_outputs("encoder.0.conv1", &[2]).unwrap_err();
        assert!(err.to_string().contains("encoder.0.conv1"), "{err}");
        assert!(conv.select_inputs("x", &[]).is_err());
    }

    #[test]
    fn grouped_convolutions_are_refused() {
        let conv = Conv2dConfig::new([4, 4], [1, 1])
            .with_groups(2)
            .init(&Device::flex());
        let err = conv.select_outputs("g", &[0]).unwrap_err();
        assert!(err.to_string().contains("grouped"), "{err}");
    }
}
