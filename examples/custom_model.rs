//! Make your own CNN prunable: list its channel groups and give access to its layers, then
//! `verify_prunable`, `prune`, `close_removed_gates` and `fold_gates` work on it as on the
//! bundled networks (and `prune_to_tolerance`: see `resnet_classifier`).
//!
//! ```sh
//! cargo run --release --example custom_model
//! ```
//!
//! The network: `stem → [branch_a, branch_b] concatenated → fuse → head`, so one group (the
//! second branch) feeds its consumer at an offset.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Distribution, Tensor};
use prunus::layers::{GatedConv2d, GatedConv2dConfig};
use prunus::surgery::{
    ChannelGroup, Prunable, PruningPlan, close_removed_gates, consumer, fold_gates, layer_fields,
    prune, verify_prunable,
};

#[derive(Module, Debug)]
struct TwoBranchNet {
    stem: GatedConv2d,
    branch_a: GatedConv2d,
    branch_b: GatedConv2d,
    fuse: GatedConv2d,
    head: Conv2d,
}

impl TwoBranchNet {
    fn new(device: &Device) -> Self {
        let conv = |i, o| {
            GatedConv2dConfig::new([i, o])
                .with_batch_norm(true)
                .init(device)
        };
        Self {
            stem: conv(3, 16),
            branch_a: conv(16, 12),
            branch_b: conv(16, 8),
            fuse: conv(12 + 8, 16),
            head: Conv2dConfig::new([16, 2], [1, 1]).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let stem = self.stem.forward(x);
        let both = Tensor::cat(
            vec![
                self.branch_a.forward(stem.clone()),
                self.branch_b.forward(stem),
            ],
            1,
        );
        self.head.forward(self.fuse.forward(both))
    }
}

impl Prunable for TwoBranchNet {
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let width = |l: &GatedConv2d| l.channels()[1];
        vec![
            ChannelGroup::new(
                "stem",
                width(&self.stem),
                vec![consumer("branch_a", 0), consumer("branch_b", 0)],
            ),
            ChannelGroup::new("branch_a", width(&self.branch_a), vec![consumer("fuse", 0)]),
            // branch_b's channels come after branch_a's in fuse's input.
            ChannelGroup::new(
                "branch_b",
                width(&self.branch_b),
                vec![consumer("fuse", width(&self.branch_a))],
            ),
            // The head only consumes: the output layer is never pruned.
            ChannelGroup::new("fuse", width(&self.fuse), vec![consumer("head", 0)]),
        ]
    }

    // `layer_mut` by module path, written from the fields.
    layer_fields!(stem, branch_a, branch_b, fuse, head);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = prunus::device("default")?;
    let net = TwoBranchNet::new(&device);
    // The declaration above, proven against the network: closing random channels of every
    // group must equal removing them.
    let probe = Tensor::<4>::random([1, 3, 16, 16], Distribution::Default, &device);
    verify_prunable(&net, probe, |n, x| n.forward(x))?;
    let plan = PruningPlan::new()
        .keep("stem", (0..16).step_by(2))
        .keep("branch_a", [0, 5, 11])
        .keep("branch_b", [0, 7])
        .keep("fuse", 0..4);
    let pruned = prune(net.clone(), &plan)?;
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
    let reference = close_removed_gates(net.clone(), &plan)?.forward(x.clone());
    let output = fold_gates(pruned.clone())?.forward(x);
    let diff = (output - reference).abs().max().into_scalar::<f32>();
    println!("parameters: {} → {}", net.num_params(), pruned.num_params());
    println!("fuse now reads {} channels", pruned.fuse.channels()[0]);
    println!("max |pruned − original with removed gates at 0| = {diff:e}");
    assert!(diff <= 1e-4);
    Ok(())
}
