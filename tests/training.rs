//! Training with Burn's Learner: checkpoints and resume, NaN loss, gates-only mode, bad
//! settings, every backend.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use prunus::data::SyntheticConfig;
use prunus::layers::gates;
use prunus::models::{UNet, UNetConfig};
use prunus::{
    Error, LossConfig, SegmentationData, SegmentationModel, TrainConfig, TrainDisplay, TrainMode,
    evaluate, last_checkpoint, train, train_on,
};

fn data() -> (SegmentationData, SegmentationData) {
    let scenes = SyntheticConfig::new().with_size(64);
    (
        SegmentationData::synthetic(scenes.clone(), 0, 16),
        SegmentationData::synthetic(scenes.with_seed(1), 0, 8),
    )
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig::new()
        .with_epochs(epochs)
        .with_batch_size(4)
        .with_learning_rate(3e-3)
        .with_display(TrainDisplay::Quiet)
}

fn unet(device: &Device) -> UNet {
    UNetConfig::standard(3, 1, 4, 2).init(device).unwrap()
}

fn values<M: Module>(m: &M) -> Vec<f32> {
    let mut out = Vec::new();
    for (_, g) in gates(m) {
        out.extend(g.into_data().try_to_vec::<f32>().unwrap());
    }
    out
}

fn checkpoint(run: &Path, epoch: usize) -> std::path::PathBuf {
    run.join("checkpoint").join(format!("model-{epoch}.bpk"))
}

#[test]
fn trains_checkpoints_and_resumes() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let run = tempfile::tempdir().unwrap();
    let untrained = unet(&device);
    let before = values(&untrained);

    let first = train(
        untrained,
        &train_data,
        &valid_data,
        run.path(),
        &config(2),
        &device,
    )
    .unwrap();
    assert_eq!(first.resumed_from, None);
    assert_eq!(first.epochs, 2);
    assert!(checkpoint(run.path(), 1).is_file() && checkpoint(run.path(), 2).is_file());
    assert_eq!(last_checkpoint(run.path()), Some(2));
    assert_ne!(
        values(&first.model),
        before,
        "the gates must train in joint mode"
    );
    // Burn's metric logs are in the run folder.
    assert!(run.path().join("train").join("epoch-1").is_dir());

    // Asking for more epochs continues after the last checkpoint.
    let more = train(
        unet(&device),
        &train_data,
        &valid_data,
        run.path(),
        &config(3),
        &device,
    )
    .unwrap();
    assert_eq!(more.resumed_from, Some(2));
    assert_eq!(more.epochs, 3);
    assert!(checkpoint(run.path(), 3).is_file());

    // A run that is already complete loads its last checkpoint and trains no further.
    let done = train(
        unet(&device),
        &train_data,
        &valid_data,
        run.path(),
        &config(3),
        &device,
    )
    .unwrap();
    assert_eq!(done.resumed_from, Some(3));
    assert_eq!(values(&done.model), values(&more.model));
}

/// A U-Net whose logits turn NaN from a given forward pass on.
#[derive(Module, Debug)]
struct Poisoned {
    net: UNet,
    #[module(skip)]
    calls: Arc<AtomicUsize>,
    #[module(skip)]
    nan_from: usize,
}

impl SegmentationModel for Poisoned {
    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let logits = self.net.forward(images);
        if call >= self.nan_from {
            logits.add_scalar(f32::NAN)
        } else {
            logits
        }
    }
}

#[test]
fn nan_loss_stops_training_with_the_last_checkpoint_intact() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let run = tempfile::tempdir().unwrap();
    // Epoch 1: 4 training + 2 validation passes. The 7th pass, epoch 2's first, is NaN.
    let model = Poisoned {
        net: unet(&device),
        calls: Arc::new(AtomicUsize::new(0)),
        nan_from: 7,
    };
    let err = train(
        model,
        &train_data,
        &valid_data,
        run.path(),
        &config(3),
        &device,
    )
    .unwrap_err();
    match &err {
        Error::NonFiniteLoss {
            step,
            value,
            last_checkpoint,
        } => {
            assert_eq!(*step, 5);
            assert!(value.is_nan());
            assert_eq!(
                last_checkpoint.as_deref(),
                Some(checkpoint(run.path(), 1).as_path())
            );
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("NaN") && message.contains("model-1.bpk"),
        "{message}"
    );
    assert!(
        !checkpoint(run.path(), 2).exists(),
        "the NaN epoch must not be saved"
    );

    // The checkpoint is good: the same network, healthy now, resumes from it.
    let healthy = Poisoned {
        net: unet(&device),
        calls: Arc::new(AtomicUsize::new(0)),
        nan_from: usize::MAX,
    };
    let resumed = train(
        healthy,
        &train_data,
        &valid_data,
        run.path(),
        &config(2),
        &device,
    )
    .unwrap();
    assert_eq!(resumed.resumed_from, Some(1));
    assert!(values(&resumed.model).iter().all(|v| v.is_finite()));

    // Another architecture cannot resume from it: an error, not a panic.
    let err = train(
        unet(&device),
        &train_data,
        &valid_data,
        run.path(),
        &config(3),
        &device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot resume from"), "{err}");
}

#[test]
fn gates_only_training_leaves_the_weights_alone() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let run = tempfile::tempdir().unwrap();
    let net = unet(&device);
    let weights = |m: &UNet| {
        m.encoder[0]
            .conv1
            .conv
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (w0, g0) = (weights(&net), values(&net));
    let config = config(1).with_mode(TrainMode::GatesOnly);
    let trained = train(net, &train_data, &valid_data, run.path(), &config, &device).unwrap();
    assert_eq!(weights(&trained.model), w0);
    assert_ne!(values(&trained.model), g0);
}

#[test]
fn gates_train_at_their_own_learning_rate() {
    // Under a strong L1 penalty, gates at 10× the weights' rate fall much further in the same
    // steps than gates at the weights' rate (Adam moves each parameter by about its rate).
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let mean_gate = |scale: f64| {
        let run = tempfile::tempdir().unwrap();
        let config = config(1)
            .with_schedule(prunus::LrSchedule::Constant)
            .with_gate_lr_scale(scale)
            .with_loss(LossConfig::new().with_gate_l1(0.05));
        let trained = train(
            unet(&device),
            &train_data,
            &valid_data,
            run.path(),
            &config,
            &device,
        )
        .unwrap();
        let g = values(&trained.model);
        g.iter().map(|v| v.abs()).sum::<f32>() / g.len() as f32
    };
    let (slow, fast) = (mean_gate(1.0), mean_gate(10.0));
    // 4 steps at 3e-3: at most ~0.012 below 1 at the weights' rate, ~0.12 at 10×.
    assert!(slow > 0.98, "gates at the weights' rate: mean |g| {slow}");
    assert!(fast < 0.95, "gates at 10×: mean |g| {fast}");
}

#[test]
fn bad_gate_learning_rate_scale_is_an_error() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let run = tempfile::tempdir().unwrap();
    for scale in [0.0, -1.0, f64::NAN] {
        let config = config(1).with_gate_lr_scale(scale);
        let err = train(
            unet(&device),
            &train_data,
            &valid_data,
            run.path(),
            &config,
            &device,
        )
        .unwrap_err();
        assert!(err.to_string().contains("gate_lr_scale"), "{err}");
    }
}

#[test]
fn bad_settings_and_empty_data_are_errors() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let run = tempfile::tempdir().unwrap();
    let bad = [
        config(0),
        config(1).with_batch_size(0),
        config(1).with_learning_rate(f64::NAN),
        config(1).with_learning_rate(-1e-3),
        config(1).with_loss(LossConfig::new().with_gate_l1(-1.0)),
    ];
    for config in bad {
        let err = train(
            unet(&device),
            &train_data,
            &valid_data,
            run.path(),
            &config,
            &device,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
    }
    let empty = train_data.take(0);
    let err = train(
        unet(&device),
        &empty,
        &valid_data,
        run.path(),
        &config(1),
        &device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("training data is empty"), "{err}");
    let err = evaluate(&unet(&device), &empty, 4, &device).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

fn one_epoch_on(device: &Device) {
    let (train_data, valid_data) = data();
    let run = tempfile::tempdir().unwrap();
    let trained = train(
        unet(device),
        &train_data.take(8),
        &valid_data.take(4),
        run.path(),
        &config(1),
        device,
    )
    .unwrap();
    let confusion = evaluate(&trained.model, &valid_data.take(4), 4, device).unwrap();
    assert_eq!(confusion.total(), 4 * 64 * 64);
}

#[test]
fn trains_on_ndarray() {
    one_epoch_on(&prunus::device("ndarray").unwrap());
}

#[test]
fn trains_on_wgpu() {
    if let Some(device) = common::wgpu_device() {
        one_epoch_on(&device);
    }
}

/// A U-Net that records the threads its training passes (inputs on an autodiff device) run in.
#[derive(Module, Debug)]
struct Watched {
    net: UNet,
    #[module(skip)]
    threads: Arc<Mutex<HashSet<std::thread::ThreadId>>>,
}

impl SegmentationModel for Watched {
    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        if images.device().is_autodiff() {
            self.threads
                .lock()
                .unwrap()
                .insert(std::thread::current().id());
        }
        self.net.forward(images)
    }
}

/// Issue 18: burn-train's multi-device strategy with two Flex devices (the one CPU twice, which
/// Burn allows): training passes run in a thread per device, the run checkpoints and resumes
/// like a one-device run, and the gates train.
#[test]
fn trains_on_two_devices_at_once() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let two = [device.clone(), device.clone()];
    let watched = |threads: &Arc<Mutex<HashSet<_>>>| Watched {
        net: unet(&device),
        threads: threads.clone(),
    };
    let one_thread = Arc::new(Mutex::new(HashSet::new()));
    let run = tempfile::tempdir().unwrap();
    train_on(
        watched(&one_thread),
        &train_data,
        &valid_data,
        run.path(),
        &config(1),
        &two[..1],
    )
    .unwrap();

    let threads = Arc::new(Mutex::new(HashSet::new()));
    let run = tempfile::tempdir().unwrap();
    let untrained = watched(&threads);
    let before = values(&untrained);
    let trained = train_on(
        untrained,
        &train_data,
        &valid_data,
        run.path(),
        &config(2),
        &two,
    )
    .unwrap();
    let (one, many) = (
        one_thread.lock().unwrap().len(),
        threads.lock().unwrap().len(),
    );
    eprintln!("training threads: {one} on one device, {many} on two");
    assert_eq!(one, 1);
    assert!(many >= 2, "{many} thread(s)");
    assert_eq!(trained.epochs, 2);
    assert_ne!(values(&trained.model), before, "the gates train");
    assert!(checkpoint(run.path(), 2).is_file());
    let more = train_on(
        watched(&threads),
        &train_data,
        &valid_data,
        run.path(),
        &config(3),
        &two,
    )
    .unwrap();
    assert_eq!((more.resumed_from, more.epochs), (Some(2), 3));

    let err = train_on(
        unet(&device),
        &train_data,
        &valid_data,
        run.path(),
        &config(1),
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
}
