//! The size rules of extensible uAPI structs: reading a struct out of the raw bytes a caller passed,
//! the way Linux does.
//!
//! Both VFIO and iommufd put the caller's idea of the struct size in the first `u32` (`argsz` in
//! VFIO, `size` in iommufd). The kernel then applies two rules:
//!
//! - A declared size below the handler's minimum (`minsz` in VFIO handlers, `min_size` =
//!   `offsetofend(struct, last_field)` in iommufd's `IOCTL_OP` table) fails with `EINVAL`.
//! - iommufd reads the struct with `copy_struct_from_user()`: a caller's struct shorter than the
//!   kernel's is zero-extended, a longer one is accepted only if every byte past the kernel's struct
//!   is zero, else `E2BIG`. From `iommufd.h`: "The kernel checks that any structure space beyond
//!   what it understands is 0." VFIO copies only `minsz` bytes and ignores the rest (its INFO
//!   ioctls use the space past the struct for the capability chain they write back).
//!
//! [`Tail`] selects between the two; [`read_extensible`] applies the whole sequence.

use rustix::io::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Errors from reading a uAPI struct out of a caller's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// The caller's buffer ends before the bytes the struct says it has (`EFAULT`: the kernel's
    /// `copy_from_user` would run off the caller's memory).
    #[error("user buffer of {len} bytes ends before byte {needed}")]
    Fault {
        /// Length of the buffer the caller passed.
        len: usize,
        /// Number of bytes that had to be readable.
        needed: usize,
    },
    /// The declared `argsz`/`size` is below the minimum the request accepts (`EINVAL`).
    #[error("{name}: declared size {declared} is below the minimum {min}")]
    SizeTooSmall {
        /// The C name of the struct.
        name: &'static str,
        /// The size the caller declared.
        declared: u32,
        /// The smallest size accepted.
        min: usize,
    },
    /// A byte past the struct as this implementation knows it is not zero (`E2BIG`, as
    /// `copy_struct_from_user`).
    #[error("{name}: byte {offset} is not zero, past the {known} bytes known here")]
    NonZeroTail {
        /// The C name of the struct.
        name: &'static str,
        /// Offset of the first non-zero byte, from the start of the struct.
        offset: usize,
        /// Size of the struct as known here.
        known: usize,
    },
    /// A reserved field ("Must be 0" in the header) is not zero (`EOPNOTSUPP`, as iommufd
    /// answers for `__reserved`: "a known field has a value the kernel does not understand or
    /// support").
    #[error("reserved field {field} is not zero")]
    ReservedNotZero {
        /// The field's name in the header.
        field: &'static str,
    },
}

impl AbiError {
    /// The errno Linux returns for this condition.
    pub fn errno(&self) -> Errno {
        match self {
            Self::Fault { .. } => Errno::FAULT,
            Self::SizeTooSmall { .. } => Errno::INVAL,
            Self::NonZeroTail { .. } => Errno::TOOBIG,
            Self::ReservedNotZero { .. } => Errno::OPNOTSUPP,
        }
    }
}

/// A uAPI struct whose first `u32` is the size the caller declares for it.
pub trait Extensible: FromBytes + IntoBytes + Immutable + KnownLayout + Sized {
    /// The struct's C name, for errors.
    const NAME: &'static str;
    /// The smallest declared size Linux accepts: `offsetofend` of the last field of the struct's
    /// first version (VFIO's `minsz`, iommufd's `IOCTL_OP(..., last)`).
    const MIN_SIZE: usize;
}

/// What to do with bytes past the struct as known here, up to the declared size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// They must be zero, else `E2BIG` (iommufd, through `copy_struct_from_user`).
    MustBeZero,
    /// They are not looked at (VFIO, which copies `minsz` bytes and uses `argsz` as the size of
    /// the caller's buffer).
    Ignored,
}

/// The size a caller declares in the first `u32` of `user` (`argsz` or `size`), as the kernel's
/// `get_user(user_size, (u32 __user *)arg)` reads it.
pub fn declared_size(user: &[u8]) -> Result<u32, AbiError> {
    u32::read_from_prefix(user)
        .map(|(size, _)| size)
        .map_err(|_| AbiError::Fault {
            len: user.len(),
            needed: size_of::<u32>(),
        })
}

/// Checks a declared size against the smallest one accepted (`EINVAL` below it).
pub fn check_min_size(name: &'static str, declared: u32, min: usize) -> Result<(), AbiError> {
    if (declared as usize) < min {
        return Err(AbiError::SizeTooSmall { name, declared, min });
    }
    Ok(())
}

/// Reads the first `min(user.len(), size_of::<T>())` bytes of `user` into a `T` whose other bytes
/// are zero: a caller's older, shorter struct reads as the current one with new fields zero.
pub fn read_prefix<T: FromBytes + IntoBytes + KnownLayout + Immutable>(user: &[u8]) -> T {
    let mut value = T::new_zeroed();
    let len = user.len().min(size_of::<T>());
    value.as_mut_bytes()[..len].copy_from_slice(&user[..len]);
    value
}

/// Checks that every byte of `user` from `known` on is zero (`E2BIG` otherwise).
pub fn check_zero_tail(name: &'static str, user: &[u8], known: usize) -> Result<(), AbiError> {
    let tail = user.get(known..).unwrap_or(&[]);
    match tail.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(AbiError::NonZeroTail {
            name,
            offset: known + i,
            known,
        }),
    }
}

/// Linux `copy_struct_from_user(dst, sizeof(T), src, user.len())`: a shorter `user` is
/// zero-extended; a longer one must be zero past `size_of::<T>()` (`E2BIG` otherwise).
pub fn copy_struct_from_user<T: Extensible>(user: &[u8]) -> Result<T, AbiError> {
    check_zero_tail(T::NAME, user, size_of::<T>())?;
    Ok(read_prefix(user))
}

/// Reads an extensible struct from the caller's bytes as a Linux ioctl handler does:
/// the declared size must be at least [`Extensible::MIN_SIZE`] (`EINVAL`); fields past the
/// declared size read as zero. With [`Tail::MustBeZero`] every declared byte is read, so the
/// declared size must lie within `user` (`EFAULT`), and bytes past the struct must be zero
/// (`E2BIG`). With [`Tail::Ignored`] only the bytes of the struct itself are read (VFIO reads
/// `minsz`), so only those must lie within `user`.
pub fn read_extensible<T: Extensible>(user: &[u8], tail: Tail) -> Result<T, AbiError> {
    let declared = declared_size(user)?;
    check_min_size(T::NAME, declared, T::MIN_SIZE)?;
    let declared = declared as usize;
    let needed = match tail {
        Tail::MustBeZero => declared,
        Tail::Ignored => declared.min(size_of::<T>()),
    };
    let Some(user) = user.get(..needed) else {
        return Err(AbiError::Fault {
            len: user.len(),
            needed,
        });
    };
    match tail {
        Tail::MustBeZero => copy_struct_from_user(user),
        Tail::Ignored => Ok(read_prefix(user)),
    }
}

/// Checks that a reserved field ("Must be 0" in the header) is all zero bytes.
pub fn check_reserved_zero<R: IntoBytes + Immutable + ?Sized>(
    field: &'static str,
    value: &R,
) -> Result<(), AbiError> {
    if value.as_bytes().iter().any(|&b| b != 0) {
        return Err(AbiError::ReservedNotZero { field });
    }
    Ok(())
}

/// Writes `value` back to the caller's bytes, at most `user.len()` of them (iommufd's
/// `iommufd_ucmd_respond` copies `min(user_size, sizeof(cmd))`); returns the bytes written.
pub fn write_prefix<T: IntoBytes + Immutable>(value: &T, user: &mut [u8]) -> usize {
    let bytes = value.as_bytes();
    let len = user.len().min(bytes.len());
    user[..len].copy_from_slice(&bytes[..len]);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 24-byte struct whose first version ended after `b` (16 bytes).
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
    #[repr(C)]
    struct Demo {
        size: u32,
        flags: u32,
        b: u64,
        c: u64,
    }

    impl Extensible for Demo {
        const NAME: &'static str = "demo";
        const MIN_SIZE: usize = 16;
    }

    fn bytes_of(size: u32, len: usize) -> Vec<u8> {
        let demo = Demo {
            size,
            flags: 1,
            b: 2,
            c: 3,
        };
        let mut v = demo.as_bytes().to_vec();
        v.resize(len, 0);
        v
    }

    #[test]
    fn short_argsz_is_einval() {
        let user = bytes_of(15, 24);
        for tail in [Tail::MustBeZero, Tail::Ignored] {
            let err = read_extensible::<Demo>(&user, tail).unwrap_err();
            assert_eq!(
                err,
                AbiError::SizeTooSmall {
                    name: "demo",
                    declared: 15,
                    min: 16
                }
            );
            assert_eq!(err.errno(), Errno::INVAL);
        }
    }

    #[test]
    fn minimum_argsz_zero_extends_newer_fields() {
        let user = bytes_of(16, 16);
        let demo = read_extensible::<Demo>(&user, Tail::MustBeZero).unwrap();
        assert_eq!(
            demo,
            Demo {
                size: 16,
                flags: 1,
                b: 2,
                c: 0
            }
        );
    }

    #[test]
    fn bytes_past_the_declared_size_are_not_read() {
        // The buffer holds `c`, but the caller declared an older 16-byte struct.
        let mut user = bytes_of(16, 24);
        user[16] = 9;
        let demo = read_extensible::<Demo>(&user, Tail::MustBeZero).unwrap();
        assert_eq!(demo.c, 0);
    }

    #[test]
    fn exact_argsz_reads_everything() {
        let user = bytes_of(24, 24);
        let demo = read_extensible::<Demo>(&user, Tail::MustBeZero).unwrap();
        assert_eq!(
            demo,
            Demo {
                size: 24,
                flags: 1,
                b: 2,
                c: 3
            }
        );
    }

    #[test]
    fn longer_argsz_with_zero_tail_is_accepted() {
        let user = bytes_of(40, 40);
        let demo = read_extensible::<Demo>(&user, Tail::MustBeZero).unwrap();
        assert_eq!(demo.c, 3);
        assert_eq!(demo.size, 40);
    }

    #[test]
    fn longer_argsz_with_non_zero_tail_is_e2big() {
        let mut user = bytes_of(40, 40);
        user[33] = 0xff;
        let err = read_extensible::<Demo>(&user, Tail::MustBeZero).unwrap_err();
        assert_eq!(
            err,
            AbiError::NonZeroTail {
                name: "demo",
                offset: 33,
                known: 24
            }
        );
        assert_eq!(err.errno(), Errno::TOOBIG);
    }

    #[test]
    fn vfio_style_ignores_a_non_zero_tail() {
        let mut user = bytes_of(40, 40);
        user[33] = 0xff;
        let demo = read_extensible::<Demo>(&user, Tail::Ignored).unwrap();
        assert_eq!(demo.c, 3);
    }

    #[test]
    fn declared_size_past_the_buffer_is_efault() {
        let user = bytes_of(32, 24);
        let err = read_extensible::<Demo>(&user, Tail::MustBeZero).unwrap_err();
        assert_eq!(err, AbiError::Fault { len: 24, needed: 32 });
        assert_eq!(err.errno(), Errno::FAULT);
        // VFIO-style reads stop at the struct: a large argsz over a struct-sized buffer is fine
        // (the space past the struct is the caller's, for capability chains written back).
        assert_eq!(read_extensible::<Demo>(&user, Tail::Ignored).map(|d| d.c), Ok(3));
        let short = bytes_of(32, 20);
        assert_eq!(
            read_extensible::<Demo>(&short, Tail::Ignored),
            Err(AbiError::Fault { len: 20, needed: 24 })
        );
    }

    #[test]
    fn buffer_without_a_size_word_is_efault() {
        assert_eq!(
            declared_size(&[1, 2, 3]),
            Err(AbiError::Fault { len: 3, needed: 4 })
        );
        assert_eq!(declared_size(&24u32.to_ne_bytes()), Ok(24));
    }

    #[test]
    fn copy_struct_from_user_matches_the_kernel() {
        // Shorter: zero-extended.
        let short = bytes_of(24, 8);
        let demo: Demo = copy_struct_from_user(&short).unwrap();
        assert_eq!((demo.flags, demo.b, demo.c), (1, 0, 0));
        // Longer, zero tail: accepted.
        let long = bytes_of(24, 64);
        assert_eq!(copy_struct_from_user::<Demo>(&long).unwrap().c, 3);
        // Longer, non-zero tail: E2BIG.
        let mut bad = long;
        bad[63] = 1;
        assert_eq!(
            copy_struct_from_user::<Demo>(&bad).unwrap_err().errno(),
            Errno::TOOBIG
        );
    }

    #[test]
    fn reserved_fields_must_be_zero() {
        assert_eq!(check_reserved_zero("__reserved", &0u32), Ok(()));
        assert_eq!(check_reserved_zero("__reserved", &[0u8; 3]), Ok(()));
        let err = check_reserved_zero("__reserved", &0x100u16).unwrap_err();
        assert_eq!(err, AbiError::ReservedNotZero { field: "__reserved" });
        assert_eq!(err.errno(), Errno::OPNOTSUPP);
        assert!(check_reserved_zero("__reserved", &[0u8, 0, 7]).is_err());
    }

    #[test]
    fn write_prefix_truncates_to_the_caller_buffer() {
        let demo = Demo {
            size: 24,
            flags: 1,
            b: 2,
            c: 3,
        };
        let mut short = [0u8; 16];
        assert_eq!(write_prefix(&demo, &mut short), 16);
        assert_eq!(read_prefix::<Demo>(&short).b, 2);
        let mut long = [0xaau8; 32];
        assert_eq!(write_prefix(&demo, &mut long), 24);
        assert_eq!(&long[24..], &[0xaa; 8]);
    }
}
