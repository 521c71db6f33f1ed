//! The translation peer: rust-vmm `vm-memory` 0.18's `IommuMemory` over a `GuestMemoryMmap`, with
//! an [`Iommu`] whose IOTLB (`vm_memory::Iotlb`, a range map) holds every mapping up front, so no
//! access ever takes its miss path. This is how a vhost-user back-end translates a device's IOVAs.
//!
//! Both sides see the same [`Layout`]: `mappings` 4 KiB pages of IOVA, page *i* mapped to physical
//! page `perm[i]` (a fixed pseudo-random permutation, so neighbouring IOVA pages never merge into one
//! range-map entry), and the same sequence of 64 B accesses at pseudo-random pages.

use crate::harness::{RatioDef, RowSpec, Settings, Side, Target, Unit, XorShift, compare, time_iters};
use crate::{BenchError, Measured, fixture};
use std::hint::black_box;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;
use uvfio_iommu::{DmaPort, Domain, DomainConfig};
use uvfio_types::{Access, Hpa, Iova, PageSize, PageSizes};
use vm_memory::iommu::{Error as IommuError, IotlbIterator, IovaRange};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap, Iommu, IommuMemory, Iotlb, Permissions};

/// Bytes per mapping.
pub const PAGE: u64 = 4096;
/// Bytes per access.
pub const ACCESS: usize = 64;
/// Where the mapped IOVA window starts (4 GiB: away from zero, as a driver's IOVAs usually are).
pub const IOVA_BASE: u64 = 1 << 32;
/// Accesses in the sequence before it repeats.
const SEQ_LEN: usize = 1 << 14;

/// The rows of this group.
pub fn specs() -> Vec<RowSpec> {
    vec![
        RowSpec {
            name: "dma_rw_64b_1_mapping_vs_vm_memory",
            what: "DMA read+write 64 B, 1 mapping",
            peer: "vm-memory 0.18 IommuMemory, same mapping",
            ratio_def: RatioDef::PeerOverOurs,
            unit: Unit::Op,
            target: Target::None,
            measure: |s| measure(s, 1),
        },
        RowSpec {
            name: "dma_rw_64b_65536_mappings_vs_vm_memory",
            what: "DMA read+write 64 B, 65536 mappings, random page",
            peer: "vm-memory 0.18 IommuMemory, same mappings",
            ratio_def: RatioDef::PeerOverOurs,
            unit: Unit::Op,
            target: Target::AtLeast(10.0),
            measure: |s| measure(s, 65_536),
        },
    ]
}

fn measure(s: &Settings, mappings: usize) -> Result<Measured, BenchError> {
    let layout = Layout::new(mappings);
    let mut ours = UvfioRandom::new(&layout)?;
    let mut peer = VmMemoryPeer::new(&layout)?;
    let before = ours.domain().iotlb_stats();
    let c = compare(
        s,
        Side::new(1.0, &mut |n| ours.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::PeerOverOurs,
    )?;
    let tlb = fixture::tlb_note(before, ours.domain().iotlb_stats());
    drop(ours);
    // Context: the same accesses with no translation at all bound how far ahead of the peer any
    // translation can put ours on this machine.
    let mut direct = DirectRandom::new(&layout);
    let ceiling = compare(
        s,
        Side::new(1.0, &mut |n| direct.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::PeerOverOurs,
    )?;
    let note = format!(
        "{tlb}; the same accesses as plain memcpy at the physical pages take {:.1} ns, \
         so no translation can beat the peer by more than {:.1}x here",
        ceiling.ours_ns, ceiling.ratio
    );
    Ok(Measured {
        comparison: c,
        note: Some(note),
    })
}

/// Context for the rows: the layout's accesses done on plain memory at the physical offsets, with
/// no translation, as if IOVA = physical address and nothing were checked.
#[derive(Debug)]
pub struct DirectRandom {
    memory: Vec<u8>,
    seq: Vec<usize>,
    pos: usize,
    buf: [u8; ACCESS],
}

impl DirectRandom {
    /// Plain memory of `layout.phys_bytes()`, written once so it is resident.
    pub fn new(layout: &Layout) -> Self {
        let seq = layout
            .seq
            .iter()
            .map(|&off| (layout.perm[(off / PAGE) as usize] * PAGE + off % PAGE) as usize)
            .collect();
        DirectRandom {
            memory: vec![1; layout.phys_bytes() as usize],
            seq,
            pos: 0,
            buf: [0; ACCESS],
        }
    }

    /// Runs `iters` accesses and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || {
            let off = self.seq[self.pos];
            self.pos = (self.pos + 1) % self.seq.len();
            let len = black_box(ACCESS);
            let memory = black_box(&mut self.memory[off..off + len]);
            self.buf.copy_from_slice(memory);
            memory.copy_from_slice(black_box(&self.buf));
            Ok(())
        })
    }
}

/// The mappings and accesses shared by ours and the peer.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Number of 4 KiB mappings.
    pub mappings: usize,
    /// `perm[i]`: the physical page IOVA page `i` maps to.
    pub perm: Vec<u64>,
    /// Offsets from [`IOVA_BASE`] of the accesses, in order: a pseudo-random page, a pseudo-random
    /// 64 B line in it.
    pub seq: Vec<u64>,
}

impl Layout {
    /// `mappings` pages; the same every run.
    pub fn new(mappings: usize) -> Self {
        let mut rng = XorShift::new(0x5eed_0000 ^ mappings as u64);
        let perm = rng.permutation(mappings);
        let lines = PAGE / ACCESS as u64;
        let seq = (0..SEQ_LEN)
            .map(|_| rng.below(mappings as u64) * PAGE + rng.below(lines) * ACCESS as u64)
            .collect();
        Layout { mappings, perm, seq }
    }

    /// Maps the layout into `domain`, physical page 0 at `phys`.
    pub fn map_into(&self, domain: &Domain, phys: Hpa) -> Result<(), BenchError> {
        for (i, &phys_page) in self.perm.iter().enumerate() {
            let hpa = phys
                .checked_add(phys_page * PAGE)
                .ok_or(BenchError::Setup("HPA overflow"))?;
            let iova = Iova::new(IOVA_BASE + i as u64 * PAGE);
            domain
                .map(iova, hpa, PAGE, Access::RW)
                .map_err(BenchError::Iommu)?;
        }
        Ok(())
    }

    /// Bytes of physical memory the layout needs.
    pub fn phys_bytes(&self) -> u64 {
        self.mappings as u64 * PAGE
    }
}

/// An IOMMU whose IOTLB was filled with every mapping before use: `translate` is an IOTLB lookup
/// under a read lock, as in `vm-memory`'s own tests, and a miss is an error (none happens).
#[derive(Debug)]
pub struct PreloadedIommu {
    iotlb: RwLock<Iotlb>,
}

impl PreloadedIommu {
    /// An IOMMU holding `layout`'s mappings, read-write, onto physical address 0 upwards.
    pub fn new(layout: &Layout) -> Result<Self, BenchError> {
        let mut iotlb = Iotlb::new();
        for (i, &phys_page) in layout.perm.iter().enumerate() {
            iotlb
                .set_mapping(
                    GuestAddress(IOVA_BASE + i as u64 * PAGE),
                    GuestAddress(phys_page * PAGE),
                    PAGE as usize,
                    Permissions::ReadWrite,
                )
                .map_err(BenchError::VmMemoryIommu)?;
        }
        Ok(PreloadedIommu {
            iotlb: RwLock::new(iotlb),
        })
    }
}

impl Iommu for PreloadedIommu {
    type IotlbGuard<'a> = RwLockReadGuard<'a, Iotlb>;

    fn translate(
        &self,
        iova: GuestAddress,
        length: usize,
        access: Permissions,
    ) -> Result<IotlbIterator<Self::IotlbGuard<'_>>, IommuError> {
        let guard = self.iotlb.read().unwrap_or_else(PoisonError::into_inner);
        Iotlb::lookup(guard, iova, length, access).map_err(|_fails| IommuError::CannotResolve {
            iova_range: IovaRange { base: iova, length },
            reason: "not mapped in the preloaded IOTLB".into(),
        })
    }
}

/// The peer side: 64 B read + write through `IommuMemory` at each access of the sequence.
#[derive(Debug)]
pub struct VmMemoryPeer {
    mem: IommuMemory<GuestMemoryMmap, PreloadedIommu>,
    seq: Vec<u64>,
    pos: usize,
    buf: [u8; ACCESS],
}

impl VmMemoryPeer {
    /// Guest memory of `layout.phys_bytes()` at physical 0, made resident, behind the layout's
    /// mappings.
    pub fn new(layout: &Layout) -> Result<Self, BenchError> {
        let phys = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), layout.phys_bytes() as usize)])
            .map_err(BenchError::VmMemoryRegions)?;
        let zero = [0u8; PAGE as usize];
        for page in 0..layout.mappings as u64 {
            phys.write_slice(&zero, GuestAddress(page * PAGE))
                .map_err(BenchError::VmMemoryAccess)?;
        }
        let mem = IommuMemory::new(phys, PreloadedIommu::new(layout)?, true, ());
        Ok(VmMemoryPeer {
            mem,
            seq: layout.seq.clone(),
            pos: 0,
            buf: [0; ACCESS],
        })
    }

    /// One access: read 64 B at the next IOVA of the sequence, write them back.
    #[inline]
    fn op(&mut self) -> Result<(), BenchError> {
        let iova = GuestAddress(IOVA_BASE + self.seq[self.pos]);
        self.pos = (self.pos + 1) % self.seq.len();
        self.mem
            .read_slice(black_box(&mut self.buf), iova)
            .map_err(BenchError::VmMemoryAccess)?;
        self.mem
            .write_slice(black_box(&self.buf), iova)
            .map_err(BenchError::VmMemoryAccess)
    }

    /// Runs `iters` accesses and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }

    /// Writes `data` at `iova_offset` (from [`IOVA_BASE`]) through the IOMMU.
    pub fn write_at(&self, iova_offset: u64, data: &[u8]) -> Result<(), BenchError> {
        self.mem
            .write_slice(data, GuestAddress(IOVA_BASE + iova_offset))
            .map_err(BenchError::VmMemoryAccess)
    }

    /// Reads `buf.len()` bytes at physical address `phys`, bypassing the IOMMU.
    pub fn read_phys(&self, phys: u64, buf: &mut [u8]) -> Result<(), BenchError> {
        self.mem
            .get_backend()
            .read_slice(buf, GuestAddress(phys))
            .map_err(BenchError::VmMemoryAccess)
    }
}

/// Ours: the same accesses through a uvfio paging domain holding the same mappings (each a 4 KiB
/// page, so the walk on an IOTLB miss is the full 4 levels).
#[derive(Debug)]
pub struct UvfioRandom {
    port: DmaPort,
    seq: Vec<u64>,
    pos: usize,
    buf: [u8; ACCESS],
}

impl UvfioRandom {
    /// Host memory for the layout, a domain with its mappings and the default IOTLB, a port.
    pub fn new(layout: &Layout) -> Result<Self, BenchError> {
        Self::with_iotlb_entries(layout, DomainConfig::default().iotlb_entries)
    }

    /// The same with an IOTLB of `entries` entries (for experiments on the miss path).
    pub fn with_iotlb_entries(layout: &Layout, entries: usize) -> Result<Self, BenchError> {
        let mem = fixture::host_memory(fixture::SMALL_RAM.max(layout.phys_bytes() * 2))?;
        let phys = fixture::alloc(&mem, layout.phys_bytes(), PageSize::Size4K)?;
        let config = DomainConfig {
            page_sizes: PageSizes::SZ_4K,
            coherent: false,
            iotlb_entries: entries,
            ..DomainConfig::default()
        };
        let domain = Domain::new_paging(Arc::clone(&mem), config).map_err(BenchError::Iommu)?;
        layout.map_into(&domain, phys.start())?;
        Ok(UvfioRandom {
            port: domain.port(0),
            seq: layout.seq.clone(),
            pos: 0,
            buf: [0; ACCESS],
        })
    }

    /// One access: read 64 B at the next IOVA of the sequence, write them back.
    #[inline]
    fn op(&mut self) -> Result<(), BenchError> {
        let iova = Iova::new(IOVA_BASE + self.seq[self.pos]);
        self.pos = (self.pos + 1) % self.seq.len();
        self.port
            .read(iova, black_box(&mut self.buf))
            .map_err(BenchError::Dma)?;
        self.port
            .write(iova, black_box(&self.buf))
            .map_err(BenchError::Dma)
    }

    /// Runs `iters` accesses and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }

    /// The domain the accesses go through.
    pub fn domain(&self) -> &Arc<Domain> {
        self.port.domain()
    }

    /// Runs `iters` uncached page walks (`translate_uncached`) at the sequence's IOVAs, no copy:
    /// what the walk alone costs at these addresses.
    pub fn time_uncached_walks(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || {
            let iova = Iova::new(IOVA_BASE + self.seq[self.pos]);
            self.pos = (self.pos + 1) % self.seq.len();
            black_box(
                self.port
                    .translate_uncached(iova, Access::READ)
                    .map_err(BenchError::Dma)?,
            );
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_deterministic_and_in_bounds() {
        let a = Layout::new(64);
        let b = Layout::new(64);
        assert_eq!(a.seq, b.seq);
        assert_eq!(a.perm, b.perm);
        assert!(
            a.seq
                .iter()
                .all(|&off| off + ACCESS as u64 <= a.phys_bytes() && off % ACCESS as u64 == 0)
        );
        let one = Layout::new(1);
        assert!(one.seq.iter().all(|&off| off < PAGE));
    }

    #[test]
    fn peer_translates_through_the_permutation() {
        let layout = Layout::new(256);
        let mut peer = VmMemoryPeer::new(&layout).unwrap();
        for i in [0u64, 1, 77, 255] {
            peer.write_at(i * PAGE + 64, &[(i as u8).wrapping_add(1); 8])
                .unwrap();
            let mut got = [0u8; 8];
            peer.read_phys(layout.perm[i as usize] * PAGE + 64, &mut got)
                .unwrap();
            assert_eq!(got, [(i as u8).wrapping_add(1); 8]);
        }
        assert!(peer.write_at(256 * PAGE, &[0]).is_err());
        peer.time(100).unwrap();
    }

    #[test]
    fn ours_runs_the_same_sequence() {
        let layout = Layout::new(256);
        let mut ours = UvfioRandom::new(&layout).unwrap();
        ours.time(1000).unwrap();
        let stats = ours.domain().iotlb_stats();
        assert!(stats.misses >= 1 && stats.misses <= 256 * 2, "{stats:?}");
    }
}
