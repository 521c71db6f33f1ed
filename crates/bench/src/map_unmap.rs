//! Map + unmap of 1 GiB in 4 KiB, 2 MiB and 1 GiB pages, and of one 4 KiB page (what a driver's
//! streaming DMA mapping does per I/O), with pinning and locked-memory accounting, against the
//! kernel's own cost of pinning the same amount of already-resident memory: `mlock` +
//! `MADV_POPULATE_WRITE` + `munlock` of an anonymous region of the same size.

use crate::harness::{RatioDef, RowSpec, Settings, Side, Target, Unit, compare};
use crate::sys::{AnonRegion, Backing};
use crate::{BenchError, Measured, fixture};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uvfio_iommu::{Domain, Invalidation};
use uvfio_memory::HostMemory;
use uvfio_types::{Access, HpaRange, Iova, IovaRange, PageSize, PageSizes};

/// Bytes mapped and unmapped per iteration.
pub const GIB: u64 = 1 << 30;
/// Where the buffer is mapped: 1 GiB-aligned, so every page size fits.
const IOVA: Iova = Iova::new(1 << 32);

/// The rows of this group.
pub fn specs() -> Vec<RowSpec> {
    vec![
        RowSpec {
            name: "map_unmap_1g_in_4k_pages",
            what: "map+unmap 1 GiB in 4 KiB pages, pin+account",
            peer: "mlock+MADV_POPULATE_WRITE+munlock 1 GiB (4 KiB pages)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::NsPerPageAtMost(70.0),
            measure: |s| measure(s, GIB, PageSize::Size4K),
        },
        RowSpec {
            name: "map_unmap_1g_in_2m_pages",
            what: "map+unmap 1 GiB in 2 MiB pages, pin+account",
            peer: "mlock+MADV_POPULATE_WRITE+munlock 1 GiB (THP)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::NsPerPageAtMost(1_000.0),
            measure: |s| measure(s, GIB, PageSize::Size2M),
        },
        RowSpec {
            name: "map_unmap_1g_in_1g_pages",
            what: "map+unmap 1 GiB in 1 GiB pages, pin+account",
            peer: "mlock+MADV_POPULATE_WRITE+munlock 1 GiB (THP)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::NsPerPageAtMost(50_000.0),
            measure: |s| measure(s, GIB, PageSize::Size1G),
        },
        RowSpec {
            name: "map_unmap_one_4k_page",
            what: "map+unmap one 4 KiB page, pin+account (a streaming DMA mapping)",
            peer: "mlock+MADV_POPULATE_WRITE+munlock of one 4 KiB page",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::None,
            measure: |s| measure(s, 4096, PageSize::Size4K),
        },
    ]
}

fn measure(s: &Settings, len: u64, page: PageSize) -> Result<Measured, BenchError> {
    let pages = (len / page.bytes()) as f64;
    let backing = if page == PageSize::Size4K {
        Backing::BasePages
    } else {
        Backing::HugePages
    };
    let mut ours = UvfioMapUnmap::new(len, page)?;
    let mut peer = MlockPeer::new(len as usize, backing)?;
    let c = compare(
        s,
        Side::new(pages, &mut |n| ours.time(n)),
        Side::new(pages, &mut |n| peer.time(n)),
        RatioDef::OursOverPeer,
    )?;
    Ok(Measured::from(c))
}

/// Ours: what a VFIO type1 `MAP_DMA` + `UNMAP_DMA` pair does to an already-allocated buffer: pin
/// it (pin counts and locked-memory accounting), map it into a paging domain, unmap it, invalidate
/// the IOTLB for the range, unpin it.
#[derive(Debug)]
pub struct UvfioMapUnmap {
    mem: Arc<HostMemory>,
    domain: Arc<Domain>,
    buf: HpaRange,
    iova: IovaRange,
}

impl UvfioMapUnmap {
    /// `len` bytes of host memory in folios of `page`, and a domain that may use `page` and the
    /// sizes below it (4 KiB only for the 4 KiB row, so the table holds 4 KiB leaves).
    pub fn new(len: u64, page: PageSize) -> Result<Self, BenchError> {
        let mem = fixture::host_memory(fixture::LARGE_RAM.max(len * 2 + GIB))?;
        let buf = fixture::alloc(&mem, len, page)?;
        let sizes = match page {
            PageSize::Size4K => PageSizes::SZ_4K,
            PageSize::Size2M => PageSizes::SZ_4K | PageSizes::SZ_2M,
            PageSize::Size1G => PageSizes::all(),
        };
        let domain = fixture::paging_domain(&mem, sizes)?;
        let iova = IovaRange::from_start_len(IOVA, len).map_err(BenchError::Types)?;
        let mut ours = UvfioMapUnmap {
            mem,
            domain,
            buf,
            iova,
        };
        // Once, untimed: check that the table really holds leaves of the row's size.
        let leaf = ours.op_with(|d| d.lookup(IOVA).map(|t| t.size))?;
        if leaf != Some(page) {
            return Err(BenchError::Setup(
                "the domain did not map the buffer in the row's page size",
            ));
        }
        Ok(ours)
    }

    /// One iteration: pin, map, unmap, invalidate, unpin.
    pub fn op(&mut self) -> Result<(), BenchError> {
        self.op_with(|_| ())
    }

    /// One iteration, calling `inspect` while the buffer is mapped.
    fn op_with<T>(&mut self, inspect: impl FnOnce(&Domain) -> T) -> Result<T, BenchError> {
        let len = self.iova.len_minus_one() + 1;
        self.mem.pin(self.buf).map_err(BenchError::Memory)?;
        self.domain
            .map(self.iova.start(), self.buf.start(), len, Access::RW)
            .map_err(BenchError::Iommu)?;
        let seen = inspect(&self.domain);
        let unmapped = self.domain.unmap(self.iova).map_err(BenchError::Iommu)?;
        self.domain
            .invalidate(Invalidation::Range(self.iova))
            .map_err(BenchError::Iommu)?;
        self.mem.unpin(self.buf).map_err(BenchError::Memory)?;
        if unmapped != len {
            return Err(BenchError::Setup("unmap returned fewer bytes than were mapped"));
        }
        Ok(seen)
    }

    /// Runs `iters` iterations and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        let start = Instant::now();
        for _ in 0..iters {
            self.op()?;
        }
        Ok(start.elapsed())
    }

    /// The domain.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }
}

/// The limit: lock, populate for write and unlock a resident anonymous region, as the kernel does
/// when a VFIO type1 container pins user memory (`pin_user_pages` + `RLIMIT_MEMLOCK` accounting).
#[derive(Debug)]
pub struct MlockPeer {
    region: AnonRegion,
}

impl MlockPeer {
    /// A region of `len` bytes, backed as asked, made resident once here (outside any timing).
    pub fn new(len: usize, backing: Backing) -> Result<Self, BenchError> {
        let region = AnonRegion::new(len, backing)?;
        region.populate_write()?;
        Ok(MlockPeer { region })
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether the region is empty (never: kept for API symmetry).
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// One iteration: `mlock`, `MADV_POPULATE_WRITE`, `munlock` over the whole region.
    pub fn op(&mut self) -> Result<(), BenchError> {
        self.region.mlock()?;
        self.region.populate_write()?;
        self.region.munlock()
    }

    /// Runs `iters` iterations and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        let start = Instant::now();
        for _ in 0..iters {
            self.op()?;
        }
        Ok(start.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_maps_and_unmaps_every_size() {
        for page in [PageSize::Size4K, PageSize::Size2M] {
            let mut ours = UvfioMapUnmap::new(8 << 20, page).unwrap();
            ours.time(2).unwrap();
            assert!(
                ours.domain().lookup(IOVA).is_none(),
                "{page}: unmapped after each iteration"
            );
        }
    }

    #[test]
    fn mlock_peer_runs_on_a_small_region() {
        let mut peer = MlockPeer::new(4 << 20, Backing::HugePages).unwrap();
        assert_eq!(peer.len(), 4 << 20);
        peer.time(2).unwrap();
    }
}
