//! Training throughput: images per second of one optimisation step (forward, loss with the gate
//! penalty, backward, Adam) of a gated U-Net base 16 at 128×128 on flex.
//!
//! ```sh
//! cargo bench --bench training
//! ```

use burn::optim::AdamConfig;
use burn::tensor::Device;
use criterion::{Criterion, Throughput};
use prunus::data::SyntheticConfig;
use prunus::models::UNetConfig;
use prunus::{LossConfig, SegmentationData};

fn main() {
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    let mut group = criterion.benchmark_group("training");
    let device = Device::flex().autodiff();
    let batch_size = 8;
    let data = SegmentationData::synthetic(SyntheticConfig::new().with_size(128), 0, batch_size);
    let batch = data.batch(0..batch_size, &device).unwrap();
    let loss = LossConfig::new();
    let mut model = UNetConfig::standard(3, 1, 16, 4).init(&device).unwrap();
    let mut optim = AdamConfig::new().init();
    group.throughput(Throughput::Elements(batch_size as u64));
    group.bench_function("unet16_128px_batch8_step", |b| {
        b.iter(|| {
            let logits = model.forward(batch.images.clone());
            let l = loss.loss(&model, logits, batch.masks.clone());
            let grads = burn::optim::GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(1e-3, model.clone(), grads);
        })
    });
    group.finish();
    criterion.final_summary();
}
