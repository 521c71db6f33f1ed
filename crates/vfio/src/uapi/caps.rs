//! Capability chains: the `vfio_info_cap_header` lists the INFO ioctls append after their struct.
//!
//! From `vfio.h`: "The offset field is relative to the start of the INFO buffer, as is the next
//! field within each capability header. The id within the header is a shared address space per
//! INFO ioctl, while the version field is specific to the capability id."
//!
//! Linux builds a chain in a kernel buffer ([`CapChain`]: `vfio_info_cap_add()`,
//! `vfio_info_add_capability()`, `drivers/vfio/vfio_main.c`), offsets relative to the chain, then
//! shifts it to its place after the info struct (`vfio_info_cap_shift()`) and copies it out only
//! if the caller's `argsz` has room ([`CapChain::place`], the code every caller repeats):
//!
//! ```c
//! if (caps.size) {
//!         info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
//!         if (info.argsz < sizeof(info) + caps.size) {
//!                 info.argsz = sizeof(info) + caps.size;
//!                 info.cap_offset = 0;
//!         } else {
//!                 vfio_info_cap_shift(&caps, sizeof(info));
//!                 if (copy_to_user(arg + 1, caps.buf, caps.size)) { ... return -EFAULT; }
//!                 info.cap_offset = sizeof(info);
//!         }
//! }
//! ```
//!
//! Note what Linux does when the chain does not fit: it still sets the `CAPS` flag (so the caller
//! learns there are capabilities), raises `argsz` to the size needed, and leaves `cap_offset` 0.
//! The iommufd compat layer's `VFIO_IOMMU_GET_INFO` has its own writer
//! ([`crate::uapi::container::IommuInfo::encode_compat`]).

use uvfio_abi::vfio::VfioInfoCapHeader;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::{UapiError, copy_to_user};

/// Size of `struct vfio_info_cap_header`.
pub const CAP_HEADER_SIZE: usize = size_of::<VfioInfoCapHeader>();

/// Offset of `next` within `struct vfio_info_cap_header`.
const NEXT_OFFSET: usize = 4;

/// A capability chain being built, offsets relative to its own start (Linux `struct
/// vfio_info_cap`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapChain {
    buf: Vec<u8>,
    /// Offset of the last capability, whose `next` the following one sets.
    last: Option<usize>,
}

impl CapChain {
    /// An empty chain (`struct vfio_info_cap caps = { .buf = NULL, .size = 0 }`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Linux `vfio_info_cap_add(caps, size, id, version)`: appends a zeroed capability of `size`
    /// bytes, header included, with `id` and `version` set, links it at the tail of the chain, and
    /// returns its bytes (header included) for the caller to fill in past the header.
    pub fn add(&mut self, size: usize, id: u16, version: u16) -> &mut [u8] {
        // /* Ensure that the next capability struct will be aligned */
        // size = ALIGN(size, sizeof(u64));
        // (Every Linux caller passes at least the header; a smaller size is raised to it here.)
        let size = size.max(CAP_HEADER_SIZE).next_multiple_of(size_of::<u64>());
        let offset = self.buf.len();
        // /* Eventually copied to user buffer, zero */
        // memset(header, 0, size);
        self.buf.resize(offset + size, 0);
        let header = VfioInfoCapHeader { id, version, next: 0 };
        self.buf[offset..offset + CAP_HEADER_SIZE].copy_from_slice(header.as_bytes());
        // /* Add to the end of the capability chain */
        // for (tmp = buf; tmp->next; tmp = buf + tmp->next) ;
        // tmp->next = caps->size;
        if let Some(last) = self.last {
            self.set_next(last, offset);
        }
        self.last = Some(offset);
        &mut self.buf[offset..offset + size]
    }

    /// Linux `vfio_info_add_capability(caps, cap, size)`: appends `cap` (a capability struct whose
    /// first bytes are its `vfio_info_cap_header`, of which `id` and `version` are used); the
    /// bytes after the header are copied as they are.
    pub fn add_capability(&mut self, cap: &[u8]) {
        let header = VfioInfoCapHeader::read_from_prefix(cap)
            .map(|(h, _)| h)
            .unwrap_or_default();
        let slot = self.add(cap.len(), header.id, header.version);
        if let (Some(dst), Some(src)) = (
            slot.get_mut(CAP_HEADER_SIZE..cap.len()),
            cap.get(CAP_HEADER_SIZE..),
        ) {
            // memcpy(header + 1, cap + 1, size - sizeof(*header));
            dst.copy_from_slice(src);
        }
    }

    /// [`add_capability`](Self::add_capability) of a uAPI capability struct.
    pub fn add_struct<T: IntoBytes + Immutable>(&mut self, cap: &T) {
        self.add_capability(cap.as_bytes());
    }

    /// `caps.size`: the chain's length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the chain holds no capability.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The chain's bytes with `next` offsets relative to the chain's start.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Linux `vfio_info_cap_shift(caps, offset)`: the chain's bytes with every non-zero `next`
    /// moved by `offset`, as they lie at `offset` in the caller's buffer.
    pub fn shifted(&self, offset: usize) -> Vec<u8> {
        let mut out = self.buf.clone();
        // for (tmp = buf; tmp->next; tmp = buf + tmp->next - offset)
        //         tmp->next += offset;
        let mut at = if out.is_empty() { None } else { Some(0) };
        while let Some(cap) = at {
            let next = read_next(&out, cap);
            // (A chain built by `add` only links forward; the test keeps a bad one from looping.)
            if next == 0 || next as usize <= cap {
                break;
            }
            let shifted = u32::try_from(offset).unwrap_or(u32::MAX).saturating_add(next);
            write_next(&mut out, cap, shifted);
            at = Some(next as usize);
        }
        out
    }

    /// The callers' step after building the chain for an info struct of `info_size` bytes the
    /// caller declared `argsz` for: if the chain fits in `argsz`, it is shifted and written at
    /// `info_size` in `user` (`EFAULT` if `user` ends first) and `cap_offset` is `info_size`;
    /// if not, nothing is written and `argsz` must become the size needed. In both cases the
    /// caller sets its `CAPS` flag (see the module doc).
    pub fn place(&self, info_size: usize, argsz: u32, user: &mut [u8]) -> Result<CapPlacement, UapiError> {
        if self.is_empty() {
            return Ok(CapPlacement::NoCaps);
        }
        let needed = info_size.saturating_add(self.len());
        // if (info.argsz < sizeof(info) + caps.size) {
        if (argsz as usize) < needed {
            //         info.argsz = sizeof(info) + caps.size;
            return Ok(CapPlacement::DoesNotFit {
                needed: u32::try_from(needed).unwrap_or(u32::MAX),
            });
        }
        // vfio_info_cap_shift(&caps, sizeof(info));
        // if (copy_to_user(arg + 1, caps.buf, caps.size)) return -EFAULT;
        copy_to_user(user, info_size, &self.shifted(info_size))?;
        // info.cap_offset = sizeof(info);
        Ok(CapPlacement::Written {
            cap_offset: u32::try_from(info_size).unwrap_or(u32::MAX),
        })
    }

    fn set_next(&mut self, cap: usize, next: usize) {
        write_next(&mut self.buf, cap, u32::try_from(next).unwrap_or(u32::MAX));
    }
}

/// Where [`CapChain::place`] put the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapPlacement {
    /// The chain is empty: flags, `argsz` and `cap_offset` stay as they are.
    NoCaps,
    /// The chain was written; `cap_offset` is where it starts.
    Written {
        /// Offset of the first capability in the caller's buffer.
        cap_offset: u32,
    },
    /// The chain does not fit the caller's `argsz`: nothing was written, `argsz` must report
    /// `needed` and `cap_offset` is 0.
    DoesNotFit {
        /// `sizeof(info) + caps.size`.
        needed: u32,
    },
}

impl CapPlacement {
    /// The `argsz` the kernel writes back, given the caller's.
    pub fn argsz(self, argsz: u32) -> u32 {
        match self {
            Self::DoesNotFit { needed } => needed,
            Self::NoCaps | Self::Written { .. } => argsz,
        }
    }

    /// Whether the kernel sets the INFO struct's `CAPS` flag: whenever the chain is not empty,
    /// written or not.
    pub fn has_caps(self) -> bool {
        !matches!(self, Self::NoCaps)
    }
}

fn read_next(buf: &[u8], cap: usize) -> u32 {
    buf.get(cap + NEXT_OFFSET..cap + NEXT_OFFSET + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_ne_bytes)
}

fn write_next(buf: &mut [u8], cap: usize, next: u32) {
    if let Some(dst) = buf.get_mut(cap + NEXT_OFFSET..cap + NEXT_OFFSET + 4) {
        dst.copy_from_slice(&next.to_ne_bytes());
    }
}

/// Walks the capability chain of an INFO reply as a driver does (QEMU's `vfio_get_cap()`): from
/// `cap_offset`, following `next` until it is 0. Returns each capability's offset in `buf` and its
/// header; stops early at a header that does not lie within `buf` or at a `next` that does not
/// move forward (a malformed chain cannot loop).
pub fn cap_headers(buf: &[u8], cap_offset: u32) -> Vec<(usize, VfioInfoCapHeader)> {
    let mut out = Vec::new();
    let mut at = cap_offset as usize;
    while at != 0 {
        let Some(header) = buf
            .get(at..)
            .and_then(|b| VfioInfoCapHeader::read_from_prefix(b).ok())
        else {
            break;
        };
        let header = header.0;
        out.push((at, header));
        let next = header.next as usize;
        if next <= at {
            break;
        }
        at = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use uvfio_abi::vfio::{
        VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, VFIO_REGION_INFO_CAP_TYPE,
        VfioIommuType1InfoDmaAvail, VfioRegionInfoCapType,
    };

    #[test]
    fn caps_are_padded_to_eight_bytes_and_linked() {
        let mut chain = CapChain::new();
        chain.add_struct(&VfioIommuType1InfoDmaAvail {
            header: VfioInfoCapHeader {
                id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
                version: 1,
                next: 99,
            },
            avail: 7,
        });
        chain.add(CAP_HEADER_SIZE, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
        // 12 bytes rounded up to 16, then an 8-byte header-only capability.
        assert_eq!(chain.len(), 24);
        let mut user = vec![0u8; 56];
        let placed = chain.place(32, 56, &mut user).unwrap();
        assert_eq!(placed, CapPlacement::Written { cap_offset: 32 });
        // The caller's `next` (99) is not copied: the chain links itself.
        let headers = cap_headers(&user, 32);
        assert_eq!(
            headers
                .iter()
                .map(|(o, h)| (*o, h.id, h.next))
                .collect::<Vec<_>>(),
            [
                (32, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 48),
                (48, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 0)
            ]
        );
        assert_eq!(&user[40..44], &7u32.to_ne_bytes());
        assert_eq!(&user[44..48], &[0; 4], "padding is zero");
    }

    #[test]
    fn a_chain_that_does_not_fit_writes_nothing() {
        let mut chain = CapChain::new();
        chain.add_struct(&VfioRegionInfoCapType {
            header: VfioInfoCapHeader {
                id: VFIO_REGION_INFO_CAP_TYPE,
                version: 1,
                next: 0,
            },
            type_: 1,
            subtype: 2,
        });
        let mut user = vec![0xaau8; 64];
        let placed = chain.place(32, 47, &mut user).unwrap();
        assert_eq!(placed, CapPlacement::DoesNotFit { needed: 48 });
        assert_eq!(placed.argsz(47), 48);
        assert!(placed.has_caps());
        assert!(user.iter().all(|&b| b == 0xaa));
    }

    #[test]
    fn a_chain_past_the_callers_buffer_is_efault() {
        let mut chain = CapChain::new();
        chain.add(16, 1, 1);
        let mut user = vec![0u8; 40];
        let err = chain.place(32, 48, &mut user).unwrap_err();
        assert_eq!(err.errno(), rustix::io::Errno::FAULT);
        assert!(user.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_looping_chain_is_walked_once() {
        let mut buf = vec![0u8; 32];
        let header = VfioInfoCapHeader {
            id: 1,
            version: 1,
            next: 8,
        };
        buf[8..16].copy_from_slice(header.as_bytes());
        assert_eq!(cap_headers(&buf, 8).len(), 1);
    }
}
