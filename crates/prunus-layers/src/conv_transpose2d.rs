//! Gated 2-d transposed convolution: transposed conv → optional BatchNorm → gate → activation.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::BatchNorm;
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::{Device, Tensor};

use crate::gated::{gate_forward, gate_forward_burn, init_gates, init_norm};
use crate::{Activation, GateInit, checks};

/// Configuration of a [`GatedConvTranspose2d`], built with [`GatedConvTranspose2dConfig::init`].
#[derive(Config, Debug)]
pub struct GatedConvTranspose2dConfig {
    /// Input and output channels, `[in, out]`. The layer has one gate per output channel.
    pub channels: [usize; 2],
    /// Side of the square kernel.
    #[config(default = 2)]
    pub kernel_size: usize,
    /// Stride, the same on both axes.
    #[config(default = 2)]
    pub stride: usize,
    /// Padding removed from every side of the output.
    #[config(default = 0)]
    pub padding: usize,
    /// Extra rows and columns added to one side of the output.
    #[config(default = 0)]
    pub padding_out: usize,
    /// Whether the transposed convolution adds a bias.
    #[config(default = true)]
    pub bias: bool,
    /// Whether a BatchNorm sits between the transposed convolution and the gate.
    #[config(default = false)]
    pub batch_norm: bool,
    /// The activation after the gate.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// How the gates start.
    #[config(default = "GateInit::Ones")]
    pub gate_init: GateInit,
}

/// A 2-d transposed convolution with one learnable importance weight per output channel:
/// `y_i = act(g_i · norm(convᵀ(x))_i)`.
///
/// Burn lays a transposed convolution's weight out as `[in, out, k, k]`, so filter `i` is the
/// slice `weight[:, i]`; surgery must cut that axis and keep `conv.channels` in step.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_layers::GatedConvTranspose2dConfig;
///
/// let device = Device::flex();
/// // The U-Net up-sampler: kernel 2, stride 2 doubles height and width.
/// let layer = GatedConvTranspose2dConfig::new([8, 4]).init(&device);
/// let x = Tensor::<4>::random([1, 8, 5, 5], Distribution::Default, &device);
/// assert_eq!(layer.forward(x).dims(), [1, 4, 10, 10]);
/// ```
#[derive(Module, Debug)]
pub struct GatedConvTranspose2d {
    /// The transposed convolution; its weight is `[in, out, k, k]`.
    pub conv: ConvTranspose2d,
    /// The optional BatchNorm after the transposed convolution.
    pub norm: Option<BatchNorm>,
    /// One importance weight per output channel, `[out]`; `None` once the gates are folded
    /// into the weights.
    pub gate: Option<Param<Tensor<1>>>,
    /// The activation after the gate.
    #[module(skip)]
    pub activation: Activation,
}

impl GatedConvTranspose2dConfig {
    /// Builds the layer on `device`.
    ///
    /// # Panics
    /// When a channel count, the kernel size or the stride is 0, or the gate initialisation's
    /// own arguments are invalid (see [`GateInit::init_gates`]).
    pub fn init(&self, device: &Device) -> GatedConvTranspose2d {
        checks::check_channels("GatedConvTranspose2d", self.channels);
        checks::check_kernel("GatedConvTranspose2d", self.kernel_size, self.stride);
        let conv = ConvTranspose2dConfig::new(self.channels, [self.kernel_size; 2])
            .with_stride([self.stride; 2])
            .with_padding([self.padding; 2])
            .with_padding_out([self.padding_out; 2])
            .with_bias(self.bias)
            .init(device);
        let gate = init_gates(&self.gate_init, &conv.weight.val(), 1, device);
        GatedConvTranspose2d {
            conv,
            norm: init_norm(self.batch_norm, self.channels[1], device),
            gate: Some(gate),
            activation: self.activation,
        }
    }
}

impl GatedConvTranspose2d {
    /// Applies transposed convolution, normalisation, gate and activation.
    ///
    /// # Shapes
    /// - `input`: `[batch, in, height, width]`
    /// - output: `[batch, out, (height − 1)·stride − 2·padding + kernel + padding_out, same for
    ///   width]`
    ///
    /// On the Flex CPU backend prunus's own kernel computes the transposed convolution (see
    /// [`set_cpu_kernels`](crate::set_cpu_kernels)): without autodiff all four steps in one
    /// pass, with autodiff the transposed convolution and its gradients. Elsewhere Burn's
    /// operations do.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let dims = input.dims();
        let note = |out| {
            crate::record::note_conv_transpose(
                &self.conv,
                self.norm.as_ref(),
                self.gate.as_ref(),
                dims,
                out,
            )
        };
        if let Some(y) = crate::cpu::gated_conv_transpose2d(self, &input) {
            note(y.dims());
            return y;
        }
        if let Some(z) = crate::cpu::conv_transpose2d_autodiff(&self.conv, &input) {
            note(z.dims());
            return gate_forward(z, self.norm.as_ref(), self.gate.as_ref(), self.activation);
        }
        self.forward_burn(input)
    }

    /// [`forward`](Self::forward) by Burn's operations alone.
    pub(crate) fn forward_burn(&self, input: Tensor<4>) -> Tensor<4> {
        let dims = input.dims();
        let z = self.conv.forward(input);
        crate::record::note_conv_transpose(
            &self.conv,
            self.norm.as_ref(),
            self.gate.as_ref(),
            dims,
            z.dims(),
        );
        gate_forward_burn(z, self.norm.as_ref(), self.gate.as_ref(), self.activation)
    }

    /// Input and output channels, `[in, out]`, read from the weight.
    pub fn channels(&self) -> [usize; 2] {
        let [input, out_per_group, _, _] = self.conv.weight.dims();
        [input, out_per_group * self.conv.groups]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_channel_zero, random};

    #[test]
    fn ternausnet_upsampler_doubles_the_size() {
        let device = Device::flex();
        let layer = GatedConvTranspose2dConfig::new([4, 2])
            .with_kernel_size(3)
            .with_padding(1)
            .with_padding_out(1)
            .init(&device);
        // (7 − 1)·2 − 2 + 3 + 1 = 14
        assert_eq!(
            layer.forward(random([1, 4, 7, 7], &device)).dims(),
            [1, 2, 14, 14]
        );
        assert_eq!(layer.channels(), [4, 2]);
    }

    #[test]
    fn gate_of_zero_zeroes_its_channel_exactly() {
        let device = Device::flex();
        for batch_norm in [false, true] {
            let mut layer = GatedConvTranspose2dConfig::new([3, 3])
                .with_batch_norm(batch_norm)
                .with_activation(Activation::Identity)
                .init(&device);
            layer.gate = Some(Param::from_tensor(Tensor::from_floats(
                [0.7, -1.0, 0.0],
                &device,
            )));
            let y = layer.forward(random([2, 3, 4, 4], &device));
            assert_channel_zero(&y, 2);
        }
    }

    #[test]
    fn filter_norm_gates_read_the_output_axis() {
        let device = Device::flex();
        let layer = GatedConvTranspose2dConfig::new([3, 5])
            .with_gate_init(GateInit::FilterNorm)
            .init(&device);
        // weight [in=3, out=5, 2, 2]: filter i is weight[:, i].
        let w = layer
            .conv
            .weight
            .val()
            .swap_dims(0, 1)
            .abs()
            .reshape([5, 12])
            .sum_dim(1);
        let expected = w
            .clone()
            .div_scalar(w.mean().into_scalar::<f32>())
            .reshape([5]);
        layer
            .gate
            .unwrap()
            .val()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }

    fn trained_like(config: GatedConvTranspose2dConfig, device: &Device) -> GatedConvTranspose2d {
        let mut layer = config.init(device);
        let out = layer.channels()[1];
        crate::test_util::trained_like(&mut layer.gate, layer.norm.as_mut(), out, device);
        layer
    }

    /// The U-Net's (2×2, stride 2), TernausNet's (3×3, stride 2, padding 1, output padding 1)
    /// and a stride-1 transposed convolution, with and without BatchNorm and bias.
    fn configs(channels: [usize; 2]) -> Vec<GatedConvTranspose2dConfig> {
        vec![
            GatedConvTranspose2dConfig::new(channels).with_activation(Activation::Identity),
            GatedConvTranspose2dConfig::new(channels)
                .with_kernel_size(3)
                .with_padding(1)
                .with_padding_out(1),
            GatedConvTranspose2dConfig::new(channels)
                .with_kernel_size(3)
                .with_stride(1)
                .with_padding(1)
                .with_bias(false)
                .with_batch_norm(true),
        ]
    }

    #[test]
    fn prunus_kernel_matches_burns_operations() {
        let device = Device::flex();
        for config in configs([5, 7]) {
            let mut layer = trained_like(config, &device);
            // 11 wide: the U-Net's up-sampling runs prunus's direct kernel from 8 pixels on.
            let x = random([2, 5, 6, 11], &device);
            for folded in [false, true] {
                if folded {
                    layer.gate = None;
                    layer.norm = None;
                }
                assert!(crate::cpu::gated_conv_transpose2d(&layer, &x).is_some());
                let want = layer.forward_burn(x.clone());
                let got = layer.forward(x.clone());
                assert_eq!(got.dims(), want.dims());
                got.into_data().assert_approx_eq::<f32>(
                    &want.into_data(),
                    burn::tensor::Tolerance::absolute(1e-4),
                );
            }
        }
    }

    #[test]
    fn training_gradients_match_burns() {
        let device = Device::flex().autodiff();
        for config in configs([4, 6]) {
            let layer = trained_like(config, &device);
            let x = random([2, 4, 5, 9], &device).require_grad();
            assert!(crate::cpu::conv_transpose2d_autodiff(&layer.conv, &x).is_some());
            let burns = layer.forward_burn(x.clone());
            let weights = random(burns.dims(), &device);
            let ours = layer.forward(x.clone());
            ours.clone()
                .into_data()
                .assert_approx_eq::<f32>(&burns.clone().into_data(), Default::default());
            let grads_ours = (ours * weights.clone()).sum().backward();
            let grads_burn = (burns * weights).sum().backward();
            let tolerance = burn::tensor::Tolerance::absolute(1e-4);
            let x_ours = x.grad(&grads_ours).expect("input gradient");
            let x_burn = x.grad(&grads_burn).expect("input gradient");
            x_ours
                .into_data()
                .assert_approx_eq::<f32>(&x_burn.into_data(), tolerance);
            let w = layer.conv.weight.val();
            let w_ours = w.grad(&grads_ours).expect("weight gradient");
            let w_burn = w.grad(&grads_burn).expect("weight gradient");
            w_ours
                .into_data()
                .assert_approx_eq::<f32>(&w_burn.into_data(), tolerance);
        }
    }
}
