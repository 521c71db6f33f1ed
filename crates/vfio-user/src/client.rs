//! A minimal vfio-user client: enough to drive a device through a server (the tests' client, and
//! the base of a driver backend over vfio-user).
//!
//! Each call sends one command and waits for its reply ("Message IDs belong entirely to the
//! sender": they count up from 1 here); an error reply becomes [`ClientError::Remote`] with its
//! errno. [`Client::send_raw`] and [`Client::recv`] send and receive whatever bytes a test wants,
//! for the malformed messages of the hostile-client tests.
//!
//! A client that maps memory without a file descriptor gives the client its [`DmaMemory`]
//! ([`Client::set_dma_memory`]): the server's `VFIO_USER_DMA_READ` / `VFIO_USER_DMA_WRITE` requests
//! that arrive while a call waits for its reply are answered from it, as QEMU's proxy answers them
//! from guest memory, and [`Client::serve_requests`] answers those that come while the client is
//! otherwise idle (waiting for an interrupt, say).

use crate::proto::device::{RegionInfo, SetIrqs, encode_query};
use crate::proto::dma::{DmaData, DmaMap, DmaRead, DmaUnmap, UnmapTarget};
use crate::proto::region::RegionAccess;
use crate::proto::version::{Capabilities, Version};
use crate::proto::{Command, Header, MessageType, ProtoError};
use crate::transport::{Limits, Receiver, TransportError, Wait, send_message};
use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use uvfio_abi::vfio::{VfioIrqInfo, VfioRegionInfo};
use uvfio_abi::vfio_user::VfioUserDeviceInfo;
use uvfio_types::Iova;
use zerocopy::FromBytes;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting failed.
    #[error("connecting")]
    Connect(#[source] std::io::Error),
    /// The socket failed or closed.
    #[error("socket")]
    Transport(#[source] TransportError),
    /// No reply within the client's timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The server answered with an error reply.
    #[error("{cmd} failed: {errno:?}")]
    Remote {
        /// The command.
        cmd: Command,
        /// The errno of the reply.
        errno: Errno,
    },
    /// The reply does not answer the command sent.
    #[error("reply (id {got_id}, command {got_cmd}) does not answer id {id}, {cmd}")]
    Mismatch {
        /// The command's id.
        id: u16,
        /// The command.
        cmd: Command,
        /// The reply's id.
        got_id: u16,
        /// The reply's command number.
        got_cmd: u16,
    },
    /// A reply payload that does not decode.
    #[error("malformed reply")]
    Proto(#[source] ProtoError),
}

impl ClientError {
    /// The errno of an error reply, if this is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ClientError::Remote { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// A message from the server.
#[derive(Debug)]
pub struct Reply {
    /// Its header.
    pub header: Header,
    /// Its payload.
    pub payload: Vec<u8>,
    /// The descriptors that came with it.
    pub fds: Vec<OwnedFd>,
}

/// The client's memory behind its DMA regions without a file descriptor: what the server's
/// `VFIO_USER_DMA_READ` and `VFIO_USER_DMA_WRITE` requests read and write. An error is the errno
/// of the error reply.
pub trait DmaMemory: Send + std::fmt::Debug {
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&self, addr: Iova, buf: &mut [u8]) -> Result<(), Errno>;
    /// Writes `data` at `addr`.
    fn write(&self, addr: Iova, data: &[u8]) -> Result<(), Errno>;
}

/// The most bytes one server request may move (the recv limit below).
const MAX_REQUEST: u64 = 64 << 20;

/// A connection to a vfio-user server.
#[derive(Debug)]
pub struct Client {
    sock: UnixStream,
    next_id: u16,
    timeout: Duration,
    memory: Option<Box<dyn DmaMemory>>,
    requests: u64,
    rx: Receiver,
}

impl Client {
    /// Connects to the server listening at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        UnixStream::connect(path)
            .map(Client::new)
            .map_err(ClientError::Connect)
    }

    /// A client over a connected socket; replies are awaited 10 s. The socket's receive timeout
    /// becomes [`crate::transport::RECV_SLICE`] (see [`crate::transport::prepare`]).
    pub fn new(sock: UnixStream) -> Client {
        // Failing both ways leaves a socket that cannot be set up at all: its first call says so.
        let _ = crate::transport::prepare(sock.as_fd());
        Client {
            sock,
            next_id: 1,
            timeout: Duration::from_secs(10),
            memory: None,
            requests: 0,
            rx: Receiver::new(),
        }
    }

    /// Sets the memory the server's DMA requests reach (`None`: they get `EINVAL`).
    pub fn set_dma_memory(&mut self, memory: Option<Box<dyn DmaMemory>>) {
        self.memory = memory;
    }

    /// How many server requests this client has answered.
    pub fn requests_answered(&self) -> u64 {
        self.requests
    }

    /// Sets how long a reply is awaited.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The socket.
    pub fn socket(&self) -> &UnixStream {
        &self.sock
    }

    /// Sends `bytes` as they are, with `fds` as `SCM_RIGHTS` (one `sendmsg`).
    pub fn send_raw(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), ClientError> {
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(ClientError::Transport(TransportError::Io {
                op: "sendmsg (control buffer)",
                source: Errno::NOBUFS,
            }));
        }
        let mut sent = 0;
        while sent < bytes.len() {
            let iov = [IoSlice::new(&bytes[sent..])];
            let flags = SendFlags::NOSIGNAL;
            let n = if sent == 0 {
                sendmsg(&self.sock, &iov, &mut control, flags)
            } else {
                sendmsg(&self.sock, &iov, &mut SendAncillaryBuffer::default(), flags)
            };
            match n {
                Ok(n) => sent += n,
                Err(Errno::INTR) => continue,
                Err(source) => {
                    return Err(ClientError::Transport(TransportError::Io {
                        op: "sendmsg",
                        source,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Sends command `cmd` with `payload` and `fds`; returns its message id.
    pub fn send(
        &mut self,
        cmd: Command,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
        no_reply: bool,
    ) -> Result<u16, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let header = Header::new_command(id, cmd, payload.len(), no_reply).ok_or(ClientError::Transport(
            TransportError::Io {
                op: "encoding the header",
                source: Errno::TOOBIG,
            },
        ))?;
        send_message(self.sock.as_fd(), &header, payload, fds, None).map_err(ClientError::Transport)?;
        Ok(id)
    }

    /// Receives the next message (any), waiting at most the timeout for it (about: a read that has
    /// begun may go on up to [`crate::transport::RECV_SLICE`] longer).
    pub fn recv(&mut self) -> Result<Reply, ClientError> {
        let limits = Limits {
            max_payload: 64 << 20,
            max_fds: 16,
        };
        let until = Wait {
            stop: None,
            deadline: Instant::now().checked_add(self.timeout),
        };
        let msg = match self.rx.recv(self.sock.as_fd(), &limits, until) {
            Ok(msg) => msg,
            Err(TransportError::TimedOut) => return Err(ClientError::Timeout(self.timeout)),
            Err(e) => return Err(ClientError::Transport(e)),
        };
        Ok(Reply {
            header: msg.header,
            payload: msg.payload,
            fds: msg.fds,
        })
    }

    /// Sends `cmd` and returns its (successful) reply; server requests that come first are
    /// answered.
    pub fn call(
        &mut self,
        cmd: Command,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<Reply, ClientError> {
        let id = self.send(cmd, payload, fds, false)?;
        let reply = loop {
            let msg = self.recv()?;
            if msg.header.message_type() != MessageType::Command {
                break msg;
            }
            self.answer(&msg)?;
        };
        if reply.header.msg_id != id || reply.header.cmd != cmd.raw() {
            return Err(ClientError::Mismatch {
                id,
                cmd,
                got_id: reply.header.msg_id,
                got_cmd: reply.header.cmd,
            });
        }
        if reply.header.is_error() {
            return Err(ClientError::Remote {
                cmd,
                errno: Errno::from_raw_os_error(reply.header.error_no as i32),
            });
        }
        Ok(reply)
    }

    /// Answers the server's requests for `wait`: how many it answered. A reply here (nothing is
    /// awaited) is [`ClientError::Mismatch`].
    pub fn serve_requests(&mut self, wait: Duration) -> Result<usize, ClientError> {
        let deadline = Instant::now() + wait;
        let saved = self.timeout;
        let mut answered = 0;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(answered);
            }
            self.timeout = left;
            match self.recv() {
                Ok(msg) if msg.header.message_type() == MessageType::Command => match self.answer(&msg) {
                    Ok(()) => answered += 1,
                    Err(e) => break Err(e),
                },
                Ok(msg) => {
                    break Err(ClientError::Mismatch {
                        id: 0,
                        cmd: Command::Version,
                        got_id: msg.header.msg_id,
                        got_cmd: msg.header.cmd,
                    });
                }
                Err(ClientError::Timeout(_)) => break Ok(answered),
                Err(e) => break Err(e),
            }
        };
        self.timeout = saved;
        result
    }

    /// Answers one request of the server: `VFIO_USER_DMA_READ` / `_WRITE` from the
    /// [`DmaMemory`]; anything else, a malformed request or a failing access gets an error reply.
    fn answer(&mut self, msg: &Reply) -> Result<(), ClientError> {
        let h = &msg.header;
        if h.no_reply() {
            // Every server request needs its reply; one that asks for none is malformed, and
            // answering it would break the stream's pairing: it is dropped.
            return Ok(());
        }
        let result = match Command::from_raw(h.cmd) {
            _ if h.is_error() => Err(Errno::INVAL),
            Some(Command::DmaRead) => self.answer_read(&msg.payload),
            Some(Command::DmaWrite) => self.answer_write(&msg.payload),
            _ => Err(Errno::INVAL),
        };
        self.requests += 1;
        let sent = match result {
            Ok(payload) => match h.reply(payload.len()) {
                Some(header) => send_message(self.sock.as_fd(), &header, &payload, &[], None),
                None => send_message(self.sock.as_fd(), &h.error_reply(Errno::TOOBIG), &[], &[], None),
            },
            Err(errno) => send_message(self.sock.as_fd(), &h.error_reply(errno), &[], &[], None),
        };
        sent.map_err(ClientError::Transport)
    }

    fn answer_read(&self, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        let q = DmaRead::decode(payload, MAX_REQUEST).map_err(|e| e.errno())?;
        let memory = self.memory.as_ref().ok_or(Errno::INVAL)?;
        let mut data = vec![0u8; q.count as usize];
        memory.read(q.addr, &mut data)?;
        Ok(DmaData { addr: q.addr, data }.encode())
    }

    fn answer_write(&self, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        let w = DmaData::decode(payload, MAX_REQUEST).map_err(|e| e.errno())?;
        let memory = self.memory.as_ref().ok_or(Errno::INVAL)?;
        memory.write(w.addr, &w.data)?;
        Ok(DmaRead {
            addr: w.addr,
            count: w.data.len() as u64,
        }
        .encode())
    }

    /// `VFIO_USER_VERSION` proposing 0.0 and `caps`: the server's reply.
    pub fn version(&mut self, caps: Capabilities) -> Result<Version, ClientError> {
        let proposal = Version {
            major: crate::proto::version::MAJOR,
            minor: crate::proto::version::MINOR,
            caps,
        };
        let reply = self.call(Command::Version, &proposal.encode(), &[])?;
        Version::decode(&reply.payload, reply.fds.len()).map_err(ClientError::Proto)
    }

    /// `VFIO_USER_DEVICE_GET_INFO`.
    pub fn device_info(&mut self) -> Result<VfioUserDeviceInfo, ClientError> {
        let q = encode_query(Command::DeviceGetInfo, size_of::<VfioUserDeviceInfo>() as u32, 0);
        let reply = self.call(Command::DeviceGetInfo, &q, &[])?;
        decode_fixed(&reply.payload)
    }

    /// `VFIO_USER_DEVICE_GET_REGION_INFO`, asked again with the `argsz` the server needs: the
    /// region and the descriptor that came with it (for an mmap-able region).
    pub fn region_info(&mut self, index: u32) -> Result<(RegionInfo, Option<OwnedFd>), ClientError> {
        let mut argsz = size_of::<VfioRegionInfo>() as u32;
        loop {
            let q = encode_query(Command::DeviceGetRegionInfo, argsz, index);
            let mut reply = self.call(Command::DeviceGetRegionInfo, &q, &[])?;
            let raw: VfioRegionInfo = decode_fixed(&reply.payload)?;
            if raw.argsz > argsz {
                argsz = raw.argsz;
                continue;
            }
            let info = RegionInfo::decode(&reply.payload).map_err(ClientError::Proto)?;
            return Ok((info, reply.fds.pop()));
        }
    }

    /// `VFIO_USER_DEVICE_GET_IRQ_INFO`.
    pub fn irq_info(&mut self, index: u32) -> Result<VfioIrqInfo, ClientError> {
        let q = encode_query(Command::DeviceGetIrqInfo, size_of::<VfioIrqInfo>() as u32, index);
        let reply = self.call(Command::DeviceGetIrqInfo, &q, &[])?;
        decode_fixed(&reply.payload)
    }

    /// `VFIO_USER_DEVICE_SET_IRQS` with `fds` (the eventfds of `DATA_EVENTFD`).
    pub fn set_irqs(&mut self, set: &SetIrqs, fds: &[BorrowedFd<'_>]) -> Result<(), ClientError> {
        self.call(Command::DeviceSetIrqs, &set.encode(), fds).map(drop)
    }

    /// `VFIO_USER_REGION_READ` of `len` bytes.
    pub fn region_read(&mut self, region: u32, offset: u64, len: u32) -> Result<Vec<u8>, ClientError> {
        let a = RegionAccess {
            region,
            offset,
            count: len,
        };
        let reply = self.call(Command::RegionRead, &a.encode(), &[])?;
        let (_, data) = RegionAccess::decode_read_reply(&reply.payload).map_err(ClientError::Proto)?;
        Ok(data.to_vec())
    }

    /// `VFIO_USER_REGION_WRITE`.
    pub fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), ClientError> {
        let a = RegionAccess {
            region,
            offset,
            count: u32::try_from(data.len()).unwrap_or(u32::MAX),
        };
        self.call(Command::RegionWrite, &a.encode_with(data), &[])
            .map(drop)
    }

    /// A 32-bit register read.
    pub fn read32(&mut self, region: u32, offset: u64) -> Result<u32, ClientError> {
        let data = self.region_read(region, offset, 4)?;
        decode_fixed::<u32>(&data)
    }

    /// A 32-bit register write.
    pub fn write32(&mut self, region: u32, offset: u64, value: u32) -> Result<(), ClientError> {
        self.region_write(region, offset, &value.to_ne_bytes())
    }

    /// `VFIO_USER_DMA_MAP` of `map`, with `fd` (the memory's file) when it has one.
    pub fn dma_map(&mut self, map: &DmaMap, fd: Option<BorrowedFd<'_>>) -> Result<(), ClientError> {
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        self.call(Command::DmaMap, &map.encode(), &fds).map(drop)
    }

    /// `VFIO_USER_DMA_UNMAP` of `target`.
    pub fn dma_unmap(&mut self, target: UnmapTarget) -> Result<(), ClientError> {
        self.call(Command::DmaUnmap, &DmaUnmap::new(target).encode(), &[])
            .map(drop)
    }

    /// `VFIO_USER_DEVICE_RESET`.
    pub fn reset(&mut self) -> Result<(), ClientError> {
        self.call(Command::DeviceReset, &[], &[]).map(drop)
    }
}

fn decode_fixed<T: FromBytes>(payload: &[u8]) -> Result<T, ClientError> {
    T::read_from_prefix(payload).map(|(v, _)| v).map_err(|_| {
        ClientError::Proto(ProtoError::Short {
            what: "reply",
            len: payload.len(),
            need: size_of::<T>(),
        })
    })
}
