//! `VFIO_IOMMU_MAP_DMA` and `VFIO_IOMMU_UNMAP_DMA` on the container fd.
//!
//! Two Linux implementations answer these requests: the type1 IOMMU driver
//! (`drivers/vfio/vfio_iommu_type1.c`, [`Type1Backend::Type1`]) and iommufd's compat layer
//! (`drivers/iommu/iommufd/vfio_compat.c`, [`Type1Backend::IommufdCompat`]), which knows fewer
//! flags. The decoders apply the handler's checks (`vfio_iommu_type1_map_dma()`,
//! `iommufd_vfio_map_dma()`, ...); the checks Linux makes after it has taken the container's lock
//! and read its page size are methods on the typed command ([`MapDma::type1_checks`],
//! [`Type1Map::check_alignment`], [`UnmapDma::type1_target`], [`UnmapDma::compat_target`]).
//!
//! For the compat backend, the address checks of a map are io_pagetable's, made by `uvfio-iommufd`
//! after the compat IOAS is found (`ENODEV` without one): in `iopt_map_user_pages()`, among
//! others, `size == 0` or `size > SIZE_MAX - PAGE_SIZE` → `EINVAL`, `vaddr + size` overflow →
//! `EOVERFLOW`, `size` or `iova` not a multiple of the IOAS's IOVA alignment → `EINVAL`,
//! `iova + size - 1` overflow → `EOVERFLOW`, reserved IOVA → `EINVAL`, an existing area →
//! `EEXIST`.

use bitflags::bitflags;
use uvfio_abi::vfio::{
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_MAP_FLAG_WRITE, VFIO_DMA_UNMAP_FLAG_ALL,
    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_DMA_UNMAP_FLAG_VADDR, VfioBitmap, VfioIommuType1DmaMap,
    VfioIommuType1DmaUnmap,
};
use uvfio_types::{Access, Alignment, HostVa, Iova, IovaRange};
use zerocopy::{FromBytes, IntoBytes};

use super::{TASK_SIZE_MAX, UapiError, UserPtr, copy_from_user, copy_minsz, copy_to_user};

/// Which Linux implementation of the type1 container API a decoder mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type1Backend {
    /// `drivers/vfio/vfio_iommu_type1.c`: MAP knows READ, WRITE and VADDR; UNMAP knows
    /// GET_DIRTY_BITMAP, VADDR and ALL.
    Type1,
    /// `drivers/iommu/iommufd/vfio_compat.c`: MAP knows READ and WRITE; UNMAP knows only ALL.
    IommufdCompat,
}

bitflags! {
    /// `VFIO_DMA_MAP_FLAG_*`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct MapFlags: u32 {
        /// "readable from device".
        const READ = VFIO_DMA_MAP_FLAG_READ;
        /// "writable from device".
        const WRITE = VFIO_DMA_MAP_FLAG_WRITE;
        /// "update the base vaddr for iova".
        const VADDR = VFIO_DMA_MAP_FLAG_VADDR;
    }
}

bitflags! {
    /// `VFIO_DMA_UNMAP_FLAG_*`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct UnmapFlags: u32 {
        /// "get the dirty bitmap before unmapping IO virtual addresses".
        const GET_DIRTY_BITMAP = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
        /// "unmap all addresses. iova and size must be 0".
        const ALL = VFIO_DMA_UNMAP_FLAG_ALL;
        /// "do not unmap, but invalidate host virtual addresses in the iova range".
        const VADDR = VFIO_DMA_UNMAP_FLAG_VADDR;
    }
}

impl Type1Backend {
    fn map_flags(self) -> MapFlags {
        match self {
            // uint32_t mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE |
            //                 VFIO_DMA_MAP_FLAG_VADDR;
            Self::Type1 => MapFlags::all(),
            // u32 supported_flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
            Self::IommufdCompat => MapFlags::READ | MapFlags::WRITE,
        }
    }

    fn unmap_flags(self) -> UnmapFlags {
        match self {
            // uint32_t mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
            //                 VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL;
            Self::Type1 => UnmapFlags::all(),
            // u32 supported_flags = VFIO_DMA_UNMAP_FLAG_ALL;
            Self::IommufdCompat => UnmapFlags::ALL,
        }
    }
}

/// Linux `1 << __ffs(pgsize_bitmap)`: the smallest page size of a container, the granule of its
/// maps and unmaps (`None` for an empty bitmap, which no container has).
pub fn min_pgsize(pgsize_bitmap: u64) -> Option<Alignment> {
    let shift = pgsize_bitmap.trailing_zeros();
    1u64.checked_shl(shift)
        .and_then(|bytes| Alignment::new(bytes).ok())
}

/// A decoded `VFIO_IOMMU_MAP_DMA` (`struct vfio_iommu_type1_dma_map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapDma {
    /// The flags, all known to the backend.
    pub flags: MapFlags,
    /// "Process virtual address".
    pub vaddr: HostVa,
    /// "IO virtual address".
    pub iova: Iova,
    /// "Size of mapping (bytes)", not yet checked.
    pub size: u64,
}

impl MapDma {
    /// Decodes the caller's bytes as `vfio_iommu_type1_map_dma()` / `iommufd_vfio_map_dma()` do.
    pub fn decode(bytes: &[u8], backend: Type1Backend) -> Result<Self, UapiError> {
        // minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
        // if (copy_from_user(&map, (void __user *)arg, minsz)) return -EFAULT;
        // if (map.argsz < minsz || ...
        let map: VfioIommuType1DmaMap = copy_minsz(bytes)?;
        // ... || map.flags & ~mask) return -EINVAL;
        let flags = MapFlags::from_bits(map.flags)
            .filter(|f| backend.map_flags().contains(*f))
            .ok_or(UapiError::UnknownFlags {
                cmd: "map_dma",
                flags: map.flags & !backend.map_flags().bits(),
            })?;
        Ok(Self {
            flags,
            vaddr: HostVa::new(map.vaddr),
            iova: Iova::new(map.iova),
            size: map.size,
        })
    }

    /// The device's access: `IOMMU_READ` for READ, `IOMMU_WRITE` for WRITE.
    pub fn access(&self) -> Access {
        let mut access = Access::empty();
        // if (map->flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
        if self.flags.contains(MapFlags::WRITE) {
            access |= Access::WRITE;
        }
        // if (map->flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
        if self.flags.contains(MapFlags::READ) {
            access |= Access::READ;
        }
        access
    }

    /// The checks of type1's `vfio_dma_do_map()` before it takes `iommu->lock`, in its order.
    pub fn type1_checks(&self) -> Result<Type1Map, UapiError> {
        // /* Verify that none of our __u64 fields overflow */
        // if (map->size != size || map->vaddr != vaddr || map->iova != iova) return -EOVERFLOW;
        // (never: size_t, unsigned long and dma_addr_t are 64 bits here)
        // if (!size) return -EINVAL;
        if self.size == 0 {
            return Err(UapiError::ZeroSize { cmd: "map_dma" });
        }
        // if (check_add_overflow(iova, size - 1, &iova_end) ||
        //     check_add_overflow(vaddr, size - 1, &vaddr_end)) return -EOVERFLOW;
        let iova = IovaRange::from_start_len(self.iova, self.size).map_err(|_| UapiError::Overflow {
            cmd: "map_dma",
            field: "iova",
        })?;
        if self.vaddr.checked_add(self.size - 1).is_none() {
            return Err(UapiError::Overflow {
                cmd: "map_dma",
                field: "vaddr",
            });
        }
        let access = self.access();
        let set_vaddr = self.flags.contains(MapFlags::VADDR);
        // if ((prot && set_vaddr) || (!prot && !set_vaddr)) return -EINVAL;
        let op = match (access.is_empty(), set_vaddr) {
            (false, false) => Type1MapOp::Map(access),
            (true, true) => Type1MapOp::UpdateVaddr,
            _ => {
                return Err(UapiError::ConflictingFlags {
                    cmd: "map_dma",
                    flags: self.flags.bits(),
                });
            }
        };
        Ok(Type1Map {
            iova,
            vaddr: self.vaddr,
            op,
        })
    }
}

/// What a type1 map does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type1MapOp {
    /// Pin and map with this access.
    Map(Access),
    /// `VFIO_DMA_MAP_FLAG_VADDR`: give an invalidated mapping its new process address.
    UpdateVaddr,
}

/// A type1 map request that passed [`MapDma::type1_checks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type1Map {
    /// The IOVA range, non-empty and not wrapping.
    pub iova: IovaRange,
    /// Where the range starts in the process (`vaddr + size - 1` does not wrap).
    pub vaddr: HostVa,
    /// Map or update the process address.
    pub op: Type1MapOp,
}

impl Type1Map {
    /// `vfio_dma_do_map()` under the lock, with `pgsize = 1 << __ffs(iommu->pgsize_bitmap)`
    /// (see [`min_pgsize`]):
    ///
    /// ```c
    /// if ((size | iova | vaddr) & (pgsize - 1)) { ret = -EINVAL; goto out_unlock; }
    /// ```
    pub fn check_alignment(&self, pgsize: Alignment) -> Result<(), UapiError> {
        let size_minus_one = self.iova.len_minus_one();
        // size = (size - 1) + 1 cannot overflow past 2^64 - 1 here unless the range is the full
        // space, whose size (2^64) is a multiple of every page size.
        let size = size_minus_one.wrapping_add(1);
        if (size | self.iova.start().raw() | self.vaddr.raw()) & pgsize.mask() != 0 {
            return Err(UapiError::Misaligned {
                cmd: "map_dma",
                align: pgsize.bytes(),
            });
        }
        Ok(())
    }
}

/// The dirty bitmap of a `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP` unmap (`struct vfio_bitmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirtyBitmap {
    /// "page size for bitmap in bytes".
    pub pgsize: u64,
    /// Size of the bitmap in bytes.
    pub size: u64,
    /// Where the bitmap is written.
    pub data: UserPtr,
}

/// type1's `DIRTY_BITMAP_PAGES_MAX`, `(u64)INT_MAX`.
const DIRTY_BITMAP_PAGES_MAX: u64 = i32::MAX as u64;

/// type1's `DIRTY_BITMAP_BYTES(n)`: `ALIGN(n, BITS_PER_TYPE(u64)) / BITS_PER_BYTE`, with C's
/// wrapping arithmetic.
fn dirty_bitmap_bytes(npages: u64) -> u64 {
    (npages.wrapping_add(63) & !63) / 8
}

/// type1's `DIRTY_BITMAP_SIZE_MAX`: 256 MiB, one bit for each of `INT_MAX` pages.
pub const DIRTY_BITMAP_SIZE_MAX: u64 = DIRTY_BITMAP_PAGES_MAX.div_ceil(64) * 8;

/// A decoded `VFIO_IOMMU_UNMAP_DMA` (`struct vfio_iommu_type1_dma_unmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmapDma {
    /// The flags, all known to the backend.
    pub flags: UnmapFlags,
    /// "IO virtual address", not yet checked.
    pub iova: Iova,
    /// "Size of mapping (bytes)", not yet checked.
    pub size: u64,
    /// The bitmap, with `GET_DIRTY_BITMAP`.
    pub bitmap: Option<DirtyBitmap>,
    /// The kernel's copy of the struct, written back with the unmapped size.
    user: VfioIommuType1DmaUnmap,
}

impl UnmapDma {
    /// Decodes the caller's bytes as `vfio_iommu_type1_unmap_dma()` / `iommufd_vfio_unmap_dma()`
    /// do.
    pub fn decode(bytes: &[u8], backend: Type1Backend) -> Result<Self, UapiError> {
        // minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
        // if (copy_from_user(&unmap, (void __user *)arg, minsz)) return -EFAULT;
        // if (unmap.argsz < minsz || ...
        let unmap: VfioIommuType1DmaUnmap = copy_minsz(bytes)?;
        // ... || unmap.flags & ~mask) return -EINVAL;
        let flags = UnmapFlags::from_bits(unmap.flags)
            .filter(|f| backend.unmap_flags().contains(*f))
            .ok_or(UapiError::UnknownFlags {
                cmd: "unmap_dma",
                flags: unmap.flags & !backend.unmap_flags().bits(),
            })?;
        // if ((unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) &&
        //     (unmap.flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)))
        //         return -EINVAL;
        if flags.contains(UnmapFlags::GET_DIRTY_BITMAP)
            && flags.intersects(UnmapFlags::ALL | UnmapFlags::VADDR)
        {
            return Err(UapiError::ConflictingFlags {
                cmd: "unmap_dma",
                flags: flags.bits(),
            });
        }
        let bitmap = if flags.contains(UnmapFlags::GET_DIRTY_BITMAP) {
            Some(Self::decode_bitmap(bytes, &unmap)?)
        } else {
            None
        };
        Ok(Self {
            flags,
            iova: Iova::new(unmap.iova),
            size: unmap.size,
            bitmap,
            user: unmap,
        })
    }

    /// The `GET_DIRTY_BITMAP` branch of `vfio_iommu_type1_unmap_dma()`.
    fn decode_bitmap(bytes: &[u8], unmap: &VfioIommuType1DmaUnmap) -> Result<DirtyBitmap, UapiError> {
        let minsz = size_of::<VfioIommuType1DmaUnmap>();
        let needed = minsz + size_of::<VfioBitmap>();
        // if (unmap.argsz < (minsz + sizeof(bitmap))) return -EINVAL;
        if (unmap.argsz as usize) < needed {
            return Err(UapiError::ArgszTooSmall {
                cmd: "unmap_dma",
                argsz: unmap.argsz,
                needed: needed as u64,
            });
        }
        // if (copy_from_user(&bitmap, (void __user *)(arg + minsz), sizeof(bitmap)))
        //         return -EFAULT;
        let raw = copy_from_user(bytes, minsz, size_of::<VfioBitmap>())?;
        let bitmap = VfioBitmap::read_from_bytes(raw).unwrap_or_default();
        // if (!access_ok((void __user *)bitmap.data, bitmap.size)) return -EINVAL;
        let end = bitmap.data.checked_add(bitmap.size);
        if end.is_none_or(|end| end > TASK_SIZE_MAX) {
            return Err(UapiError::BitmapNotUserMemory {
                data: bitmap.data,
                size: bitmap.size,
            });
        }
        // pgshift = __ffs(bitmap.pgsize);
        // ret = verify_bitmap_size(unmap.size >> pgshift, bitmap.size);
        // (__ffs(0) is undefined in C; a zero page size counts as zero pages here.)
        let npages = unmap
            .size
            .checked_shr(bitmap.pgsize.trailing_zeros())
            .unwrap_or(0);
        // if (!npages || !bitmap_size || (bitmap_size > DIRTY_BITMAP_SIZE_MAX) ||
        //     (bitmap_size < dirty_bitmap_bytes(npages)))
        //         return -EINVAL;
        if npages == 0
            || bitmap.size == 0
            || bitmap.size > DIRTY_BITMAP_SIZE_MAX
            || bitmap.size < dirty_bitmap_bytes(npages)
        {
            return Err(UapiError::BitmapSize {
                npages,
                size: bitmap.size,
            });
        }
        Ok(DirtyBitmap {
            pgsize: bitmap.pgsize,
            size: bitmap.size,
            data: UserPtr(bitmap.data),
        })
    }

    /// The range checks of type1's `vfio_dma_do_unmap()` under `iommu->lock`, in its order, with
    /// `pgsize = 1 << __ffs(iommu->pgsize_bitmap)` (see [`min_pgsize`]). The handler first refuses
    /// `VADDR` while emulated (mdev) groups are attached (`EBUSY`), and afterwards a dirty bitmap
    /// whose page size is not `pgsize` or without dirty tracking (`EINVAL`).
    pub fn type1_target(&self, pgsize: Alignment) -> Result<UnmapTarget, UapiError> {
        // if (iova != unmap->iova || size != unmap->size) { ret = -EOVERFLOW; ... }
        // (never: dma_addr_t and size_t are 64 bits here)
        // if (iova & (pgsize - 1)) goto unlock;                                  [-EINVAL]
        if !self.iova.is_aligned(pgsize) {
            return Err(UapiError::Misaligned {
                cmd: "unmap_dma",
                align: pgsize.bytes(),
            });
        }
        if self.flags.contains(UnmapFlags::ALL) {
            // if (unmap_all) { if (iova || size) goto unlock; size = SIZE_MAX; }
            return self.all_target();
        }
        // if (!size || size & (pgsize - 1)) goto unlock;                         [-EINVAL]
        if self.size == 0 {
            return Err(UapiError::ZeroSize { cmd: "unmap_dma" });
        }
        if self.size & pgsize.mask() != 0 {
            return Err(UapiError::Misaligned {
                cmd: "unmap_dma",
                align: pgsize.bytes(),
            });
        }
        // if (check_add_overflow(iova, size - 1, &iova_end)) { ret = -EOVERFLOW; ... }
        self.range()
    }

    /// The range checks of iommufd's `iommufd_vfio_unmap_dma()`, after it found the compat IOAS
    /// (`ENODEV` without one). For a type1 (v1) container the handler first cuts the areas at
    /// `iova - 1` and `iova + size - 1` (`iopt_cut_iova()`), which can fail on its own.
    pub fn compat_target(&self) -> Result<UnmapTarget, UapiError> {
        if self.flags.contains(UnmapFlags::ALL) {
            // if (unmap.iova != 0 || unmap.size != 0) { rc = -EINVAL; goto err_put; }
            return self.all_target();
        }
        // iopt_unmap_iova(): if (!length) return -EINVAL;
        if self.size == 0 {
            return Err(UapiError::ZeroSize { cmd: "unmap_dma" });
        }
        // if (check_add_overflow(iova, length - 1, &iova_last)) return -EOVERFLOW;
        self.range()
    }

    fn all_target(&self) -> Result<UnmapTarget, UapiError> {
        if self.iova != Iova::ZERO || self.size != 0 {
            return Err(UapiError::UnmapAllNotZero {
                iova: self.iova.raw(),
                size: self.size,
            });
        }
        Ok(UnmapTarget::All)
    }

    fn range(&self) -> Result<UnmapTarget, UapiError> {
        IovaRange::from_start_len(self.iova, self.size)
            .map(UnmapTarget::Range)
            .map_err(|_| UapiError::Overflow {
                cmd: "unmap_dma",
                field: "iova",
            })
    }

    /// Writes the reply: `unmap.size = unmapped; copy_to_user(arg, &unmap, minsz)` — the
    /// caller's `argsz`, `flags` and `iova` as read, and the bytes unmapped. type1 writes it only
    /// on success; the compat layer also after an error of the unmap itself.
    pub fn encode_reply(&self, unmapped: u64, user: &mut [u8]) -> Result<(), UapiError> {
        let reply = VfioIommuType1DmaUnmap {
            size: unmapped,
            ..self.user
        };
        copy_to_user(user, 0, reply.as_bytes())
    }
}

/// What an unmap covers, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmapTarget {
    /// `VFIO_DMA_UNMAP_FLAG_ALL`: every mapping of the container.
    All,
    /// The mappings within this range.
    Range(IovaRange),
}
