//! Criterion benches of vfio-user round trips: uvfio's server and client against a raw socket
//! ping-pong, rust-vmm's `vfio_user` server, `memcpy` and raw `sendmsg` with a descriptor, over the
//! same implementations `uvfio bench` times (`uvfio_bench::vfio_user_rows`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use uvfio_bench::vfio_user_rows::{
    DMA_LEN, FdPingPong, Memcpy64k, OursDmaMap, OursEduDma, OursRegionRead, PingPong, RustVmmRegionRead,
};

fn region_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("vfio_user_region_read_4b");
    let mut ours = OursRegionRead::new().expect("uvfio set-up");
    let sizes = ours.sizes();
    group.bench_function("uvfio", |b| {
        b.iter_custom(|iters| ours.time(iters).expect("uvfio REGION_READ"))
    });
    let mut ping = PingPong::new(&[sizes]).expect("ping-pong set-up");
    group.bench_function("socket_ping_pong", |b| {
        b.iter_custom(|iters| ping.time(iters).expect("ping-pong"))
    });
    let mut rust_vmm = RustVmmRegionRead::new().expect("rust-vmm set-up");
    group.bench_function("rust_vmm", |b| {
        b.iter_custom(|iters| rust_vmm.time(iters).expect("rust-vmm REGION_READ"))
    });
    group.finish();
}

fn dma(c: &mut Criterion) {
    let mut group = c.benchmark_group("vfio_user_edu_dma_64k");
    group.throughput(Throughput::Bytes(DMA_LEN as u64));
    let mut ours = OursEduDma::new().expect("uvfio set-up");
    group.bench_function("uvfio_edu", |b| {
        b.iter_custom(|iters| ours.time(iters).expect("edu DMA"))
    });
    let mut peer = Memcpy64k::new();
    group.bench_function("memcpy", |b| {
        b.iter_custom(|iters| peer.time(iters).expect("memcpy"))
    });
    group.finish();
}

fn dma_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("vfio_user_dma_map_unmap_4k_fd");
    let mut ours = OursDmaMap::new().expect("uvfio set-up");
    let (map, unmap) = ours.sizes();
    group.bench_function("uvfio", |b| {
        b.iter_custom(|iters| ours.time(iters).expect("DMA_MAP + DMA_UNMAP"))
    });
    let mut peer = FdPingPong::new(map, unmap).expect("sendmsg set-up");
    group.bench_function("sendmsg_fd", |b| {
        b.iter_custom(|iters| peer.time(iters).expect("sendmsg"))
    });
    group.finish();
}

criterion_group!(benches, region_read, dma, dma_map);
criterion_main!(benches);
