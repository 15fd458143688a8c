//! Surgery is proven by equivalence: `prune(model, plan)(x)` equals the original with the
//! removed filters' gates set to 0, for random networks, random plans and fresh random inputs.

mod common;

use burn::tensor::Device;
use common::{max_abs_diff, random, random_plan, randomize};
use proptest::prelude::*;
use prunus_models::{Costed, TernausNet, TernausNetConfig, UNet, UNetConfig};
use prunus_surgery::{
    ChannelGroup, Prunable, PruningPlan, SurgeryError, close_removed_gates, fold_gates, prune,
};

const TOLERANCE: f32 = 1e-5;

fn unet(config: &UNetConfig, device: &Device) -> UNet {
    randomize(config.init(device).unwrap())
}

fn ternausnet(config: &TernausNetConfig, device: &Device) -> TernausNet {
    randomize(config.init(device).unwrap())
}

fn assert_unet_equivalent(net: UNet, plan: &PruningPlan, size: [usize; 2]) {
    let device = Device::flex();
    let x = random([2, net.config().in_channels, size[0], size[1]], &device);
    let pruned = prune(net.clone(), plan).unwrap();
    let closed = close_removed_gates(net, plan).unwrap();
    let diff = max_abs_diff(pruned.forward(x.clone()), closed.forward(x));
    assert!(
        diff <= TOLERANCE,
        "max abs difference {diff} for plan {plan:?}"
    );
}

fn assert_ternausnet_equivalent(net: TernausNet, plan: &PruningPlan) {
    let device = Device::flex();
    let x = random([1, 3, 32, 64], &device);
    let pruned = prune(net.clone(), plan).unwrap();
    let closed = close_removed_gates(net, plan).unwrap();
    let diff = max_abs_diff(pruned.forward(x.clone()), closed.forward(x));
    assert!(
        diff <= TOLERANCE,
        "max abs difference {diff} for plan {plan:?}"
    );
}

fn group<'a>(groups: &'a [ChannelGroup], name: &str) -> &'a ChannelGroup {
    groups.iter().find(|g| g.name == name).unwrap()
}

// ---- channel groups ----

#[test]
fn unet_groups_cover_every_gated_layer_once_and_never_the_head() {
    let net = UNetConfig::standard(3, 1, 2, 3)
        .init(&Device::flex())
        .unwrap();
    let groups = net.channel_groups();
    assert_eq!(groups.len(), 2 * 4 + 3 * 3);
    assert!(
        groups
            .iter()
            .all(|g| !g.producers.iter().any(|p| p == "head"))
    );
    let gated: Vec<String> = prunus_layers::gates(&net)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let mut producers: Vec<String> = groups.iter().flat_map(|g| g.producers.clone()).collect();
    producers.sort();
    let mut gated_sorted = gated.clone();
    gated_sorted.sort();
    assert_eq!(producers, gated_sorted);
}

#[test]
fn unet_skip_feeds_the_first_part_and_up_the_second() {
    let config = UNetConfig::new(3, 1, vec![[2, 3], [4, 5]], vec![[6, 7, 8]]);
    let groups = config.init(&Device::flex()).unwrap().channel_groups();
    let skip = group(&groups, "encoder.0.conv2");
    assert_eq!(skip.size, 3);
    assert!(
        skip.consumers
            .iter()
            .any(|c| c.layer == "decoder.0.conv1" && c.offset == 0)
    );
    let up = group(&groups, "decoder.0.up");
    assert_eq!(
        up.consumers,
        vec![prunus_surgery::consumer("decoder.0.conv1", 3)]
    );
}

#[test]
fn ternausnet_skip_feeds_the_second_part() {
    let config = TernausNetConfig::new(
        [2, 3, 4, 5, 6, 7, 8, 9],
        [[2, 3], [4, 5], [6, 7], [8, 9], [2, 4]],
        3,
    );
    let groups = config.init(&Device::flex()).unwrap().channel_groups();
    // dec5.conv takes [center.up (3), conv5 (9)].
    let conv5 = group(&groups, "conv5");
    assert!(
        conv5
            .consumers
            .iter()
            .any(|c| c.layer == "dec5.conv" && c.offset == 3)
    );
    assert!(
        conv5
            .consumers
            .iter()
            .any(|c| c.layer == "center.conv" && c.offset == 0)
    );
    // dec1 takes [dec2.up (4), conv1 (2)].
    assert!(
        group(&groups, "conv1")
            .consumers
            .iter()
            .any(|c| c.layer == "dec1" && c.offset == 4)
    );
    assert_eq!(
        group(&groups, "dec2.up").consumers,
        vec![prunus_surgery::consumer("dec1", 0)]
    );
    assert_eq!(groups.len(), 8 + 10 + 1);
}

// ---- fixed equivalence cases ----

#[test]
fn unet_pruned_at_both_edges_of_every_concat_is_equivalent() {
    let device = Device::flex();
    let net = unet(&UNetConfig::standard(3, 2, 4, 3), &device);
    let mut plan = PruningPlan::new();
    for g in net.channel_groups() {
        // Drop the first and last channel of every group.
        plan.set_keep(g.name.clone(), 1..g.size - 1);
    }
    assert_unet_equivalent(net, &plan, [16, 24]);
}

#[test]
fn unet_pruned_to_one_channel_everywhere_is_equivalent() {
    let device = Device::flex();
    let net = unet(&UNetConfig::standard(3, 1, 3, 2), &device);
    let mut plan = PruningPlan::new();
    for g in net.channel_groups() {
        plan.set_keep(g.name.clone(), [g.size / 2]);
    }
    let pruned = prune(net.clone(), &plan).unwrap();
    assert!(pruned.config().encoder.iter().flatten().all(|&w| w == 1));
    assert_unet_equivalent(net, &plan, [8, 8]);
}

#[test]
fn ternausnet_pruned_at_both_edges_is_equivalent() {
    let device = Device::flex();
    let config = TernausNetConfig::new(
        [4, 6, 8, 8, 8, 8, 8, 8],
        [[8, 4], [8, 4], [6, 4], [6, 3], [4, 3]],
        3,
    );
    let net = ternausnet(&config, &device);
    let mut plan = PruningPlan::new();
    for g in net.channel_groups() {
        plan.set_keep(g.name.clone(), 1..g.size - 1);
    }
    assert_ternausnet_equivalent(net, &plan);
}

#[test]
fn ternausnet_random_plans_are_equivalent() {
    let device = Device::flex();
    let config = TernausNetConfig::new(
        [3, 5, 4, 6, 5, 4, 6, 5],
        [[4, 3], [5, 4], [3, 5], [4, 2], [3, 4]],
        4,
    );
    for seed in 1..=4 {
        let net = ternausnet(&config, &device);
        let plan = random_plan(&net.channel_groups(), seed);
        assert_ternausnet_equivalent(net, &plan);
    }
}

#[test]
fn pruned_config_and_cost_follow_the_plan() {
    let device = Device::flex();
    let net = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
    let plan = PruningPlan::new()
        .keep("encoder.0.conv2", [0, 2])
        .keep("decoder.1.up", [3]);
    let pruned = prune(net, &plan).unwrap();
    let config = pruned.config();
    assert_eq!(config.encoder[0], [4, 2]);
    assert_eq!(config.decoder[1], [1, 4, 4]);
    // decoder.1.conv1 now reads [skip 2, up 1] = 3 channels; encoder.1.conv1 reads 2.
    assert_eq!(pruned.decoder[1].conv1.channels(), [3, 4]);
    assert_eq!(pruned.encoder[1].conv1.channels(), [2, 8]);
    let cost = pruned.cost([16, 16]).unwrap();
    assert_eq!(cost.layer("decoder.1.conv1").unwrap().in_channels, 3);
}

#[test]
fn pruning_twice_equals_pruning_once_with_the_composed_plan() {
    let device = Device::flex();
    let net = unet(&UNetConfig::standard(3, 1, 4, 2), &device);
    let first = PruningPlan::new().keep("encoder.1.conv1", [0, 2, 3, 5, 7]);
    let second = PruningPlan::new().keep("encoder.1.conv1", [1, 4]);
    let once = PruningPlan::new().keep("encoder.1.conv1", [2, 7]);
    let x = random([1, 3, 8, 8], &device);
    let twice = prune(prune(net.clone(), &first).unwrap(), &second).unwrap();
    let single = prune(net, &once).unwrap();
    assert!(max_abs_diff(twice.forward(x.clone()), single.forward(x)) <= TOLERANCE);
}

// ---- invalid plans name the group ----

#[test]
fn out_of_range_index_is_an_error_naming_the_group() {
    let net = UNetConfig::standard(3, 1, 2, 1)
        .init(&Device::flex())
        .unwrap();
    let err = prune(net, &PruningPlan::new().keep("encoder.1.conv2", [0, 4])).unwrap_err();
    assert!(
        matches!(&err, SurgeryError::IndexOutOfRange { group, index: 4, size: 4 } if group == "encoder.1.conv2"),
        "{err}"
    );
    assert!(err.to_string().contains("encoder.1.conv2"));
}

#[test]
fn empty_group_is_an_error_naming_the_group() {
    let net = UNetConfig::standard(3, 1, 2, 1)
        .init(&Device::flex())
        .unwrap();
    let err = prune(net, &PruningPlan::new().keep("decoder.0.up", [])).unwrap_err();
    assert!(
        matches!(&err, SurgeryError::EmptyGroup { group } if group == "decoder.0.up"),
        "{err}"
    );
}

#[test]
fn unknown_group_is_an_error_naming_it() {
    let net = TernausNetConfig::new([1; 8], [[1, 1]; 5], 1)
        .init(&Device::flex())
        .unwrap();
    let err = prune(net, &PruningPlan::new().keep("head", [0])).unwrap_err();
    assert!(
        matches!(&err, SurgeryError::UnknownGroup { group } if group == "head"),
        "{err}"
    );
}

#[test]
fn duplicate_index_is_an_error_naming_the_group() {
    let net = UNetConfig::standard(3, 1, 2, 1)
        .init(&Device::flex())
        .unwrap();
    let err = prune(net, &PruningPlan::new().keep("encoder.0.conv1", [1, 1])).unwrap_err();
    assert!(
        err.to_string().contains("encoder.0.conv1") && err.to_string().contains("twice"),
        "{err}"
    );
}

// ---- gate folding ----

#[test]
fn folded_networks_compute_the_same_and_have_no_gates() {
    let device = Device::flex();
    let u = unet(&UNetConfig::standard(3, 2, 3, 2), &device);
    let x = random([2, 3, 8, 16], &device);
    let folded = fold_gates(u.clone()).unwrap();
    assert!(prunus_layers::gates(&folded).is_empty());
    assert!(max_abs_diff(u.forward(x.clone()), folded.forward(x)) <= TOLERANCE);

    let config = TernausNetConfig::new(
        [3, 4, 5, 4, 3, 4, 5, 3],
        [[4, 3], [3, 4], [5, 2], [4, 3], [2, 3]],
        3,
    );
    let t = ternausnet(&config, &device);
    let x = random([1, 3, 32, 32], &device);
    let folded = fold_gates(t.clone()).unwrap();
    assert!(max_abs_diff(t.forward(x.clone()), folded.forward(x)) <= TOLERANCE);
}

#[test]
fn folding_twice_changes_nothing() {
    let device = Device::flex();
    let u = unet(&UNetConfig::standard(3, 1, 2, 1), &device);
    let x = random([1, 3, 4, 4], &device);
    let once = fold_gates(u).unwrap();
    let twice = fold_gates(once.clone()).unwrap();
    assert_eq!(max_abs_diff(once.forward(x.clone()), twice.forward(x)), 0.0);
}

// ---- property-based equivalence ----

fn unet_config() -> impl Strategy<Value = UNetConfig> {
    (1usize..=3).prop_flat_map(|depth| {
        (
            prop::collection::vec([1usize..=5, 1usize..=5], depth + 1),
            prop::collection::vec([1usize..=5, 1usize..=5, 1usize..=5], depth),
            1usize..=3,
        )
            .prop_map(|(encoder, decoder, classes)| UNetConfig::new(2, classes, encoder, decoder))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn unet_random_widths_and_plans_are_equivalent(config in unet_config(), seed in 1u64..u64::MAX) {
        let device = Device::flex();
        let net = unet(&config, &device);
        let plan = random_plan(&net.channel_groups(), seed);
        let side = 1 << config.depth();
        assert_unet_equivalent(net, &plan, [side * 2, side]);
    }

    #[test]
    fn ternausnet_random_widths_and_plans_are_equivalent(
        encoder in [1usize..=4, 1usize..=4, 1usize..=4, 1usize..=4, 1usize..=4, 1usize..=4, 1usize..=4, 1usize..=4],
        decoder in [[1usize..=4, 1usize..=4], [1usize..=4, 1usize..=4], [1usize..=4, 1usize..=4], [1usize..=4, 1usize..=4], [1usize..=4, 1usize..=4]],
        dec1 in 1usize..=4,
        seed in 1u64..u64::MAX,
    ) {
        let device = Device::flex();
        let net = ternausnet(&TernausNetConfig::new(encoder, decoder, dec1), &device);
        let plan = random_plan(&net.channel_groups(), seed);
        assert_ternausnet_equivalent(net, &plan);
    }
}

#[test]
fn folding_batch_norms_is_exact_for_inference() {
    let device = Device::flex();
    let u = unet(&UNetConfig::standard(3, 2, 3, 2), &device);
    let x = random([2, 3, 8, 16], &device);
    let expected = u.forward(x.clone());
    let folded = prunus_surgery::fold_for_inference(u.clone()).unwrap();
    assert!(folded.encoder[1].conv2.norm.is_none());
    assert!(folded.encoder[1].conv2.gate.is_none());
    assert!(max_abs_diff(expected.clone(), folded.forward(x.clone())) <= TOLERANCE);
    // BatchNorms alone, gates kept.
    let norms_only = prunus_surgery::fold_batch_norms(u).unwrap();
    assert!(norms_only.encoder[0].conv1.gate.is_some());
    assert!(max_abs_diff(expected, norms_only.forward(x)) <= TOLERANCE);
}
