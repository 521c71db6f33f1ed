//! An IOTLB miss: the full 4-level walk of cached page tables, against the limit of 4 dependent
//! loads through 4 cached cells.
//!
//! Both sides are latency-bound the same way: each operation's input depends on the previous
//! operation's output, so successive walks (or chases) cannot overlap in the CPU.

use crate::harness::{RatioDef, RowSpec, Settings, Side, Target, Unit, compare};
use crate::sys::DepChain;
use crate::{BenchError, Measured, fixture};
use std::hint::black_box;
use std::time::{Duration, Instant};
use uvfio_iommu::DmaPort;
use uvfio_types::{Access, Iova, PageSize, PageSizes};

/// The walked IOVA: its four table indices differ, so the walk touches four distinct entries.
const IOVA: u64 = 0x0000_1234_5678_9000;

/// The rows of this group.
pub fn specs() -> Vec<RowSpec> {
    vec![RowSpec {
        name: "iotlb_miss_4level_walk",
        what: "IOTLB miss: 4-level walk, tables cached",
        peer: "4 dependent loads (pointer chase)",
        ratio_def: RatioDef::OursOverPeer,
        unit: Unit::Op,
        target: Target::AtMost(2.0),
        measure,
    }]
}

fn measure(s: &Settings) -> Result<Measured, BenchError> {
    let mut ours = UvfioWalk::new()?;
    let mut peer = ChainPeer::new();
    let c = compare(
        s,
        Side::new(1.0, &mut |n| ours.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::OursOverPeer,
    )?;
    Ok(Measured::from(c))
}

/// Ours: `DmaPort::translate_uncached`, a full walk of a 4-level table down to a 4 KiB leaf that
/// neither reads nor fills any translation cache. Each walk's IOVA depends on the previous
/// walk's result (through an opaque zero mask), as each hop of the peer depends on the last.
#[derive(Debug)]
pub struct UvfioWalk {
    port: DmaPort,
}

impl UvfioWalk {
    /// A domain restricted to 4 KiB pages with one page mapped at [`IOVA`].
    pub fn new() -> Result<Self, BenchError> {
        let mem = fixture::host_memory(fixture::SMALL_RAM)?;
        let page = fixture::alloc(&mem, PageSize::Size4K.bytes(), PageSize::Size4K)?;
        let domain = fixture::paging_domain(&mem, PageSizes::SZ_4K)?;
        domain
            .map(
                Iova::new(IOVA),
                page.start(),
                PageSize::Size4K.bytes(),
                Access::RW,
            )
            .map_err(BenchError::Iommu)?;
        Ok(UvfioWalk { port: domain.port(0) })
    }

    /// Runs `iters` walks, each dependent on the one before, and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        let zero = black_box(0u64);
        let mut prev = 0u64;
        let start = Instant::now();
        for _ in 0..iters {
            let f = self
                .port
                .translate_uncached(Iova::new(IOVA | (prev & zero)), Access::READ)
                .map_err(BenchError::Dma)?;
            prev = f.hpa.raw();
        }
        let took = start.elapsed();
        black_box(prev);
        Ok(took)
    }
}

/// The limit: [`DepChain::LEN`] dependent loads per operation.
#[derive(Debug)]
pub struct ChainPeer {
    chain: DepChain,
}

impl ChainPeer {
    /// A ring of four cells, one cache line each.
    pub fn new() -> Self {
        ChainPeer {
            chain: DepChain::new(),
        }
    }

    /// Runs `iters` four-load chases and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        let start = Instant::now();
        black_box(self.chain.chase(iters));
        Ok(start.elapsed())
    }
}

impl Default for ChainPeer {
    fn default() -> Self {
        ChainPeer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_walks_without_filling_the_iotlb() {
        let mut ours = UvfioWalk::new().unwrap();
        ours.time(10).unwrap();
        let stats = ours.port.domain().iotlb_stats();
        assert_eq!(
            (stats.hits, stats.utlb_hits, stats.occupancy),
            (0, 0, 0),
            "{stats:?}"
        );
    }

    #[test]
    fn chain_peer_runs() {
        ChainPeer::new().time(10).unwrap();
    }
}
