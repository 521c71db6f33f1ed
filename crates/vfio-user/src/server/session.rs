//! One client connection: the handshake, then each command against the server's
//! [`HostDevice`], until the client goes.
//!
//! "The server will process commands in the order they are received." Each command gets a reply
//! unless it sets *No_reply* ("Each command message in Commands_ must be replied to with a reply
//! message, unless the message sets the *No_Reply* bit"); a failed command gets an error reply with
//! the errno of [`CommandError::errno`] — the one place errors become errnos — and the session
//! goes on. Three things end it: the client closing the socket (between or inside a message), a
//! message that cannot be framed (`msg_size` below the header or above the limit: answered with
//! `EINVAL`, then closed, since the stream has lost its boundaries), and a failed handshake: "The
//! server replies with a compatible version and set of capabilities it supports, or closes the
//! connection if it cannot support the advertised version" (the refusal is answered with `EINVAL`
//! first, as libvfio-user does; a first message that is not `VFIO_USER_VERSION` is refused the same
//! way: "the initial client message is `VFIO_USER_VERSION`").

use super::device::{HostDevice, HostError};
use super::link::Link;
use crate::log::{Level, Logger, log};
use crate::proto::device::{
    IrqData, RegionCap, RegionInfo, SetIrqs, decode_device_info, decode_irq_info, decode_region_info,
    decode_region_io_fds, encode_device_info, encode_irq_info, encode_region_io_fds_empty,
};
use crate::proto::dma::{DmaMap, DmaUnmap, UnmapTarget};
use crate::proto::feature::{Feature, decode_mig_data_read, decode_mig_data_write};
use crate::proto::region::{RegionAccess, decode_write_multi, encode_write_multi_reply};
use crate::proto::version::{Negotiated, ServerLimits, Version, negotiate};
use crate::proto::{Command, Header, MessageType, ProtoError};
use crate::transport::{Limits, Message, Receiver, TransportError, Wait};
use rustix::io::Errno;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use uvfio_host::Bdf;
use uvfio_types::{Access, IovaRange};
use uvfio_vfio::device::VFIO_PCI_OFFSET_SHIFT;

/// How many messages are served between two looks at the stop eventfd.
const STOP_CHECK_EVERY: u64 = 64;

/// Why a command failed: the error reply's errno is [`CommandError::errno`].
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The message is malformed.
    #[error("malformed message")]
    Proto(#[from] ProtoError),
    /// The host refused the call the command made; its errno is the reply's.
    #[error("host call failed")]
    Host(#[from] HostError),
    /// A command before the handshake, or a second handshake.
    #[error("{0} out of sequence (VFIO_USER_VERSION comes first, once)")]
    Sequence(Command),
    /// More file descriptors than `max_msg_fds` came (the extra ones were closed).
    #[error("more than max_msg_fds file descriptors")]
    TooManyFds,
    /// "A command to map over an existing region must be failed by the server with `EEXIST`".
    #[error("DMA region {0} overlaps a mapped one")]
    Overlap(IovaRange),
    /// An unmap that matches no mapped region exactly.
    #[error("no DMA region is mapped at exactly {0}")]
    NoSuchMap(IovaRange),
    /// `max_dma_maps` regions are mapped already.
    #[error("{0} DMA regions mapped already (max_dma_maps)")]
    TooManyMaps(u64),
    /// A region or IRQ index at or past the device's count.
    #[error("index {index} at or past {count}")]
    Index {
        /// The index sent.
        index: u32,
        /// How many there are.
        count: u32,
    },
    /// A region access outside its region's offsets.
    #[error("region {region}: {count} bytes at {offset:#x} outside the region")]
    OutOfRegion {
        /// The region.
        region: u32,
        /// Where the access starts.
        offset: u64,
        /// Its length.
        count: u64,
    },
    /// More sub-indexes than the IRQ index has.
    #[error("{count} sub-indexes from {start}, the index has {max}")]
    IrqRange {
        /// `start`.
        start: u32,
        /// `count`.
        count: u32,
        /// The index's IRQ count.
        max: u32,
    },
    /// `VFIO_USER_REGION_WRITE_MULTI` without `write_multiple` negotiated.
    #[error("write_multiple was not negotiated")]
    NoWriteMultiple,
    /// A device feature the device does not have (it has none).
    #[error("device feature {0} not supported")]
    NoFeature(u32),
    /// Migration data while the device has no migration (no saving or resuming state).
    #[error("device has no migration state")]
    NoMigration,
}

impl CommandError {
    /// The errno of the error reply.
    pub fn errno(&self) -> Errno {
        match self {
            CommandError::Proto(e) => e.errno(),
            CommandError::Host(e) => e.errno(),
            CommandError::Overlap(_) => Errno::EXIST,
            // iommufd's IOAS_UNMAP of a range with no mapping; libvfio-user answers the same.
            CommandError::NoSuchMap(_) => Errno::NOENT,
            // type1: `if (!iommu->dma_avail) { ret = -ENOSPC; ... }`.
            CommandError::TooManyMaps(_) => Errno::NOSPC,
            // vfio_ioctl_device_feature(): a feature the driver lacks is -ENOTTY.
            CommandError::NoFeature(_) => Errno::NOTTY,
            CommandError::Sequence(_)
            | CommandError::TooManyFds
            | CommandError::Index { .. }
            | CommandError::OutOfRegion { .. }
            | CommandError::IrqRange { .. }
            | CommandError::NoWriteMultiple
            | CommandError::NoMigration => Errno::INVAL,
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The client closed the socket between messages.
    Closed,
    /// The client closed the socket inside a message.
    MidMessage,
    /// A message that cannot be framed, or a refused handshake: the server closed.
    Protocol,
    /// The server was told to stop.
    Stopped,
}

/// What the server holds for one client.
pub(crate) struct Session<'a> {
    pub(crate) sock: BorrowedFd<'a>,
    pub(crate) stop: BorrowedFd<'a>,
    /// The sending side, shared with the device's requests to the client.
    pub(crate) link: Arc<Link>,
    /// The device's address on the host.
    pub(crate) bdf: Bdf,
    /// Whether [`link`](Self::link) is the device's remote memory on the host.
    pub(crate) remote: bool,
    pub(crate) log: Logger,
    pub(crate) limits: ServerLimits,
    /// The server's device, attached to [`ioas`](Self::ioas) while the session lasts.
    pub(crate) dev: &'a HostDevice,
    /// The connection's IOAS: the client's DMA regions are mapped in it.
    pub(crate) ioas: u32,
    /// `flags`, `num_regions`, `num_irqs` of the device.
    pub(crate) flags: u32,
    pub(crate) num_regions: u32,
    pub(crate) num_irqs: u32,
    pub(crate) negotiated: Option<Negotiated>,
    /// Mapped DMA regions by first address (those without a file descriptor are also the
    /// [`link`](Self::link)'s windows).
    pub(crate) maps: BTreeMap<u64, IovaRange>,
    /// IRQ indexes the client set triggers on (and did not disable as a whole since).
    pub(crate) irqs: BTreeSet<u32>,
}

impl Drop for Session<'_> {
    /// The spec's cleanup on a client disconnection: "all client memory regions are unmapped and
    /// cleaned up" (the device is detached from the connection's IOAS, which is emptied and
    /// destroyed, dropping every mapping and pin), "all IRQ file descriptors passed from the old
    /// client are closed" (each index the client enabled is disabled as a whole, and the host
    /// drops its references to the eventfds), and "the device state should otherwise be
    /// retained": the device stays open, so nothing resets it.
    fn drop(&mut self) {
        // First the regions without a descriptor: no transfer reaches the client any more, and a
        // device waiting for its answer fails now.
        if self.remote {
            let _ = self.dev.host().set_remote_dma(self.bdf, None);
        }
        self.link.close();
        for &index in &self.irqs {
            if let Err(e) = self.dev.disable_irqs(index) {
                log!(
                    self.log,
                    Level::Debug,
                    "disabling IRQ index {index}: {e} ({:?})",
                    e.errno()
                );
            }
        }
        if let Err(e) = self.dev.release_ioas(self.ioas) {
            log!(
                self.log,
                Level::Error,
                "releasing IOAS {}: {e} ({:?})",
                self.ioas,
                e.errno()
            );
        }
    }
}

/// A successful command's reply.
struct Reply {
    payload: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Reply {
    fn empty() -> Reply {
        Reply::data(Vec::new())
    }

    fn data(payload: Vec<u8>) -> Reply {
        Reply {
            payload,
            fds: Vec::new(),
        }
    }
}

impl Session<'_> {
    /// Serves messages until the connection ends. `Err` only for a failing socket.
    pub(crate) fn run(&mut self) -> Result<Disconnect, TransportError> {
        match self.serve() {
            Err(TransportError::Closed) => Ok(Disconnect::Closed),
            Err(TransportError::Stopped) => Ok(Disconnect::Stopped),
            other => other,
        }
    }

    fn serve(&mut self) -> Result<Disconnect, TransportError> {
        let limits = Limits {
            max_payload: usize::try_from(self.limits.max_data_xfer_size)
                .unwrap_or(usize::MAX)
                .saturating_add(4096),
            max_fds: usize::try_from(self.limits.max_msg_fds).unwrap_or(usize::MAX),
        };
        crate::transport::prepare(self.sock).map_err(|source| TransportError::Io {
            op: "setting the connection's receive timeout",
            source,
        })?;
        let until = Wait {
            stop: Some(self.stop),
            deadline: None,
        };
        let mut served: u64 = 0;
        let mut rx = Receiver::new();
        loop {
            // The transport looks at the stop eventfd only when it would block; a client that
            // never lets it block must not keep the server from stopping.
            served += 1;
            if served % STOP_CHECK_EVERY == 0 && crate::transport::stopped(self.stop) {
                return Ok(Disconnect::Stopped);
            }
            let msg = match rx.recv(self.sock, &limits, until) {
                Ok(msg) => msg,
                Err(TransportError::Closed) => return Ok(Disconnect::Closed),
                Err(TransportError::Stopped) => return Ok(Disconnect::Stopped),
                Err(e @ TransportError::Truncated { .. }) => {
                    log!(self.log, Level::Warn, "client: {e}");
                    return Ok(Disconnect::MidMessage);
                }
                Err(TransportError::Framing { header, max }) => {
                    log!(
                        self.log,
                        Level::Warn,
                        "message {} (command {}): msg_size {} outside [16, {max}]: closing",
                        header.msg_id,
                        header.cmd,
                        header.msg_size
                    );
                    self.send_error(&header, Errno::INVAL)?;
                    return Ok(Disconnect::Protocol);
                }
                Err(e) => return Err(e),
            };
            let header = msg.header;
            // A reply answers one of the server's own requests (VFIO_USER_DMA_READ / _WRITE);
            // one that answers nothing is refused below like any message that is not a command.
            if self.negotiated.is_some()
                && header.message_type() == MessageType::Reply
                && self.link.deliver(&msg)
            {
                log!(
                    self.log,
                    Level::Trace,
                    "<- reply id {} cmd {} size {}",
                    header.msg_id,
                    header.cmd,
                    header.msg_size
                );
                continue;
            }
            log!(
                self.log,
                Level::Trace,
                "<- id {} cmd {} size {} flags {:#x} fds {}",
                header.msg_id,
                header.cmd,
                header.msg_size,
                header.flags,
                msg.fds.len()
            );
            let handshake = self.negotiated.is_none();
            let result = self.handle(&msg);
            // The message's descriptors are closed here: whatever the host needed it duplicated.
            drop(msg);
            let quiet = header.no_reply() && header.command().is_ok();
            match result {
                Ok(reply) => {
                    log!(
                        self.log,
                        Level::Debug,
                        "command {} (id {}): ok",
                        header.cmd,
                        header.msg_id
                    );
                    if !quiet {
                        self.send_reply(&header, &reply)?;
                    }
                }
                Err(e) => {
                    let errno = e.errno();
                    log!(
                        self.log,
                        Level::Warn,
                        "command {} (id {}): {} ({errno:?})",
                        header.cmd,
                        header.msg_id,
                        chain(&e)
                    );
                    if !quiet {
                        self.send_error(&header, errno)?;
                    }
                    if handshake {
                        return Ok(Disconnect::Protocol);
                    }
                }
            }
        }
    }

    fn send_reply(&self, to: &Header, reply: &Reply) -> Result<(), TransportError> {
        let Some(header) = to.reply(reply.payload.len()) else {
            return self.send_error(to, Errno::TOOBIG);
        };
        let fds: Vec<BorrowedFd<'_>> = reply.fds.iter().map(AsFd::as_fd).collect();
        self.link.send(&header, &reply.payload, &fds)
    }

    fn send_error(&self, to: &Header, errno: Errno) -> Result<(), TransportError> {
        self.link.send(&to.error_reply(errno), &[], &[])
    }

    fn negotiated(&self, cmd: Command) -> Result<Negotiated, CommandError> {
        self.negotiated.ok_or(CommandError::Sequence(cmd))
    }

    fn handle(&mut self, msg: &Message) -> Result<Reply, CommandError> {
        let cmd = msg.header.command()?;
        if msg.fds_truncated {
            return Err(CommandError::TooManyFds);
        }
        let (payload, fds) = (msg.payload.as_slice(), msg.fds.len());
        if cmd == Command::Version {
            return self.version(payload, fds);
        }
        let n = self.negotiated(cmd)?;
        match cmd {
            Command::DmaMap => self.dma_map(payload, &msg.fds, &n),
            Command::DmaUnmap => self.dma_unmap(payload, fds),
            Command::DeviceGetInfo => {
                decode_device_info(payload, fds)?;
                let flags = self.flags & (VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI);
                Ok(Reply::data(encode_device_info(
                    flags,
                    self.num_regions,
                    self.num_irqs,
                )))
            }
            Command::DeviceGetRegionInfo => self.region_info(payload, fds, &n),
            Command::DeviceGetRegionIoFds => {
                let q = decode_region_io_fds(payload, fds)?;
                self.check_region(q.index)?;
                let info = RegionInfo::decode(&self.dev.region_info(q.index)?)?;
                let access =
                    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
                if info.size == 0 || info.flags & access == 0 {
                    return Err(CommandError::Index {
                        index: q.index,
                        count: self.num_regions,
                    });
                }
                // No sub-region is offered for ioeventfds: the count is 0 and no descriptor goes.
                Ok(Reply::data(encode_region_io_fds_empty(q.index)))
            }
            Command::DeviceGetIrqInfo => {
                let q = decode_irq_info(payload, fds)?;
                self.check_irq(q.index)?;
                let info = self.dev.irq_info(q.index)?;
                Ok(Reply::data(encode_irq_info(info.flags, q.index, info.count)))
            }
            Command::DeviceSetIrqs => self.set_irqs(payload, &msg.fds),
            Command::RegionRead => {
                let a = RegionAccess::decode_read(payload, fds, n.max_data_xfer_size)?;
                self.check_access(&a)?;
                let mut data = vec![0u8; a.count as usize];
                if !data.is_empty() {
                    self.dev.read(a.region, a.offset, &mut data)?;
                }
                Ok(Reply::data(a.encode_with(&data)))
            }
            Command::RegionWrite => {
                let (a, data) = RegionAccess::decode_write(payload, fds, n.max_data_xfer_size)?;
                self.check_access(&a)?;
                if !data.is_empty() {
                    self.dev.write(a.region, a.offset, data)?;
                }
                Ok(Reply::data(a.encode()))
            }
            Command::RegionWriteMulti => {
                if !n.write_multiple {
                    return Err(CommandError::NoWriteMultiple);
                }
                let writes = decode_write_multi(payload, fds)?;
                for w in &writes {
                    self.check_access(&w.access)?;
                    self.dev.write(w.access.region, w.access.offset, w.bytes())?;
                }
                Ok(Reply::data(encode_write_multi_reply(writes.len() as u64)))
            }
            Command::DeviceReset => {
                if !payload.is_empty() || fds != 0 {
                    return Err(ProtoError::Length {
                        what: "VFIO_USER_DEVICE_RESET",
                        len: payload.len(),
                        expected: 0,
                    }
                    .into());
                }
                self.dev.reset()?;
                Ok(Reply::empty())
            }
            Command::DeviceFeature => {
                let f = Feature::decode(payload, fds)?;
                Err(CommandError::NoFeature(f.index))
            }
            Command::MigDataRead => {
                decode_mig_data_read(payload, fds)?;
                Err(CommandError::NoMigration)
            }
            Command::MigDataWrite => {
                decode_mig_data_write(payload, fds)?;
                Err(CommandError::NoMigration)
            }
            // Version is handled above; DMA_READ / DMA_WRITE were refused by `command()`.
            Command::Version | Command::DmaRead | Command::DmaWrite => Err(CommandError::Sequence(cmd)),
        }
    }

    fn version(&mut self, payload: &[u8], fds: usize) -> Result<Reply, CommandError> {
        if self.negotiated.is_some() {
            return Err(CommandError::Sequence(Command::Version));
        }
        let proposal = Version::decode(payload, fds)?;
        let (reply, negotiated) = negotiate(&proposal, &self.limits)?;
        log!(
            self.log,
            Level::Info,
            "negotiated version {}.{}: {}",
            reply.major,
            reply.minor,
            reply.caps.to_json()
        );
        self.link.set_max_xfer(negotiated.max_data_xfer_size);
        self.negotiated = Some(negotiated);
        Ok(Reply::data(reply.encode()))
    }

    fn check_region(&self, index: u32) -> Result<(), CommandError> {
        if index >= self.num_regions {
            return Err(CommandError::Index {
                index,
                count: self.num_regions,
            });
        }
        Ok(())
    }

    fn check_irq(&self, index: u32) -> Result<(), CommandError> {
        if index >= self.num_irqs {
            return Err(CommandError::Index {
                index,
                count: self.num_irqs,
            });
        }
        Ok(())
    }

    /// The index exists and the access stays within the offsets a region can have in the device
    /// file (below `1 << 40`); whether it lies within the region is the device's check.
    fn check_access(&self, a: &RegionAccess) -> Result<(), CommandError> {
        self.check_region(a.region)?;
        let end = a.offset.checked_add(u64::from(a.count));
        if end.is_none_or(|end| end > 1 << VFIO_PCI_OFFSET_SHIFT) {
            return Err(CommandError::OutOfRegion {
                region: a.region,
                offset: a.offset,
                count: a.count.into(),
            });
        }
        Ok(())
    }

    fn dma_map(&mut self, payload: &[u8], fds: &[OwnedFd], n: &Negotiated) -> Result<Reply, CommandError> {
        let map = DmaMap::decode(payload, fds.len(), n.page_size())?;
        if self.maps.len() as u64 >= n.max_dma_maps {
            return Err(CommandError::TooManyMaps(n.max_dma_maps));
        }
        let before = self.maps.range(..=map.range.last().raw()).next_back();
        if let Some((_, r)) = before.filter(|(_, r)| r.overlaps(&map.range)) {
            log!(self.log, Level::Debug, "DMA map {} overlaps {r}", map.range);
            return Err(CommandError::Overlap(map.range));
        }
        let Some(fd) = fds.first() else {
            return self.map_remote(map.range, map.access);
        };
        self.dev
            .map_file(self.ioas, fd.as_fd(), map.offset, map.range, map.access)?;
        log!(
            self.log,
            Level::Debug,
            "DMA map {} ({:?}) from offset {:#x} of fd {}",
            map.range,
            map.access,
            map.offset,
            fd.as_raw_fd()
        );
        self.maps.insert(map.range.start().raw(), map.range);
        Ok(Reply::empty())
    }

    fn dma_unmap(&mut self, payload: &[u8], fds: usize) -> Result<Reply, CommandError> {
        let unmap = DmaUnmap::decode(payload, fds)?;
        match unmap.target {
            UnmapTarget::Range(range) => {
                if self.maps.get(&range.start().raw()) != Some(&range) {
                    return Err(CommandError::NoSuchMap(range));
                }
                self.unmap_one(range)?;
            }
            UnmapTarget::All => {
                while let Some((_, &range)) = self.maps.first_key_value() {
                    self.unmap_one(range)?;
                }
            }
        }
        Ok(Reply::data(unmap.reply()))
    }

    /// A DMA region without a file descriptor: a window of the device's remote memory, served
    /// with `VFIO_USER_DMA_READ` / `VFIO_USER_DMA_WRITE` ("If no file descriptor is sent, the
    /// server must use VFIO_USER_DMA_READ and VFIO_USER_DMA_WRITE messages to access that
    /// region"). The link becomes the device's remote memory on the first one.
    fn map_remote(&mut self, range: IovaRange, access: Access) -> Result<Reply, CommandError> {
        if !self.remote {
            self.dev
                .host()
                .set_remote_dma(self.bdf, Some(Arc::clone(&self.link) as _))
                .map_err(|errno| HostError::Call {
                    op: "installing the client's DMA regions without a descriptor",
                    errno,
                })?;
            self.remote = true;
        }
        self.link.add_window(range, access);
        self.maps.insert(range.start().raw(), range);
        log!(
            self.log,
            Level::Debug,
            "DMA map {range} ({access:?}) without a descriptor: served with DMA_READ / DMA_WRITE"
        );
        Ok(Reply::empty())
    }

    /// Unmaps the mapped region `range`: "the server must release all references to that DMA
    /// region before replying". `IOMMU_IOAS_UNMAP` returns once no device access can reach the
    /// pages any more; a region without a descriptor stops being a window (a request already sent
    /// for it is still answered by the client).
    fn unmap_one(&mut self, range: IovaRange) -> Result<(), CommandError> {
        if !self.link.remove_window(range) {
            self.dev.unmap(self.ioas, range)?;
        }
        self.maps.remove(&range.start().raw());
        Ok(())
    }

    fn region_info(&mut self, payload: &[u8], fds: usize, n: &Negotiated) -> Result<Reply, CommandError> {
        let q = decode_region_info(payload, fds)?;
        self.check_region(q.index)?;
        let mut info = RegionInfo::decode(&self.dev.region_info(q.index)?)?;
        // The region's offset in the host's device file means nothing over the socket: "*offset*
        // is the offset that should be given to the mmap() system call for regions with the MMAP
        // attribute" — an offset in the descriptor sent with the reply, 0 without one.
        info.offset = 0;
        let mapped = if info.flags & VFIO_REGION_INFO_FLAG_MMAP != 0 && n.client_max_msg_fds >= 1 {
            self.region_fd(&info)
        } else {
            None
        };
        let mut fds = Vec::new();
        match mapped {
            Some((fd, base)) => {
                info.offset = base;
                fds.push(fd);
            }
            None => {
                // Served through REGION_READ / REGION_WRITE only.
                info.flags &= !VFIO_REGION_INFO_FLAG_MMAP;
                info.caps.retain(|c| !matches!(c, RegionCap::SparseMmap(_)));
            }
        }
        Ok(Reply {
            payload: info.encode(q.argsz),
            fds,
        })
    }

    /// One descriptor backing every mmap-able area of the region, and the offset in it that
    /// corresponds to the region's offset 0 ("It is also used as the base offset when mapping a
    /// VFIO sparse mmap area"). `None` when the device hands out different files for different
    /// areas, or offsets no single base can describe: the region is then not offered for mmap.
    fn region_fd(&self, info: &RegionInfo) -> Option<(OwnedFd, u64)> {
        let whole = [(0, info.size)];
        let areas = info.sparse_areas().unwrap_or(&whole);
        let mut first: Option<(OwnedFd, u64, (u64, u64))> = None;
        for &(offset, size) in areas.iter().filter(|(_, size)| *size != 0) {
            let map = match self.dev.mmap(info.index, offset, size) {
                Ok(map) => map,
                Err(e) => {
                    log!(
                        self.log,
                        Level::Warn,
                        "region {}: {} ({:?})",
                        info.index,
                        e,
                        e.errno()
                    );
                    return None;
                }
            };
            let base = map.file_offset.checked_sub(offset)?;
            let stat = rustix::fs::fstat(&map.fd).ok()?;
            let id = (stat.st_dev, stat.st_ino);
            match &first {
                None => first = Some((map.fd, base, id)),
                Some((_, b, i)) if *b == base && *i == id => {}
                Some(_) => return None,
            }
        }
        first.map(|(fd, base, _)| (fd, base))
    }

    fn set_irqs(&mut self, payload: &[u8], fds: &[OwnedFd]) -> Result<Reply, CommandError> {
        let s = SetIrqs::decode(payload, fds.len())?;
        self.check_irq(s.index)?;
        // The data for the host is sized by `count`: bound it by the index's IRQs first (Linux:
        // "if (hdr->start >= max_irq_type || hdr->start + hdr->count > max_irq_type) return
        // -EINVAL" in vfio_set_irqs_validate_and_prepare()).
        let max = self.dev.irq_info(s.index)?.count;
        if s.count > max {
            return Err(CommandError::IrqRange {
                start: s.start,
                count: s.count,
                max,
            });
        }
        let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let mut bytes = s.to_vfio(&raw);
        self.dev.set_irqs(&mut bytes)?;
        if s.action == VFIO_IRQ_SET_ACTION_TRIGGER {
            // DATA_NONE | ACTION_TRIGGER with count 0 disables the index as a whole.
            if s.count == 0 && matches!(s.data, IrqData::None) {
                self.irqs.remove(&s.index);
            } else {
                self.irqs.insert(s.index);
            }
        }
        if let IrqData::Eventfds { assign } = s.data {
            log!(
                self.log,
                Level::Debug,
                "IRQ index {} [{}, +{}): eventfds {}",
                s.index,
                s.start,
                s.count,
                if assign { "assigned" } else { "de-assigned" }
            );
        }
        Ok(Reply::empty())
    }
}

/// `e` and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
