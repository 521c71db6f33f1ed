//! The connection's sending side, shared by the session (its replies) and the device's DMA engine
//! (the server's own requests: `VFIO_USER_DMA_READ` / `VFIO_USER_DMA_WRITE`), and the client's DMA
//! regions without a file descriptor, which those requests reach.
//!
//! "If no file descriptor is sent, the server must use `VFIO_USER_DMA_READ` and
//! `VFIO_USER_DMA_WRITE` messages to access that region" (`VFIO_USER_DMA_MAP`). The [`Link`] is
//! the endpoint's [`RemoteDma`] while the connection has such regions: the device model's transfer
//! into one of them becomes requests of at most the client's `max_data_xfer_size` ("The server
//! must not send a DMA_READ/WRITE message with a count larger than the client's
//! max_data_xfer_size"), sent on the connection; the session's thread, which reads every message
//! the client sends, hands each reply to the request waiting for it ([`Link::deliver`]). The
//! device's thread waits with a time limit, so a client that never answers fails the transfer
//! instead of hanging the device; the session's own thread never waits for a reply (it is the one
//! that would read it): a transfer made from it fails at once.
//!
//! When the connection ends, [`Link::close`] fails every waiting request and shuts the socket
//! down, so the duplicate descriptor the link holds cannot keep the connection open.

use crate::log::{Level, Logger, log};
use crate::proto::dma::{DmaData, DmaRead};
use crate::proto::{Command, Header, ProtoError};
use crate::transport::{Message, TransportError, send_message};
use parking_lot::{Mutex, RwLock};
use rustix::io::Errno;
use rustix::net::Shutdown;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::thread::ThreadId;
use std::time::Duration;
use uvfio_devices::RemoteDma;
use uvfio_types::{Access, Iova, IovaRange};

/// How long the device waits for the client's answer to one request.
pub(crate) const REMOTE_DMA_TIMEOUT: Duration = Duration::from_secs(10);

/// How many given-up requests are remembered (their ids are not reused while remembered).
const MAX_EXPIRED: usize = 64;

/// Why a request to the client failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteDmaError {
    /// The connection ended (or was ending) before the answer came.
    #[error("the connection ended")]
    Closed,
    /// Sending the request failed.
    #[error("sending {0}")]
    Send(Command, #[source] TransportError),
    /// No answer within the time limit.
    #[error("no answer to {0} within {1:?}")]
    Timeout(Command, Duration),
    /// The client answered with an error reply.
    #[error("the client refused {0}")]
    Refused(Command, #[source] Errno),
    /// The answer does not match the request.
    #[error("malformed answer to {0}")]
    BadReply(Command, #[source] ProtoError),
    /// The answer is for another address or size.
    #[error("answer to {cmd} for {got_count} bytes at {got_addr:#x}, asked {count} at {addr:#x}")]
    Mismatch {
        /// The request.
        cmd: Command,
        /// What was asked.
        addr: u64,
        /// Its size.
        count: u64,
        /// The answer's address.
        got_addr: u64,
        /// The answer's size.
        got_count: u64,
    },
    /// A transfer made from the thread that reads the client's answers, which would wait forever.
    #[error("DMA from the session's own thread cannot wait for the client")]
    WouldDeadlock,
}

/// An answer handed from the session's thread to a waiting request.
enum Answer {
    Ok(Vec<u8>),
    Error(Errno),
}

/// A connection's sending side and its remote DMA regions.
#[derive(Debug)]
pub(crate) struct Link {
    sock: OwnedFd,
    stop: OwnedFd,
    send: Mutex<()>,
    log: Logger,
    /// The thread that reads the socket.
    reader: ThreadId,
    /// `max_data_xfer_size` in force (0 before the handshake).
    max_xfer: AtomicU64,
    closed: AtomicBool,
    next_id: Mutex<u16>,
    pending: Mutex<HashMap<u16, (Command, SyncSender<Answer>)>>,
    /// Requests given up on (timed out), newest last: their late answers are dropped.
    expired: Mutex<VecDeque<u16>>,
    /// DMA regions without a file descriptor, by first address.
    windows: RwLock<BTreeMap<u64, (IovaRange, Access)>>,
    timeout: Duration,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ok(p) => write!(f, "Ok({} bytes)", p.len()),
            Answer::Error(e) => write!(f, "Error({e:?})"),
        }
    }
}

impl Link {
    /// A link over duplicates of the connection's socket and the server's stop eventfd, made on the
    /// thread that reads the socket; a request waits `timeout` for its answer.
    pub(crate) fn new(
        sock: BorrowedFd<'_>,
        stop: BorrowedFd<'_>,
        log: Logger,
        timeout: Duration,
    ) -> Result<Link, Errno> {
        Ok(Link {
            sock: rustix::io::fcntl_dupfd_cloexec(sock, 0)?,
            stop: rustix::io::fcntl_dupfd_cloexec(stop, 0)?,
            send: Mutex::new(()),
            log,
            reader: std::thread::current().id(),
            max_xfer: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            next_id: Mutex::new(0),
            pending: Mutex::new(HashMap::new()),
            expired: Mutex::new(VecDeque::new()),
            windows: RwLock::new(BTreeMap::new()),
            timeout,
        })
    }

    /// Sends one message, whole, while no other thread sends.
    pub(crate) fn send(
        &self,
        header: &Header,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), TransportError> {
        let _one = self.send.lock();
        send_message(self.sock.as_fd(), header, payload, fds, Some(self.stop.as_fd()))
    }

    /// Sets the `max_data_xfer_size` in force.
    pub(crate) fn set_max_xfer(&self, max: u64) {
        self.max_xfer.store(max, Ordering::Relaxed);
    }

    /// Adds a window (the caller checked it overlaps nothing).
    pub(crate) fn add_window(&self, range: IovaRange, access: Access) {
        self.windows.write().insert(range.start().raw(), (range, access));
    }

    /// Removes the window that is exactly `range`; whether there was one.
    pub(crate) fn remove_window(&self, range: IovaRange) -> bool {
        let mut windows = self.windows.write();
        match windows.get(&range.start().raw()) {
            Some((r, _)) if *r == range => windows.remove(&range.start().raw()).is_some(),
            _ => false,
        }
    }

    /// Hands `msg`, a reply, to the request waiting for it, or drops the late answer to one that
    /// timed out; `false` if it answers no request.
    pub(crate) fn deliver(&self, msg: &Message) -> bool {
        let id = msg.header.msg_id;
        let waiting = self.pending.lock().remove(&id);
        let Some((cmd, to)) = waiting else {
            let mut expired = self.expired.lock();
            let Some(at) = expired.iter().position(|&e| e == id) else {
                return false;
            };
            expired.remove(at);
            log!(
                self.log,
                Level::Warn,
                "late answer (id {id}, command {}) to a request given up on: dropped",
                msg.header.cmd
            );
            return true;
        };
        let answer = if msg.header.is_error() {
            Answer::Error(Errno::from_raw_os_error(msg.header.error_no as i32))
        } else if msg.header.cmd != cmd.raw() {
            // A reply with the id of one request but the command of another: the request fails.
            Answer::Error(Errno::PROTO)
        } else {
            Answer::Ok(msg.payload.clone())
        };
        // The waiter may have timed out and gone; the answer then goes nowhere.
        let _ = to.try_send(answer);
        true
    }

    /// Fails every waiting request and every later one, and shuts the connection down.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pending.lock().clear();
        self.windows.write().clear();
        let _ = rustix::net::shutdown(&self.sock, Shutdown::Both);
    }

    /// Sends `cmd` with `payload` and waits for the answer's payload.
    fn request(&self, cmd: Command, payload: &[u8]) -> Result<Vec<u8>, RemoteDmaError> {
        if std::thread::current().id() == self.reader {
            return Err(RemoteDmaError::WouldDeadlock);
        }
        let (tx, rx) = sync_channel(1);
        let id = {
            let mut pending = self.pending.lock();
            // Checked under the lock `close` takes: no request is added after it.
            if self.closed.load(Ordering::SeqCst) {
                return Err(RemoteDmaError::Closed);
            }
            let mut next = self.next_id.lock();
            let expired = self.expired.lock();
            while pending.contains_key(&*next) || expired.contains(&*next) {
                *next = next.wrapping_add(1);
            }
            let id = *next;
            *next = next.wrapping_add(1);
            drop(expired);
            pending.insert(id, (cmd, tx));
            id
        };
        // Only a payload past 4 GiB has no header; requests are cut to max_data_xfer_size.
        let header = Header::new_command(id, cmd, payload.len(), false).ok_or(RemoteDmaError::Send(
            cmd,
            TransportError::Io {
                op: "encoding the header",
                source: Errno::TOOBIG,
            },
        ));
        let sent = header.and_then(|h| {
            self.send(&h, payload, &[])
                .map_err(|e| RemoteDmaError::Send(cmd, e))
        });
        if let Err(e) = sent {
            self.pending.lock().remove(&id);
            return Err(e);
        }
        let answer = rx.recv_timeout(self.timeout);
        match answer {
            Ok(Answer::Ok(payload)) => Ok(payload),
            Ok(Answer::Error(errno)) => Err(RemoteDmaError::Refused(cmd, errno)),
            Err(RecvTimeoutError::Timeout) => {
                if self.pending.lock().remove(&id).is_some() {
                    let mut expired = self.expired.lock();
                    if expired.len() == MAX_EXPIRED {
                        expired.pop_front();
                    }
                    expired.push_back(id);
                }
                log!(
                    self.log,
                    Level::Warn,
                    "{cmd} (id {id}): no answer within {:?}",
                    self.timeout
                );
                Err(RemoteDmaError::Timeout(cmd, self.timeout))
            }
            Err(RecvTimeoutError::Disconnected) => Err(RemoteDmaError::Closed),
        }
    }

    /// The most bytes one request may move.
    fn chunk(&self) -> usize {
        // The handshake sets it before any DMA region exists.
        match self.max_xfer.load(Ordering::Relaxed) {
            0 => 4096,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }

    fn dma_read(&self, iova: Iova, buf: &mut [u8]) -> Result<(), RemoteDmaError> {
        let chunk = self.chunk();
        let mut at = 0;
        for part in buf.chunks_mut(chunk) {
            let addr = iova.raw() + at as u64;
            let count = part.len() as u64;
            let payload = self.request(
                Command::DmaRead,
                &DmaRead {
                    addr: Iova::new(addr),
                    count,
                }
                .encode(),
            )?;
            // "The reply [...] contains the same address and count fields, followed by the data".
            let data = DmaData::decode(&payload, count)
                .map_err(|e| RemoteDmaError::BadReply(Command::DmaRead, e))?;
            echoed(
                Command::DmaRead,
                addr,
                count,
                data.addr.raw(),
                data.data.len() as u64,
            )?;
            part.copy_from_slice(&data.data);
            at += part.len();
        }
        log!(
            self.log,
            Level::Trace,
            "DMA_READ {} bytes at {iova} from the client",
            buf.len()
        );
        Ok(())
    }

    fn dma_write(&self, iova: Iova, data: &[u8]) -> Result<(), RemoteDmaError> {
        let chunk = self.chunk();
        let mut at = 0;
        for part in data.chunks(chunk) {
            let addr = iova.raw() + at as u64;
            let count = part.len() as u64;
            let payload = self.request(
                Command::DmaWrite,
                &DmaData {
                    addr: Iova::new(addr),
                    data: part.to_vec(),
                }
                .encode(),
            )?;
            // "The reply [...] contains the same address and count fields" — and no data.
            let echo = DmaRead::decode(&payload, count)
                .map_err(|e| RemoteDmaError::BadReply(Command::DmaWrite, e))?;
            echoed(Command::DmaWrite, addr, count, echo.addr.raw(), echo.count)?;
            at += part.len();
        }
        log!(
            self.log,
            Level::Trace,
            "DMA_WRITE {} bytes at {iova} to the client",
            data.len()
        );
        Ok(())
    }
}

/// Whether a reply to `cmd` names the address and count its request had.
fn echoed(cmd: Command, addr: u64, count: u64, got_addr: u64, got_count: u64) -> Result<(), RemoteDmaError> {
    if (got_addr, got_count) == (addr, count) {
        return Ok(());
    }
    Err(RemoteDmaError::Mismatch {
        cmd,
        addr,
        count,
        got_addr,
        got_count,
    })
}

impl RemoteDma for Link {
    fn window(&self, range: IovaRange) -> Option<(IovaRange, Access)> {
        let windows = self.windows.read();
        // The window starting at or before `range` (it may reach into it), else the first one
        // starting inside it.
        let before = windows
            .range(..=range.start().raw())
            .next_back()
            .map(|(_, w)| *w)
            .filter(|(w, _)| w.overlaps(&range));
        before.or_else(|| {
            windows
                .range(range.start().raw()..=range.last().raw())
                .next()
                .map(|(_, w)| *w)
        })
    }

    fn read(&self, iova: Iova, buf: &mut [u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.dma_read(iova, buf).map_err(|e| {
            log!(self.log, Level::Warn, "DMA_READ at {iova}: {e}");
            e.into()
        })
    }

    fn write(&self, iova: Iova, data: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.dma_write(iova, data).map_err(|e| {
            log!(self.log, Level::Warn, "DMA_WRITE at {iova}: {e}");
            e.into()
        })
    }
}
