//! The IOAS commands (`drivers/iommu/iommufd/ioas.c`): `IOMMU_IOAS_ALLOC`,
//! `IOMMU_IOAS_IOVA_RANGES`, `IOMMU_IOAS_ALLOW_IOVAS`, `IOMMU_IOAS_MAP`, `IOMMU_IOAS_MAP_FILE`,
//! `IOMMU_IOAS_COPY`, `IOMMU_IOAS_UNMAP`.

use bitflags::bitflags;
use uvfio_abi::check_reserved_zero;
use uvfio_abi::iommufd::{
    IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IommuIoasAlloc,
    IommuIoasAllowIovas, IommuIoasCopy, IommuIoasIovaRanges, IommuIoasMap, IommuIoasMapFile, IommuIoasUnmap,
    IommuIovaRange,
};
use uvfio_types::{Access, HostVa, Iova, IovaRange};

use super::{UapiError, UserPtr, read_cmd, respond, ulong_overflows};
use crate::object::ObjectId;

bitflags! {
    /// `enum iommufd_ioas_map_flags`, shared by `IOMMU_IOAS_MAP`, `IOMMU_IOAS_MAP_FILE` and
    /// `IOMMU_IOAS_COPY`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MapFlags: u32 {
        /// `IOMMU_IOAS_MAP_FIXED_IOVA`: the caller chose the IOVA.
        const FIXED_IOVA = IOMMU_IOAS_MAP_FIXED_IOVA;
        /// `IOMMU_IOAS_MAP_WRITEABLE`: DMA may write.
        const WRITEABLE = IOMMU_IOAS_MAP_WRITEABLE;
        /// `IOMMU_IOAS_MAP_READABLE`: DMA may read.
        const READABLE = IOMMU_IOAS_MAP_READABLE;
    }
}

impl MapFlags {
    /// The permissions the mapping grants (Linux `conv_iommu_prot()`).
    pub fn access(self) -> Access {
        let mut access = Access::empty();
        if self.contains(MapFlags::WRITEABLE) {
            access |= Access::WRITE;
        }
        if self.contains(MapFlags::READABLE) {
            access |= Access::READ;
        }
        access
    }

    /// The map-flag checks every mapping handler makes first, in Linux's order: unknown bits
    /// (`EOPNOTSUPP`); then, after the caller's own checks, no permission at all (`EINVAL`, see
    /// [`MapFlags::require_access`]).
    fn known(cmd: &'static str, raw: u32) -> Result<MapFlags, UapiError> {
        // `if (cmd->flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
        //                    IOMMU_IOAS_MAP_READABLE)) return -EOPNOTSUPP;`
        MapFlags::from_bits(raw).ok_or(UapiError::UnsupportedFlags {
            cmd,
            flags: raw & !MapFlags::all().bits(),
        })
    }

    /// `if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -EINVAL;`
    fn require_access(self, cmd: &'static str) -> Result<(), UapiError> {
        if !self.intersects(MapFlags::WRITEABLE | MapFlags::READABLE) {
            return Err(UapiError::NoAccess { cmd });
        }
        Ok(())
    }

    /// The IOVA the caller asks for: `Some` iff `FIXED_IOVA` (without it the kernel ignores the
    /// field's value, after the overflow check, and allocates one).
    fn fixed(self, iova: u64) -> Option<Iova> {
        self.contains(MapFlags::FIXED_IOVA).then_some(Iova::new(iova))
    }
}

/// `IOMMU_IOAS_ALLOC`: create an empty IOAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoasAlloc;

impl IoasAlloc {
    /// Decodes `struct iommu_ioas_alloc` (`iommufd_ioas_alloc_ioctl()`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuIoasAlloc = read_cmd(bytes)?;
        // `if (cmd->flags) return -EOPNOTSUPP;`
        if cmd.flags != 0 {
            return Err(UapiError::UnsupportedFlags {
                cmd: "ioas_alloc",
                flags: cmd.flags,
            });
        }
        Ok(IoasAlloc)
    }

    /// Writes `out_ioas_id` back (`cmd->out_ioas_id = ioas->obj.id; iommufd_ucmd_respond()`).
    pub fn encode_reply(bytes: &mut [u8], out_ioas_id: ObjectId) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuIoasAlloc| {
            cmd.out_ioas_id = out_ioas_id.raw()
        })
    }
}

/// `IOMMU_IOAS_IOVA_RANGES`: report the IOVA ranges an IOAS allows, into the caller's array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoasIovaRanges {
    /// The IOAS to read.
    pub ioas_id: u32,
    /// How many `struct iommu_iova_range` the caller's array holds (`num_iovas` on input).
    pub capacity: u32,
    /// The caller's array (`allowed_iovas`); the host copies up to `capacity` ranges to it.
    pub allowed_iovas: UserPtr,
}

impl IoasIovaRanges {
    /// Decodes `struct iommu_ioas_iova_ranges` (`iommufd_ioas_iova_ranges()`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuIoasIovaRanges = read_cmd(bytes)?;
        // `if (cmd->__reserved) return -EOPNOTSUPP;`
        check_reserved_zero("__reserved", &cmd.reserved)?;
        Ok(IoasIovaRanges {
            ioas_id: cmd.ioas_id,
            capacity: cmd.num_iovas,
            allowed_iovas: UserPtr(cmd.allowed_iovas),
        })
    }

    /// Writes `num_iovas` (the number of ranges the IOAS has, even when they did not all fit) and
    /// `out_iova_alignment` back. Linux writes them before it decides on `EMSGSIZE`, so a host
    /// calls this, then [`IoasIovaRanges::check_fits`].
    pub fn encode_reply(bytes: &mut [u8], num_iovas: u32, out_iova_alignment: u64) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuIoasIovaRanges| {
            cmd.num_iovas = num_iovas;
            cmd.out_iova_alignment = out_iova_alignment;
        })
    }

    /// `if (cmd->num_iovas > max_iovas) rc = -EMSGSIZE;`: whether the `needed` ranges fit.
    pub fn check_fits(&self, needed: u32) -> Result<(), UapiError> {
        if needed > self.capacity {
            return Err(UapiError::RangesDoNotFit {
                needed,
                capacity: self.capacity,
            });
        }
        Ok(())
    }
}

/// `IOMMU_IOAS_ALLOW_IOVAS`: replace an IOAS's allowed ranges with the caller's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoasAllowIovas {
    /// The IOAS to change.
    pub ioas_id: u32,
    /// Number of ranges in the caller's array (0 allows everything again).
    pub num_iovas: u32,
    /// The caller's array of `struct iommu_iova_range` (`allowed_iovas`), for the host to read.
    pub allowed_iovas: UserPtr,
}

impl IoasAllowIovas {
    /// Decodes `struct iommu_ioas_allow_iovas` (`iommufd_ioas_allow_iovas()`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuIoasAllowIovas = read_cmd(bytes)?;
        // `if (cmd->__reserved) return -EOPNOTSUPP;`
        check_reserved_zero("__reserved", &cmd.reserved)?;
        Ok(IoasAllowIovas {
            ioas_id: cmd.ioas_id,
            num_iovas: cmd.num_iovas,
            allowed_iovas: UserPtr(cmd.allowed_iovas),
        })
    }

    /// Linux `iommufd_ioas_load_iovas()`, run after the IOAS lookup on the ranges the host read
    /// from [`IoasAllowIovas::allowed_iovas`]: each must have `start < last` and overlap none
    /// before it (`EINVAL` otherwise).
    pub fn load_iovas(ranges: &[IommuIovaRange]) -> Result<Vec<IovaRange>, UapiError> {
        let mut loaded: Vec<IovaRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            // `if (range.start >= range.last) return -EINVAL;`
            let bad = UapiError::BadIovaRange {
                start: r.start,
                last: r.last,
            };
            if r.start >= r.last {
                return Err(bad);
            }
            let range = IovaRange::new(Iova::new(r.start), Iova::new(r.last)).map_err(|_| bad)?;
            // `if (interval_tree_iter_first(itree, range.start, range.last)) return -EINVAL;`
            if loaded.iter().any(|l| l.overlaps(&range)) {
                return Err(UapiError::OverlappingIovaRange {
                    start: r.start,
                    last: r.last,
                });
            }
            loaded.push(range);
        }
        Ok(loaded)
    }
}

/// `IOMMU_IOAS_MAP`: map the caller's memory at a fixed or an allocated IOVA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoasMap {
    /// The IOAS to map into.
    pub ioas_id: u32,
    /// The flags, known bits only, at least one of `READABLE` / `WRITEABLE`.
    pub flags: MapFlags,
    /// The first byte of the caller's memory (`user_va`).
    pub user_va: HostVa,
    /// Bytes to map; below `ULONG_MAX`, possibly 0 (Linux refuses 0 after the IOAS lookup, in
    /// `iopt_alloc_pages()`).
    pub length: u64,
    /// The IOVA to map at: `Some` iff `FIXED_IOVA`.
    pub iova: Option<Iova>,
}

impl IoasMap {
    /// Decodes `struct iommu_ioas_map` (`iommufd_ioas_map()`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        const CMD: &str = "ioas_map";
        let cmd: IommuIoasMap = read_cmd(bytes)?;
        // `if ((cmd->flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
        //      IOMMU_IOAS_MAP_READABLE)) || cmd->__reserved) return -EOPNOTSUPP;`
        let flags = MapFlags::known(CMD, cmd.flags)?;
        check_reserved_zero("__reserved", &cmd.reserved)?;
        // `if (cmd->iova >= ULONG_MAX || cmd->length >= ULONG_MAX) return -EOVERFLOW;`
        no_ulong_overflow(CMD, &[("iova", cmd.iova), ("length", cmd.length)])?;
        // `if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -EINVAL;`
        flags.require_access(CMD)?;
        Ok(IoasMap {
            ioas_id: cmd.ioas_id,
            flags,
            user_va: HostVa::new(cmd.user_va),
            length: cmd.length,
            iova: flags.fixed(cmd.iova),
        })
    }

    /// Writes the IOVA the mapping was placed at back (`cmd->iova = iova;
    /// iommufd_ucmd_respond()`), for fixed and allocated IOVAs alike.
    pub fn encode_reply(bytes: &mut [u8], iova: Iova) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuIoasMap| cmd.iova = iova.raw())
    }
}

/// `IOMMU_IOAS_MAP_FILE`: map part of a memfd at a fixed or an allocated IOVA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoasMapFile {
    /// The IOAS to map into.
    pub ioas_id: u32,
    /// The flags, known bits only, at least one of `READABLE` / `WRITEABLE`.
    pub flags: MapFlags,
    /// The file descriptor of the memfd (`fd`), not yet looked up (`EBADF` is the host's).
    pub fd: i32,
    /// Byte offset in the file of the first byte to map (`start`).
    pub start: u64,
    /// Bytes to map; below `ULONG_MAX`.
    pub length: u64,
    /// The IOVA to map at: `Some` iff `FIXED_IOVA`.
    pub iova: Option<Iova>,
}

impl IoasMapFile {
    /// Decodes `struct iommu_ioas_map_file` (`iommufd_ioas_map_file()`; the struct has no
    /// reserved field: `fd` sits where `IOMMU_IOAS_MAP` has `__reserved`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        const CMD: &str = "ioas_map_file";
        let cmd: IommuIoasMapFile = read_cmd(bytes)?;
        // `if (cmd->flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
        //      IOMMU_IOAS_MAP_READABLE)) return -EOPNOTSUPP;`
        let flags = MapFlags::known(CMD, cmd.flags)?;
        // `if (cmd->iova >= ULONG_MAX || cmd->length >= ULONG_MAX) return -EOVERFLOW;`
        no_ulong_overflow(CMD, &[("iova", cmd.iova), ("length", cmd.length)])?;
        // `if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -EINVAL;`
        flags.require_access(CMD)?;
        Ok(IoasMapFile {
            ioas_id: cmd.ioas_id,
            flags,
            fd: cmd.fd,
            start: cmd.start,
            length: cmd.length,
            iova: flags.fixed(cmd.iova),
        })
    }

    /// Writes the IOVA the mapping was placed at back (`cmd->iova = iova;`).
    pub fn encode_reply(bytes: &mut [u8], iova: Iova) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuIoasMapFile| cmd.iova = iova.raw())
    }
}

/// `IOMMU_IOAS_COPY`: map the pages behind a mapping of one IOAS into another (or the same) IOAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoasCopy {
    /// The IOAS to map into.
    pub dst_ioas_id: u32,
    /// The IOAS whose mapping is copied.
    pub src_ioas_id: u32,
    /// The flags of the new mapping, known bits only, at least one of `READABLE` / `WRITEABLE`.
    pub flags: MapFlags,
    /// Bytes to copy; below `ULONG_MAX`.
    pub length: u64,
    /// The IOVA to map at in the destination: `Some` iff `FIXED_IOVA`.
    pub dst_iova: Option<Iova>,
    /// The first IOVA of the source range.
    pub src_iova: Iova,
}

impl IoasCopy {
    /// Decodes `struct iommu_ioas_copy` (`iommufd_ioas_copy()`).
    ///
    /// A selftest kernel first passes the command through `iommufd_test_syz_conv_iova_id()`,
    /// which strips `MOCK_FLAGS_ACCESS_SYZ` from `flags` for syzkaller; uvfio does not: that bit is
    /// an unknown flag here, as on a kernel without `CONFIG_IOMMUFD_TEST`.
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        const CMD: &str = "ioas_copy";
        let cmd: IommuIoasCopy = read_cmd(bytes)?;
        // `if ((cmd->flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
        //      IOMMU_IOAS_MAP_READABLE))) return -EOPNOTSUPP;`
        let flags = MapFlags::known(CMD, cmd.flags)?;
        // `if (cmd->length >= ULONG_MAX || cmd->src_iova >= ULONG_MAX ||
        //      cmd->dst_iova >= ULONG_MAX) return -EOVERFLOW;`
        for (field, value) in [
            ("length", cmd.length),
            ("src_iova", cmd.src_iova),
            ("dst_iova", cmd.dst_iova),
        ] {
            if ulong_overflows(value) {
                return Err(UapiError::Overflow { cmd: CMD, field });
            }
        }
        // `if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -EINVAL;`
        flags.require_access(CMD)?;
        Ok(IoasCopy {
            dst_ioas_id: cmd.dst_ioas_id,
            src_ioas_id: cmd.src_ioas_id,
            flags,
            length: cmd.length,
            dst_iova: flags.fixed(cmd.dst_iova),
            src_iova: Iova::new(cmd.src_iova),
        })
    }

    /// Writes the destination IOVA back (`cmd->dst_iova = iova;`).
    pub fn encode_reply(bytes: &mut [u8], dst_iova: Iova) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuIoasCopy| cmd.dst_iova = dst_iova.raw())
    }
}

/// What an `IOMMU_IOAS_UNMAP` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmapTarget {
    /// Every mapping (`iova == 0 && length == U64_MAX`: `iopt_unmap_all()`).
    All,
    /// The mappings inside this range (`iopt_unmap_iova()`).
    Range(IovaRange),
}

/// `IOMMU_IOAS_UNMAP`: remove the mappings inside a range, or all of them.
///
/// Linux makes no check before looking the IOAS up; its range checks are
/// [`IoasUnmap::target`], for the handler to call after the lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoasUnmap {
    /// The IOAS to unmap from.
    pub ioas_id: u32,
    /// `iova` as the caller gave it.
    pub iova: Iova,
    /// `length` as the caller gave it.
    pub length: u64,
}

impl IoasUnmap {
    /// Decodes `struct iommu_ioas_unmap` (`iommufd_ioas_unmap()`: only the size rules apply).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuIoasUnmap = read_cmd(bytes)?;
        Ok(IoasUnmap {
            ioas_id: cmd.ioas_id,
            iova: Iova::new(cmd.iova),
            length: cmd.length,
        })
    }

    /// The range to unmap, with the checks Linux makes after `iommufd_get_ioas()` succeeded:
    /// `0..U64_MAX` is everything; otherwise `>= ULONG_MAX` is `EOVERFLOW`, a zero length `EINVAL`
    /// and a range past the end of the space `EOVERFLOW` (`iopt_unmap_iova()`).
    pub fn target(&self) -> Result<UnmapTarget, UapiError> {
        const CMD: &str = "ioas_unmap";
        // `if (cmd->iova == 0 && cmd->length == U64_MAX) rc = iopt_unmap_all(...)`
        if self.iova == Iova::ZERO && self.length == u64::MAX {
            return Ok(UnmapTarget::All);
        }
        // `if (cmd->iova >= ULONG_MAX || cmd->length >= ULONG_MAX) { rc = -EOVERFLOW; ...`
        if ulong_overflows(self.iova.raw()) {
            return Err(UapiError::Overflow {
                cmd: CMD,
                field: "iova",
            });
        }
        if ulong_overflows(self.length) {
            return Err(UapiError::Overflow {
                cmd: CMD,
                field: "length",
            });
        }
        // iopt_unmap_iova(): `if (!length) return -EINVAL;`
        if self.length == 0 {
            return Err(UapiError::ZeroLength { cmd: CMD });
        }
        // `if (check_add_overflow(iova, length - 1, &iova_last)) return -EOVERFLOW;`
        IovaRange::from_start_len(self.iova, self.length)
            .map(UnmapTarget::Range)
            .map_err(|_| UapiError::Overflow {
                cmd: CMD,
                field: "iova + length",
            })
    }

    /// Writes the number of bytes unmapped back (`cmd->length = unmapped;`).
    pub fn encode_reply(bytes: &mut [u8], unmapped: u64) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuIoasUnmap| cmd.length = unmapped)
    }
}

/// The `>= ULONG_MAX` checks of the IOAS handlers (`if (cmd->iova >= ULONG_MAX || cmd->length >=
/// ULONG_MAX) return -EOVERFLOW;`), in the order given: the first field that overflows is named.
fn no_ulong_overflow(cmd: &'static str, fields: &[(&'static str, u64)]) -> Result<(), UapiError> {
    match fields.iter().find(|(_, value)| ulong_overflows(*value)) {
        Some(&(field, _)) => Err(UapiError::Overflow { cmd, field }),
        None => Ok(()),
    }
}
