//! Linux ioctl request-number encoding (`include/uapi/asm-generic/ioctl.h`).
//!
//! Every VFIO and iommufd request is built with `_IO(type, nr)`: no direction and no size bits,
//! because the structs carry their own size (`argsz` / `size`). From `vfio.h`: "We therefore use
//! the _IO() macro for these defines to avoid implicitly embedding a size into the ioctl request."

/// Number of bits of the command number (`_IOC_NRBITS`).
pub const IOC_NRBITS: u32 = 8;
/// Number of bits of the type ("magic") field (`_IOC_TYPEBITS`).
pub const IOC_TYPEBITS: u32 = 8;
/// Number of bits of the size field (`_IOC_SIZEBITS`, generic value: x86, arm64, riscv).
pub const IOC_SIZEBITS: u32 = 14;
/// Number of bits of the direction field (`_IOC_DIRBITS`, generic value).
pub const IOC_DIRBITS: u32 = 2;
/// Shift of the command number (`_IOC_NRSHIFT`).
pub const IOC_NRSHIFT: u32 = 0;
/// Shift of the type field (`_IOC_TYPESHIFT`).
pub const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
/// Shift of the size field (`_IOC_SIZESHIFT`).
pub const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
/// Shift of the direction field (`_IOC_DIRSHIFT`).
pub const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
/// Direction "no data transfer" (`_IOC_NONE`).
pub const IOC_NONE: u32 = 0;

/// An ioctl request number as the kernel sees it (the `unsigned int cmd` of `unlocked_ioctl`).
pub type Request = u32;

/// Linux `_IO(type, nr)`: a request with no direction and no size.
pub const fn io(ty: u8, nr: u8) -> Request {
    (IOC_NONE << IOC_DIRSHIFT) | ((ty as u32) << IOC_TYPESHIFT) | ((nr as u32) << IOC_NRSHIFT)
}

/// Linux `_IOC_NR(req)`: the command number of a request.
pub const fn ioc_nr(req: Request) -> u8 {
    // The mask keeps IOC_NRBITS = 8 bits, so the cast loses nothing.
    ((req >> IOC_NRSHIFT) & ((1 << IOC_NRBITS) - 1)) as u8
}

/// Linux `_IOC_TYPE(req)`: the type ("magic") byte of a request.
pub const fn ioc_type(req: Request) -> u8 {
    // The mask keeps IOC_TYPEBITS = 8 bits, so the cast loses nothing.
    ((req >> IOC_TYPESHIFT) & ((1 << IOC_TYPEBITS) - 1)) as u8
}

/// Linux `_IOC_SIZE(req)`: the size field of a request (always 0 for VFIO and iommufd).
pub const fn ioc_size(req: Request) -> u32 {
    (req >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)
}

/// Linux `_IOC_DIR(req)`: the direction field of a request (always `IOC_NONE` here).
pub const fn ioc_dir(req: Request) -> u32 {
    (req >> IOC_DIRSHIFT) & ((1 << IOC_DIRBITS) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trips_through_the_decoders() {
        let req = io(b';', 100);
        assert_eq!(req, 0x3b64);
        assert_eq!(ioc_type(req), b';');
        assert_eq!(ioc_nr(req), 100);
        assert_eq!(ioc_size(req), 0);
        assert_eq!(ioc_dir(req), IOC_NONE);
    }

    #[test]
    fn decoders_see_size_and_direction_bits() {
        // _IOWR('x', 7, 24-byte struct) as asm-generic encodes it.
        let req = (3 << IOC_DIRSHIFT) | (24 << IOC_SIZESHIFT) | ((b'x' as u32) << 8) | 7;
        assert_eq!(ioc_dir(req), 3);
        assert_eq!(ioc_size(req), 24);
        assert_eq!(ioc_type(req), b'x');
        assert_eq!(ioc_nr(req), 7);
    }
}
