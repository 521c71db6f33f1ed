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
        Side {
            run: &mut |n| ours.time(n),
            units_per_iter: 1.0,
        },
        Side {
            run: &mut |n| peer.time(n),
            units_per_iter: 1.0,
        },
        RatioDef::OursOverPeer,
    )?;
    Ok(Measured {
        comparison: c,
        note: None,
    })
}

/// Ours: a device's DMA read of `len` bytes into its buffer and DMA write of them back, through
/// one page that is mapped and cached (the port's micro-TLB and the domain's IOTLB hold it).
#[derive(Debug)]
pub struct UvfioDma {
    port: DmaPort,
    buf: Vec<u8>,
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
            buf: vec![0xa5; len],
            _domain: domain,
        };
        ours.op()?;
        Ok(ours)
    }

    /// One DMA read of the buffer's length and one DMA write of it.
    #[inline]
    fn op(&mut self) -> Result<(), BenchError> {
        let iova = black_box(IOVA);
        self.port
            .read(iova, black_box(&mut self.buf))
            .map_err(BenchError::Dma)?;
        self.port
            .write(iova, black_box(&self.buf))
            .map_err(BenchError::Dma)
    }

    /// Runs `iters` read + write pairs and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }
}

/// The limit: the bytes a DMA read and a DMA write move, copied between two plain buffers.
#[derive(Debug)]
pub struct MemcpyPeer {
    memory: Vec<u8>,
    buf: Vec<u8>,
}

impl MemcpyPeer {
    /// Copies of `len` bytes.
    pub fn new(len: usize) -> Self {
        MemcpyPeer {
            memory: vec![0x5a; len.max(1)],
            buf: vec![0; len.max(1)],
        }
    }

    /// One "read" (memory → buffer) and one "write" (buffer → memory), with lengths and buffers the
    /// compiler cannot see, so each is a real `memcpy`.
    #[inline]
    fn op(&mut self) {
        let len = black_box(self.buf.len());
        let memory = black_box(&mut self.memory[..len]);
        let buf = black_box(&mut self.buf[..len]);
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
        assert_eq!(peer.buf, vec![0x5a; 64]);
    }
}
