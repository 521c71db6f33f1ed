//! Model-based test of a paging domain with its IOTLB: random map / unmap / invalidate / read /
//! write sequences against a plain reference model.
//!
//! The model keeps the page table as a map of 4 KiB IOVA pages, and for each page the *stale*
//! translations an IOTLB may still hold because they were unmapped (or replaced) without an
//! invalidation since. A DMA to a page may use the current translation or any stale one, as real
//! hardware may; after an invalidation covering the page only the current one. Writes carry a unique
//! byte so the test can see exactly where they landed, and that a faulting access wrote nothing.

mod common;

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use uvfio_iommu::{DmaFault, DmaPort, Domain, FaultReason, Invalidation};
use uvfio_memory::HostMemory;
use uvfio_types::{Access, Hpa, Iova, IovaRange, PageSize};

const TOP: u64 = 1 << 36; // first IOVA page number beyond 48 bits

#[derive(Debug, Clone)]
enum Op {
    Map {
        pfn: u64,
        hpa_idx: u64,
        pages: u64,
        prot: u8,
    },
    MapSuper {
        slot: u64,
    },
    Unmap {
        pfn: u64,
        pages: u64,
    },
    InvalidateRange {
        pfn: u64,
        pages: u64,
    },
    InvalidateAll,
    Read {
        pfn: u64,
        off: u64,
        len: u64,
    },
    Write {
        pfn: u64,
        off: u64,
        len: u64,
    },
}

fn pfn() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..1536, 1 => (TOP - 40)..(TOP + 4)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (pfn(), 0u64..576, 1u64..24, 1u8..4).prop_map(|(pfn, hpa_idx, pages, prot)| Op::Map { pfn, hpa_idx, pages, prot }),
        1 => (0u64..3).prop_map(|slot| Op::MapSuper { slot }),
        4 => (pfn(), 1u64..700).prop_map(|(pfn, pages)| Op::Unmap { pfn, pages }),
        2 => (pfn(), 1u64..700).prop_map(|(pfn, pages)| Op::InvalidateRange { pfn, pages }),
        1 => Just(Op::InvalidateAll),
        8 => (pfn(), 0u64..4096, 1u64..9000).prop_map(|(pfn, off, len)| Op::Read { pfn, off, len }),
        6 => (pfn(), 0u64..4096, 1u64..9000).prop_map(|(pfn, off, len)| Op::Write { pfn, off, len }),
    ]
}

type Tr = (u64, Access); // (HPA of the 4 KiB page, permissions)

struct Model {
    mapped: BTreeMap<u64, Tr>,
    stale: BTreeMap<u64, Vec<Tr>>,
    coherent: bool,
}

impl Model {
    fn candidates(&self, pfn: u64) -> Vec<Option<Tr>> {
        let mut c: Vec<Option<Tr>> = self
            .stale
            .get(&pfn)
            .into_iter()
            .flatten()
            .copied()
            .map(Some)
            .collect();
        c.push(self.mapped.get(&pfn).copied());
        c
    }

    fn unmap_page(&mut self, pfn: u64) -> bool {
        match self.mapped.remove(&pfn) {
            Some(tr) => {
                if !self.coherent {
                    self.stale.entry(pfn).or_default().push(tr);
                }
                true
            }
            None => false,
        }
    }
}

struct Rig {
    mem: Arc<HostMemory>,
    domain: Arc<Domain>,
    port: DmaPort,
    pool_2m: Hpa,
    pool_4k: Hpa,
    /// Mirror of the content of every pool page.
    content: BTreeMap<u64, Vec<u8>>,
    stamp: u8,
}

impl Rig {
    fn new(coherent: bool) -> Rig {
        let mem = common::memory(64);
        let domain = common::paging(&mem, coherent);
        let port = domain.port(0x10);
        let pool_2m = mem.alloc_contiguous(2 << 20, PageSize::Size2M).unwrap().start();
        let pool_4k = mem.alloc_contiguous(64 << 12, PageSize::Size4K).unwrap().start();
        let mut content = BTreeMap::new();
        for i in 0..576u64 {
            let hpa = Self::page_of(pool_2m, pool_4k, i);
            let bytes = common::pattern(hpa);
            mem.write(hpa, &bytes).unwrap();
            content.insert(hpa.raw(), bytes);
        }
        Rig {
            mem,
            domain,
            port,
            pool_2m,
            pool_4k,
            content,
            stamp: 0,
        }
    }

    fn page_of(pool_2m: Hpa, pool_4k: Hpa, idx: u64) -> Hpa {
        if idx < 512 {
            pool_2m.checked_add(idx << 12).unwrap()
        } else {
            pool_4k.checked_add((idx - 512) << 12).unwrap()
        }
    }
}

fn iova(pfn: u64) -> Iova {
    Iova::new(pfn << 12)
}

/// The per-page pieces of an access of `len` bytes at `start`: (offset in the access, IOVA page
/// number, offset in the page, length).
fn pieces(start: Iova, len: u64) -> Vec<(usize, u64, usize, usize)> {
    let mut at = 0usize;
    IovaRange::from_start_len(start, len)
        .unwrap()
        .pages(PageSize::Size4K)
        .map(|p| {
            let lo = if at == 0 {
                (start.raw() & 0xfff) as usize
            } else {
                0
            };
            let n = (4096 - lo).min(len as usize - at);
            let piece = (at, p.raw() >> 12, lo, n);
            at += n;
            piece
        })
        .collect()
}

fn check_fault(model: &Model, fault: &DmaFault, access: Access) -> Result<(), TestCaseError> {
    let pfn = fault.iova.raw() >> 12;
    let ok = model
        .candidates(pfn)
        .into_iter()
        .any(|c| match (c, fault.reason) {
            (None, FaultReason::NotPresent) => pfn < TOP,
            (None, FaultReason::BeyondAddressWidth) => pfn >= TOP,
            (Some((_, prot)), FaultReason::Permission { granted }) => {
                prot == granted && !prot.contains(access)
            }
            _ => false,
        });
    prop_assert!(ok, "fault {fault:?} not allowed by the model for page {pfn:#x}");
    Ok(())
}

fn run(ops: Vec<Op>, coherent: bool) -> Result<(), TestCaseError> {
    let mut rig = Rig::new(coherent);
    let mut model = Model {
        mapped: BTreeMap::new(),
        stale: BTreeMap::new(),
        coherent,
    };
    for op in ops {
        match op {
            Op::Map {
                pfn,
                hpa_idx,
                pages,
                prot,
            } => {
                let pool_end = if hpa_idx < 512 { 512 } else { 576 };
                let pages = pages.min(pool_end - hpa_idx);
                let hpa = Rig::page_of(rig.pool_2m, rig.pool_4k, hpa_idx);
                let prot = Access::from_bits_truncate(prot);
                let res = rig.domain.map(iova(pfn), hpa, pages << 12, prot);
                let beyond = pfn + pages > TOP;
                let overlap = (pfn..pfn + pages).any(|p| model.mapped.contains_key(&p));
                prop_assert_eq!(res.is_ok(), !beyond && !overlap, "map {:?}", res);
                if res.is_ok() {
                    for i in 0..pages {
                        model.mapped.insert(pfn + i, (hpa.raw() + (i << 12), prot));
                    }
                }
            }
            Op::MapSuper { slot } => {
                let pfn = 512 * slot;
                let res = rig.domain.map(iova(pfn), rig.pool_2m, 2 << 20, Access::RW);
                let overlap = (pfn..pfn + 512).any(|p| model.mapped.contains_key(&p));
                prop_assert_eq!(res.is_ok(), !overlap);
                if res.is_ok() {
                    prop_assert_eq!(rig.domain.lookup(iova(pfn)).unwrap().size, PageSize::Size2M);
                    for i in 0..512 {
                        model
                            .mapped
                            .insert(pfn + i, (rig.pool_2m.raw() + (i << 12), Access::RW));
                    }
                }
            }
            Op::Unmap { pfn, pages } => {
                let range = IovaRange::from_start_len(iova(pfn), pages << 12).unwrap();
                let bytes = rig.domain.unmap(range).unwrap();
                let expected = (pfn..pfn + pages).filter(|&p| model.unmap_page(p)).count() as u64;
                prop_assert_eq!(bytes, expected << 12);
            }
            Op::InvalidateRange { pfn, pages } => {
                let range = IovaRange::from_start_len(iova(pfn), pages << 12).unwrap();
                rig.domain.invalidate(Invalidation::Range(range)).unwrap();
                model.stale.retain(|&p, _| p < pfn || p >= pfn + pages);
            }
            Op::InvalidateAll => {
                rig.domain.invalidate(Invalidation::Domain).unwrap();
                model.stale.clear();
            }
            Op::Read { pfn, off, len } => {
                let start = iova(pfn).checked_add(off).unwrap();
                let mut buf = vec![0xeeu8; len as usize];
                match rig.port.read(start, &mut buf) {
                    Ok(()) => {
                        for (at, pfn, lo, n) in pieces(start, len) {
                            let got = &buf[at..at + n];
                            let ok = model.candidates(pfn).into_iter().flatten().any(|(hpa, prot)| {
                                prot.contains(Access::READ) && rig.content[&hpa][lo..lo + n] == *got
                            });
                            prop_assert!(ok, "read of page {pfn:#x} returned bytes no translation explains");
                        }
                    }
                    Err(fault) => {
                        check_fault(&model, &fault, Access::READ)?;
                        prop_assert!(
                            buf.iter().all(|&b| b == 0xee),
                            "a faulting read filled the buffer"
                        );
                    }
                }
            }
            Op::Write { pfn, off, len } => {
                rig.stamp = rig.stamp.wrapping_add(1).max(1);
                let start = iova(pfn).checked_add(off).unwrap();
                let buf = vec![rig.stamp; len as usize];
                let res = rig.port.write(start, &buf);
                // Find every pool page whose memory changed; it must be explained by the model.
                let mut changed = Vec::new();
                let mut now = vec![0u8; 4096];
                for (&hpa, mirror) in rig.content.iter_mut() {
                    rig.mem.read(Hpa::new(hpa), &mut now).unwrap();
                    if now != *mirror {
                        changed.push(hpa);
                        mirror.copy_from_slice(&now);
                    }
                }
                match res {
                    Ok(()) => {
                        for (_, pfn, lo, n) in pieces(start, len) {
                            let ok = model.candidates(pfn).into_iter().flatten().any(|(hpa, prot)| {
                                prot.contains(Access::WRITE)
                                    && rig.content[&hpa][lo..lo + n].iter().all(|&b| b == rig.stamp)
                            });
                            prop_assert!(ok, "write to page {pfn:#x} landed nowhere the model allows");
                        }
                        for hpa in changed {
                            let explained = IovaRange::from_start_len(start, len)
                                .unwrap()
                                .pages(PageSize::Size4K)
                                .any(|p| {
                                    model
                                        .candidates(p.raw() >> 12)
                                        .into_iter()
                                        .flatten()
                                        .any(|(h, _)| h == hpa)
                                });
                            prop_assert!(explained, "write changed unrelated page {hpa:#x}");
                        }
                    }
                    Err(fault) => {
                        check_fault(&model, &fault, Access::WRITE)?;
                        prop_assert!(changed.is_empty(), "a faulting write changed {changed:x?}");
                    }
                }
            }
        }
    }
    // Tear down: everything unmapped and invalidated leaves only the root table.
    rig.domain
        .unmap(IovaRange::new(Iova::ZERO, Iova::new((TOP << 12) - 1)).unwrap())
        .unwrap();
    rig.domain.invalidate(Invalidation::Domain).unwrap();
    prop_assert_eq!(rig.domain.table_frames(), 1);
    let mut b = [0u8; 1];
    for pfn in [0u64, 511, 1024, TOP - 1] {
        let fault = rig.port.read(iova(pfn), &mut b).unwrap_err();
        prop_assert_eq!(fault.reason, FaultReason::NotPresent);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn non_coherent_domain_matches_model(ops in prop::collection::vec(op(), 1..400)) {
        run(ops, false)?;
    }

    #[test]
    fn coherent_domain_matches_model(ops in prop::collection::vec(op(), 1..400)) {
        run(ops, true)?;
    }
}
