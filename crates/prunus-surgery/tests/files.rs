//! Model files: round trips, provenance, atomic writes and every kind of bad file.

mod common;

use std::fs;
use std::path::PathBuf;

use burn::tensor::Device;
use common::{random, random_plan, randomize};
use prunus_models::{Costed, TernausNetConfig, UNetConfig};
use prunus_surgery::{
    Architecture, ModelFile, Network, Provenance, Prunable, PruningPlan, SurgeryError, WriteError,
    fold_gates, prune,
};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prunus-files-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn pruned_unet(device: &Device) -> (Network, Provenance, PruningPlan) {
    let net: Network = randomize(UNetConfig::standard(3, 1, 4, 2).init(device).unwrap()).into();
    let mut provenance = Provenance::original(&net, [16, 16]).unwrap();
    let plan = random_plan(&net.channel_groups(), 7);
    let pruned = prune(net, &plan).unwrap();
    provenance.record(&plan);
    (pruned, provenance, plan)
}

fn assert_bit_identical(a: &Network, b: &Network, shape: [usize; 4], device: &Device) {
    let x = random(shape, device);
    let (ya, yb) = (a.forward(x.clone()), b.forward(x));
    ya.into_data().assert_eq(&yb.into_data(), true);
}

#[test]
fn pruned_unet_round_trips_bit_identically() {
    let device = Device::flex();
    let dir = temp_dir("unet");
    let (net, provenance, plan) = pruned_unet(&device);
    let path = dir.join("unet.prunus");
    let file = ModelFile::new(net, provenance.clone());
    file.save(&path).unwrap();
    let loaded = ModelFile::<Network>::load(&path, &device).unwrap();
    assert_eq!(loaded.header, file.header);
    assert_eq!(loaded.header.provenance, provenance);
    assert!(!loaded.header.folded);
    for (group, kept) in plan.iter() {
        assert_eq!(loaded.header.provenance.kept[group], kept);
    }
    assert_eq!(loaded.network.architecture(), file.network.architecture());
    assert_bit_identical(&file.network, &loaded.network, [2, 3, 16, 16], &device);
}

#[test]
fn ternausnet_round_trips_bit_identically_with_its_outputs() {
    let device = Device::flex();
    let dir = temp_dir("tern");
    let config = TernausNetConfig::new(
        [3, 4, 5, 4, 3, 4, 5, 3],
        [[4, 3], [3, 4], [5, 2], [4, 3], [2, 3]],
        3,
    );
    let net: Network = randomize(config.init(&device).unwrap()).into();
    let path = dir.join("tern.prunus");
    let file = ModelFile::original(net.clone(), [32, 32]).unwrap();
    assert_eq!(
        file.header,
        ModelFile::new(net, Provenance::original(&file.network, [32, 32]).unwrap()).header
    );
    file.save(&path).unwrap();
    let loaded = ModelFile::<Network>::load(&path, &device).unwrap();
    assert_eq!(loaded.header.architecture, Architecture::TernausNet(config));
    assert_bit_identical(&file.network, &loaded.network, [1, 3, 32, 32], &device);
}

#[test]
fn folded_network_round_trips_without_gates() {
    let device = Device::flex();
    let dir = temp_dir("folded");
    let (net, provenance, _) = pruned_unet(&device);
    let folded = fold_gates(net).unwrap();
    let path = dir.join("folded.prunus");
    let file = ModelFile::new(folded, provenance);
    assert!(file.header.folded);
    file.save(&path).unwrap();
    let loaded = ModelFile::<Network>::load(&path, &device).unwrap();
    assert!(loaded.header.folded);
    assert!(prunus_layers::gates(&loaded.network).is_empty());
    assert_bit_identical(&file.network, &loaded.network, [1, 3, 8, 8], &device);
}

#[test]
fn provenance_composes_kept_indices_relative_to_the_original() {
    let device = Device::flex();
    let net: Network = UNetConfig::standard(3, 1, 4, 1)
        .init(&device)
        .unwrap()
        .into();
    let mut provenance = Provenance::original(&net, [8, 8]).unwrap();
    provenance.record(&PruningPlan::new().keep("encoder.0.conv1", [0, 1, 3]));
    provenance.record(&PruningPlan::new().keep("encoder.0.conv1", [0, 2]));
    assert_eq!(provenance.kept["encoder.0.conv1"], vec![0, 3]);
    let cost = UNetConfig::standard(3, 1, 4, 1).cost([8, 8]).unwrap();
    assert_eq!(provenance.original_cost.macs, cost.macs());
}

#[test]
fn saving_never_overwrites_an_existing_file() {
    let device = Device::flex();
    let dir = temp_dir("overwrite");
    let path = dir.join("input.prunus");
    fs::write(&path, b"the user's model").unwrap();
    let (net, provenance, _) = pruned_unet(&device);
    let file = ModelFile::new(net, provenance);
    let err = file.save(&path).unwrap_err();
    assert!(matches!(err, SurgeryError::Write { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"the user's model");
    file.save_replacing(&path).unwrap();
    assert!(ModelFile::<Network>::load(&path, &device).is_ok());
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn writing_into_a_missing_folder_is_an_error_naming_the_file() {
    let device = Device::flex();
    let (net, provenance, _) = pruned_unet(&device);
    let err = ModelFile::new(net, provenance)
        .save("/no/such/dir/m.prunus")
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/dir/m.prunus"), "{err}");
    assert!(
        matches!(&err, SurgeryError::Write { source: WriteError::Io(e), .. } if e.kind() == std::io::ErrorKind::NotFound),
        "the I/O error is kept: {err:?}"
    );
}

fn saved_bytes(device: &Device) -> Vec<u8> {
    let (net, provenance, _) = pruned_unet(device);
    ModelFile::new(net, provenance).to_bytes().unwrap()
}

fn load_error(bytes: &[u8], name: &str) -> String {
    let dir = temp_dir(name);
    let path = dir.join("bad.prunus");
    fs::write(&path, bytes).unwrap();
    let err = ModelFile::<Network>::load(&path, &Device::flex()).unwrap_err();
    assert!(matches!(err, SurgeryError::Read { .. }));
    assert!(err.to_string().contains("bad.prunus"), "{err}");
    chain(&err)
}

/// The error and its causes on one line, as the CLI prints them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        message = format!("{message}: {c}");
        cause = c.source();
    }
    message
}

#[test]
fn format_1_files_with_their_fnv_checksum_still_load() {
    let device = Device::flex();
    let bytes = saved_bytes(&device);
    let (header, weights) =
        bytes[36..].split_at(u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize);
    // FNV-1a 64, the checksum format 1 carried.
    let mut fnv = 0xcbf2_9ce4_8422_2325_u64;
    for &b in header.iter().chain(weights) {
        fnv = (fnv ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut v1 = bytes.clone();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    v1[28..36].copy_from_slice(&fnv.to_le_bytes());
    let loaded = ModelFile::<Network>::from_bytes(&v1, &device).unwrap();
    let current = ModelFile::<Network>::from_bytes(&bytes, &device).unwrap();
    assert_bit_identical(&loaded.network, &current.network, [1, 3, 16, 16], &device);
    // The same bytes sealed with the new checksum but marked format 1 are corrupt.
    let mut mixed = bytes.clone();
    mixed[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert!(load_error(&mixed, "mixed").contains("checksum"));
}

#[test]
fn truncated_file_is_a_clear_error() {
    let bytes = saved_bytes(&Device::flex());
    for cut in [4, 20, bytes.len() / 2, bytes.len() - 1] {
        let message = load_error(&bytes[..cut], "truncated");
        assert!(
            message.contains("truncated") || message.contains("bad magic"),
            "{message}"
        );
    }
}

#[test]
fn corrupt_file_is_a_clear_error() {
    let mut bytes = saved_bytes(&Device::flex());
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    assert!(load_error(&bytes, "corrupt").contains("checksum"));
}

#[test]
fn foreign_file_is_a_clear_error() {
    let message = load_error(b"PK\x03\x04 this is a zip file, not a model", "foreign");
    assert!(message.contains("not a prunus model file"), "{message}");
    assert!(load_error(b"", "empty").contains("not a prunus model file"));
}

#[test]
fn missing_file_is_a_clear_error() {
    let err = ModelFile::<Network>::load("/no/such/model.prunus", &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("/no/such/model.prunus"), "{err}");
}

#[test]
fn inference_folded_network_round_trips() {
    let device = Device::flex();
    let dir = temp_dir("inference");
    let (net, provenance, _) = pruned_unet(&device);
    let folded = prunus_surgery::fold_for_inference(net).unwrap();
    let path = dir.join("inference.prunus");
    let file = ModelFile::new(folded, provenance);
    assert!(file.header.folded && file.header.norms_folded);
    file.save(&path).unwrap();
    let loaded = ModelFile::<Network>::load(&path, &device).unwrap();
    assert_bit_identical(&file.network, &loaded.network, [1, 3, 16, 16], &device);
}

/// Rewrites a model file's header through `edit` and recomputes the lengths and checksum, as a
/// hostile or buggy writer would.
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let (header_len, weights_len) = (u64_at(12), u64_at(20));
    let header = &bytes[36..36 + header_len];
    let weights = &bytes[36 + header_len..36 + header_len + weights_len];
    let mut value: serde_json::Value = serde_json::from_slice(header).unwrap();
    edit(&mut value);
    let header = serde_json::to_vec(&value).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    out.extend_from_slice(&prunus_surgery::checksum(&[&header, weights]).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(weights);
    out
}

fn unet_file_bytes(device: &Device) -> Vec<u8> {
    let net: Network = UNetConfig::standard(3, 1, 4, 2)
        .init(device)
        .unwrap()
        .into();
    ModelFile::original(net, [16, 16])
        .unwrap()
        .to_bytes()
        .unwrap()
}

#[test]
fn header_with_widths_of_20000_is_refused_before_allocating() {
    let bytes = with_header(&unet_file_bytes(&Device::flex()), |h| {
        h["architecture"]["config"]["encoder"] =
            serde_json::json!([[20000, 20000], [20000, 20000], [20000, 20000]]);
    });
    let message = load_error(&bytes, "wide-header");
    assert!(message.contains("header describes"), "{message}");
}

#[test]
fn header_with_an_input_size_of_1e9_is_refused() {
    let bytes = with_header(&unet_file_bytes(&Device::flex()), |h| {
        h["provenance"]["input_size"] = serde_json::json!([1_000_000_000u64, 16]);
    });
    let message = load_error(&bytes, "huge-input");
    assert!(message.contains("input size 1000000000×16"), "{message}");
}

#[test]
fn header_with_a_width_above_the_limit_is_refused() {
    let bytes = with_header(&unet_file_bytes(&Device::flex()), |h| {
        h["provenance"]["original"]["config"]["encoder"] =
            serde_json::json!([[4, 4], [8, 8], [4_000_000, 16]]);
    });
    let message = load_error(&bytes, "wide-original");
    assert!(message.contains("above the limit"), "{message}");
}

#[test]
fn nan_weights_are_refused_naming_the_tensor() {
    let device = Device::flex();
    let net = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
    let w = net.head.weight.val();
    let shape = w.shape();
    let mut data = w.to_data().try_to_vec::<f32>().unwrap();
    data[0] = f32::NAN;
    let mut net = net;
    net.head.weight = net.head.weight.clone().map(|_| {
        burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(data, shape), &device)
    });
    let bytes = ModelFile::original(net.into(), [16, 16])
        .unwrap()
        .to_bytes()
        .unwrap();
    let message = load_error(&bytes, "nan-weights");
    assert!(
        message.contains("head.weight") && message.contains("NaN"),
        "{message}"
    );
}
