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
