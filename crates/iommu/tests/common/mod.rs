//! Shared set-up of the iommu integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use uvfio_iommu::{Domain, DomainConfig};
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_types::{Hpa, HpaRange, PageSize};

/// Host memory with a sparse RAM reservation of `ram_mib` MiB.
pub fn memory(ram_mib: u64) -> Arc<HostMemory> {
    Arc::new(
        HostMemory::new(MemoryConfig {
            ram_bytes: ram_mib << 20,
            ..MemoryConfig::default()
        })
        .expect("host memory"),
    )
}

/// A paging domain over `mem`.
pub fn paging(mem: &Arc<HostMemory>, coherent: bool) -> Arc<Domain> {
    Domain::new_paging(
        Arc::clone(mem),
        DomainConfig {
            coherent,
            ..DomainConfig::default()
        },
    )
    .expect("domain")
}

/// `pages` contiguous 4 KiB frames, each filled with its own index byte pattern.
pub fn frames(mem: &HostMemory, pages: u64) -> HpaRange {
    let range = mem
        .alloc_contiguous(pages << 12, PageSize::Size4K)
        .expect("frames");
    for i in 0..pages {
        let hpa = range.start().checked_add(i << 12).expect("in range");
        mem.write(hpa, &pattern(hpa)).expect("fill");
    }
    range
}

/// The 4 KiB content a test frame at `hpa` holds: derived from its address.
pub fn pattern(hpa: Hpa) -> Vec<u8> {
    let seed = hpa.raw() >> 12;
    (0..4096u64)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8)
        .collect()
}
