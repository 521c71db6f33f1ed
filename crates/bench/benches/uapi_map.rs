//! Criterion benches of a driver's map + unmap of 1 GiB through the uAPI (`IOMMU_IOAS_MAP` +
//! `IOMMU_IOAS_UNMAP` with a mock domain attached, and type1v2 `VFIO_IOMMU_MAP_DMA` +
//! `VFIO_IOMMU_UNMAP_DMA` through a container), in each page size, beside the direct page-table
//! map + unmap of the same buffer size and page size, over the same implementations `uvfio bench`
//! times (`uvfio_bench::uapi_map`, `uvfio_bench::map_unmap`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uvfio_bench::map_unmap::{GIB, UvfioMapUnmap};
use uvfio_bench::uapi_map::{Path, UapiMapUnmap};
use uvfio_types::PageSize;

fn uapi_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("uapi_map_unmap_1g");
    group.sample_size(10);
    for page in PageSize::ALL {
        group.throughput(Throughput::Elements(GIB / page.bytes()));
        let mut direct = UvfioMapUnmap::new(GIB, page).expect("direct set-up");
        group.bench_function(BenchmarkId::new("direct", page.bytes()), |b| {
            b.iter_custom(|iters| direct.time(iters).expect("direct map + unmap"))
        });
        drop(direct);
        for (name, path) in [("ioas", Path::Ioas), ("type1", Path::Type1)] {
            let mut ours = UapiMapUnmap::new(path, GIB, page).expect("uAPI set-up");
            group.bench_function(BenchmarkId::new(name, page.bytes()), |b| {
                b.iter_custom(|iters| ours.time(iters).expect("uAPI map + unmap"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, uapi_map);
criterion_main!(benches);
