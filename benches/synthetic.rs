//! Synthetic scene generation rate (tiles per second, one thread).
//!
//! ```sh
//! cargo bench --bench synthetic
//! ```

use criterion::{Criterion, Throughput};
use prunus::data::{SyntheticConfig, generate};

fn main() {
    let mut criterion = Criterion::default().sample_size(20).configure_from_args();
    let mut group = criterion.benchmark_group("synthetic");
    for size in [128, 256] {
        let config = SyntheticConfig::new().with_size(size);
        group.throughput(Throughput::Elements(1));
        let mut index = 0u64;
        group.bench_function(format!("tile{size}"), |b| {
            b.iter(|| {
                index += 1;
                generate(&config, index)
            })
        });
    }
    group.finish();
    criterion.final_summary();
}
