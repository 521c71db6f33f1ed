//! Messages over an `AF_UNIX` stream socket, with file descriptors as `SCM_RIGHTS` ancillary data.
//!
//! "On `AF_UNIX` sockets, the file descriptor must be passed as `SCM_RIGHTS` type ancillary data."
//! A message is read as its 16-byte header and then `msg_size - 16` payload bytes; descriptors that
//! arrive with any of its bytes are the message's (received with `MSG_CMSG_CLOEXEC`, so none leaks
//! into a child, and owned: dropping the message closes them). More descriptors than the limit
//! (the kernel truncates the control data: `MSG_CTRUNC`) are closed and the message is marked.
//! A `msg_size` below the header or above the limit cannot be framed: the caller answers it with an
//! error and closes the connection, since the stream has lost its message boundaries.
//!
//! Every wait also watches an optional stop descriptor (an eventfd): when it becomes readable the
//! call gives up with [`TransportError::Stopped`]. Sends use `MSG_NOSIGNAL` (a closed peer is
//! `EPIPE`, not `SIGPIPE`).

use crate::proto::{HEADER_SIZE, Header};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

/// Errors of the socket.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer closed the connection between messages.
    #[error("connection closed by the peer")]
    Closed,
    /// The peer closed the connection inside a message.
    #[error("connection closed mid-message ({got} of {want} bytes)")]
    Truncated {
        /// Bytes of the part being read that arrived.
        got: usize,
        /// Bytes of the part expected.
        want: usize,
    },
    /// A header whose `msg_size` cannot frame a message here.
    #[error("message {} (command {}): msg_size {} outside [{HEADER_SIZE}, {max}]", header.msg_id, header.cmd, header.msg_size)]
    Framing {
        /// The header.
        header: Header,
        /// The largest message accepted.
        max: usize,
    },
    /// The stop descriptor became readable.
    #[error("stopped")]
    Stopped,
    /// A socket call failed.
    #[error("{op} failed")]
    Io {
        /// The call.
        op: &'static str,
        /// Its errno.
        #[source]
        source: Errno,
    },
}

/// What one message may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload (bytes after the header).
    pub max_payload: usize,
    /// Most descriptors.
    pub max_fds: usize,
}

/// A message as received.
#[derive(Debug)]
pub struct Message {
    /// Its header.
    pub header: Header,
    /// Its payload.
    pub payload: Vec<u8>,
    /// The descriptors that came with it (closed when dropped).
    pub fds: Vec<OwnedFd>,
    /// More descriptors came than the limit; the extra ones were closed.
    pub fds_truncated: bool,
}

/// Waits until `fd` is ready for `events` or `stop` is readable.
fn wait(fd: BorrowedFd<'_>, events: PollFlags, stop: Option<BorrowedFd<'_>>) -> Result<(), TransportError> {
    loop {
        let mut set = Vec::with_capacity(2);
        set.push(PollFd::new(&fd, events));
        if let Some(s) = &stop {
            set.push(PollFd::new(s, PollFlags::IN));
        }
        match poll(&mut set, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(source) => return Err(TransportError::Io { op: "poll", source }),
        }
        if set.get(1).is_some_and(|s| !s.revents().is_empty()) {
            return Err(TransportError::Stopped);
        }
        if set.first().is_some_and(|s| !s.revents().is_empty()) {
            return Ok(());
        }
    }
}

/// Whether `stop` is readable now.
pub fn stopped(stop: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(&stop, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// Reads into all of `buf` (fewer bytes only at end of file), collecting descriptors.
fn recv_exact(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    truncated: &mut bool,
    max_fds: usize,
    stop: Option<BorrowedFd<'_>>,
    ready: bool,
) -> Result<usize, TransportError> {
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(max_fds.max(1)))];
    let mut done = 0;
    // `ready`: read before waiting. A payload usually arrives with its header, so reading it
    // first saves a `poll`; a header usually has to be waited for, so polling first saves a
    // `recvmsg` that would find nothing.
    let mut ready = ready;
    while done < buf.len() {
        if !ready {
            wait(sock, PollFlags::IN, stop)?;
        }
        ready = true;
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut buf[done..])];
        let got = match recvmsg(
            sock,
            &mut iov,
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
        ) {
            Ok(got) => got,
            Err(Errno::AGAIN) => {
                ready = false;
                continue;
            }
            Err(Errno::INTR) => continue,
            Err(Errno::CONNRESET) => return Ok(done),
            Err(source) => {
                return Err(TransportError::Io {
                    op: "recvmsg",
                    source,
                });
            }
        };
        if got.flags.contains(ReturnFlags::CTRUNC) {
            *truncated = true;
        }
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                for fd in received {
                    if fds.len() < max_fds {
                        fds.push(fd);
                    } else {
                        *truncated = true;
                    }
                }
            }
        }
        if got.bytes == 0 {
            break;
        }
        done += got.bytes;
    }
    Ok(done)
}

/// Receives one message. [`TransportError::Closed`] at a clean end of the stream.
pub fn recv_message(
    sock: BorrowedFd<'_>,
    limits: &Limits,
    stop: Option<BorrowedFd<'_>>,
) -> Result<Message, TransportError> {
    let mut fds = Vec::new();
    let mut fds_truncated = false;
    let mut head = [0u8; HEADER_SIZE];
    let got = recv_exact(
        sock,
        &mut head,
        &mut fds,
        &mut fds_truncated,
        limits.max_fds,
        stop,
        false,
    )?;
    if got == 0 {
        return Err(TransportError::Closed);
    }
    if got < HEADER_SIZE {
        return Err(TransportError::Truncated {
            got,
            want: HEADER_SIZE,
        });
    }
    let header = Header::decode(&head);
    let len = header
        .payload_len()
        .filter(|&len| len <= limits.max_payload)
        .ok_or(TransportError::Framing {
            header,
            max: limits.max_payload.saturating_add(HEADER_SIZE),
        })?;
    let mut payload = vec![0u8; len];
    let got = recv_exact(
        sock,
        &mut payload,
        &mut fds,
        &mut fds_truncated,
        limits.max_fds,
        stop,
        true,
    )?;
    if got < len {
        return Err(TransportError::Truncated { got, want: len });
    }
    Ok(Message {
        header,
        payload,
        fds,
        fds_truncated,
    })
}

/// Sends `header` and `payload` (whose length `header.msg_size` announces) with `fds` as
/// `SCM_RIGHTS` on the first byte.
pub fn send_message(
    sock: BorrowedFd<'_>,
    header: &Header,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
    stop: Option<BorrowedFd<'_>>,
) -> Result<(), TransportError> {
    let head = header.encode();
    let total = HEADER_SIZE + payload.len();
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
    let mut sent = 0;
    // Send first and wait only when the socket is full.
    let mut ready = true;
    while sent < total {
        if !ready {
            wait(sock, PollFlags::OUT, stop)?;
        }
        ready = true;
        let mut control = SendAncillaryBuffer::new(&mut space);
        if sent == 0 && !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(TransportError::Io {
                op: "sendmsg (control buffer)",
                source: Errno::NOBUFS,
            });
        }
        let iov: [IoSlice<'_>; 2] = if sent < HEADER_SIZE {
            [IoSlice::new(&head[sent..]), IoSlice::new(payload)]
        } else {
            [IoSlice::new(&payload[sent - HEADER_SIZE..]), IoSlice::new(&[])]
        };
        match sendmsg(
            sock,
            &iov,
            &mut control,
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        ) {
            Ok(n) => sent += n,
            Err(Errno::AGAIN) => ready = false,
            Err(Errno::INTR) => continue,
            // The peer is gone: a disconnection like any other.
            Err(Errno::PIPE | Errno::CONNRESET) => return Err(TransportError::Closed),
            Err(source) => {
                return Err(TransportError::Io {
                    op: "sendmsg",
                    source,
                });
            }
        }
    }
    Ok(())
}
