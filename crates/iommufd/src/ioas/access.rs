//! Accesses: an emulated device's view of an IOAS, for a device without a domain of its own
//! (Linux `struct iommufd_access`, `drivers/iommu/iommufd/device.c` and `pages.c`).
//!
//! An access is attached to an IOAS with a notifier ([`AccessNotify`], Linux's
//! `iommufd_access_ops::unmap`). It may pin the pages of a mapped range and use their HPAs
//! ([`IoPageTable::pin_for_access`], `iommufd_access_pin_pages`) until it unpins exactly that range
//! again ([`IoPageTable::unpin_for_access`]); or copy bytes to and from a mapped range without a
//! lasting pin ([`IoPageTable::access_rw`], `iommufd_access_rw`). Access pins are holders of the
//! pages like a domain's: they are charged once per `Pages` whoever pins first.
//!
//! An unmap of an area an access pins first marks the area (new access pins and reads fail with
//! `EINVAL`), drops the IOAS lock and calls every attached access's notifier with the area's range,
//! which must unpin; then it looks again. An area still pinned after that is `EDEADLK` (Linux
//! WARNs and answers `-EDEADLOCK`), with nothing removed. Detaching an access
//! ([`IoPageTable::remove_access`]) first notifies it of the whole IOVA space, as
//! `iommufd_access_change_ioas` does.

use super::{IoPageTable, IoasError, PAGE, Slice};
use crate::fail::Site;
use crate::iova_space::{AreaId, range_from_user};
use crate::pages::{Pages, PagesError};
use std::sync::Arc;
use uvfio_types::{Access, Hpa, Iova, IovaRange};

/// An access attached to an IOAS: the access object's id in the iommufd object table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessId(pub u32);

/// What the owner of an access (an emulated device) gives the IOAS: Linux
/// `iommufd_access_ops::unmap`.
pub trait AccessNotify: Send + Sync {
    /// The IOAS is about to unmap `range`: before returning, stop using the pages of every pin
    /// that intersects `range` and unpin it ([`IoPageTable::unpin_for_access`]). Called without
    /// the IOAS lock held, so the unpin may be called from here.
    fn unmap(&self, range: IovaRange);
}

/// One access attached to the IOAS.
pub(super) struct AccessEntry {
    pub(super) notify: Arc<dyn AccessNotify>,
    /// `iommufd_access_ops::needs_pin_pages`: the access pins, so the IOAS's IOVA alignment
    /// becomes `PAGE_SIZE` (`access->iova_alignment`).
    pub(super) needs_pin_pages: bool,
    /// Set while it is being detached (`access->ioas == NULL`): pins and reads are refused, unpins
    /// still work (`access->ioas_unpin`).
    detaching: bool,
    pins: Vec<AccessPin>,
}

impl std::fmt::Debug for AccessEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessEntry")
            .field("needs_pin_pages", &self.needs_pin_pages)
            .field("detaching", &self.detaching)
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

impl AccessEntry {
    /// Drops every pin of the access (an IOAS going away with the access still attached).
    pub(super) fn release_all(&mut self) {
        for pin in self.pins.drain(..) {
            for slice in pin.slices {
                let _ = slice.pages.unpin(slice.first, slice.last);
            }
        }
    }
}

/// One `pin_for_access` call: the range as given, and the pages it holds in each area.
#[derive(Debug)]
struct AccessPin {
    range: IovaRange,
    slices: Vec<PinnedSlice>,
}

#[derive(Debug)]
struct PinnedSlice {
    area: AreaId,
    pages: Arc<Pages>,
    first: u64,
    last: u64,
}

impl IoPageTable {
    /// Attaches access `id` (Linux `iopt_add_access`, through `iommufd_access_attach`). An access
    /// that `needs_pin_pages` raises the IOVA alignment to `PAGE_SIZE`: `EADDRINUSE` if an area does
    /// not meet it. `EEXIST` if `id` is attached already.
    pub fn add_access(
        &self,
        id: AccessId,
        notify: Arc<dyn AccessNotify>,
        needs_pin_pages: bool,
    ) -> Result<(), IoasError> {
        let mut inner = self.inner.lock();
        if inner.accesses.contains_key(&id) {
            return Err(IoasError::AccessExists(id));
        }
        // `xa_alloc` of the access list.
        self.fail.step(Site::Alloc).map_err(IoasError::Injected)?;
        let entry = AccessEntry {
            notify,
            needs_pin_pages,
            detaching: false,
            pins: Vec::new(),
        };
        inner.accesses.insert(id, entry);
        if let Err(e) = inner.recalc_alignment() {
            inner.accesses.remove(&id);
            return Err(e.into());
        }
        Ok(())
    }

    /// Detaches access `id` (`iommufd_access_change_ioas` to none): its notifier is told to drop
    /// every pin (`ops->unmap(0, ULONG_MAX)`, without the IOAS lock), then it leaves and the IOVA
    /// alignment is recomputed. `ENOENT` if it is not attached (or already detaching); `EDEADLK`
    /// if it kept a pin, in which case it stays attached.
    pub fn remove_access(&self, id: AccessId) -> Result<(), IoasError> {
        let notify = {
            let mut inner = self.inner.lock();
            let entry = inner
                .accesses
                .get_mut(&id)
                .filter(|e| !e.detaching)
                .ok_or(IoasError::AccessUnknown(id))?;
            entry.detaching = true;
            Arc::clone(&entry.notify)
        };
        notify.unmap(IovaRange::full());
        let mut inner = self.inner.lock();
        if let Some(entry) = inner.accesses.get_mut(&id)
            && let Some(pin) = entry.pins.first()
        {
            let range = pin.range;
            entry.detaching = false;
            return Err(IoasError::AccessStillPinned { range });
        }
        inner.accesses.remove(&id);
        // A lowering (or no change): it cannot fail.
        let _ = inner.recalc_alignment();
        Ok(())
    }

    /// `iommufd_access_pin_pages`: pins the pages under `len` bytes at `iova` for access `owner`
    /// (for writing if `writable`) and answers the HPA of each 4 KiB page, in order. The pin lasts
    /// until [`unpin_for_access`](Self::unpin_for_access) of exactly the same range. All or nothing.
    ///
    /// Refused, in Linux's order: `len == 0` (`EINVAL`), a range past the end of the IOVA space
    /// (`EOVERFLOW`), an access not attached (`ENOENT`) or attached without `needs_pin_pages`
    /// (`EINVAL`); then area by area: one being unmapped (`EINVAL`), a range that does not start on
    /// a page of the area's pages or leaves an area before its last byte ends a page
    /// (`iopt_area_contig_is_aligned` → `EINVAL`), an area that does not grant the access
    /// (`check_area_prot` → `EPERM`: write needs `WRITE`, read needs `READ`), read-only pages asked
    /// for writing (`EPERM`), the pin itself (`EFAULT`, `ENOMEM`); finally a gap (`ENOENT`).
    pub fn pin_for_access(
        &self,
        iova: Iova,
        len: u64,
        writable: bool,
        owner: AccessId,
    ) -> Result<Vec<Hpa>, IoasError> {
        let range = range_from_user(iova, len)?;
        let mut inner = self.inner.lock();
        let entry = inner
            .accesses
            .get(&owner)
            .filter(|e| !e.detaching)
            .ok_or(IoasError::AccessUnknown(owner))?;
        if !entry.needs_pin_pages {
            return Err(IoasError::AccessCannotPin(owner));
        }
        let (slices, complete) = inner.contiguous(range);
        let mut pinned = Vec::with_capacity(slices.len());
        let mut hpas = Vec::new();
        let mut failed = None;
        for slice in &slices {
            match self.pin_slice(slice, range, writable) {
                Ok((first, last, hpa)) => {
                    if let Err(e) = push_pages(&mut hpas, hpa, first, last) {
                        let _ = slice.data.pages.unpin(first, last);
                        failed = Some(e);
                        break;
                    }
                    pinned.push(PinnedSlice {
                        area: slice.area_id,
                        pages: Arc::clone(&slice.data.pages),
                        first,
                        last,
                    });
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() && !complete {
            failed = Some(IoasError::NotContiguous { range });
        }
        if let Some(e) = failed {
            for p in pinned {
                let _ = p.pages.unpin(p.first, p.last);
            }
            return Err(e);
        }
        for p in &pinned {
            if let Some((_, data)) = inner.space.area_mut(p.area) {
                data.accesses += 1;
            }
        }
        if let Some(entry) = inner.accesses.get_mut(&owner) {
            entry.pins.push(AccessPin {
                range,
                slices: pinned,
            });
        }
        Ok(hpas)
    }

    /// The checks and the pin of one area slice of an access pin (the loop body of
    /// `iommufd_access_pin_pages` with `iopt_area_add_access`). Answers the pages pinned and the
    /// HPA of the first.
    fn pin_slice(
        &self,
        slice: &Slice,
        range: IovaRange,
        writable: bool,
    ) -> Result<(u64, u64, Hpa), IoasError> {
        if slice.data.prevent_access {
            return Err(IoasError::AccessPrevented { area: slice.area });
        }
        let starts_page = slice.start_byte_at(slice.range.start()) % PAGE == 0;
        let reaches_end = slice.area.last() >= range.last();
        let ends_page = reaches_end || slice.start_byte_at(slice.area.last()) % PAGE == PAGE - 1;
        if !starts_page || !ends_page {
            return Err(IoasError::AccessUnaligned {
                range,
                area: slice.area,
            });
        }
        check_area_prot(slice, writable)?;
        if writable && !slice.data.pages.writable() {
            return Err(IoasError::ReadOnlyPages {
                iova: slice.range.start(),
            });
        }
        let (first, last) = slice.page_span();
        self.fail.step(Site::Pin).map_err(IoasError::Injected)?;
        let hpa = slice.data.pages.pin(first, last)?;
        Ok((first, last, hpa))
    }

    /// `iommufd_access_unpin_pages`: drops the pin access `owner` took of exactly `len` bytes at
    /// `iova` (one of them, if it pinned the range more than once). The caller has stopped using
    /// the pages. Works while the access is detaching (from its notifier). `ENOENT` for an access
    /// not attached; `EINVAL` for a range it has no pin of (Linux `WARN_ON`s).
    pub fn unpin_for_access(&self, iova: Iova, len: u64, owner: AccessId) -> Result<(), IoasError> {
        let range = range_from_user(iova, len)?;
        let mut inner = self.inner.lock();
        let entry = inner
            .accesses
            .get_mut(&owner)
            .ok_or(IoasError::AccessUnknown(owner))?;
        let at = entry
            .pins
            .iter()
            .rposition(|p| p.range == range)
            .ok_or(IoasError::AccessNotPinned { access: owner, range })?;
        let pin = entry.pins.remove(at);
        for slice in pin.slices {
            // The access held these pages, so the unpin cannot fail.
            let _ = slice.pages.unpin(slice.first, slice.last);
            if let Some((_, data)) = inner.space.area_mut(slice.area) {
                data.accesses = data.accesses.saturating_sub(1);
            }
        }
        Ok(())
    }

    /// The ranges access `owner` holds pinned, in the order it pinned them (for inspection).
    pub fn access_pins(&self, owner: AccessId) -> Vec<IovaRange> {
        let inner = self.inner.lock();
        inner
            .accesses
            .get(&owner)
            .map(|e| e.pins.iter().map(|p| p.range).collect())
            .unwrap_or_default()
    }

    /// `iommufd_access_rw`: copies `buf.len()` bytes from (`write == false`) or to (`write ==
    /// true`) the pages mapped at `iova`, for access `owner`, through the host's memory at the
    /// pages' HPAs. The pages are pinned only for the copy (the slow path of
    /// `iopt_pages_rw_access`). All or nothing: every area is checked and pinned before a byte
    /// moves.
    ///
    /// Refused: `buf` empty (`EINVAL`), a range past the end of the IOVA space (`EOVERFLOW`), an
    /// access not attached (`ENOENT`); an area being unmapped (`EINVAL`), an area that does not
    /// grant the access (`EPERM`), read-only pages written (`EPERM`); a gap (`ENOENT`); the pin
    /// (`EFAULT`, `ENOMEM`). Linux checks and copies area by area, so where it would copy the
    /// bytes before a gap and then answer `ENOENT`, uvfio copies nothing.
    pub fn access_rw(
        &self,
        owner: AccessId,
        iova: Iova,
        buf: &mut [u8],
        write: bool,
    ) -> Result<(), IoasError> {
        let range = range_from_user(iova, buf.len() as u64)?;
        let inner = self.inner.lock();
        if inner.accesses.get(&owner).is_none_or(|e| e.detaching) {
            return Err(IoasError::AccessUnknown(owner));
        }
        let (slices, complete) = inner.contiguous(range);
        for slice in &slices {
            if slice.data.prevent_access {
                return Err(IoasError::AccessPrevented { area: slice.area });
            }
            check_area_prot(slice, write)?;
            if write && !slice.data.pages.writable() {
                return Err(IoasError::ReadOnlyPages {
                    iova: slice.range.start(),
                });
            }
        }
        if !complete {
            return Err(IoasError::NotContiguous { range });
        }
        let mut pinned: Vec<(&Slice, u64, u64, Hpa)> = Vec::with_capacity(slices.len());
        let mut result = Ok(());
        for slice in &slices {
            let (first, last) = slice.page_span();
            let pin = self
                .fail
                .step(Site::Pin)
                .map_err(IoasError::Injected)
                .and_then(|()| Ok(slice.data.pages.pin(first, last)?));
            match pin {
                Ok(hpa) => pinned.push((slice, first, last, hpa)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = self.copy_slices(&pinned, buf, write);
        }
        for &(slice, first, last, _) in &pinned {
            let _ = slice.data.pages.unpin(first, last);
        }
        result
    }

    /// Moves the bytes of `buf` to or from the pinned slices, in order.
    fn copy_slices(
        &self,
        pinned: &[(&Slice, u64, u64, Hpa)],
        buf: &mut [u8],
        write: bool,
    ) -> Result<(), IoasError> {
        let mut done = 0usize;
        for &(slice, first, last, hpa) in pinned {
            let len = usize::try_from(slice.len()).map_err(|_| out_of_range(slice, first, last))?;
            let in_page = slice.start_byte_at(slice.range.start()) % PAGE;
            let at = hpa
                .checked_add(in_page)
                .ok_or_else(|| out_of_range(slice, first, last))?;
            let chunk = buf
                .get_mut(done..done + len)
                .ok_or_else(|| out_of_range(slice, first, last))?;
            if write {
                self.mem.write(at, chunk).map_err(IoasError::Memory)?;
            } else {
                self.mem.read(at, chunk).map_err(IoasError::Memory)?;
            }
            done += len;
        }
        Ok(())
    }
}

/// Linux `check_area_prot`: a write needs `IOMMU_WRITE`, a read `IOMMU_READ` (`EPERM`).
fn check_area_prot(slice: &Slice, write: bool) -> Result<(), IoasError> {
    let needed = if write { Access::WRITE } else { Access::READ };
    if slice.data.prot.contains(needed) {
        Ok(())
    } else {
        Err(IoasError::AreaProt {
            area: slice.area,
            granted: slice.data.prot,
            needed,
        })
    }
}

/// Appends the HPA of every page `first..=last`, contiguous from `hpa`.
fn push_pages(out: &mut Vec<Hpa>, hpa: Hpa, first: u64, last: u64) -> Result<(), IoasError> {
    for i in 0..=(last - first) {
        let page = hpa
            .checked_add(i * PAGE)
            .ok_or(IoasError::Pages(PagesError::OutOfRange {
                first,
                last,
                npages: last - first + 1,
            }))?;
        out.push(page);
    }
    Ok(())
}

fn out_of_range(slice: &Slice, first: u64, last: u64) -> IoasError {
    IoasError::Pages(PagesError::OutOfRange {
        first,
        last,
        npages: slice.data.pages.npages(),
    })
}
