//! The 16-byte header every message starts with, the command numbers and the flags.
//!
//! "All messages, both command messages and reply messages, are preceded by a 16-byte header that
//! contains basic information about the message." A command is checked here before its payload is
//! decoded: its type must be *Command*, it may set *No_reply* and nothing else ("*Error* in a
//! reply message" — not in a command), and its error field "is reserved in a command message", so
//! it must be zero.

use super::ProtoError;
use uvfio_abi::vfio_user::{
    VFIO_USER_DEVICE_FEATURE, VFIO_USER_DEVICE_GET_INFO, VFIO_USER_DEVICE_GET_IRQ_INFO,
    VFIO_USER_DEVICE_GET_REGION_INFO, VFIO_USER_DEVICE_GET_REGION_IO_FDS, VFIO_USER_DEVICE_RESET,
    VFIO_USER_DEVICE_SET_IRQS, VFIO_USER_DMA_MAP, VFIO_USER_DMA_READ, VFIO_USER_DMA_UNMAP,
    VFIO_USER_DMA_WRITE, VFIO_USER_F_ERROR, VFIO_USER_F_NO_REPLY, VFIO_USER_F_TYPE_COMMAND,
    VFIO_USER_F_TYPE_MASK, VFIO_USER_F_TYPE_REPLY, VFIO_USER_MIG_DATA_READ, VFIO_USER_MIG_DATA_WRITE,
    VFIO_USER_REGION_READ, VFIO_USER_REGION_WRITE, VFIO_USER_REGION_WRITE_MULTI, VFIO_USER_VERSION,
    VfioUserHeader,
};
use zerocopy::{FromBytes, IntoBytes};

/// Size of the header.
pub const HEADER_SIZE: usize = size_of::<VfioUserHeader>();

/// The commands of the spec's table ("Commands").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `VFIO_USER_VERSION` (1).
    Version,
    /// `VFIO_USER_DMA_MAP` (2).
    DmaMap,
    /// `VFIO_USER_DMA_UNMAP` (3).
    DmaUnmap,
    /// `VFIO_USER_DEVICE_GET_INFO` (4).
    DeviceGetInfo,
    /// `VFIO_USER_DEVICE_GET_REGION_INFO` (5).
    DeviceGetRegionInfo,
    /// `VFIO_USER_DEVICE_GET_REGION_IO_FDS` (6).
    DeviceGetRegionIoFds,
    /// `VFIO_USER_DEVICE_GET_IRQ_INFO` (7).
    DeviceGetIrqInfo,
    /// `VFIO_USER_DEVICE_SET_IRQS` (8).
    DeviceSetIrqs,
    /// `VFIO_USER_REGION_READ` (9).
    RegionRead,
    /// `VFIO_USER_REGION_WRITE` (10).
    RegionWrite,
    /// `VFIO_USER_DMA_READ` (11, server → client).
    DmaRead,
    /// `VFIO_USER_DMA_WRITE` (12, server → client).
    DmaWrite,
    /// `VFIO_USER_DEVICE_RESET` (13).
    DeviceReset,
    /// `VFIO_USER_REGION_WRITE_MULTI` (15).
    RegionWriteMulti,
    /// `VFIO_USER_DEVICE_FEATURE` (16).
    DeviceFeature,
    /// `VFIO_USER_MIG_DATA_READ` (17).
    MigDataRead,
    /// `VFIO_USER_MIG_DATA_WRITE` (18).
    MigDataWrite,
}

impl Command {
    /// Every command, in number order.
    pub const ALL: [Command; 17] = [
        Command::Version,
        Command::DmaMap,
        Command::DmaUnmap,
        Command::DeviceGetInfo,
        Command::DeviceGetRegionInfo,
        Command::DeviceGetRegionIoFds,
        Command::DeviceGetIrqInfo,
        Command::DeviceSetIrqs,
        Command::RegionRead,
        Command::RegionWrite,
        Command::DmaRead,
        Command::DmaWrite,
        Command::DeviceReset,
        Command::RegionWriteMulti,
        Command::DeviceFeature,
        Command::MigDataRead,
        Command::MigDataWrite,
    ];

    /// The command number.
    pub fn raw(self) -> u16 {
        match self {
            Command::Version => VFIO_USER_VERSION,
            Command::DmaMap => VFIO_USER_DMA_MAP,
            Command::DmaUnmap => VFIO_USER_DMA_UNMAP,
            Command::DeviceGetInfo => VFIO_USER_DEVICE_GET_INFO,
            Command::DeviceGetRegionInfo => VFIO_USER_DEVICE_GET_REGION_INFO,
            Command::DeviceGetRegionIoFds => VFIO_USER_DEVICE_GET_REGION_IO_FDS,
            Command::DeviceGetIrqInfo => VFIO_USER_DEVICE_GET_IRQ_INFO,
            Command::DeviceSetIrqs => VFIO_USER_DEVICE_SET_IRQS,
            Command::RegionRead => VFIO_USER_REGION_READ,
            Command::RegionWrite => VFIO_USER_REGION_WRITE,
            Command::DmaRead => VFIO_USER_DMA_READ,
            Command::DmaWrite => VFIO_USER_DMA_WRITE,
            Command::DeviceReset => VFIO_USER_DEVICE_RESET,
            Command::RegionWriteMulti => VFIO_USER_REGION_WRITE_MULTI,
            Command::DeviceFeature => VFIO_USER_DEVICE_FEATURE,
            Command::MigDataRead => VFIO_USER_MIG_DATA_READ,
            Command::MigDataWrite => VFIO_USER_MIG_DATA_WRITE,
        }
    }

    /// The command numbered `raw`, if the spec defines one.
    pub fn from_raw(raw: u16) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.raw() == raw)
    }

    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Version => "VFIO_USER_VERSION",
            Command::DmaMap => "VFIO_USER_DMA_MAP",
            Command::DmaUnmap => "VFIO_USER_DMA_UNMAP",
            Command::DeviceGetInfo => "VFIO_USER_DEVICE_GET_INFO",
            Command::DeviceGetRegionInfo => "VFIO_USER_DEVICE_GET_REGION_INFO",
            Command::DeviceGetRegionIoFds => "VFIO_USER_DEVICE_GET_REGION_IO_FDS",
            Command::DeviceGetIrqInfo => "VFIO_USER_DEVICE_GET_IRQ_INFO",
            Command::DeviceSetIrqs => "VFIO_USER_DEVICE_SET_IRQS",
            Command::RegionRead => "VFIO_USER_REGION_READ",
            Command::RegionWrite => "VFIO_USER_REGION_WRITE",
            Command::DmaRead => "VFIO_USER_DMA_READ",
            Command::DmaWrite => "VFIO_USER_DMA_WRITE",
            Command::DeviceReset => "VFIO_USER_DEVICE_RESET",
            Command::RegionWriteMulti => "VFIO_USER_REGION_WRITE_MULTI",
            Command::DeviceFeature => "VFIO_USER_DEVICE_FEATURE",
            Command::MigDataRead => "VFIO_USER_MIG_DATA_READ",
            Command::MigDataWrite => "VFIO_USER_MIG_DATA_WRITE",
        }
    }

    /// Whether the client sends it ("Request Direction": all but `DMA_READ` / `DMA_WRITE`).
    pub fn from_client(self) -> bool {
        !matches!(self, Command::DmaRead | Command::DmaWrite)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The *Type* bits of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// "*Command* (value 0x0)".
    Command,
    /// "*Reply* (value 0x1)".
    Reply,
    /// A value the spec does not define.
    Other(u32),
}

/// A message header, as sent (no field checked yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// "Message ID identifies the message, and is echoed in the command's reply message."
    pub msg_id: u16,
    /// The command number (not necessarily one the spec defines).
    pub cmd: u16,
    /// "the size of the entire message, including the header".
    pub msg_size: u32,
    /// `VFIO_USER_F_*`.
    pub flags: u32,
    /// The errno of an error reply.
    pub error_no: u32,
}

impl Header {
    /// The header in `bytes`.
    pub fn decode(bytes: &[u8; HEADER_SIZE]) -> Header {
        // Any 16 bytes make a header: the read cannot fail.
        let raw = VfioUserHeader::read_from_bytes(bytes).unwrap_or_default();
        Header {
            msg_id: raw.msg_id,
            cmd: raw.cmd,
            msg_size: raw.msg_size,
            flags: raw.flags,
            error_no: raw.error_no,
        }
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let raw = VfioUserHeader {
            msg_id: self.msg_id,
            cmd: self.cmd,
            msg_size: self.msg_size,
            flags: self.flags,
            error_no: self.error_no,
        };
        let mut out = [0u8; HEADER_SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// The payload size `msg_size` announces, if it covers the header at least.
    pub fn payload_len(&self) -> Option<usize> {
        (self.msg_size as usize).checked_sub(HEADER_SIZE)
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self.flags & VFIO_USER_F_TYPE_MASK {
            VFIO_USER_F_TYPE_COMMAND => MessageType::Command,
            VFIO_USER_F_TYPE_REPLY => MessageType::Reply,
            other => MessageType::Other(other),
        }
    }

    /// "*No_reply* in a command message indicates that no reply is needed for this command."
    pub fn no_reply(&self) -> bool {
        self.flags & VFIO_USER_F_NO_REPLY != 0
    }

    /// Whether an error reply: "the command being acknowledged had an error".
    pub fn is_error(&self) -> bool {
        self.flags & VFIO_USER_F_ERROR != 0
    }

    /// The command this header announces, checked: a *Command* type, no flag but *No_reply*, a
    /// zero error field, a number the spec defines, sent in the client → server direction.
    pub fn command(&self) -> Result<Command, ProtoError> {
        let flags_ok = self.message_type() == MessageType::Command
            && self.flags & !(VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY) == 0;
        if !flags_ok || self.error_no != 0 {
            return Err(ProtoError::NotCommand {
                flags: self.flags,
                error_no: self.error_no,
            });
        }
        let cmd = Command::from_raw(self.cmd).ok_or(ProtoError::UnknownCommand { cmd: self.cmd })?;
        if !cmd.from_client() {
            return Err(ProtoError::Direction { what: cmd.name() });
        }
        Ok(cmd)
    }

    /// A command header for `payload_len` bytes of payload (`None` past 4 GiB).
    pub fn new_command(msg_id: u16, cmd: Command, payload_len: usize, no_reply: bool) -> Option<Header> {
        Some(Header {
            msg_id,
            cmd: cmd.raw(),
            msg_size: u32::try_from(payload_len.checked_add(HEADER_SIZE)?).ok()?,
            flags: VFIO_USER_F_TYPE_COMMAND | if no_reply { VFIO_USER_F_NO_REPLY } else { 0 },
            error_no: 0,
        })
    }

    /// The reply to this command carrying `payload_len` bytes: "The reply consists of the header
    /// with the *Reply* bit set, plus any additional data." `None` past 4 GiB.
    pub fn reply(&self, payload_len: usize) -> Option<Header> {
        Some(Header {
            msg_id: self.msg_id,
            cmd: self.cmd,
            msg_size: u32::try_from(payload_len.checked_add(HEADER_SIZE)?).ok()?,
            flags: VFIO_USER_F_TYPE_REPLY,
            error_no: 0,
        })
    }

    /// The error reply to this command: "If an error occurs, the reply message must only include
    /// the reply header."
    pub fn error_reply(&self, errno: rustix::io::Errno) -> Header {
        Header {
            msg_id: self.msg_id,
            cmd: self.cmd,
            msg_size: HEADER_SIZE as u32,
            flags: VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR,
            error_no: errno.raw_os_error().unsigned_abs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_gaps_are_unknown() {
        for c in Command::ALL {
            assert_eq!(Command::from_raw(c.raw()), Some(c));
        }
        assert_eq!(Command::from_raw(0), None);
        assert_eq!(Command::from_raw(14), None);
        assert_eq!(Command::from_raw(19), None);
    }

    #[test]
    fn command_header_checks() {
        let mut h = Header::new_command(7, Command::DeviceReset, 0, true).unwrap_or_else(|| unreachable!());
        assert_eq!(Header::decode(&h.encode()), h);
        assert_eq!(h.command().ok(), Some(Command::DeviceReset));
        h.flags |= VFIO_USER_F_ERROR;
        assert!(matches!(h.command(), Err(ProtoError::NotCommand { .. })));
        h.flags = VFIO_USER_F_TYPE_REPLY;
        assert!(h.command().is_err());
        h.flags = 0;
        h.error_no = 1;
        assert!(h.command().is_err());
        h.error_no = 0;
        h.cmd = 99;
        assert_eq!(h.command().map_err(|e| e.errno()), Err(rustix::io::Errno::NOTTY));
        h.cmd = VFIO_USER_DMA_READ;
        assert!(matches!(h.command(), Err(ProtoError::Direction { .. })));
        let e = h.error_reply(rustix::io::Errno::NOENT);
        assert!(e.is_error() && e.error_no == 2 && e.msg_size == 16 && e.msg_id == 7);
    }
}
