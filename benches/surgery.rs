//! Forward latency of U-Net and TernausNet, unpruned and pruned to 50%, 75% and 90% fewer
//! multiply-adds, and the time surgery takes — on one device (flex unless `BURN_DEVICE` says
//! otherwise).
//!
//! Each pruned network keeps the same fraction of every channel group, the fraction found by
//! bisection on the exact cost model so that its multiply-adds are the target share of the
//! original's. After criterion has measured every case, the bench prints a markdown table of
//! measured speed-up next to the multiply-add ratio (the table in `docs/benchmarks.md`).
//!
//! ```sh
//! cargo bench --bench surgery
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion};
use prunus::models::{Costed, TernausNetConfig, UNetConfig};
use prunus::surgery::{Network, Prunable, PruningPlan, fold_for_inference, prune};

/// Shares of the original multiply-adds that are removed.
const CUTS: [f64; 3] = [0.5, 0.75, 0.9];

fn macs(net: &Network, input: [usize; 2]) -> u64 {
    net.cost(input).expect("bench input fits").macs()
}

/// The uniformly pruned network whose multiply-adds are closest to `(1 − cut)` of the original.
fn pruned_to(net: &Network, cut: f64, input: [usize; 2]) -> (Network, f64) {
    let target = (1.0 - cut) * macs(net, input) as f64;
    let (mut low, mut high) = (0.0f64, 1.0f64);
    for _ in 0..30 {
        let mid = (low + high) / 2.0;
        let arch = prune(
            net.clone(),
            &PruningPlan::leading_share(&net.channel_groups(), mid),
        )
        .expect("uniform plan is valid");
        if (macs(&arch, input) as f64) < target {
            low = mid;
        } else {
            high = mid;
        }
    }
    let pruned = prune(
        net.clone(),
        &PruningPlan::leading_share(&net.channel_groups(), high),
    )
    .expect("uniform plan is valid");
    let ratio = macs(net, input) as f64 / macs(&pruned, input) as f64;
    (fold_for_inference(pruned).expect("folds"), ratio)
}

struct Case {
    model: &'static str,
    network: Network,
    input: [usize; 2],
}

fn cases(device: &Device) -> Vec<Case> {
    vec![
        Case {
            model: "unet16",
            network: UNetConfig::standard(3, 1, 16, 4)
                .init(device)
                .unwrap()
                .into(),
            input: [256, 256],
        },
        Case {
            model: "ternausnet",
            network: TernausNetConfig::standard(1, 32)
                .init(device)
                .unwrap()
                .into(),
            input: [256, 256],
        },
    ]
}

fn sync(y: Tensor<4>) {
    // Reading one value waits for the device to finish.
    let _ = y.slice([0..1, 0..1, 0..1, 0..1]).into_data();
}

fn median_ns(dir: &Path, group: &str, id: &str) -> Option<f64> {
    let file = dir.join(group).join(id).join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn main() {
    let device = prunus::device_from_env().expect("BURN_DEVICE names a compiled device");
    let out = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("criterion");
    let mut criterion = Criterion::default()
        .output_directory(&out)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let mut rows = Vec::new();
    for case in cases(&device) {
        let group_name = format!("forward-{}", case.model);
        let mut group = criterion.benchmark_group(&group_name);
        let [h, w] = case.input;
        let x = Tensor::<4>::random([1, 3, h, w], Distribution::Default, &device);
        let unpruned = fold_for_inference(case.network.clone()).unwrap();
        group.bench_function(BenchmarkId::from_parameter("unpruned"), |b| {
            b.iter(|| sync(unpruned.forward(x.clone())))
        });
        for cut in CUTS {
            let (pruned, mac_ratio) = pruned_to(&case.network, cut, case.input);
            let id = format!("cut{}", (cut * 100.0) as u32);
            group.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| sync(pruned.forward(x.clone())))
            });
            rows.push((case.model, case.input, id, cut, mac_ratio));
        }
        group.finish();

        let plan = PruningPlan::leading_share(&case.network.channel_groups(), 0.5);
        let mut surgery = criterion.benchmark_group(format!("surgery-{}", case.model));
        surgery.bench_function("prune-half", |b| {
            b.iter(|| prune(case.network.clone(), &plan).unwrap())
        });
        surgery.finish();
    }
    criterion.final_summary();

    println!(
        "\n| model | input | MACs removed | MAC ratio | latency unpruned | latency pruned | speed-up | speed-up / MAC ratio |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (model, [h, w], id, cut, mac_ratio) in &rows {
        let group = format!("forward-{model}");
        let (Some(base), Some(t)) = (
            median_ns(&out, &group, "unpruned"),
            median_ns(&out, &group, id),
        ) else {
            continue;
        };
        let speedup = base / t;
        println!(
            "| {model} | {h}×{w} | {:.0}% | {mac_ratio:.2}× | {:.1} ms | {:.1} ms | {speedup:.2}× | {:.2} |",
            cut * 100.0,
            base / 1e6,
            t / 1e6,
            speedup / mac_ratio
        );
    }
    for model in ["unet16", "ternausnet"] {
        if let Some(t) = median_ns(&out, &format!("surgery-{model}"), "prune-half") {
            println!(
                "\nsurgery on {model} (keep half of every group): {:.1} ms",
                t / 1e6
            );
        }
    }
}
