//! Criterion benches of DMA copies: ours through an IOTLB hit, and `memcpy` of the same bytes, over
//! the same implementations `uvfio bench` times (`uvfio_bench::dma_copy`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uvfio_bench::dma_copy::{MemcpyPeer, UvfioDma};

fn dma_copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("dma_rw_iotlb_hit");
    for len in [64usize, 4096] {
        group.throughput(Throughput::Bytes(2 * len as u64));
        let mut ours = UvfioDma::new(len).expect("uvfio set-up");
        group.bench_function(BenchmarkId::new("uvfio", len), |b| {
            b.iter_custom(|iters| ours.time(iters).expect("uvfio DMA"))
        });
        let mut peer = MemcpyPeer::new(len);
        group.bench_function(BenchmarkId::new("memcpy", len), |b| {
            b.iter_custom(|iters| peer.time(iters).expect("memcpy"))
        });
    }
    group.finish();
}

criterion_group!(benches, dma_copy);
criterion_main!(benches);
