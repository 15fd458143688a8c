//! Channel groups of real CNNs: residual adds (several producers), conv → flatten → linear,
//! depthwise convolutions and stand-alone BatchNorms cut in step — removal equals closing, and
//! `verify_prunable` names the group and layer of a wrong declaration.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use proptest::prelude::*;
use prunus_layers::{
    Activation, ChannelGroup, GateInit, GatedConv2d, GatedConv2dConfig, Layers, Prunable, consumer,
    flattened, layer_fields,
};
use prunus_surgery::{
    PruningPlan, SurgeryError, close_removed_gates, fold_for_inference, prune, verify_prunable,
};

fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Default, device)
}

fn gated(c: [usize; 2], stride: usize, act: Activation, device: &Device) -> GatedConv2d {
    GatedConv2dConfig::new(c)
        .with_stride(stride)
        .with_batch_norm(true)
        .with_bias(false)
        .with_activation(act)
        .with_gate_init(GateInit::Uniform {
            low: 0.5,
            high: 1.5,
        })
        .init(device)
}

/// Random BatchNorm statistics, so that folding and closing see real affine maps.
fn randomise_norms<M: Module>(model: M) -> M {
    struct Mapper;
    impl burn::module::ModuleMapper for Mapper {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let value = param.val();
            let noise = value.random_like(Distribution::Uniform(0.5, 1.5));
            param.map(|_| value * noise)
        }
    }
    model.map(&mut Mapper)
}

// ---- a residual network ----

#[derive(Module, Debug)]
struct Block {
    conv1: GatedConv2d,
    conv2: GatedConv2d,
    shortcut: Option<GatedConv2d>,
}

impl Layers for Block {
    layer_fields!(conv1, conv2, shortcut);
}

#[derive(Module, Debug)]
struct Residual {
    stem: GatedConv2d,
    blocks: Vec<Block>,
    head: Linear,
}

impl Residual {
    /// Stem `widths[0]`; per stage two blocks, the first with a stride-2 projection.
    fn new(widths: &[usize], inner: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut w = widths[0];
        for (s, &out) in widths.iter().enumerate() {
            let stride = if s == 0 { 1 } else { 2 };
            for b in 0..2 {
                let (cin, st) = if b == 0 { (w, stride) } else { (out, 1) };
                blocks.push(Block {
                    conv1: gated([cin, inner], st, Activation::Relu, device),
                    conv2: gated([inner, out], 1, Activation::Identity, device),
                    shortcut: (st != 1 || cin != out).then(|| {
                        GatedConv2dConfig::new([cin, out])
                            .with_kernel_size(1)
                            .with_padding(0)
                            .with_stride(st)
                            .with_batch_norm(true)
                            .with_activation(Activation::Identity)
                            .init(device)
                    }),
                });
            }
            w = out;
        }
        Self {
            stem: gated([3, widths[0]], 1, Activation::Relu, device),
            blocks,
            head: LinearConfig::new(w, 5).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(x);
        for b in &self.blocks {
            let skip = match &b.shortcut {
                Some(s) => s.forward(x.clone()),
                None => x.clone(),
            };
            x = relu(b.conv2.forward(b.conv1.forward(x)) + skip);
        }
        let [n, c, _, _] = x.dims();
        self.head.forward(x.mean_dim(3).mean_dim(2).reshape([n, c]))
    }
}

impl Prunable for Residual {
    layer_fields!(stem, blocks, head);

    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let width = |l: &GatedConv2d| l.channels()[1];
        let mut groups = Vec::new();
        let mut stream = ChannelGroup::new("stem", width(&self.stem), vec![]);
        for (i, b) in self.blocks.iter().enumerate() {
            let path = |f: &str| format!("blocks.{i}.{f}");
            groups.push(ChannelGroup::new(
                path("conv1"),
                width(&b.conv1),
                vec![consumer(path("conv2"), 0)],
            ));
            stream = stream.with_consumer(consumer(path("conv1"), 0));
            if let Some(s) = &b.shortcut {
                groups.push(stream.with_consumer(consumer(path("shortcut"), 0)));
                stream = ChannelGroup::new(path("shortcut"), width(s), vec![]);
            }
            stream = stream.with_producer(path("conv2"));
        }
        groups.push(stream.with_consumer(consumer("head", 0)));
        groups
    }
}

/// A plan keeping a random non-empty subset of every group, from `picks`.
fn plan_from(groups: &[ChannelGroup], picks: &[u64]) -> PruningPlan {
    let mut plan = PruningPlan::new();
    for (g, group) in groups.iter().enumerate() {
        let bits = picks[g % picks.len()].rotate_left(g as u32 * 7);
        let mut keep: Vec<usize> = (0..group.size)
            .filter(|i| bits >> (i % 64) & 1 == 1)
            .collect();
        if keep.is_empty() {
            keep.push(g % group.size);
        }
        plan.set_keep(group.name.clone(), keep);
    }
    plan
}

fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}

/// `pruned` (by `plan`) computes what `net` computes with `plan`'s channels closed, and `net`'s
/// declaration verifies.
fn assert_exact<M: Prunable, const D: usize>(
    net: &M,
    pruned: &M,
    plan: &PruningPlan,
    x: Tensor<4>,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<D>,
) {
    let expected = forward(&close_removed_gates(net.clone(), plan).unwrap(), x.clone());
    assert!(max_diff(forward(pruned, x.clone()), expected) <= 1e-5);
    verify_prunable(net, x, forward).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn residual_removal_equals_closing(
        w0 in 2usize..7, w1 in 2usize..9, inner in 2usize..6,
        picks in proptest::collection::vec(any::<u64>(), 1..6),
    ) {
        let device = Device::flex();
        let net = randomise_norms(Residual::new(&[w0, w1], inner, &device)).valid();
        let groups = net.channel_groups();
        // A stream group has the stem or projection and every conv2 that adds into it.
        prop_assert_eq!(&groups.last().unwrap().producers, &vec![
            "blocks.2.shortcut".to_string(), "blocks.2.conv2".into(), "blocks.3.conv2".into()
        ]);
        let plan = plan_from(&groups, &picks);
        let x = random([2, 3, 8, 8], &device);
        let expected = close_removed_gates(net.clone(), &plan).unwrap().forward(x.clone());
        let pruned = prune(net.clone(), &plan).unwrap();
        let d = max_diff(pruned.forward(x.clone()), expected.clone());
        prop_assert!(d <= 1e-5, "pruned differs by {}", d);
        // Folded for inference, still the same network.
        let d = max_diff(fold_for_inference(pruned).unwrap().forward(x.clone()), expected);
        prop_assert!(d <= 1e-4, "folded differs by {}", d);
        verify_prunable(&net, x, |m, x| m.forward(x)).unwrap();
    }
}

// ---- conv → flatten → linear ----

#[derive(Module, Debug)]
struct Flat {
    conv: GatedConv2d,
    fc1: Linear,
    fc2: Linear,
}

impl Flat {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let y = self.conv.forward(x); // [n, c, 4, 4]
        let h = relu(self.fc1.forward(y.flatten(1, 3)));
        self.fc2.forward(h)
    }
}

impl Prunable for Flat {
    layer_fields!(conv, fc1, fc2);

    fn channel_groups(&self) -> Vec<ChannelGroup> {
        vec![
            // Channel i of the map is fc1's inputs 16·i .. 16·(i + 1).
            ChannelGroup::new(
                "conv",
                self.conv.channels()[1],
                vec![flattened("fc1", 0, 16)],
            ),
            // A linear layer produces too: fc1's outputs feed fc2.
            ChannelGroup::new("fc1", self.fc1.weight.dims()[1], vec![consumer("fc2", 0)]),
        ]
    }
}

#[test]
fn conv_flatten_linear_groups_cut_spans_and_linear_outputs() {
    let device = Device::flex();
    let net = Flat {
        conv: gated([3, 6], 1, Activation::Relu, &device),
        fc1: LinearConfig::new(6 * 16, 12).init(&device),
        fc2: LinearConfig::new(12, 3).init(&device),
    }
    .valid();
    let x = random([2, 3, 4, 4], &device);
    let plan = PruningPlan::new()
        .keep("conv", [0, 2, 5])
        .keep("fc1", [1, 4, 7, 11]);
    let pruned = prune(net.clone(), &plan).unwrap();
    assert_eq!(pruned.fc1.weight.dims(), [3 * 16, 4]);
    assert_eq!(pruned.fc2.weight.dims(), [4, 3]);
    assert_exact(&net, &pruned, &plan, x, |m, x| m.forward(x));
}

// ---- depthwise convolution and a stand-alone BatchNorm, cut in step ----

#[derive(Module, Debug)]
struct Separable {
    expand: GatedConv2d,
    depthwise: Conv2d,
    norm: BatchNorm,
    project: Conv2d,
}

impl Separable {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.depthwise.forward(self.expand.forward(x));
        self.project.forward(relu(self.norm.forward(y)))
    }
}

impl Prunable for Separable {
    layer_fields!(expand, depthwise, norm, project);

    fn channel_groups(&self) -> Vec<ChannelGroup> {
        vec![
            ChannelGroup::new(
                "expand",
                self.expand.channels()[1],
                vec![consumer("project", 0)],
            )
            .with_member("depthwise")
            .with_member("norm"),
        ]
    }
}

fn separable(device: &Device) -> Separable {
    Separable {
        expand: gated([3, 8], 1, Activation::Relu, device),
        depthwise: Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(8)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device),
        norm: BatchNormConfig::new(8).init(device),
        project: Conv2dConfig::new([8, 4], [1, 1]).init(device),
    }
}

#[test]
fn depthwise_and_batch_norm_members_are_cut_in_step() {
    let device = Device::flex();
    let net = randomise_norms(separable(&device)).valid();
    let x = random([2, 3, 6, 6], &device);
    let plan = PruningPlan::new().keep("expand", [1, 2, 6]);
    let pruned = prune(net.clone(), &plan).unwrap();
    assert_eq!(pruned.depthwise.weight.dims(), [3, 1, 3, 3]);
    assert_eq!(pruned.depthwise.groups, 3);
    assert_eq!(pruned.norm.gamma.dims(), [3]);
    assert_eq!(pruned.project.weight.dims(), [4, 3, 1, 1]);
    assert_exact(&net, &pruned, &plan, x, |m, x| m.forward(x));
}

// ---- wrong declarations ----

#[derive(Module, Debug)]
struct TwoBranch {
    stem: GatedConv2d,
    a: GatedConv2d,
    b: GatedConv2d,
    fuse: Conv2d,
}

impl TwoBranch {
    fn new(device: &Device) -> Self {
        Self {
            stem: gated([3, 6], 1, Activation::Relu, device),
            // No ReLU on the branches: a channel that is 0 on the whole input (a dead ReLU)
            // reads the same whatever it is wired to, and no forward pass can tell.
            a: gated([6, 5], 1, Activation::Identity, device),
            b: gated([6, 5], 1, Activation::Identity, device),
            fuse: Conv2dConfig::new([10, 2], [1, 1]).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = self.stem.forward(x);
        let both = Tensor::cat(vec![self.a.forward(s.clone()), self.b.forward(s)], 1);
        self.fuse.forward(both)
    }
}

/// TwoBranch with a declaration chosen by `mistake`.
#[derive(Module, Debug)]
struct Declared {
    net: TwoBranch,
    #[module(skip)]
    mistake: u8,
}

impl Prunable for Declared {
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let stem_consumers = match self.mistake {
            1 => vec![consumer("net.a", 0)], // b also reads the stem
            _ => vec![consumer("net.a", 0), consumer("net.b", 0)],
        };
        let (b_producer, b_offset) = match self.mistake {
            2 => ("net.b", 4), // b sits at 5 in fuse's input
            3 => ("net.a", 5), // b's channels are written by b, not a
            _ => ("net.b", 5),
        };
        let mut groups = vec![
            ChannelGroup::new("net.stem", 6, stem_consumers),
            ChannelGroup::new(b_producer, 5, vec![consumer("net.fuse", b_offset)]).named("b"),
        ];
        if self.mistake != 3 {
            groups.push(ChannelGroup::new("net.a", 5, vec![consumer("net.fuse", 0)]));
        }
        groups
    }

    fn layer_mut(&mut self, path: &str) -> Option<prunus_layers::LayerMut<'_>> {
        let rest = path.strip_prefix("net.")?;
        match rest {
            "stem" => self.net.stem.layer_mut(""),
            "a" => self.net.a.layer_mut(""),
            "b" => self.net.b.layer_mut(""),
            "fuse" => self.net.fuse.layer_mut(""),
            _ => None,
        }
    }
}

fn verify(mistake: u8) -> Result<(), SurgeryError> {
    let device = Device::flex();
    let model = Declared {
        net: TwoBranch::new(&device),
        mistake,
    };
    verify_prunable(&model, random([1, 3, 6, 6], &device), |m, x| {
        m.net.forward(x)
    })
}

fn declaration(err: SurgeryError) -> (String, String, String) {
    match err {
        SurgeryError::Declaration {
            group,
            layer,
            reason,
        } => (group, layer, reason),
        other => panic!("not a declaration error: {other}"),
    }
}

#[test]
fn a_right_declaration_verifies() {
    verify(0).unwrap();
}

#[test]
fn a_missing_consumer_is_named_by_its_group() {
    let (group, _, reason) = declaration(verify(1).unwrap_err());
    assert_eq!(group, "net.stem");
    assert!(reason.contains("no longer runs"), "{reason}");
}

#[test]
fn a_wrong_offset_names_the_consumer() {
    let (group, layer, reason) = declaration(verify(2).unwrap_err());
    assert_eq!((group.as_str(), layer.as_str()), ("b", "net.fuse"));
    assert!(reason.contains("offset 4"), "{reason}");
}

#[test]
fn a_wrong_producer_names_the_consumer_and_the_producer() {
    let (group, layer, reason) = declaration(verify(3).unwrap_err());
    assert_eq!((group.as_str(), layer.as_str()), ("b", "net.fuse"));
    assert!(reason.contains("net.a"), "{reason}");
}

#[test]
fn a_producer_of_the_wrong_width_is_named_before_any_pass() {
    let device = Device::flex();
    let mut model = Declared {
        net: TwoBranch::new(&device),
        mistake: 0,
    };
    model.net.b = gated([6, 4], 1, Activation::Relu, &device);
    let (group, layer, reason) = declaration(
        verify_prunable(&model, random([1, 3, 6, 6], &device), |m, x| {
            m.net.forward(x)
        })
        .unwrap_err(),
    );
    assert_eq!((group.as_str(), layer.as_str()), ("b", "net.b"));
    assert!(reason.contains("writes 4"), "{reason}");
}
