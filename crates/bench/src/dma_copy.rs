//! DMA read + write of 64 B and 4 KiB through an IOTLB hit, against the limit of copying the same
//! bytes directly: a `memcpy` from a plain buffer into the device's buffer and back.

use crate::harness::{RatioDef, RowSpec, Settings, Side, Target, Unit, compare, time_iters};
use crate::{BenchError, Measured, fixture};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use uvfio_iommu::{DmaPort, Domain};
use uvfio_types::{Access, Iova, PageSize};

/// Where the buffer is mapped.
const IOVA: Iova = Iova::new(0x1_0000_0000);

/// The rows of this group.
pub fn specs() -> Vec<RowSpec> {
    vec![
        RowSpec {
            name: "dma_rw_64b_iotlb_hit",
            what: "DMA read+write 64 B, IOTLB hit",
            peer: "memcpy of the same bytes",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Op,
            target: Target::AtMost(2.0),
            measure: |s| measure(s, 64),
        },
        RowSpec {
            name: "dma_rw_4k_iotlb_hit",
            what: "DMA read+write 4 KiB, IOTLB hit",
            peer: "memcpy of the same bytes",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Op,
            target: Target::AtMost(1.2),
            measure: |s| measure(s, 4096),
        },
    ]
}

fn measure(s: &Settings, len: usize) -> Result<Measured, BenchError> {
    let mut ours = UvfioDma::new(len)?;
    let mut peer = MemcpyPeer::new(len);
    let c = compare(
        s,
        Side::new(1.0, &mut |n| ours.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::OursOverPeer,
    )?;
    Ok(Measured::from(c))
}

/// Ours: a device's DMA read of `len` bytes into its buffer and DMA write of them back, through
/// one page that is mapped and cached (the port's micro-TLB and the domain's IOTLB hold it).
#[derive(Debug)]
pub struct UvfioDma {
    port: DmaPort,
    buf: Box<Page>,
    len: usize,
    _domain: Arc<Domain>,
}

impl UvfioDma {
    /// A domain with one 4 KiB page mapped at a fixed IOVA, and a port that has translated it once.
    pub fn new(len: usize) -> Result<Self, BenchError> {
        if len == 0 || len as u64 > PageSize::Size4K.bytes() {
            return Err(BenchError::Setup("a DMA of 1 byte to 4 KiB"));
        }
        let mem = fixture::host_memory(fixture::SMALL_RAM)?;
        let page = fixture::alloc(&mem, PageSize::Size4K.bytes(), PageSize::Size4K)?;
        let domain = fixture::paging_domain(&mem, uvfio_types::PageSizes::all())?;
        domain
            .map(IOVA, page.start(), PageSize::Size4K.bytes(), Access::RW)
            .map_err(BenchError::Iommu)?;
        let port = domain.port(0);
        let mut ours = UvfioDma {
            port,
            buf: Page::boxed(0xa5),
            len,
            _domain: domain,
        };
        ours.op()?;
        Ok(ours)
    }

    /// One DMA read of the buffer's length and one DMA write of it.
    #[inline]
    fn op(&mut self) -> Result<(), BenchError> {
        let iova = black_box(IOVA);
        let buf = &mut self.buf.0[..self.len];
        self.port
            .read(iova, black_box(&mut *buf))
            .map_err(BenchError::Dma)?;
        self.port.write(iova, black_box(buf)).map_err(BenchError::Dma)
    }

    /// Runs `iters` read + write pairs and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }
}

/// A page-aligned 4 KiB page. Host memory pages are page-aligned, and so are the device-side
/// buffers of both sides: a `memcpy` to or from a buffer that is not cache-line aligned costs up to
/// 1.7x more at 4 KiB on the machine this was written on, which would measure the benchmark's
/// buffer rather than the code under test.
#[repr(C, align(4096))]
#[derive(Debug)]
struct Page([u8; 4096]);

impl Page {
    fn boxed(fill: u8) -> Box<Page> {
        Box::new(Page([fill; 4096]))
    }
}

/// The limit: the bytes a DMA read and a DMA write move, copied between two plain buffers laid
/// out as ours are (a page-aligned "memory" page and a page-aligned device buffer).
#[derive(Debug)]
pub struct MemcpyPeer {
    memory: Box<Page>,
    buf: Box<Page>,
    len: usize,
}

impl MemcpyPeer {
    /// Copies of `len` bytes (clamped to 1 byte ..= 4 KiB).
    pub fn new(len: usize) -> Self {
        MemcpyPeer {
            memory: Page::boxed(0x5a),
            buf: Page::boxed(0),
            len: len.clamp(1, 4096),
        }
    }

    /// One "read" (memory → buffer) and one "write" (buffer → memory), with lengths and buffers the
    /// compiler cannot see, so each is a real `memcpy`.
    #[inline]
    fn op(&mut self) {
        let len = black_box(self.len);
        let memory = black_box(&mut self.memory.0[..len]);
        let buf = black_box(&mut self.buf.0[..len]);
        buf.copy_from_slice(memory);
        memory.copy_from_slice(black_box(buf));
    }

    /// Runs `iters` read + write pairs and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || {
            self.op();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvfio_dma_runs_and_hits() {
        let mut ours = UvfioDma::new(64).unwrap();
        ours.time(10).unwrap();
        let stats = ours.port.domain().iotlb_stats();
        assert!(stats.utlb_hits >= 20, "{stats:?}");
        assert!(UvfioDma::new(4097).is_err());
    }

    #[test]
    fn memcpy_peer_moves_the_bytes() {
        let mut peer = MemcpyPeer::new(64);
        peer.time(3).unwrap();
        assert_eq!(peer.buf.0[..64], [0x5a; 64]);
        assert_eq!(peer.buf.0[64], 0);
    }
}
