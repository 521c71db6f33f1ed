//! The selftest's access objects (`struct selftest_access` of Linux
//! `drivers/iommu/iommufd/selftest.c`): `IOMMU_TEST_OP_CREATE_ACCESS` makes an access on an IOAS
//! and hands back a file descriptor for it; `ACCESS_PAGES` / `DESTROY_ACCESS_PAGES` pin and unpin
//! through it (each pin an "item" with an id), `ACCESS_RW` copies through it, and
//! `ACCESS_REPLACE_IOAS` moves it. When the IOAS unmaps a range, the access's notifier unpins the
//! items it touches (`iommufd_test_access_unmap`). Closing the descriptor
//! ([`Iommufd::close_access_fd`], `iommufd_test_staccess_release`) unpins everything and destroys
//! the access.
//!
//! The descriptors are numbers of this context only, from [`ACCESS_FD_BASE`] up: above every
//! descriptor the default `fs.nr_open` (1 << 20) lets a process hold, so they cannot be mistaken
//! for a real file. A number that names no access answers `EBADFD`, as `iommufd_access_get` does
//! for a descriptor that is not open or is not an access.

use super::{Iommufd, IommufdError, Object, UserMemory};
use crate::ioas::{AccessId, AccessNotify, IoPageTable};
use crate::object::{ObjectError, ObjectType, UserRef};
use crate::uapi::UserPtr;
use crate::uapi::selftest::{AccessPagesFlags, AccessRwFlags, CreateAccessFlags, TestCmd, TestReply};
use parking_lot::Mutex;
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use uvfio_types::{HostVa, Hpa, Iova, IovaRange, PageSize};

const PAGE: u64 = PageSize::Size4K.bytes();

/// The first access descriptor number.
pub const ACCESS_FD_BASE: i32 = 1 << 30;

/// The access descriptors of one context.
#[derive(Debug, Default)]
pub(super) struct AccessFds {
    table: Mutex<FdTable>,
}

#[derive(Debug, Default)]
struct FdTable {
    open: BTreeMap<i32, OpenAccess>,
    next: i32,
}

/// One open access descriptor: the access and the use it keeps of its own object (the driver is
/// a user until `iommufd_access_destroy`, so `IOMMU_DESTROY` of it is `EBUSY`).
#[derive(Debug)]
struct OpenAccess {
    access: Arc<TestAccess>,
    _self_use: UserRef,
}

/// An access object (`struct iommufd_access` with the selftest's `struct selftest_access`).
#[derive(Debug)]
pub struct TestAccess {
    id: AccessId,
    /// `selftest_access_ops_pin` (`needs_pin_pages = 1`) rather than `selftest_access_ops`.
    needs_pin: bool,
    /// `access->ioas`, with the use the access keeps of it.
    ioas: Mutex<Option<(Arc<IoPageTable>, UserRef)>>,
    /// `staccess->items` and `staccess->next_id`, under `staccess->lock`.
    items: Mutex<Items>,
}

#[derive(Debug, Default)]
struct Items {
    list: Vec<Item>,
    next_id: u32,
}

/// `struct selftest_access_item`: one `ACCESS_PAGES` pin.
#[derive(Debug, Clone, Copy)]
struct Item {
    iova: Iova,
    length: u64,
    id: u32,
}

impl Item {
    fn overlaps(&self, range: IovaRange) -> bool {
        IovaRange::from_start_len(self.iova, self.length).is_ok_and(|r| r.overlaps(&range))
    }
}

/// The notifier an access gives one IOAS: it unpins the access's items from that IOAS.
struct Notifier {
    access: Weak<TestAccess>,
    ioas: Weak<IoPageTable>,
}

impl AccessNotify for Notifier {
    /// `iommufd_test_access_unmap`: every item that intersects `range` is unpinned and dropped.
    fn unmap(&self, range: IovaRange) {
        if let (Some(access), Some(ioas)) = (self.access.upgrade(), self.ioas.upgrade()) {
            access.unpin_items(&ioas, range);
        }
    }
}

impl TestAccess {
    fn unpin_items(&self, ioas: &IoPageTable, range: IovaRange) {
        let mut items = self.items.lock();
        items.list.retain(|item| {
            if !item.overlaps(range) {
                return true;
            }
            // The item's pin exists (it was recorded after a successful pin), so this cannot fail.
            let _ = ioas.unpin_for_access(item.iova, item.length, self.id);
            false
        });
    }

    /// Attaches to `ioas` (`iopt_add_access`).
    fn attach(self: &Arc<Self>, ioas: &Arc<IoPageTable>) -> Result<(), IommufdError> {
        let notify = Arc::new(Notifier {
            access: Arc::downgrade(self),
            ioas: Arc::downgrade(ioas),
        });
        Ok(ioas.add_access(self.id, notify, self.needs_pin)?)
    }

    /// The IOAS the access is attached to (`ENOENT` if none, as `!access->ioas`).
    fn current_ioas(&self) -> Result<Arc<IoPageTable>, IommufdError> {
        self.ioas
            .lock()
            .as_ref()
            .map(|(ioas, _)| Arc::clone(ioas))
            .ok_or(IommufdError::Ioas(crate::ioas::IoasError::AccessUnknown(self.id)))
    }
}

impl Iommufd {
    /// The access behind descriptor `fd` (`iommufd_access_get`: `EBADFD`).
    fn access_fd(&self, fd: i32) -> Result<Arc<TestAccess>, IommufdError> {
        self.access_fds
            .table
            .lock()
            .open
            .get(&fd)
            .map(|o| Arc::clone(&o.access))
            .ok_or(IommufdError::BadAccessFd(fd))
    }

    /// The access ops of `IOMMU_TEST_CMD`; `None` for the other ops.
    pub(super) fn test_access_cmd(
        &self,
        cmd: &TestCmd,
        user: &dyn UserMemory,
    ) -> Option<Result<Option<TestReply>, IommufdError>> {
        let result = match *cmd {
            TestCmd::CreateAccess { ioas_id, flags } => self.create_access(ioas_id, flags).map(Some),
            TestCmd::AccessPages {
                access_fd,
                flags,
                iova,
                length,
                uptr,
            } => self.access_pages(access_fd, flags, iova, length, uptr).map(Some),
            TestCmd::DestroyAccessPages {
                access_fd,
                access_pages_id,
            } => self
                .destroy_access_pages(access_fd, access_pages_id)
                .map(|()| None),
            TestCmd::AccessRw {
                access_fd,
                flags,
                iova,
                length,
                uptr,
            } => self
                .access_rw(access_fd, flags, iova, length, uptr, user)
                .map(|()| None),
            TestCmd::AccessReplaceIoas { access_fd, ioas_id } => {
                self.access_replace_ioas(access_fd, ioas_id).map(|()| None)
            }
            _ => return None,
        };
        Some(result)
    }

    /// `IOMMU_TEST_OP_CREATE_ACCESS` (`iommufd_test_create_access`): an access object
    /// (`iommufd_access_create`) attached to IOAS `ioas_id` (`iommufd_access_attach`: `ENOENT`
    /// for no such IOAS, `EADDRINUSE` if a pinning access's alignment does not fit the areas),
    /// and a new descriptor for it. All undone on failure.
    fn create_access(&self, ioas_id: u32, flags: CreateAccessFlags) -> Result<TestReply, IommufdError> {
        let reservation = self.objects.reserve(ObjectType::Access)?;
        let id = reservation.id();
        let (obj, ioas_use) = self.objects.get_with_user(ioas_id, ObjectType::Ioas)?;
        let Object::Ioas(ioas) = obj else {
            return Err(ObjectError::NotFound(ioas_id).into());
        };
        let access = Arc::new(TestAccess {
            id: AccessId(id.raw()),
            needs_pin: flags.contains(CreateAccessFlags::NEEDS_PIN_PAGES),
            ioas: Mutex::new(None),
            items: Mutex::new(Items::default()),
        });
        access.attach(&ioas)?;
        *access.ioas.lock() = Some((ioas, ioas_use));
        reservation.finalize(Object::Access(Arc::clone(&access)));
        let self_use = match self.objects.get_with_user(id.raw(), ObjectType::Access) {
            Ok((_, u)) => u,
            Err(e) => {
                self.destroy_access(&access);
                return Err(e.into());
            }
        };
        let mut table = self.access_fds.table.lock();
        let fd = ACCESS_FD_BASE.saturating_add(table.next);
        table.next = table.next.saturating_add(1);
        table.open.insert(
            fd,
            OpenAccess {
                access,
                _self_use: self_use,
            },
        );
        Ok(TestReply::CreateAccess { access_fd: fd })
    }

    /// Closes access descriptor `fd` (`iommufd_test_staccess_release`): every item is unpinned
    /// (`iommufd_test_access_unmap(staccess, 0, ULONG_MAX)`), the access leaves its IOAS and its
    /// object goes (`iommufd_access_destroy`). `EBADF` if `fd` is not an open access descriptor.
    pub fn close_access_fd(&self, fd: i32) -> Result<(), IommufdError> {
        let open = self
            .access_fds
            .table
            .lock()
            .open
            .remove(&fd)
            .ok_or(crate::ctx::BadFd(fd))?;
        let OpenAccess { access, _self_use } = open;
        drop(_self_use);
        self.destroy_access(&access);
        Ok(())
    }

    /// The open access descriptors, in order (a leak check: none after `close`).
    pub fn access_fds(&self) -> Vec<i32> {
        self.access_fds.table.lock().open.keys().copied().collect()
    }

    /// Closes every access descriptor (the context is closing).
    pub(super) fn close_all_access_fds(&self) {
        for fd in self.access_fds() {
            // Each was open a moment ago and only this closes them.
            let _ = self.close_access_fd(fd);
        }
    }

    /// Unpins, detaches and destroys `access` (its object has no user left).
    fn destroy_access(&self, access: &TestAccess) {
        if let Some((ioas, ioas_use)) = access.ioas.lock().take() {
            access.unpin_items(&ioas, IovaRange::full());
            // Nothing is pinned any more, so the detach cannot find a pin left (`EDEADLK`).
            let _ = ioas.remove_access(access.id);
            drop(ioas_use);
        }
        drop(self.objects.destroy(access.id.0));
    }

    /// `IOMMU_TEST_OP_ACCESS_PAGES` (`iommufd_test_access_pages`): pins `iova..+length` through
    /// the access and records the pin as a new item. `EBADFD` (no such access), `EOPNOTSUPP`
    /// (the access was created without `NEEDS_PIN_PAGES`), then `iommufd_access_pin_pages`'s
    /// errnos; with `uptr`, the pinned pages must be the caller's pages at `uptr` (from the page
    /// holding `iova`'s offset): `EFAULT` for unmapped memory there, `EBADE` for a different page
    /// (`iommufd_test_check_pages`), the pin undone.
    fn access_pages(
        &self,
        fd: i32,
        flags: AccessPagesFlags,
        iova: Iova,
        length: u64,
        uptr: Option<HostVa>,
    ) -> Result<TestReply, IommufdError> {
        let access = self.access_fd(fd)?;
        if !access.needs_pin {
            return Err(IommufdError::Unsupported(
                "access_pages on an access that does not pin",
            ));
        }
        let ioas = access.current_ioas()?;
        let mut items = access.items.lock();
        let hpas = ioas.pin_for_access(iova, length, flags.contains(AccessPagesFlags::WRITE), access.id)?;
        if let Some(uptr) = uptr
            && let Err(e) = self.check_pages(uptr, iova, &hpas)
        {
            // The pin just made exists, so the unpin cannot fail.
            let _ = ioas.unpin_for_access(iova, length, access.id);
            return Err(e);
        }
        let id = items.next_id;
        items.next_id = items.next_id.wrapping_add(1);
        items.list.push(Item { iova, length, id });
        Ok(TestReply::AccessPages { access_pages_id: id })
    }

    /// `iommufd_test_check_pages(uptr - (iova - ALIGN_DOWN(iova, PAGE_SIZE)), pages, npages)`.
    fn check_pages(&self, uptr: HostVa, iova: Iova, hpas: &[Hpa]) -> Result<(), IommufdError> {
        let fault = IommufdError::CheckFailed {
            what: "uptr is not mapped",
            errno: Errno::FAULT,
        };
        let start = uptr.raw().checked_sub(iova.raw() % PAGE).ok_or(fault)?;
        for (i, hpa) in (0u64..).zip(hpas) {
            let fault = IommufdError::CheckFailed {
                what: "uptr is not mapped",
                errno: Errno::FAULT,
            };
            let va = start.checked_add(i * PAGE).map(HostVa::new).ok_or(fault)?;
            uvfio_memory::probe_user_range(va.align_down(PageSize::Size4K), PAGE, false).map_err(|_| {
                IommufdError::CheckFailed {
                    what: "uptr is not mapped",
                    errno: Errno::FAULT,
                }
            })?;
            let host = self.mem.host_ptr(*hpa, 1).ok().map(|p| p.as_ptr().addr() as u64);
            if host != Some(va.align_down(PageSize::Size4K).raw()) {
                return Err(IommufdError::CheckFailed {
                    what: "a pinned page is not the caller's page at uptr",
                    errno: Errno::BADE,
                });
            }
        }
        Ok(())
    }

    /// `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES` (`iommufd_test_access_item_destroy`): unpins item
    /// `item_id`. `EBADFD` (no such access), `ENOENT` (no such item: never made, destroyed, or
    /// unpinned by an unmap).
    fn destroy_access_pages(&self, fd: i32, item_id: u32) -> Result<(), IommufdError> {
        let access = self.access_fd(fd)?;
        let ioas = access.current_ioas()?;
        let mut items = access.items.lock();
        let at = items
            .list
            .iter()
            .position(|i| i.id == item_id)
            .ok_or(IommufdError::NoSuchItem(item_id))?;
        let item = items.list.remove(at);
        // The item's pin exists, so the unpin cannot fail.
        let _ = ioas.unpin_for_access(item.iova, item.length, access.id);
        Ok(())
    }

    /// `IOMMU_TEST_OP_ACCESS_RW` (`iommufd_test_access_rw`): `EBADFD`; for a write the caller's
    /// bytes are read first (`EFAULT`); `iommufd_access_rw`'s errnos; for a read the bytes go to
    /// the caller last (`EFAULT`, the IOAS untouched either way).
    fn access_rw(
        &self,
        fd: i32,
        flags: AccessRwFlags,
        iova: Iova,
        length: u64,
        uptr: UserPtr,
        user: &dyn UserMemory,
    ) -> Result<(), IommufdError> {
        let access = self.access_fd(fd)?;
        // `length` is at most 16 MiB (checked by the decoder).
        let len = usize::try_from(length).map_err(|_| IommufdError::Invalid("length"))?;
        let mut tmp = vec![0u8; len];
        let write = flags.contains(AccessRwFlags::WRITE);
        if write {
            user.read(uptr, &mut tmp)?;
        }
        let ioas = access.current_ioas()?;
        ioas.access_rw(access.id, iova, &mut tmp, write)?;
        if !write {
            user.write(uptr, &tmp)?;
        }
        Ok(())
    }

    /// `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS` (`iommufd_access_replace`): `EBADFD`; `ENOENT` for no
    /// such IOAS; the same IOAS is a no-op; else the access joins the new IOAS (its errnos, nothing
    /// changed), then the old one tells it to drop every item (`ops->unmap(0, ULONG_MAX)`) and lets
    /// it go.
    fn access_replace_ioas(&self, fd: i32, ioas_id: u32) -> Result<(), IommufdError> {
        let access = self.access_fd(fd)?;
        let (obj, new_use) = self.objects.get_with_user(ioas_id, ObjectType::Ioas)?;
        let Object::Ioas(new_ioas) = obj else {
            return Err(ObjectError::NotFound(ioas_id).into());
        };
        let old = {
            let mut slot = access.ioas.lock();
            if let Some((cur, _)) = slot.as_ref()
                && Arc::ptr_eq(cur, &new_ioas)
            {
                return Ok(());
            }
            access.attach(&new_ioas)?;
            slot.replace((new_ioas, new_use))
        };
        if let Some((old_ioas, old_use)) = old {
            access.unpin_items(&old_ioas, IovaRange::full());
            // Nothing is pinned there any more: the detach cannot fail.
            let _ = old_ioas.remove_access(access.id);
            drop(old_use);
        }
        Ok(())
    }
}
