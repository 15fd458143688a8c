//! Gated 2-d convolution: conv → optional BatchNorm → per-filter gate → activation.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::gated::{gate_forward, gate_forward_burn, init_gates, init_norm};
use crate::{Activation, GateInit, checks};

/// Configuration of a [`GatedConv2d`], built with [`GatedConv2dConfig::init`].
#[derive(Config, Debug)]
pub struct GatedConv2dConfig {
    /// Input and output channels, `[in, out]`. The layer has one gate per output channel.
    pub channels: [usize; 2],
    /// Side of the square kernel.
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Stride, the same on both axes.
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding on every side.
    #[config(default = 1)]
    pub padding: usize,
    /// Whether the convolution adds a bias. A conv followed by BatchNorm usually has none.
    #[config(default = true)]
    pub bias: bool,
    /// Whether a BatchNorm sits between the convolution and the gate.
    #[config(default = false)]
    pub batch_norm: bool,
    /// The activation after the gate.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// How the gates start.
    #[config(default = "GateInit::Ones")]
    pub gate_init: GateInit,
}

/// A 2-d convolution whose every output channel (filter) `i` carries a learnable importance
/// weight `g_i`: `y_i = act(g_i · norm(conv(x))_i)`.
///
/// The gate sits after the normalisation (a BatchNorm would cancel any scale put before it) and
/// before the activation, so a gate of 0 makes channel `i` exactly 0: removing the filter is then
/// exactly equivalent to closing its gate.
///
/// All fields are public so that surgery can rebuild a slimmer layer from selected rows.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use prunus_layers::GatedConv2dConfig;
///
/// let device = Device::flex();
/// let layer = GatedConv2dConfig::new([3, 8]).with_batch_norm(true).init(&device);
/// let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
/// assert_eq!(layer.forward(x).dims(), [2, 8, 16, 16]);
/// ```
#[derive(Module, Debug)]
pub struct GatedConv2d {
    /// The convolution.
    pub conv: Conv2d,
    /// The optional BatchNorm after the convolution.
    pub norm: Option<BatchNorm>,
    /// One importance weight per output channel, `[out]`; `None` once the gates are folded
    /// into the weights.
    pub gate: Option<Param<Tensor<1>>>,
    /// The activation after the gate.
    #[module(skip)]
    pub activation: Activation,
}

impl GatedConv2dConfig {
    /// Builds the layer on `device`.
    ///
    /// # Panics
    /// When a channel count, the kernel size or the stride is 0, or the gate initialisation's
    /// own arguments are invalid (see [`GateInit::init_gates`]).
    pub fn init(&self, device: &Device) -> GatedConv2d {
        checks::check_channels("GatedConv2d", self.channels);
        checks::check_kernel("GatedConv2d", self.kernel_size, self.stride);
        let p = self.padding;
        let conv = Conv2dConfig::new(self.channels, [self.kernel_size; 2])
            .with_stride([self.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(self.bias)
            .init(device);
        let gate = init_gates(&self.gate_init, &conv.weight.val(), 0, device);
        GatedConv2d {
            conv,
            norm: init_norm(self.batch_norm, self.channels[1], device),
            gate: Some(gate),
            activation: self.activation,
        }
    }
}

impl GatedConv2d {
    /// Applies convolution, normalisation, gate and activation.
    ///
    /// # Shapes
    /// - `input`: `[batch, in, height, width]`
    /// - output: `[batch, out, (height + 2·padding − kernel) / stride + 1, same for width]`
    ///
    /// On the Flex CPU backend prunus's own kernel computes the convolution (see
    /// [`set_cpu_kernels`](crate::set_cpu_kernels)): without autodiff all four steps in one pass,
    /// with autodiff the convolution and its gradients. Elsewhere Burn's operations do.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let dims = input.dims();
        let note = |out| {
            crate::record::note_conv(
                &self.conv,
                self.norm.as_ref(),
                self.gate.as_ref(),
                dims,
                out,
            )
        };
        if let Some(y) = crate::cpu::gated_conv2d(self, &input) {
            note(y.dims());
            return y;
        }
        if let Some(z) = crate::cpu::conv2d_autodiff(&self.conv, &input) {
            note(z.dims());
            return gate_forward(z, self.norm.as_ref(), self.gate.as_ref(), self.activation);
        }
        self.forward_burn(input)
    }

    /// The layer on `inputs` concatenated along the channels — a U-Net decoder's `[skip, up]` —
    /// as `forward(Tensor::cat(inputs, 1))`. Where prunus's direct CPU kernel takes the layer
    /// (Flex, inference, narrow layers) it reads the inputs where they are instead of copying
    /// them into a concatenation first.
    ///
    /// # Shapes
    /// - `inputs`: `[batch, channels_i, height, width]`, the same batch and size, the channels
    ///   adding up to the layer's input channels
    /// - output: as [`forward`](Self::forward)'s
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use prunus_layers::GatedConv2dConfig;
    ///
    /// let device = Device::flex();
    /// let layer = GatedConv2dConfig::new([5, 4]).init(&device);
    /// let skip = Tensor::<4>::random([1, 2, 8, 40], Distribution::Default, &device);
    /// let up = Tensor::<4>::random([1, 3, 8, 40], Distribution::Default, &device);
    /// let y = layer.forward_cat(vec![skip.clone(), up.clone()]);
    /// let z = layer.forward(Tensor::cat(vec![skip, up], 1));
    /// y.into_data().assert_approx_eq::<f32>(&z.into_data(), Default::default());
    /// ```
    pub fn forward_cat(&self, inputs: Vec<Tensor<4>>) -> Tensor<4> {
        if let Some(y) = crate::cpu::gated_conv2d_cat(self, &inputs) {
            let [batch, _, h, w] = inputs[0].dims();
            let channels = inputs.iter().map(|x| x.dims()[1]).sum();
            crate::record::note_conv(
                &self.conv,
                self.norm.as_ref(),
                self.gate.as_ref(),
                [batch, channels, h, w],
                y.dims(),
            );
            return y;
        }
        self.forward(Tensor::cat(inputs, 1))
    }

    /// `head` applied to this layer's output — a segmentation network's last convolution and its
    /// 1×1 output layer — as `counted::conv2d(head, self.forward(input))`. Where prunus's direct
    /// CPU kernel takes the layer (Flex, inference, a narrow layer, `head` a 1×1 convolution to
    /// one channel) the pair runs in one pass and this layer's output is never written.
    ///
    /// # Shapes
    /// - `input`: as [`forward`](Self::forward)'s
    /// - output: `head`'s
    ///
    /// # Example
    /// ```
    /// use burn::nn::conv::Conv2dConfig;
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use prunus_layers::GatedConv2dConfig;
    ///
    /// let device = Device::flex();
    /// let layer = GatedConv2dConfig::new([3, 5]).init(&device);
    /// let head = Conv2dConfig::new([5, 1], [1, 1]).init(&device);
    /// let x = Tensor::<4>::random([1, 3, 8, 40], Distribution::Default, &device);
    /// let y = layer.forward_then(&head, x.clone());
    /// let z = head.forward(layer.forward(x));
    /// y.into_data().assert_approx_eq::<f32>(&z.into_data(), Default::default());
    /// ```
    pub fn forward_then(&self, head: &Conv2d, input: Tensor<4>) -> Tensor<4> {
        if let Some(y) = crate::cpu::gated_conv2d_then_head(self, head, &input) {
            let [batch, _, oh, ow] = y.dims();
            let between = [batch, self.channels()[1], oh, ow];
            crate::record::note_conv(
                &self.conv,
                self.norm.as_ref(),
                self.gate.as_ref(),
                input.dims(),
                between,
            );
            crate::record::note_conv(head, None, None, between, y.dims());
            return y;
        }
        crate::counted::conv2d(head, self.forward(input))
    }

    /// `(y, pool(y))` for `y = self.forward(input)` and `pool` a max-pool — a U-Net encoder
    /// level's skip and the next level's input. Where prunus's direct CPU kernel takes the layer
    /// (Flex, inference, a narrow layer, a 2×2 pool at stride 2, even sides) each pair of output
    /// rows is pooled as soon as it is written, while it is in cache, instead of read back.
    ///
    /// # Example
    /// ```
    /// use burn::nn::pool::MaxPool2dConfig;
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use prunus_layers::GatedConv2dConfig;
    ///
    /// let device = Device::flex();
    /// let layer = GatedConv2dConfig::new([3, 5]).init(&device);
    /// let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    /// let x = Tensor::<4>::random([1, 3, 8, 40], Distribution::Default, &device);
    /// let (y, pooled) = layer.forward_pooled(&pool, x.clone());
    /// let z = layer.forward(x);
    /// pooled.into_data().assert_approx_eq::<f32>(&pool.forward(z.clone()).into_data(), Default::default());
    /// y.into_data().assert_approx_eq::<f32>(&z.into_data(), Default::default());
    /// ```
    pub fn forward_pooled(&self, pool: &MaxPool2d, input: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        if let Some((y, pooled)) = crate::cpu::gated_conv2d_pooled(self, pool, &input) {
            crate::record::note_conv(
                &self.conv,
                self.norm.as_ref(),
                self.gate.as_ref(),
                input.dims(),
                y.dims(),
            );
            return (y, pooled);
        }
        let y = self.forward(input);
        let pooled = crate::counted::max_pool2d(pool, y.clone());
        (y, pooled)
    }

    /// [`forward`](Self::forward) by Burn's operations alone.
    pub(crate) fn forward_burn(&self, input: Tensor<4>) -> Tensor<4> {
        let dims = input.dims();
        let z = self.conv.forward(input);
        crate::record::note_conv(
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
        let [out, in_per_group, _, _] = self.conv.weight.dims();
        [in_per_group * self.conv.groups, out]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_channel_zero, random};

    #[test]
    fn output_shape_follows_padding_and_stride() {
        let device = Device::flex();
        let layer = GatedConv2dConfig::new([3, 5])
            .with_stride(2)
            .with_padding(0)
            .init(&device);
        // (9 + 0 − 3) / 2 + 1 = 4
        assert_eq!(
            layer.forward(random([2, 3, 9, 9], &device)).dims(),
            [2, 5, 4, 4]
        );
        assert_eq!(layer.channels(), [3, 5]);
    }

    #[test]
    fn gate_of_zero_zeroes_its_channel_exactly() {
        let device = Device::flex();
        for batch_norm in [false, true] {
            let mut layer = GatedConv2dConfig::new([3, 4])
                .with_batch_norm(batch_norm)
                .with_activation(Activation::Identity)
                .init(&device);
            layer.gate = Some(Param::from_tensor(Tensor::from_floats(
                [1.0, 0.0, -0.5, 2.0],
                &device,
            )));
            let y = layer.forward(random([2, 3, 6, 6], &device));
            assert_channel_zero(&y, 1);
        }
    }

    #[test]
    fn ones_gates_leave_the_plain_conv_unchanged() {
        let device = Device::flex();
        let layer = GatedConv2dConfig::new([2, 3])
            .with_activation(Activation::Identity)
            .init(&device);
        let x = random([1, 2, 5, 5], &device);
        // Burn's path multiplies by exactly 1; prunus's kernel rounds its own way (≤ 1e-5).
        layer
            .forward_burn(x.clone())
            .into_data()
            .assert_eq(&layer.conv.forward(x.clone()).into_data(), true);
        layer
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&layer.conv.forward(x).into_data(), Default::default());
    }

    fn trained_like(config: GatedConv2dConfig, device: &Device) -> GatedConv2d {
        let mut layer = config.init(device);
        let out = layer.channels()[1];
        crate::test_util::trained_like(&mut layer.gate, layer.norm.as_mut(), out, device);
        layer
    }

    #[test]
    fn prunus_kernel_matches_burns_operations() {
        let device = Device::flex();
        // 8 channels and more take the Winograd kernel at 3×3, stride 1; fewer, im2col.
        for (channels, batch_norm, bias, activation, stride, padding, kernel) in [
            ([6, 10], true, false, Activation::Relu, 1, 1, 3),
            ([16, 20], true, false, Activation::Relu, 1, 1, 3),
            ([16, 20], false, true, Activation::Identity, 1, 1, 3),
            ([6, 10], false, true, Activation::Relu, 1, 1, 3),
            ([6, 10], false, true, Activation::Identity, 2, 1, 3),
            ([6, 10], true, true, Activation::Identity, 1, 0, 1),
            ([6, 10], false, false, Activation::Relu, 2, 0, 2),
        ] {
            let config = GatedConv2dConfig::new(channels)
                .with_batch_norm(batch_norm)
                .with_bias(bias)
                .with_activation(activation)
                .with_stride(stride)
                .with_padding(padding)
                .with_kernel_size(kernel);
            let mut layer = trained_like(config, &device);
            // 37 wide: rows wide enough for the direct kernel, where it takes the layer.
            let inputs = [
                random([3, channels[0], 13, 11], &device),
                random([2, channels[0], 6, 37], &device),
            ];
            for (folded, x) in [false, true]
                .into_iter()
                .flat_map(|f| inputs.iter().map(move |x| (f, x)))
            {
                if folded {
                    // As inference runs it: no gate, no norm, only weights and bias.
                    layer.gate = None;
                    layer.norm = None;
                }
                assert!(
                    crate::cpu::gated_conv2d(&layer, x).is_some(),
                    "prunus's kernel takes this layer"
                );
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
    fn wide_layers_on_large_images_match_burns_operations_and_read_concatenations() {
        // 50 → 49 channels on 64²: Winograd with its products in registers, where the CPU has
        // AVX2 or AVX-512 (the direct kernel's rule stops at 48 channels there); a decoder's
        // `[skip, up]` read in place.
        let device = Device::flex();
        let config = GatedConv2dConfig::new([50, 49])
            .with_batch_norm(true)
            .with_activation(Activation::Relu);
        let layer = trained_like(config, &device);
        let x = random([1, 50, 64, 65], &device);
        let want = layer.forward_burn(x.clone());
        let got = layer.forward(x.clone());
        got.clone()
            .into_data()
            .assert_approx_eq::<f32>(&want.into_data(), burn::tensor::Tolerance::absolute(1e-4));
        let (skip, up) = (x.clone().narrow(1, 0, 20), x.narrow(1, 20, 30));
        let cat = layer.forward_cat(vec![skip, up]);
        cat.into_data()
            .assert_approx_eq::<f32>(&got.into_data(), burn::tensor::Tolerance::absolute(1e-6));
    }

    #[test]
    fn a_layer_then_its_head_in_one_pass_matches_the_two_layers() {
        let device = Device::flex();
        // (channels, fused): up to 12 output channels the direct kernel's one block holds them
        // all (6 with AVX2 alone); 20 runs the two layers one after the other.
        for (channels, narrow) in [([5, 6], true), ([3, 1], true), ([9, 20], false)] {
            let config = GatedConv2dConfig::new(channels)
                .with_batch_norm(true)
                .with_activation(Activation::Relu);
            let mut layer = trained_like(config, &device);
            for bias in [true, false] {
                let head = Conv2dConfig::new([channels[1], 1], [1, 1])
                    .with_bias(bias)
                    .init(&device);
                // 45 wide, 2 images: the direct kernel, and a run past the row's end.
                let x = random([2, channels[0], 7, 45], &device);
                for folded in [false, true] {
                    if folded {
                        layer.gate = None;
                        layer.norm = None;
                    }
                    let fused = crate::cpu::gated_conv2d_then_head(&layer, &head, &x).is_some();
                    let fits = channels[1] <= crate::cpu::widest_projection();
                    assert_eq!(fused, narrow && fits, "{channels:?}");
                    let want = head.forward(layer.forward_burn(x.clone()));
                    let got = layer.forward_then(&head, x.clone());
                    assert_eq!(got.dims(), [2, 1, 7, 45]);
                    got.into_data().assert_approx_eq::<f32>(
                        &want.into_data(),
                        burn::tensor::Tolerance::absolute(1e-4),
                    );
                }
            }
        }
        // A head that is not a 1×1 convolution to one channel: the two layers.
        let layer = GatedConv2dConfig::new([3, 4]).init(&device);
        let x = random([1, 3, 6, 40], &device);
        for head in [
            Conv2dConfig::new([4, 2], [1, 1]).init(&device),
            Conv2dConfig::new([4, 1], [3, 3]).init(&device),
        ] {
            assert!(crate::cpu::gated_conv2d_then_head(&layer, &head, &x).is_none());
            let want = head.forward(layer.forward(x.clone()));
            let got = layer.forward_then(&head, x.clone());
            got.into_data()
                .assert_approx_eq::<f32>(&want.into_data(), Default::default());
        }
    }

    #[test]
    fn a_layer_and_its_pooled_output_in_one_pass_match_the_two_layers() {
        use burn::nn::pool::MaxPool2dConfig;
        let device = Device::flex();
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        // (channels, input, pooled as written): the direct kernel on even sides; odd sides and
        // a layer the products take run the two layers.
        for (channels, input, fused) in [
            ([4, 7], [10, 48], true),
            ([3, 16], [6, 64], true),
            ([4, 7], [9, 48], false),
            ([60, 60], [64, 64], false),
        ] {
            let config = GatedConv2dConfig::new(channels)
                .with_batch_norm(true)
                .with_activation(Activation::Relu);
            let layer = trained_like(config, &device);
            let x = random([2, channels[0], input[0], input[1]], &device);
            let taken = crate::cpu::gated_conv2d_pooled(&layer, &pool, &x).is_some();
            let direct = crate::cpu::widest_projection() > 0;
            assert_eq!(taken, fused && direct, "{channels:?} {input:?}");
            let want = layer.forward_burn(x.clone());
            let want_pooled = pool.forward(want.clone());
            let (got, pooled) = layer.forward_pooled(&pool, x);
            let tolerance = burn::tensor::Tolerance::absolute(1e-4);
            got.into_data()
                .assert_approx_eq::<f32>(&want.into_data(), tolerance);
            pooled
                .into_data()
                .assert_approx_eq::<f32>(&want_pooled.into_data(), tolerance);
        }
    }

    #[test]
    fn training_gradients_match_burns() {
        let device = Device::flex().autodiff();
        for (channels, batch_norm, bias, stride, padding, kernel) in [
            ([3, 5], true, false, 1, 1, 3),
            ([16, 20], false, true, 1, 1, 3),
            ([4, 6], false, true, 2, 1, 3),
            ([4, 6], true, true, 2, 0, 2),
        ] {
            let config = GatedConv2dConfig::new(channels)
                .with_batch_norm(batch_norm)
                .with_bias(bias)
                .with_stride(stride)
                .with_padding(padding)
                .with_kernel_size(kernel);
            let layer = trained_like(config, &device);
            // 37 wide: at stride 1 the direct kernel computes the output and the input
            // gradient (the networks' tests cover the matrix products' rows).
            let x = random([2, channels[0], 5, 37], &device).require_grad();
            assert!(
                crate::cpu::conv2d_autodiff(&layer.conv, &x).is_some(),
                "prunus's kernel takes this layer"
            );
            // A weighted sum, so that every output position has its own gradient.
            let [_, out, oh, ow] = layer.forward_burn(x.clone()).dims();
            let weights = random([2, out, oh, ow], &device);
            let ours = layer.forward(x.clone());
            let burns = layer.forward_burn(x.clone());
            ours.clone()
                .into_data()
                .assert_approx_eq::<f32>(&burns.clone().into_data(), Default::default());
            let grads_ours = (ours * weights.clone()).sum().backward();
            let grads_burn = (burns * weights).sum().backward();
            let close = |a: Option<Tensor<4>>, b: Option<Tensor<4>>, what: &str| {
                let (a, b) = (a.expect(what), b.expect(what));
                a.into_data().assert_approx_eq::<f32>(
                    &b.into_data(),
                    burn::tensor::Tolerance::absolute(1e-4),
                );
            };
            close(x.grad(&grads_ours), x.grad(&grads_burn), "input gradient");
            let w = layer.conv.weight.val();
            close(w.grad(&grads_ours), w.grad(&grads_burn), "weight gradient");
            let mut vectors = vec![("gate", layer.gate.as_ref().unwrap().val())];
            if let Some(norm) = &layer.norm {
                vectors.push(("gamma", norm.gamma.val()));
                vectors.push(("beta", norm.beta.val()));
            }
            for (what, v) in vectors {
                let (a, b) = (v.grad(&grads_ours), v.grad(&grads_burn));
                a.expect(what).into_data().assert_approx_eq::<f32>(
                    &b.expect(what).into_data(),
                    burn::tensor::Tolerance::absolute(1e-4),
                );
            }
            // The running statistics move as Burn's BatchNorm moves them: by momentum towards
            // the batch's mean and biased variance. (Clones share their running state, so the
            // expectation is computed by hand from the values before.)
            if let Some(norm) = &layer.norm {
                let m = norm.momentum;
                let (mean0, var0) = (norm.running_mean.value(), norm.running_var.value());
                let z = layer.conv.forward(x.clone().detach());
                let flat = z.swap_dims(0, 1).reshape([channels[1] as i32, -1]);
                let batch_mean = flat.clone().mean_dim(1).reshape([channels[1]]);
                let centred = flat - batch_mean.clone().reshape([channels[1], 1]);
                let batch_var = (centred.clone() * centred)
                    .mean_dim(1)
                    .reshape([channels[1]]);
                let _ = layer.forward(x.clone());
                for (now, before, batch) in [
                    (norm.running_mean.value(), mean0, batch_mean),
                    (norm.running_var.value(), var0, batch_var),
                ] {
                    let want = before.mul_scalar(1.0 - m) + batch.mul_scalar(m);
                    now.into_data().assert_approx_eq::<f32>(
                        &want.into_data(),
                        burn::tensor::Tolerance::absolute(1e-5),
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "at least one input and one output channel")]
    fn zero_channels_panic_with_a_message() {
        GatedConv2dConfig::new([3, 0]).init(&Device::flex());
    }

    #[test]
    fn plain_convolutions_match_burns_in_inference_and_training() {
        use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
        for device in [Device::flex(), Device::flex().autodiff()] {
            let head = Conv2dConfig::new([6, 2], [1, 1]).init(&device);
            let up = ConvTranspose2dConfig::new([6, 3], [2, 2])
                .with_stride([2, 2])
                .init(&device);
            let x = random([2, 6, 7, 5], &device);
            let x = if device.is_autodiff() {
                x.require_grad()
            } else {
                x
            };
            let pairs = [
                (
                    crate::counted::conv2d(&head, x.clone()),
                    head.forward(x.clone()),
                    head.weight.val(),
                ),
                (
                    crate::counted::conv_transpose2d(&up, x.clone()),
                    up.forward(x.clone()),
                    up.weight.val(),
                ),
            ];
            for (ours, burns, weight) in pairs {
                let tolerance = burn::tensor::Tolerance::absolute(1e-4);
                ours.clone()
                    .into_data()
                    .assert_approx_eq::<f32>(&burns.clone().into_data(), tolerance);
                if device.is_autodiff() {
                    let grads_ours = ours.sum().backward();
                    let grads_burn = burns.sum().backward();
                    let (a, b) = (weight.grad(&grads_ours), weight.grad(&grads_burn));
                    a.expect("weight gradient")
                        .into_data()
                        .assert_approx_eq::<f32>(
                            &b.expect("weight gradient").into_data(),
                            tolerance,
                        );
                    let (a, b) = (x.grad(&grads_ours), x.grad(&grads_burn));
                    a.expect("input gradient")
                        .into_data()
                        .assert_approx_eq::<f32>(
                            &b.expect("input gradient").into_data(),
                            tolerance,
                        );
                }
            }
        }
    }
}
