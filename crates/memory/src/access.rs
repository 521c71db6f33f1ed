//! Reaching host memory by HPA (pointers, reads, writes) and adding or releasing segments.

use crate::segment::{SegMap, Segment, SegmentKind};
use crate::sys::{self, Mapping, PAGE};
use crate::{HostMemory, MemoryError};
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::Arc;
use uvfio_types::{Hpa, HpaRange};

/// What [`HostMemory::segment`] knows about the segment holding an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The HPA range of the whole segment.
    pub range: HpaRange,
    /// Where its memory comes from.
    pub kind: SegmentKind,
    /// Whether it may be written (fd segments may be read-only).
    pub writable: bool,
}

impl HostMemory {
    /// The host pointer of `hpa`; `[hpa, hpa + len)` must lie in one segment. A few ns for RAM.
    /// The pointer stays valid while the segment exists (RAM: as long as `self`; other segments:
    /// until released, which pinning prevents). Writing through it into a read-only segment is
    /// the caller's fault; [`HostMemory::host_ptr_writable`] checks.
    #[inline]
    pub fn host_ptr(&self, hpa: Hpa, len: u64) -> Result<NonNull<u8>, MemoryError> {
        if let Some(ptr) = self.window.ptr_of(hpa, len) {
            return Ok(ptr);
        }
        self.segment_ptr(hpa, len, false)
    }

    /// [`HostMemory::host_ptr`] for memory that will be written: fails with
    /// [`MemoryError::ReadOnly`] in a read-only segment.
    #[inline]
    pub fn host_ptr_writable(&self, hpa: Hpa, len: u64) -> Result<NonNull<u8>, MemoryError> {
        if let Some(ptr) = self.window.ptr_of(hpa, len) {
            return Ok(ptr);
        }
        self.segment_ptr(hpa, len, true)
    }

    fn ram_end(&self) -> Hpa {
        Hpa::new(self.window.base.raw() + self.window.len)
    }

    #[cold]
    fn segment_ptr(&self, hpa: Hpa, len: u64, write: bool) -> Result<NonNull<u8>, MemoryError> {
        if self.window.offset_of(hpa, 0).is_some() {
            return Err(MemoryError::BadAddress { hpa: self.ram_end() });
        }
        let table = self.segments.read();
        let seg = table.find(hpa)?;
        let off = seg.offset_of(hpa, len)?;
        if write && !seg.map.writable() {
            return Err(MemoryError::ReadOnly { hpa });
        }
        seg.map
            .get()
            .and_then(|m| m.ptr_at(off, len))
            .ok_or(MemoryError::BadAddress { hpa })
    }

    /// The segment that holds `hpa`.
    pub fn segment(&self, hpa: Hpa) -> Result<SegmentInfo, MemoryError> {
        if self.window.offset_of(hpa, 0).is_some() {
            let range = HpaRange::from_start_len(self.window.base, self.window.len)
                .map_err(|_| MemoryError::BadAddress { hpa })?;
            return Ok(SegmentInfo {
                range,
                kind: SegmentKind::Ram,
                writable: true,
            });
        }
        let table = self.segments.read();
        let seg = table.find(hpa)?;
        let range = seg.range().ok_or(MemoryError::BadAddress { hpa })?;
        Ok(SegmentInfo {
            range,
            kind: seg.kind,
            writable: seg.map.writable(),
        })
    }

    /// Copy `buf.len()` bytes at `hpa` into `buf`; the bytes must lie in one segment.
    pub fn read(&self, hpa: Hpa, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.copy_at(hpa, buf.len() as u64, false, |map, off| map.read(off, buf))
    }

    /// Copy `buf` to `hpa`; the bytes must lie in one writable segment.
    pub fn write(&self, hpa: Hpa, buf: &[u8]) -> Result<(), MemoryError> {
        self.copy_at(hpa, buf.len() as u64, true, |map, off| map.write(off, buf))
    }

    /// Runs `copy` on the mapping holding all of `[hpa, hpa + len)` (RAM through the window,
    /// else the segment holding `hpa`, which must be writable for `write`) at `hpa`'s offset in
    /// it; `copy` returns false when the bytes leave the mapping.
    #[inline]
    fn copy_at(
        &self,
        hpa: Hpa,
        len: u64,
        write: bool,
        copy: impl FnOnce(&Mapping, u64) -> bool,
    ) -> Result<(), MemoryError> {
        if let Some(off) = self.window.offset_of(hpa, len) {
            return if copy(self.ram.map(), off) {
                Ok(())
            } else {
                Err(MemoryError::BadAddress { hpa })
            };
        }
        if self.window.offset_of(hpa, 0).is_some() {
            return Err(MemoryError::BadAddress { hpa: self.ram_end() });
        }
        let table = self.segments.read();
        let seg = table.find(hpa)?;
        let off = seg.offset_of(hpa, len)?;
        if write && !seg.map.writable() {
            return Err(MemoryError::ReadOnly { hpa });
        }
        if seg.map.get().is_some_and(|m| copy(m, off)) {
            Ok(())
        } else {
            Err(MemoryError::BadAddress { hpa })
        }
    }

    /// Map `len` bytes of `fd` from `offset` (both 4 KiB aligned) `MAP_SHARED`, read-only unless
    /// `writable`, as a new segment at a fresh HPA range. The segment holds a reference to the fd
    /// until it is released (an owner that keeps one too, as iommufd's pages do, shares it rather
    /// than duplicating the descriptor; the last holder closes it).
    /// What `mmap` would refuse is refused now (`MemoryError::Os` with `mmap`'s errno: not a
    /// regular file, not open for reading / writing, sealed against writes), but the mapping is
    /// made on the segment's first access, so a segment nothing touches costs no `mmap`.
    ///
    /// The file must stay at least `offset + len` long while the segment exists (a memfd sealed
    /// with `F_SEAL_SHRINK` guarantees it); accesses past a truncated end fault the process.
    pub fn add_fd_segment(
        &self,
        fd: impl Into<Arc<OwnedFd>>,
        offset: u64,
        len: u64,
        writable: bool,
    ) -> Result<HpaRange, MemoryError> {
        if offset % PAGE != 0 {
            return Err(MemoryError::Misaligned {
                value: offset,
                align: PAGE,
            });
        }
        check_segment_len(len)?;
        let needed = offset
            .checked_add(len)
            .ok_or(MemoryError::InvalidLength { len })?;
        let fd = fd.into();
        let size = sys::check_shared_mappable(&*fd, writable).map_err(MemoryError::os("mmap"))?;
        if size < needed {
            return Err(MemoryError::FdTooShort { size, needed });
        }
        // Mapped on the first access (see `SegMap`).
        let map = SegMap::Lazy {
            fd,
            offset,
            len,
            writable,
            map: std::sync::OnceLock::new(),
        };
        self.insert(map, SegmentKind::Fd, None)
    }

    /// Give `map` a fresh HPA range.
    pub(crate) fn insert_segment(
        &self,
        map: Mapping,
        kind: SegmentKind,
        fd: Option<OwnedFd>,
    ) -> Result<HpaRange, MemoryError> {
        self.insert(SegMap::Mapped(map), kind, fd)
    }

    fn insert(&self, map: SegMap, kind: SegmentKind, fd: Option<OwnedFd>) -> Result<HpaRange, MemoryError> {
        let mut st = self.state.lock();
        let range = st.segs.add(map.len())?;
        self.segments.write().insert(Segment {
            start: range.start(),
            map,
            kind,
            _fd: fd,
        });
        Ok(range)
    }

    /// Remove the adopted or fd segment that is exactly `range`; `Busy` (nothing changes) while any
    /// page of it is pinned. Its HPA range is never handed out again.
    pub fn release(&self, range: HpaRange) -> Result<(), MemoryError> {
        let seg = {
            let mut st = self.state.lock();
            st.segs.remove(range)?;
            self.segments.write().remove(range.start())
        };
        // Unmapping (and closing the fd) happens here, outside both locks.
        drop(seg);
        Ok(())
    }
}

/// A segment length must be a non-zero multiple of 4 KiB.
pub(crate) fn check_segment_len(len: u64) -> Result<(), MemoryError> {
    if len == 0 {
        return Err(MemoryError::InvalidLength { len });
    }
    if len % PAGE != 0 {
        return Err(MemoryError::Misaligned {
            value: len,
            align: PAGE,
        });
    }
    Ok(())
}
