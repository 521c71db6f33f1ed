//! uvfio set-ups the rows share: host memory, buffers, paging domains.

use crate::BenchError;
use std::sync::Arc;
use uvfio_iommu::{Domain, DomainConfig, IotlbStats};
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_types::{HpaRange, PageSize, PageSizes};

/// Host RAM for the rows that need little memory.
pub(crate) const SMALL_RAM: u64 = 1 << 30;
/// Host RAM for the 1 GiB map + unmap rows: the buffer, page tables and room to align a 1 GiB
/// folio. The segment is sparse: only what is allocated becomes resident.
pub(crate) const LARGE_RAM: u64 = 4 << 30;

/// Emulated host memory of `ram_bytes`, with no locked-memory limit (the benchmarks measure the
/// cost of accounting, not its refusals).
pub(crate) fn host_memory(ram_bytes: u64) -> Result<Arc<HostMemory>, BenchError> {
    let config = MemoryConfig {
        ram_bytes,
        ..MemoryConfig::default()
    };
    HostMemory::new(config).map(Arc::new).map_err(BenchError::Memory)
}

/// `len` bytes of contiguous host memory in folios of `folio`, resident and zeroed.
pub(crate) fn alloc(mem: &HostMemory, len: u64, folio: PageSize) -> Result<HpaRange, BenchError> {
    mem.alloc_contiguous(len, folio).map_err(BenchError::Memory)
}

/// A 4-level paging domain that may use `page_sizes`, invalidated by its caller.
pub(crate) fn paging_domain(mem: &Arc<HostMemory>, page_sizes: PageSizes) -> Result<Arc<Domain>, BenchError> {
    let config = DomainConfig {
        page_sizes,
        coherent: false,
        ..DomainConfig::default()
    };
    Domain::new_paging(Arc::clone(mem), config).map_err(BenchError::Iommu)
}

/// Where ours' translations came from during a measurement, as a note: shares of micro-TLB hits,
/// IOTLB hits and page walks between two snapshots of the domain's statistics.
pub(crate) fn tlb_note(before: IotlbStats, after: IotlbStats) -> String {
    let utlb = after.utlb_hits.saturating_sub(before.utlb_hits);
    let hits = after.hits.saturating_sub(before.hits);
    let walks = after.misses.saturating_sub(before.misses);
    let total = (utlb + hits + walks).max(1) as f64;
    let pct = |n: u64| 100.0 * n as f64 / total;
    format!(
        "ours' lookups: {:.0}% micro-TLB hits, {:.0}% IOTLB hits, {:.0}% page walks (IOTLB of {} entries)",
        pct(utlb),
        pct(hits),
        pct(walks),
        after.capacity
    )
}
