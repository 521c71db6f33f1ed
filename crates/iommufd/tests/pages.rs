//! `Pages`: lazy pinning, the pin_user_pages checks, per-`Pages` accounting, and that everything
//! (pins, charge, adopted segments) returns to baseline.

mod ioas_support;
use ioas_support::Buffer;

use std::sync::Arc;
use uvfio_iommufd::pages::{Account, Pages, PagesError};
use uvfio_memory::{HostMemory, MemoryConfig, UserBuffer};
use uvfio_types::{HostVa, PageSize};

fn memory() -> Arc<HostMemory> {
    Arc::new(
        HostMemory::new(MemoryConfig {
            ram_bytes: 16 << 20,
            ..MemoryConfig::default()
        })
        .unwrap(),
    )
}

#[test]
fn pinning_is_lazy_charges_each_page_once_per_pages_and_returns_to_baseline() {
    let mem = memory();
    let account = Arc::new(Account::new(None));
    let buf = Buffer::new(8);
    // Unaligned start and end: the pages holding bytes 0x10..0x2010 are pages 0..=2.
    let pages = Pages::new(
        Arc::clone(&mem),
        Arc::clone(&account),
        buf.user(0x10, 0x2000),
        true,
    )
    .unwrap();
    assert_eq!(pages.npages(), 3);
    assert_eq!(
        mem.stats().adopted_segments,
        0,
        "nothing happens before the first pin"
    );
    let hpa = pages.pin(0, 2).unwrap();
    assert_eq!(account.locked_pages(), 3);
    pages.pin(1, 1).unwrap(); // a second holder of page 1: no new charge
    assert_eq!(account.locked_pages(), 3);
    assert_eq!(mem.pin_count(hpa.checked_add(0x1000).unwrap()).unwrap(), 2);
    // The same buffer through a second Pages (a second IOAS_MAP) is charged again, as in Linux.
    let again = Pages::new(Arc::clone(&mem), Arc::clone(&account), buf.user(0, 0x1000), false).unwrap();
    again.pin(0, 0).unwrap();
    assert_eq!(account.locked_pages(), 4);
    again.unpin(0, 0).unwrap();
    pages.unpin(1, 1).unwrap();
    assert_eq!(account.locked_pages(), 3);
    pages.unpin(0, 2).unwrap();
    assert_eq!(account.locked_pages(), 0);
    assert_eq!(mem.account().locked_pages, 0);
    assert_eq!(mem.stats().adopted_segments, 0, "segments go with the last pin");
    drop(pages);
    drop(again);
}

#[test]
fn the_limit_refuses_with_enomem_and_changes_nothing() {
    let mem = memory();
    let account = Arc::new(Account::new(Some(2)));
    let buf = Buffer::new(4);
    let pages = Pages::new(
        Arc::clone(&mem),
        Arc::clone(&account),
        buf.user(0, 4 * 4096),
        true,
    )
    .unwrap();
    pages.pin(0, 1).unwrap();
    let err = pages.pin(1, 2).unwrap_err();
    assert!(
        matches!(
            err,
            PagesError::Limit {
                locked: 2,
                more: 1,
                limit: 2
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), rustix::io::Errno::NOMEM);
    assert_eq!(account.locked_pages(), 2);
    assert_eq!(pages.pinned(), 2);
    pages.pin(0, 1).unwrap(); // already charged pages need no room
    pages.unpin(0, 1).unwrap();
    pages.unpin(0, 1).unwrap();
    assert_eq!(account.locked_pages(), 0);
}

#[test]
fn pin_user_pages_checks_the_buffer() {
    let mem = memory();
    let account = Arc::new(Account::new(None));
    // Page 0 of the address space is never mapped.
    // SAFETY: nothing is ever adopted from it (the pin fails first).
    let nowhere = unsafe { UserBuffer::new(HostVa::new(0x1000), 0x1000) };
    let pages = Pages::new(Arc::clone(&mem), Arc::clone(&account), nowhere, false).unwrap();
    assert_eq!(pages.pin(0, 0).unwrap_err().errno(), rustix::io::Errno::FAULT);
    // Read-only memory (this function's code) cannot back a writable mapping.
    let text = HostVa::from_ptr(pin_user_pages_checks_the_buffer as *const ()).align_down(PageSize::Size4K);
    // SAFETY: program text stays mapped for the whole run.
    let code = unsafe { UserBuffer::new(text, 0x1000) };
    let writable = Pages::new(Arc::clone(&mem), Arc::clone(&account), code, true).unwrap();
    assert_eq!(writable.pin(0, 0).unwrap_err().errno(), rustix::io::Errno::FAULT);
    let readable = Pages::new(Arc::clone(&mem), Arc::clone(&account), code, false).unwrap();
    readable.pin(0, 0).unwrap();
    assert_eq!(
        mem.stats().adopted_segments,
        1,
        "pinned pages are in the host's physical space"
    );
    readable.unpin(0, 0).unwrap();
    assert_eq!(account.locked_pages(), 0);
    assert_eq!(
        mem.stats().adopted_segments,
        0,
        "and leave it with their last pin"
    );
}

#[test]
fn bad_ranges_and_unbalanced_unpins_are_errors() {
    let mem = memory();
    let account = Arc::new(Account::new(None));
    let buf = Buffer::new(2);
    let empty = Pages::new(Arc::clone(&mem), Arc::clone(&account), buf.user(0, 0), true).unwrap_err();
    assert_eq!(empty.errno(), rustix::io::Errno::INVAL);
    // SAFETY: never pinned.
    let wraps = unsafe { UserBuffer::new(HostVa::new(u64::MAX - 0xfff), 0x2000) };
    let err = Pages::new(Arc::clone(&mem), Arc::clone(&account), wraps, true).unwrap_err();
    assert_eq!(err.errno(), rustix::io::Errno::OVERFLOW);
    let pages = Pages::new(
        Arc::clone(&mem),
        Arc::clone(&account),
        buf.user(0, 2 * 4096),
        true,
    )
    .unwrap();
    assert_eq!(pages.pin(1, 2).unwrap_err().errno(), rustix::io::Errno::INVAL);
    assert_eq!(pages.unpin(0, 0).unwrap_err().errno(), rustix::io::Errno::INVAL);
    pages.pin(0, 0).unwrap();
    assert_eq!(
        pages.unpin(0, 1).unwrap_err().errno(),
        rustix::io::Errno::INVAL,
        "page 1 is not pinned"
    );
    assert_eq!(pages.pinned(), 1, "a refused unpin changes nothing");
    pages.unpin(0, 0).unwrap();
}

#[test]
fn memfd_pages_map_the_file_and_go_with_it() {
    use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
    let mem = memory();
    let account = Arc::new(Account::new(None));
    let fd = memfd_create("pages-test", MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&fd, 4 * 4096).unwrap();
    rustix::io::pwrite(&fd, b"hello", 0x1010).unwrap();
    // Bytes 0x1010..0x3010 of the file: pages 1..=3 of it.
    let pages = Pages::from_file(
        Arc::clone(&mem),
        Arc::clone(&account),
        fd.try_clone().unwrap(),
        0x1010,
        0x2000,
        true,
    )
    .unwrap();
    assert_eq!(pages.npages(), 3);
    let hpa = pages.pin(0, 2).unwrap();
    assert_eq!(account.locked_pages(), 3);
    let mut got = [0u8; 5];
    mem.read(hpa.checked_add(0x10).unwrap(), &mut got).unwrap();
    assert_eq!(&got, b"hello", "the first page of the Pages is the file's page 1");
    mem.write(hpa.checked_add(0x2000).unwrap(), b"dma").unwrap();
    let mut back = [0u8; 3];
    rustix::io::pread(&fd, &mut back, 0x3000).unwrap();
    assert_eq!(&back, b"dma", "device writes land in the file");
    assert_eq!(mem.stats().fd_segments, 1);
    pages.unpin(0, 2).unwrap();
    assert_eq!(
        mem.stats().fd_segments,
        0,
        "the file leaves the host's physical space with its last pin"
    );
    drop(pages);
    assert_eq!(account.locked_pages(), 0);
    // A range past the end of the file fails at the pin, leaving nothing behind.
    let short = Pages::from_file(
        Arc::clone(&mem),
        Arc::clone(&account),
        fd,
        3 * 4096,
        2 * 4096,
        false,
    )
    .unwrap();
    let err = short.pin(0, 1).unwrap_err();
    assert_eq!(err.errno(), rustix::io::Errno::INVAL, "{err}");
    assert_eq!(account.locked_pages(), 0);
    assert_eq!(mem.stats().fd_segments, 0);
}
