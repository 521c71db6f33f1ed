//! The vfio-user messages: decoding (strict, every field checked) and encoding, with no I/O.
//!
//! Each command has a module-level type for its request and its reply, built from the
//! `uvfio_abi::vfio_user` (and `uvfio_abi::vfio`) structs. Decoders take the payload (the bytes
//! after the 16-byte header, `msg_size - 16` of them) and the number of file descriptors that came
//! with the message, and fail with a [`ProtoError`] whose [`errno`](ProtoError::errno) is what
//! goes into the error reply. Sizes follow the spec's "Message sizes": "The *request* payload size
//! is defined by the usual `msg_size` field in the header, not the `argsz` field", and `argsz` of a
//! request "defines the maximum expected reply payload size, which should be at least the size of
//! the fixed reply payload headers defined here".
//!
//! Files: [`header`] (the header, commands, flags), [`version`] (`VFIO_USER_VERSION` and its JSON
//! capabilities), [`dma`] (`DMA_MAP` / `DMA_UNMAP` / `DMA_READ` / `DMA_WRITE`), [`device`] (device,
//! region, IRQ info, `SET_IRQS`, `GET_REGION_IO_FDS`), [`region`] (`REGION_READ` / `_WRITE` /
//! `_WRITE_MULTI`), [`feature`] (`DEVICE_FEATURE`, `MIG_DATA_READ` / `_WRITE`).

pub mod device;
pub mod dma;
pub mod feature;
pub mod header;
pub mod region;
pub mod version;

pub use header::{Command, HEADER_SIZE, Header, MessageType};

use rustix::io::Errno;
use zerocopy::FromBytes;

/// A message the decoders refuse: the errno of the error reply is [`ProtoError::errno`].
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The payload is shorter than the message's fixed part.
    #[error("{what}: payload of {len} bytes, at least {need} needed")]
    Short {
        /// The message.
        what: &'static str,
        /// Payload bytes received.
        len: usize,
        /// Bytes the fixed part needs.
        need: usize,
    },
    /// The payload is not the size the message's fields make it.
    #[error("{what}: payload of {len} bytes, {expected} expected")]
    Length {
        /// The message.
        what: &'static str,
        /// Payload bytes received.
        len: usize,
        /// Bytes the fields call for.
        expected: usize,
    },
    /// `argsz` is below what the message needs.
    #[error("{what}: argsz {argsz} below {min}")]
    Argsz {
        /// The message.
        what: &'static str,
        /// The `argsz` sent.
        argsz: u32,
        /// The least acceptable.
        min: usize,
    },
    /// `argsz` must be the request's own size and is not.
    #[error("{what}: argsz {argsz} is not the payload size {len}")]
    ArgszMismatch {
        /// The message.
        what: &'static str,
        /// The `argsz` sent.
        argsz: u32,
        /// The payload size.
        len: usize,
    },
    /// Flag bits this version does not define (or a combination it forbids).
    #[error("{what}: flags {flags:#x} not accepted")]
    Flags {
        /// The message.
        what: &'static str,
        /// The flags sent.
        flags: u32,
    },
    /// A field that "must be zero" is not.
    #[error("{what}: {field} must be zero, is {value:#x}")]
    NonZero {
        /// The message.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// An address range that is empty or wraps past the end of the 64-bit space.
    #[error("{what}: range of {len:#x} bytes at {start:#x} is empty or wraps")]
    Range {
        /// The message.
        what: &'static str,
        /// Its start.
        start: u64,
        /// Its length.
        len: u64,
    },
    /// A value that must be a multiple of the negotiated page size is not.
    #[error("{what}: {field} {value:#x} is not a multiple of {align:#x}")]
    Unaligned {
        /// The message.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The alignment needed.
        align: u64,
    },
    /// The message came with the wrong number of file descriptors.
    #[error("{what}: {got} file descriptors, {expected}")]
    Fds {
        /// The message.
        what: &'static str,
        /// Descriptors received.
        got: usize,
        /// What the message allows.
        expected: &'static str,
    },
    /// A data transfer larger than the negotiated `max_data_xfer_size` ("The `count` field must
    /// not exceed the value of `max_data_xfer_size` of the peer").
    #[error("{what}: count {count:#x} above max_data_xfer_size {max:#x}")]
    TooLarge {
        /// The message.
        what: &'static str,
        /// The count sent.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The version data is not UTF-8 JSON.
    #[error("version data is not JSON")]
    Json(#[source] serde_json::Error),
    /// The version data is not NUL-terminated ("variable (including terminating NUL)").
    #[error("version data is not NUL-terminated")]
    NotTerminated,
    /// A JSON member of the wrong type or value.
    #[error("version data: {field} must be {expected}")]
    JsonShape {
        /// The member.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A major version this implementation does not speak ("The major version in the reply must
    /// be the same as proposed").
    #[error("unsupported major version {major}")]
    Major {
        /// The major proposed.
        major: u16,
    },
    /// A page size set with nothing this implementation supports.
    #[error("pgsizes {proposed:#x} has no size of at least 4 KiB")]
    PageSizes {
        /// The sizes proposed.
        proposed: u64,
    },
    /// A header whose type or flags a command cannot have.
    #[error("header flags {flags:#x} / error {error_no} do not make a command")]
    NotCommand {
        /// The flags.
        flags: u32,
        /// The error field ("reserved in a command message").
        error_no: u32,
    },
    /// A command number the spec does not define (or this implementation does not know).
    #[error("unknown command {cmd}")]
    UnknownCommand {
        /// The number.
        cmd: u16,
    },
    /// A command the spec sends the other way ("Request Direction").
    #[error("{what} goes the other way")]
    Direction {
        /// The command.
        what: &'static str,
    },
}

impl ProtoError {
    /// The errno of the error reply. An unknown command is `ENOTTY`, as an unknown `ioctl()`
    /// request is for a VFIO device; every malformed message is `EINVAL`, as the VFIO ioctls
    /// answer a malformed argument (and as libvfio-user answers every case here).
    pub fn errno(&self) -> Errno {
        match self {
            ProtoError::UnknownCommand { .. } => Errno::NOTTY,
            _ => Errno::INVAL,
        }
    }
}

/// The message's fixed part `T` at the start of `payload`, and what follows it.
pub(crate) fn split<'a, T: FromBytes>(
    what: &'static str,
    payload: &'a [u8],
) -> Result<(T, &'a [u8]), ProtoError> {
    T::read_from_prefix(payload).map_err(|_| ProtoError::Short {
        what,
        len: payload.len(),
        need: size_of::<T>(),
    })
}

/// The message's fixed part `T`, which must be the whole payload.
pub(crate) fn exact<T: FromBytes>(what: &'static str, payload: &[u8]) -> Result<T, ProtoError> {
    let (value, rest) = split::<T>(what, payload)?;
    if !rest.is_empty() {
        return Err(ProtoError::Length {
            what,
            len: payload.len(),
            expected: size_of::<T>(),
        });
    }
    Ok(value)
}

/// Refuses file descriptors on a message that carries none.
pub(crate) fn no_fds(what: &'static str, fds: usize) -> Result<(), ProtoError> {
    if fds != 0 {
        return Err(ProtoError::Fds {
            what,
            got: fds,
            expected: "none allowed",
        });
    }
    Ok(())
}

/// `argsz` of a request must leave room for the fixed reply (`min` bytes).
pub(crate) fn argsz_at_least(what: &'static str, argsz: u32, min: usize) -> Result<(), ProtoError> {
    if (argsz as usize) < min {
        return Err(ProtoError::Argsz { what, argsz, min });
    }
    Ok(())
}

/// A field that must be zero.
pub(crate) fn zero(what: &'static str, field: &'static str, value: u64) -> Result<(), ProtoError> {
    if value != 0 {
        return Err(ProtoError::NonZero { what, field, value });
    }
    Ok(())
}
