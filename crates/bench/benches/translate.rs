//! Criterion benches of translation, over the same implementations `uvfio bench` times: 64 B
//! accesses at random mappings against `vm-memory`'s `IommuMemory`, the uncached 4-level walk
//! against 4 dependent loads, and translation on 1 and 2 threads.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uvfio_bench::scaling::Translators;
use uvfio_bench::vm_memory_peer::{DirectRandom, Layout, UvfioRandom, VmMemoryPeer};
use uvfio_bench::walk::{ChainPeer, UvfioWalk};

fn random_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("dma_rw_64b_random_mapping");
    for mappings in [1usize, 65_536] {
        let layout = Layout::new(mappings);
        let mut ours = UvfioRandom::new(&layout).expect("uvfio set-up");
        group.bench_function(BenchmarkId::new("uvfio", mappings), |b| {
            b.iter_custom(|iters| ours.time(iters).expect("uvfio DMA"))
        });
        let mut peer = VmMemoryPeer::new(&layout).expect("vm-memory set-up");
        group.bench_function(BenchmarkId::new("vm-memory", mappings), |b| {
            b.iter_custom(|iters| peer.time(iters).expect("vm-memory access"))
        });
        // Where ours' time goes at this size: the uncached walk alone at the same IOVAs, ours with
        // an IOTLB that holds every mapping, and the accesses with no translation at all.
        group.bench_function(BenchmarkId::new("uvfio_uncached_walk_only", mappings), |b| {
            b.iter_custom(|iters| ours.time_uncached_walks(iters).expect("walk"))
        });
        let mut big =
            UvfioRandom::with_iotlb_entries(&layout, mappings.next_power_of_two()).expect("uvfio set-up");
        group.bench_function(BenchmarkId::new("uvfio_iotlb_holds_all", mappings), |b| {
            b.iter_custom(|iters| big.time(iters).expect("uvfio DMA"))
        });
        let mut direct = DirectRandom::new(&layout);
        group.bench_function(BenchmarkId::new("memcpy_no_translation", mappings), |b| {
            b.iter_custom(|iters| direct.time(iters).expect("memcpy"))
        });
    }
    group.finish();
}

fn walk(c: &mut Criterion) {
    let mut group = c.benchmark_group("iotlb_miss_4level_walk");
    let mut ours = UvfioWalk::new().expect("uvfio set-up");
    group.bench_function("uvfio", |b| {
        b.iter_custom(|iters| ours.time(iters).expect("walk"))
    });
    let mut peer = ChainPeer::new();
    group.bench_function("4_dependent_loads", |b| {
        b.iter_custom(|iters| peer.time(iters).expect("chase"))
    });
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate_threads");
    let mut translators = Translators::new(2).expect("uvfio set-up");
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| translators.time(threads, iters).expect("translate"))
        });
    }
    group.finish();
}

criterion_group!(benches, random_access, walk, scaling);
criterion_main!(benches);
