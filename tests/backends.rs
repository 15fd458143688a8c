//! The same network gives the same output on flex, ndarray and wgpu.
//!
//! Each network is built once on flex, copied to the other devices with `to_device`, and fed
//! the same fresh random input; outputs must agree within 1e-4.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{max_abs_diff, random, wgpu_device};
use prunus::models::{TernausNetConfig, UNetConfig};

const TOLERANCE: f32 = 1e-4;

fn on(device: &Device, x: &Tensor<4>) -> Tensor<4> {
    Tensor::from_data(x.to_data(), device)
}

fn unet() -> (prunus::models::UNet, Tensor<4>) {
    let flex = Device::flex();
    let net = UNetConfig::standard(3, 2, 4, 3)
        .with_gate_init(prunus::layers::GateInit::Uniform {
            low: 0.5,
            high: 1.5,
        })
        .init(&flex)
        .unwrap();
    (net, random([2, 3, 16, 24], &flex))
}

fn ternausnet() -> (prunus::models::TernausNet, Tensor<4>) {
    let flex = Device::flex();
    let net = TernausNetConfig::new(
        [4, 6, 8, 8, 8, 8, 8, 8],
        [[8, 4], [8, 4], [6, 4], [6, 3], [4, 2]],
        3,
    )
    .with_gate_init(prunus::layers::GateInit::Normal {
        mean: 1.0,
        std: 0.2,
    })
    .init(&flex)
    .unwrap();
    (net, random([1, 3, 32, 64], &flex))
}

#[allow(deprecated)]
fn ndarray() -> Device {
    prunus::device("ndarray").unwrap()
}

#[test]
fn unet_agrees_on_flex_and_ndarray() {
    let (net, x) = unet();
    let expected = net.forward(x.clone());
    let other = ndarray();
    let y = net.to_device(&other).forward(on(&other, &x));
    let diff = max_abs_diff(expected, on(&Device::flex(), &y));
    assert!(diff <= TOLERANCE, "max abs difference {diff}");
}

#[test]
fn ternausnet_agrees_on_flex_and_ndarray() {
    let (net, x) = ternausnet();
    let expected = net.forward(x.clone());
    let other = ndarray();
    let y = net.to_device(&other).forward(on(&other, &x));
    let diff = max_abs_diff(expected, on(&Device::flex(), &y));
    assert!(diff <= TOLERANCE, "max abs difference {diff}");
}

#[test]
fn wgpu_device_is_labelled_with_its_adapter() {
    let Some(gpu) = wgpu_device() else { return };
    let label = prunus::device_label(&gpu);
    eprintln!("wgpu label: {label}");
    assert!(label.starts_with("wgpu ("), "{label}");
}

#[test]
fn unet_agrees_on_flex_and_wgpu() {
    let Some(gpu) = wgpu_device() else { return };
    let (net, x) = unet();
    let expected = net.forward(x.clone());
    let y = net.to_device(&gpu).forward(on(&gpu, &x));
    let diff = max_abs_diff(expected, on(&Device::flex(), &y));
    eprintln!("wgpu U-Net: max abs difference to flex {diff:e}");
    assert!(diff <= TOLERANCE, "max abs difference {diff}");
}

#[test]
fn ternausnet_agrees_on_flex_and_wgpu() {
    let Some(gpu) = wgpu_device() else { return };
    let (net, x) = ternausnet();
    let expected = net.forward(x.clone());
    let y = net.to_device(&gpu).forward(on(&gpu, &x));
    let diff = max_abs_diff(expected, on(&Device::flex(), &y));
    eprintln!("wgpu TernausNet: max abs difference to flex {diff:e}");
    assert!(diff <= TOLERANCE, "max abs difference {diff}");
}

#[test]
fn gradients_reach_gates_on_wgpu() {
    let Some(gpu) = wgpu_device() else { return };
    let device = gpu.autodiff();
    let net = UNetConfig::standard(3, 1, 2, 2).init(&device).unwrap();
    let loss = net
        .forward(random([1, 3, 8, 8], &device))
        .powi_scalar(2)
        .mean()
        + prunus::layers::gate_l1(&net).unwrap();
    let grads = loss.backward();
    let g = net.encoder[1]
        .conv2
        .gate
        .as_ref()
        .unwrap()
        .grad(&grads)
        .expect("gate gradient on wgpu");
    assert_eq!(g.dims(), [4]);
    let _: TensorData = g.into_data();
}

/// Keeps every other channel of every group, always dropping both edges of groups of three or
/// more, so every concatenation boundary is cut.
fn alternating_plan(groups: &[prunus::surgery::ChannelGroup]) -> prunus::surgery::PruningPlan {
    let mut plan = prunus::surgery::PruningPlan::new();
    for g in groups {
        let keep: Vec<usize> = if g.size >= 3 {
            (1..g.size - 1).step_by(2).collect()
        } else {
            vec![g.size - 1]
        };
        plan.set_keep(g.name.clone(), keep);
    }
    plan
}

fn assert_surgery_equivalent_on<M>(net: M, x: Tensor<4>, forward: fn(&M, Tensor<4>) -> Tensor<4>)
where
    M: prunus::surgery::Prunable,
{
    use prunus::surgery::{close_removed_gates, prune};
    let plan = alternating_plan(&net.channel_groups());
    let pruned = prune(net.clone(), &plan).unwrap();
    let closed = close_removed_gates(net, &plan).unwrap();
    let device = x.device();
    let diff = max_abs_diff(forward(&pruned, x.clone()), forward(&closed, x));
    eprintln!("surgery on {device:?}: max abs difference {diff:e}");
    assert!(diff <= TOLERANCE, "max abs difference {diff}");
}

#[test]
fn surgery_is_equivalent_on_wgpu() {
    let Some(gpu) = wgpu_device() else { return };
    let (unet, x) = unet();
    assert_surgery_equivalent_on(unet.to_device(&gpu), on(&gpu, &x), |n, x| n.forward(x));
    let (tern, x) = ternausnet();
    assert_surgery_equivalent_on(tern.to_device(&gpu), on(&gpu, &x), |n, x| n.forward(x));
}

#[test]
fn surgery_is_equivalent_on_ndarray() {
    let other = ndarray();
    let (unet, x) = unet();
    assert_surgery_equivalent_on(unet.to_device(&other), on(&other, &x), |n, x| n.forward(x));
}
