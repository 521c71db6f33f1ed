//! Criterion benches of map + unmap of 1 GiB with pinning, in each page size, and of the kernel's
//! `mlock` + `MADV_POPULATE_WRITE` + `munlock` of 1 GiB, over the same implementations `uvfio bench`
//! times (`uvfio_bench::map_unmap`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uvfio_bench::Backing;
use uvfio_bench::map_unmap::{GIB, MlockPeer, UvfioMapUnmap};
use uvfio_types::PageSize;

fn map_unmap(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_unmap_1g");
    group.sample_size(10);
    for page in PageSize::ALL {
        group.throughput(Throughput::Elements(GIB / page.bytes()));
        let mut ours = UvfioMapUnmap::new(GIB, page).expect("uvfio set-up");
        group.bench_function(BenchmarkId::new("uvfio", page.bytes()), |b| {
            b.iter_custom(|iters| ours.time(iters).expect("map + unmap"))
        });
        drop(ours);
        let backing = if page == PageSize::Size4K {
            Backing::BasePages
        } else {
            Backing::HugePages
        };
        let mut peer = MlockPeer::new(GIB as usize, backing).expect("peer set-up");
        group.bench_function(BenchmarkId::new("mlock_populate_munlock", page.bytes()), |b| {
            b.iter_custom(|iters| peer.time(iters).expect("mlock"))
        });
    }
    group.finish();
}

criterion_group!(benches, map_unmap);
criterion_main!(benches);
