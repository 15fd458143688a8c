//! Forward shapes, exact costs and pretrained loading of U-Net and TernausNet.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use prunus_models::{
    Costed, LayerKind, ModelError, TernausNet, TernausNetConfig, UNet, UNetConfig,
};

fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

fn fixture(name: &str) -> std::path::PathBuf {
    // `cargo test` sets the variable when it runs the test too; reading it then (not at compile
    // time) keeps a test binary shared between checkouts through one target folder pointing at
    // the checkout that runs it.
    let dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    std::path::Path::new(&dir).join("tests/fixtures").join(name)
}

// ---- exact counts (numbers from an independent count, see ../shared/METHOD.md) ----

#[test]
fn ternausnet_counts_at_256() {
    let cost = TernausNetConfig::standard(1, 32).cost([256, 256]).unwrap();
    assert_eq!(cost.params(), 22_927_393);
    assert_eq!(cost.macs(), 25_708_986_368);
    assert_eq!(cost.flops(), 51_417_972_736);
}

#[test]
fn unet_base64_counts_at_256() {
    let cost = UNetConfig::standard(3, 1, 64, 4).cost([256, 256]).unwrap();
    assert_eq!(cost.params(), 31_037_633);
    assert_eq!(cost.macs(), 48_167_387_136);
}

#[test]
fn unet_base16_counts_at_128() {
    let cost = UNetConfig::standard(3, 1, 16, 4).cost([128, 128]).unwrap();
    assert_eq!(cost.params(), 1_942_577);
    assert_eq!(cost.macs(), 758_120_448);
}

#[test]
fn gates_are_counted_apart_one_per_prunable_filter() {
    let unet = UNetConfig::standard(3, 1, 64, 4).cost([256, 256]).unwrap();
    // Encoder: 2 convs per level of 64..1024; decoder: up + 2 convs per level of 512..64.
    let encoder: u64 = [64, 128, 256, 512, 1024].iter().map(|w| 2 * w).sum();
    let decoder: u64 = [512, 256, 128, 64].iter().map(|w| 3 * w).sum();
    assert_eq!(unet.gates(), encoder + decoder);
    let ternausnet = TernausNetConfig::standard(1, 32).cost([256, 256]).unwrap();
    let encoder = 64 + 128 + 256 + 256 + 512 * 4;
    let decoder = (512 + 256) * 2 + 512 + 128 + 256 + 64 + 128 + 32 + 32;
    assert_eq!(ternausnet.gates(), encoder + decoder);
}

#[test]
fn cost_of_one_layer_by_hand() {
    let cost = UNetConfig::standard(3, 1, 16, 4).cost([128, 128]).unwrap();
    let first = cost.layer("encoder.0.conv1").unwrap();
    // 3×3 conv 3→16, no bias, BatchNorm: 3·16·9 + 2·16 parameters; 128·128·16·3·9 MACs.
    assert_eq!(first.params, 3 * 16 * 9 + 32);
    assert_eq!(first.macs, 128 * 128 * 16 * 3 * 9);
    let up = cost.layer("decoder.0.up").unwrap();
    // 2×2 transposed conv 256→128 with bias on an 8×8 input: 8·8·256·128·4 MACs.
    assert_eq!(up.kind, LayerKind::ConvTranspose);
    assert_eq!((up.input_size, up.output_size), ([8, 8], [16, 16]));
    assert_eq!(up.params, 256 * 128 * 4 + 128);
    assert_eq!(up.macs, 8 * 8 * 256 * 128 * 4);
    let concat = cost.layer("decoder.3.conv1").unwrap();
    assert_eq!(concat.in_channels, 16 + 16);
}

#[test]
fn cost_matches_the_built_networks_parameter_count() {
    let device = Device::flex();
    // Burn's count includes the gates and BatchNorm's two running statistics per channel.
    let unet = UNetConfig::new(
        3,
        2,
        vec![[3, 5], [7, 2], [4, 9]],
        vec![[6, 1, 3], [2, 8, 4]],
    );
    let cost = unet.cost([8, 8]).unwrap();
    let built = unet.init(&device).unwrap();
    let norm_channels: u64 = 3 + 5 + 7 + 2 + 4 + 9 + 1 + 3 + 8 + 4;
    assert_eq!(
        built.num_params() as u64,
        cost.params() + cost.gates() + 2 * norm_channels
    );
    let tern = TernausNetConfig::new(
        [3, 1, 4, 2, 5, 3, 2, 6],
        [[2, 3], [4, 1], [5, 2], [1, 3], [2, 2]],
        3,
    );
    let cost = tern.cost([32, 32]).unwrap();
    let built = tern.init(&device).unwrap();
    assert_eq!(built.num_params() as u64, cost.params() + cost.gates());
}

#[test]
fn macs_scale_with_the_input_area() {
    let config = UNetConfig::standard(3, 1, 8, 3);
    let small = config.cost([64, 64]).unwrap().macs();
    let large = config.cost([128, 256]).unwrap().macs();
    assert_eq!(large, small * 8);
}

// ---- forward shapes at several sizes and widths ----

#[test]
fn unet_forward_shapes_at_several_sizes_and_depths() {
    let device = Device::flex();
    for (depth, base, [h, w]) in [
        (1, 2, [6, 10]),
        (2, 3, [16, 8]),
        (3, 4, [24, 40]),
        (4, 2, [32, 16]),
    ] {
        let net = UNetConfig::standard(3, 2, base, depth)
            .init(&device)
            .unwrap();
        let y = net.forward(random([2, 3, h, w], &device));
        assert_eq!(y.dims(), [2, 2, h, w], "depth {depth}, base {base}");
    }
}

#[test]
fn unet_with_arbitrary_widths_runs_and_reports_its_config() {
    let device = Device::flex();
    let config = UNetConfig::new(
        4,
        3,
        vec![[1, 1], [5, 3], [2, 7]],
        vec![[1, 6, 1], [3, 1, 2]],
    );
    let net = config.init(&device).unwrap();
    assert_eq!(
        net.forward(random([1, 4, 12, 8], &device)).dims(),
        [1, 3, 12, 8]
    );
    assert_eq!(net.config(), config);
}

#[test]
fn unet_depth_zero_is_a_double_conv_and_a_head() {
    let device = Device::flex();
    let net = UNetConfig::standard(1, 1, 3, 0).init(&device).unwrap();
    assert_eq!(
        net.forward(random([1, 1, 5, 7], &device)).dims(),
        [1, 1, 5, 7]
    );
}

#[test]
fn ternausnet_forward_shapes_at_several_sizes_and_widths() {
    let device = Device::flex();
    let widths = [
        TernausNetConfig::new([1; 8], [[1, 1]; 5], 1),
        TernausNetConfig::new(
            [4, 3, 2, 5, 1, 6, 2, 3],
            [[3, 2], [1, 4], [2, 1], [5, 2], [1, 1]],
            2,
        ),
        TernausNetConfig {
            encoder: [8; 8],
            ..TernausNetConfig::standard(2, 2)
        },
    ];
    for config in widths {
        let net = config.init(&device).unwrap();
        for [h, w] in [[32, 32], [64, 32], [32, 96]] {
            let y = net.forward(random([2, 3, h, w], &device));
            assert_eq!(y.dims(), [2, config.num_classes, h, w]);
        }
        assert_eq!(net.config(), config);
    }
}

// ---- bad input is an error, not a panic ----

#[test]
fn unet_rejects_sizes_that_do_not_fit_its_downsampling() {
    let device = Device::flex();
    let net = UNetConfig::standard(3, 1, 2, 3).init(&device).unwrap();
    let err = net
        .try_forward(random([1, 3, 20, 16], &device))
        .unwrap_err();
    assert!(matches!(err, ModelError::InvalidInput { .. }));
    assert!(err.to_string().contains("multiples of 8"), "{err}");
    let err = net.check_input([1, 4, 16, 16]).unwrap_err();
    assert!(
        err.to_string().contains("expected 3 channels, got 4"),
        "{err}"
    );
    assert!(UNetConfig::standard(3, 1, 64, 4).cost([100, 100]).is_err());
}

#[test]
fn ternausnet_rejects_sizes_that_are_not_multiples_of_32() {
    let device = Device::flex();
    let net = TernausNetConfig::new([1; 8], [[1, 1]; 5], 1)
        .init(&device)
        .unwrap();
    let err = net
        .try_forward(random([1, 3, 48, 32], &device))
        .unwrap_err();
    assert!(err.to_string().contains("multiples of 32"), "{err}");
}

#[test]
#[should_panic(expected = "multiples of 32")]
fn ternausnet_forward_panics_with_the_same_message() {
    let device = Device::flex();
    let net = TernausNetConfig::new([1; 8], [[1, 1]; 5], 1)
        .init(&device)
        .unwrap();
    net.forward(random([1, 3, 16, 32], &device));
}

#[test]
fn zero_widths_and_mismatched_depths_are_config_errors() {
    let device = Device::flex();
    let zero = UNetConfig::new(3, 1, vec![[2, 0], [2, 2]], vec![[1, 1, 1]]);
    assert!(matches!(
        zero.init(&device),
        Err(ModelError::InvalidConfig { .. })
    ));
    let depths = UNetConfig::new(3, 1, vec![[2, 2], [2, 2]], vec![]);
    let err = depths.init(&device).unwrap_err();
    assert!(err.to_string().contains("decoder levels"), "{err}");
    let tern = TernausNetConfig::new([1, 1, 1, 0, 1, 1, 1, 1], [[1, 1]; 5], 1);
    assert!(tern.init(&device).is_err());
}

// ---- pretrained VGG11 encoder ----

/// The fixture's widths; its values follow `make_vgg11_fixture.py`.
const FIXTURE_ENCODER: [usize; 8] = [4, 6, 8, 8, 10, 10, 12, 12];

fn fixture_net(device: &Device) -> TernausNet {
    TernausNetConfig::new(FIXTURE_ENCODER, [[3, 2]; 5], 2)
        .init(device)
        .unwrap()
}

#[test]
fn vgg11_weights_land_in_the_right_layers() {
    let device = Device::flex();
    let net = fixture_net(&device)
        .load_vgg11_encoder(fixture("vgg11_tiny.pth"))
        .unwrap();
    let encoder = [
        &net.conv1,
        &net.conv2,
        &net.conv3s,
        &net.conv3,
        &net.conv4s,
        &net.conv4,
        &net.conv5s,
        &net.conv5,
    ];
    for (layer, conv) in encoder.iter().enumerate() {
        let layer_no = (layer + 1) as f32;
        let weight = conv
            .conv
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let [cout, cin, _, _] = conv.conv.weight.dims();
        for o in 0..cout {
            for i in 0..cin {
                for k in 0..9 {
                    let expected =
                        layer_no + o as f32 / 10.0 + i as f32 / 100.0 + k as f32 / 1000.0;
                    let got = weight[(o * cin + i) * 9 + k];
                    assert!(
                        (got - expected).abs() < 1e-5,
                        "layer {layer_no} [{o},{i},{k}]: {got} ≠ {expected}"
                    );
                }
            }
        }
        let bias = conv
            .conv
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (o, b) in bias.iter().enumerate() {
            assert!(
                (b + layer_no + o as f32 / 10.0).abs() < 1e-5,
                "layer {layer_no} bias {o}"
            );
        }
    }
}

#[test]
fn vgg11_loading_leaves_gates_and_decoder_alone() {
    let device = Device::flex();
    let net = fixture_net(&device);
    let decoder_before = net.dec5.conv.conv.weight.val();
    let loaded = net.load_vgg11_encoder(fixture("vgg11_tiny.pth")).unwrap();
    decoder_before
        .into_data()
        .assert_eq(&loaded.dec5.conv.conv.weight.val().into_data(), true);
    let gates = loaded
        .conv3
        .gate
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(gates, vec![1.0; 8]);
    // The loaded network still runs.
    assert_eq!(
        loaded.forward(random([1, 3, 32, 32], &device)).dims(),
        [1, 1, 32, 32]
    );
}

#[test]
fn vgg11_with_other_widths_is_an_error_naming_the_file() {
    let device = Device::flex();
    let net = TernausNetConfig::new([4, 6, 8, 8, 10, 10, 12, 7], [[3, 2]; 5], 2)
        .init(&device)
        .unwrap();
    let err = net
        .load_vgg11_encoder(fixture("vgg11_tiny.pth"))
        .unwrap_err();
    assert!(matches!(err, ModelError::Pretrained { .. }));
    assert!(err.to_string().contains("vgg11_tiny.pth"), "{err}");
}

#[test]
fn vgg11_from_a_missing_or_foreign_file_is_an_error() {
    let device = Device::flex();
    let err = fixture_net(&device)
        .load_vgg11_encoder("/no/such/vgg11.pth")
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/vgg11.pth"), "{err}");
    let foreign = fixture("make_vgg11_fixture.py");
    assert!(fixture_net(&device).load_vgg11_encoder(foreign).is_err());
}

#[test]
fn unet_is_a_module_whose_clone_gives_the_same_output() {
    let device = Device::flex();
    let net: UNet = UNetConfig::standard(3, 1, 2, 2).init(&device).unwrap();
    let x = random([1, 3, 8, 8], &device);
    net.clone()
        .forward(x.clone())
        .into_data()
        .assert_eq(&net.forward(x).into_data(), true);
}

#[test]
fn measured_cost_equals_the_config_count_layer_by_layer() {
    use prunus_models::{TernausNetConfig, measure_cost};
    let device = Device::flex();
    let unet = UNetConfig::new(
        3,
        2,
        vec![[3, 5], [7, 2], [4, 6]],
        vec![[1, 4, 6], [2, 3, 5]],
    );
    let tern = TernausNetConfig::new(
        [2, 3, 2, 4, 2, 3, 2, 2],
        [[2, 3], [3, 2], [2, 2], [4, 2], [2, 3]],
        2,
    );
    let measured = measure_cost(
        &unet.init(&device).unwrap(),
        random([2, 3, 32, 48], &device),
        |n, x| n.forward(x),
    );
    let counted = unet.cost([32, 48]).unwrap();
    assert_eq!(measured.layers.len(), counted.layers.len());
    for (m, c) in measured.layers.iter().zip(&counted.layers) {
        assert_eq!(m, c, "U-Net layer {}", c.name);
    }
    let measured = measure_cost(
        &tern.init(&device).unwrap(),
        random([1, 3, 64, 32], &device),
        |n, x| n.forward(x),
    );
    let counted = tern.cost([64, 32]).unwrap();
    assert_eq!(
        (measured.macs(), measured.params(), measured.gates()),
        (counted.macs(), counted.params(), counted.gates())
    );
    assert_eq!(
        measured.layers.iter().map(|l| &l.name).collect::<Vec<_>>(),
        counted.layers.iter().map(|l| &l.name).collect::<Vec<_>>()
    );
}

/// The gates the training finds (penalty, learning rate) are found by the layers' types: every
/// gated layer of the typed description has its gate found, every gate found belongs to a
/// gated layer, and their count is the cost model's, so a network with gates never reports
/// none (a change in how Burn names module types would fail here, not silently train without
/// the penalty).
#[test]
fn every_gate_is_found_by_its_layers_type() {
    let device = Device::flex();
    let config = UNetConfig::standard(3, 1, 4, 2);
    let expected = config.cost([32, 32]).unwrap().gates();
    check_gates(config.init(&device).unwrap(), expected);
    let config = TernausNetConfig::standard(1, 2);
    let expected = config.cost([64, 64]).unwrap().gates();
    check_gates(config.init(&device).unwrap(), expected);
}

/// The gates found by the visitor are those of the typed description, `expected` in all.
fn check_gates<M: prunus_layers::Prunable>(mut net: M, expected: u64) {
    use prunus_layers::LayerMut;
    let found = prunus_layers::gates(&net);
    assert!(!found.is_empty(), "a gated network reports no gates");
    let total: usize = found.iter().map(|(_, g)| g.dims()[0]).sum();
    assert_eq!(total as u64, expected);
    for p in net.channel_groups().into_iter().flat_map(|g| g.producers) {
        assert!(
            found.iter().any(|(path, _)| *path == p),
            "gate of {p} not found"
        );
    }
    for (path, _) in &found {
        let layer = net.layer_mut(path);
        let gated = layer.is_some_and(|l| {
            matches!(l, LayerMut::Gated(_) | LayerMut::GatedTranspose(_)) && l.gate().is_some()
        });
        assert!(gated, "{path} is not a gated layer with a gate");
    }
}
