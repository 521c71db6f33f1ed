//! What a no-IOMMU driver needs from the rest of the system: `mlock()` to keep its buffers in
//! place, `/proc/self/pagemap` to learn their physical addresses, and the taint the unsafe mode
//! leaves (`/proc/sys/kernel/tainted`).
//!
//! In the emulated machine a page of the process has a host physical address only while it is
//! locked: [`Host::mlock`] adopts the pages into host memory (a segment of the HPA space, pinned
//! and charged to `mm->locked_vm`, `ENOMEM` past its limit), [`Host::munlock`] gives them back.
//! A pagemap entry is the kernel's 64-bit format (Documentation/admin-guide/mm/pagemap.rst):
//! "Bits 0-54 page frame number (PFN) if present", "Bit 63 page present"; "Since Linux 4.2 ...
//! the PFNs are zeroed if the user does not have CAP_SYS_ADMIN". Reads must be whole, aligned
//! entries (`EINVAL` otherwise, as `pagemap_read()` checks). A page that is not locked reads as
//! not present: unlike Linux, an unlocked page has no physical address here.

use super::Host;
use rustix::io::Errno;
use uvfio_iommufd::ctx::UserMemory;
use uvfio_types::{HostVa, HpaRange, PageSize};

/// The path of the pagemap file.
pub const PROC_PAGEMAP: &str = "/proc/self/pagemap";
/// The path of the kernel's taint mask.
pub const PROC_TAINTED: &str = "/proc/sys/kernel/tainted";

/// `TAINT_USER` ("U"): what the no-IOMMU mode adds (`add_taint(TAINT_USER, ...)`).
pub const TAINT_USER: u64 = 1 << 6;

/// `PM_PRESENT`.
const PM_PRESENT: u64 = 1 << 63;
/// `PM_PFRAME_MASK`: bits 0–54.
const PM_PFRAME_MASK: u64 = (1 << 55) - 1;
const PM_ENTRY_BYTES: u64 = 8;
const PAGE: u64 = 4096;

/// A locked range of the process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Locked {
    /// First page.
    va: HostVa,
    /// Length in bytes, whole pages.
    bytes: u64,
    /// Where its pages sit in host memory.
    hpa: HpaRange,
}

impl Locked {
    fn pages(&self) -> u64 {
        self.bytes / PAGE
    }

    /// One past its last byte (it was checked not to wrap when locked).
    fn end(&self) -> u64 {
        self.va.raw() + self.bytes
    }

    fn contains(&self, va: u64) -> bool {
        va >= self.va.raw() && va < self.end()
    }
}

impl Host {
    /// `mlock(va, len)`: the pages holding `[va, va + len)` stay resident and get host physical
    /// addresses. `EINVAL` for an empty or wrapping range, `ENOMEM` for memory that is not
    /// mapped or past `RLIMIT_MEMLOCK` (Linux's errnos for both), `EBUSY` for a range overlapping
    /// one locked already (a simplification: Linux merges).
    pub fn mlock(&self, va: u64, len: u64) -> Result<(), Errno> {
        let (first, bytes) = page_span(va, len)?;
        let mut locked = self.locked.lock();
        if locked.iter().any(|l| overlaps(l, first.raw(), bytes)) {
            return Err(Errno::BUSY);
        }
        // Faulting the pages in is what tells mapped from unmapped memory.
        uvfio_memory::probe_user_range(first, bytes, true).map_err(|_| Errno::NOMEM)?;
        let pages = bytes / PAGE;
        self.accounts.mm.charge(pages).map_err(|_| Errno::NOMEM)?;
        let buf = crate::sys::ProcessMemory.buffer(first, bytes);
        let adopted = self
            .mem
            .adopt_buffer(&buf)
            .and_then(|hpa| match self.mem.pin(hpa) {
                Ok(()) => Ok(hpa),
                Err(e) => {
                    // Nothing holds the fresh segment: it goes at once.
                    drop(self.mem.release(hpa));
                    Err(e)
                }
            });
        match adopted {
            Ok(hpa) => {
                locked.push(Locked {
                    va: first,
                    bytes,
                    hpa,
                });
                Ok(())
            }
            Err(e) => {
                self.accounts.mm.uncharge(pages);
                Err(e.errno())
            }
        }
    }

    /// `munlock(va, len)`: every locked range inside the pages of `[va, va + len)` is unlocked.
    /// A locked range only partly inside is `EINVAL` (a simplification: Linux splits it).
    pub fn munlock(&self, va: u64, len: u64) -> Result<(), Errno> {
        let (first, bytes) = page_span(va, len)?;
        let mut locked = self.locked.lock();
        let end = first.raw() + bytes;
        let partial =
            |l: &Locked| overlaps(l, first.raw(), bytes) && (l.va.raw() < first.raw() || l.end() > end);
        if locked.iter().any(partial) {
            return Err(Errno::INVAL);
        }
        let (gone, kept): (Vec<Locked>, Vec<Locked>) =
            locked.drain(..).partition(|l| overlaps(l, first.raw(), bytes));
        *locked = kept;
        for l in gone {
            self.unlock(l);
        }
        Ok(())
    }

    /// Unpins and releases a locked range and takes back its charge.
    pub(super) fn unlock(&self, l: Locked) {
        // The host pinned and adopted the range itself; nothing else pins a locked range's pages.
        let unpinned = self.mem.unpin(l.hpa).and_then(|()| self.mem.release(l.hpa));
        debug_assert!(unpinned.is_ok());
        self.accounts.mm.uncharge(l.pages());
    }

    /// Pages locked with [`Host::mlock`] now.
    pub fn locked_pages(&self) -> u64 {
        self.locked.lock().iter().map(Locked::pages).sum()
    }

    /// The kernel's taint mask, as `/proc/sys/kernel/tainted` shows it: [`TAINT_USER`] once a
    /// no-IOMMU group has been made.
    pub fn tainted(&self) -> u64 {
        if self.taint.is_tainted() { TAINT_USER } else { 0 }
    }

    /// `pread()` of the pagemap: entries for the pages at `offset / 8 ...`.
    pub(super) fn read_pagemap(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let len = buf.len() as u64;
        // if ((*ppos % PM_ENTRY_BYTES) || (count % PM_ENTRY_BYTES)) goto out; (-EINVAL)
        if offset % PM_ENTRY_BYTES != 0 || len % PM_ENTRY_BYTES != 0 {
            return Err(Errno::INVAL);
        }
        let locked = self.locked.lock();
        for (i, entry) in buf.chunks_exact_mut(PM_ENTRY_BYTES as usize).enumerate() {
            let page = offset / PM_ENTRY_BYTES + i as u64;
            let value = page
                .checked_mul(PAGE)
                .and_then(|va| locked.iter().find(|l| l.contains(va)).map(|l| (l, va)))
                .map_or(0, |(l, va)| {
                    let hpa = l.hpa.start().raw() + (va - l.va.raw());
                    let pfn = if self.creds.sys_admin {
                        (hpa / PAGE) & PM_PFRAME_MASK
                    } else {
                        0
                    };
                    PM_PRESENT | pfn
                });
            entry.copy_from_slice(&value.to_ne_bytes());
        }
        Ok(buf.len())
    }

    /// `pread()` of `/proc/sys/kernel/tainted`: the mask in decimal and a newline.
    pub(super) fn read_tainted(&self, offset: u64, buf: &mut [u8]) -> usize {
        let text = format!("{}\n", self.tainted());
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(text.len());
        let n = buf.len().min(text.len() - from);
        buf[..n].copy_from_slice(&text.as_bytes()[from..from + n]);
        n
    }
}

impl Drop for Host {
    /// The process exits: its locked memory is unlocked.
    fn drop(&mut self) {
        let locked = std::mem::take(self.locked.get_mut());
        for l in locked {
            self.unlock(l);
        }
    }
}

/// The whole pages holding `[va, va + len)`: first page and length in bytes.
fn page_span(va: u64, len: u64) -> Result<(HostVa, u64), Errno> {
    if len == 0 {
        return Err(Errno::INVAL);
    }
    let end = va.checked_add(len).ok_or(Errno::INVAL)?;
    let first = HostVa::new(va).align_down(PageSize::Size4K);
    let last = HostVa::new(end).align_up(PageSize::Size4K).ok_or(Errno::INVAL)?;
    let bytes = last.offset_from(first).ok_or(Errno::INVAL)?;
    Ok((first, bytes))
}

fn overlaps(l: &Locked, start: u64, bytes: u64) -> bool {
    start < l.end() && l.va.raw() < start.saturating_add(bytes)
}
