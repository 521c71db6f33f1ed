//! Messages over an `AF_UNIX` stream socket, with file descriptors as `SCM_RIGHTS` ancillary data.
//!
//! "On `AF_UNIX` sockets, the file descriptor must be passed as `SCM_RIGHTS` type ancillary data."
//! A [`Receiver`] reads whatever bytes are there (a header with its payload, and what follows) and
//! hands out one message at a time: its 16-byte header, then `msg_size - 16` payload bytes;
//! descriptors are the message's that holds the last byte of the read that brought them (see
//! [`Receiver`]; received with `MSG_CMSG_CLOEXEC`, so none leaks into a child, and owned: dropping
//! the message closes them). More descriptors than the limit
//! (the kernel truncates the control data: `MSG_CTRUNC`) are closed and the message is marked.
//! A `msg_size` below the header or above the limit cannot be framed: the caller answers it with an
//! error and closes the connection, since the stream has lost its message boundaries.
//!
//! A receive that has to wait sleeps in `recvmsg` itself, a slice at a time ([`RECV_SLICE`], the
//! socket's `SO_RCVTIMEO`, set by [`prepare`]); only when a slice passes with nothing to read does
//! it go on waiting in `poll`, which also watches an optional stop descriptor (an eventfd: when it
//! becomes readable the call gives up with [`TransportError::Stopped`]) and an optional deadline
//! ([`TransportError::TimedOut`]). A reply that comes at once thus wakes its reader in `recvmsg`:
//! with the two ends on two CPUs of this project's VM, a wake-up in `poll` followed by a
//! `recvmsg` costs ~15 µs more per round trip than a wake-up in `recvmsg` (median of 5 runs of
//! 20 000 32-byte round trips each: 55–56 µs blocking in `recvmsg`, with or without
//! `SO_RCVTIMEO`, 70–71 µs in `poll`). Sends use `MSG_NOSIGNAL` (a closed peer is `EPIPE`, not
//! `SIGPIPE`).

use crate::proto::{HEADER_SIZE, Header};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

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
    /// The deadline passed with nothing (or not all of a message) to read.
    #[error("nothing to read before the deadline")]
    TimedOut,
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

/// How long a receive waits, and for what besides bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wait<'a> {
    /// Give up with [`TransportError::Stopped`] once this descriptor is readable.
    pub stop: Option<BorrowedFd<'a>>,
    /// Give up with [`TransportError::TimedOut`] once this passes.
    pub deadline: Option<Instant>,
}

/// How long one blocking `recvmsg` sleeps before the wait goes on in `poll` (where the stop
/// descriptor and the deadline are watched): the most a stop or a deadline is noticed late.
pub const RECV_SLICE: Duration = Duration::from_millis(10);

/// Makes receives on `sock` sleep in `recvmsg` at most [`RECV_SLICE`] at a time (its
/// `SO_RCVTIMEO`); a socket where that cannot be set is made non-blocking, so every wait is a
/// `poll`. A blocking socket without the slice would keep a receive asleep past its stop and its
/// deadline.
pub fn prepare(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    rustix::net::sockopt::set_socket_timeout(sock, rustix::net::sockopt::Timeout::Recv, Some(RECV_SLICE))
        .or_else(|_| rustix::io::ioctl_fionbio(sock, true))
}

/// Waits until `fd` is ready for `events`, or `wait`'s stop descriptor is readable, or its deadline
/// passes.
fn wait(fd: BorrowedFd<'_>, events: PollFlags, wait: Wait<'_>) -> Result<(), TransportError> {
    loop {
        let mut set = Vec::with_capacity(2);
        set.push(PollFd::new(&fd, events));
        if let Some(s) = &wait.stop {
            set.push(PollFd::new(s, PollFlags::IN));
        }
        let timeout = match wait.deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(TransportError::TimedOut);
                }
                Some(rustix::event::Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                })
            }
        };
        match poll(&mut set, timeout.as_ref()) {
            Ok(0) => continue, // the deadline, checked above
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

/// How many bytes one `recvmsg` may bring at least (the receive buffer's initial size).
const READ_CHUNK: usize = 64 << 10;

/// A connection's receiving side. One `recvmsg` brings as many bytes as are there — a header with
/// its payload, and whatever follows — and the bytes not yet handed out stay here for the next
/// message. So a message costs one `recvmsg` (none when it came with the previous one), not one
/// for its header and another for its payload.
///
/// Descriptors are the message's that holds the last byte of the `recvmsg` that brought them. The
/// kernel ends a read of an `AF_UNIX` stream right after the first part of a send that carried
/// descriptors, and a sender attaches them to a message's bytes (the spec's senders, to its first
/// byte, sending the message at once), so that byte is the message's; a hostile sender's
/// descriptors likewise stay with the message they came in. Data read past a message waits here,
/// and so do the descriptors that came with it.
#[derive(Debug)]
pub struct Receiver {
    buf: Vec<u8>,
    /// Bytes not yet handed out: `buf[start..end]`.
    start: usize,
    end: usize,
    /// The stream offset of `buf[0]`.
    base: u64,
    /// Descriptors received, each with the stream offset of the last byte read with it.
    fds: VecDeque<(u64, OwnedFd)>,
    /// Stream offsets of the last bytes of reads whose control data was cut (`MSG_CTRUNC`).
    cut: VecDeque<u64>,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver::new()
    }
}

impl Receiver {
    /// An empty one.
    pub fn new() -> Receiver {
        Receiver {
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            base: 0,
            fds: VecDeque::new(),
            cut: VecDeque::new(),
        }
    }

    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The next message's header, once all of it is here.
    fn header(&self) -> Option<Header> {
        let head = self.buf.get(self.start..self.end)?.first_chunk::<HEADER_SIZE>()?;
        Some(Header::decode(head))
    }

    /// Whether a whole message (header and payload) is already here: receiving it makes no call.
    pub fn has_message(&self) -> bool {
        self.header()
            .and_then(|h| h.payload_len())
            .is_some_and(|len| self.buffered() - HEADER_SIZE >= len)
    }

    /// Makes room for `need` bytes from `start`: moves the unread bytes to the front, grows.
    fn room(&mut self, need: usize) {
        if self.start > 0 && self.buf.len() - self.start < need.max(READ_CHUNK / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.start < need {
            self.buf.resize(self.start + need, 0);
        }
    }

    /// One `recvmsg` into the free space (see the module doc for how it waits); the bytes it
    /// brought (0 at the end of the stream).
    fn fill(
        &mut self,
        sock: BorrowedFd<'_>,
        max_fds: usize,
        until: Wait<'_>,
    ) -> Result<usize, TransportError> {
        if self.end == self.buf.len() {
            let need = self.buffered() + READ_CHUNK;
            self.room(need);
        }
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(max_fds.max(1)))];
        loop {
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [IoSliceMut::new(&mut self.buf[self.end..])];
            let got = match recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(got) => got,
                // A slice passed (or the socket does not block): wait in poll.
                Err(Errno::AGAIN) => {
                    wait(sock, PollFlags::IN, until)?;
                    continue;
                }
                Err(Errno::INTR) => continue,
                Err(Errno::CONNRESET) => return Ok(0),
                Err(source) => {
                    return Err(TransportError::Io {
                        op: "recvmsg",
                        source,
                    });
                }
            };
            self.end += got.bytes;
            // The stream offset of the last byte read (of the one before, for an empty read).
            let last = (self.base + self.end as u64).saturating_sub(1);
            if got.flags.contains(ReturnFlags::CTRUNC) {
                self.cut.push_back(last);
            }
            for msg in control.drain() {
                if let RecvAncillaryMessage::ScmRights(received) = msg {
                    self.fds.extend(received.map(|fd| (last, fd)));
                }
            }
            return Ok(got.bytes);
        }
    }

    /// Receives one message, waiting as `until` says. [`TransportError::Closed`] at a clean end
    /// of the stream.
    pub fn recv(
        &mut self,
        sock: BorrowedFd<'_>,
        limits: &Limits,
        until: Wait<'_>,
    ) -> Result<Message, TransportError> {
        let header = loop {
            if let Some(header) = self.header() {
                break header;
            }
            if self.fill(sock, limits.max_fds, until)? == 0 {
                return match self.buffered() {
                    0 => Err(TransportError::Closed),
                    got => Err(TransportError::Truncated {
                        got,
                        want: HEADER_SIZE,
                    }),
                };
            }
        };
        let len = header
            .payload_len()
            .filter(|&len| len <= limits.max_payload)
            .ok_or(TransportError::Framing {
                header,
                max: limits.max_payload.saturating_add(HEADER_SIZE),
            })?;
        let total = HEADER_SIZE + len;
        if self.buf.len() - self.start < total {
            self.room(total);
        }
        while self.buffered() < total {
            if self.fill(sock, limits.max_fds, until)? == 0 {
                return Err(TransportError::Truncated {
                    got: self.buffered() - HEADER_SIZE,
                    want: len,
                });
            }
        }
        let payload = self.buf[self.start + HEADER_SIZE..self.start + total].to_vec();
        self.start += total;
        let end = self.base + self.start as u64;
        let mut fds = Vec::new();
        let mut fds_truncated = false;
        while self.fds.front().is_some_and(|(at, _)| *at < end) {
            if let Some((_, fd)) = self.fds.pop_front() {
                if fds.len() < limits.max_fds {
                    fds.push(fd);
                } else {
                    fds_truncated = true;
                }
            }
        }
        while self.cut.front().is_some_and(|at| *at < end) {
            self.cut.pop_front();
            fds_truncated = true;
        }
        if self.start == self.end {
            self.base += self.start as u64;
            self.start = 0;
            self.end = 0;
        }
        Ok(Message {
            header,
            payload,
            fds,
            fds_truncated,
        })
    }
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
            wait(sock, PollFlags::OUT, Wait { stop, deadline: None })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Command;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    const LIMITS: Limits = Limits {
        max_payload: 1 << 20,
        max_fds: 2,
    };

    fn message(id: u16, payload: &[u8]) -> Vec<u8> {
        let h = Header::new_command(id, Command::RegionRead, payload.len(), false).unwrap();
        let mut out = h.encode().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn eventfd() -> OwnedFd {
        rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap()
    }

    /// Sends `bytes` in one `sendmsg` with `fds` attached.
    fn send_with(sock: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
        }
        let n = sendmsg(sock, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL).unwrap();
        assert_eq!(n, bytes.len());
    }

    #[test]
    fn messages_sent_together_come_out_one_by_one_and_the_second_needs_no_read() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut both = message(1, b"first");
        both.extend(message(2, &[7u8; 3000]));
        a.write_all(&both).unwrap();
        let mut rx = Receiver::new();
        let m1 = rx.recv(b.as_fd(), &LIMITS, Wait::default()).unwrap();
        assert_eq!((m1.header.msg_id, m1.payload.as_slice()), (1, &b"first"[..]));
        assert!(rx.has_message(), "the second came with the first read");
        drop(a); // a further read would see the end of the stream
        let m2 = rx.recv(b.as_fd(), &LIMITS, Wait::default()).unwrap();
        assert_eq!((m2.header.msg_id, m2.payload), (2, vec![7u8; 3000]));
        assert!(matches!(
            rx.recv(b.as_fd(), &LIMITS, Wait::default()),
            Err(TransportError::Closed)
        ));
    }

    #[test]
    fn descriptors_stay_with_the_message_they_were_sent_with() {
        let (a, b) = UnixStream::pair().unwrap();
        let (e1, e2) = (eventfd(), eventfd());
        // A without descriptors, B with one, C with one attached to its second half.
        send_with(&a, &message(1, b"no fds"), &[]);
        send_with(&a, &message(2, b"one fd"), &[e1.as_fd()]);
        let c = message(3, &[1u8; 64]);
        send_with(&a, &c[..40], &[]);
        send_with(&a, &c[40..], &[e2.as_fd()]);
        let mut rx = Receiver::new();
        let got: Vec<(u16, usize)> = (0..3)
            .map(|_| {
                let m = rx.recv(b.as_fd(), &LIMITS, Wait::default()).unwrap();
                assert!(!m.fds_truncated);
                (m.header.msg_id, m.fds.len())
            })
            .collect();
        assert_eq!(got, vec![(1, 0), (2, 1), (3, 1)]);
    }

    #[test]
    fn a_message_larger_than_the_buffer_and_too_many_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        let big: Vec<u8> = (0..3 * READ_CHUNK + 5).map(|i| i as u8).collect();
        let sender = std::thread::spawn(move || {
            let fds = [eventfd(), eventfd(), eventfd()];
            let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
            send_with(&a, &message(1, b"x"), &borrowed);
            (&a).write_all(&message(
                2,
                &(0..3 * READ_CHUNK + 5).map(|i| i as u8).collect::<Vec<u8>>(),
            ))
            .unwrap();
            a
        });
        let mut rx = Receiver::new();
        let m1 = rx.recv(b.as_fd(), &LIMITS, Wait::default()).unwrap();
        assert_eq!(m1.fds.len(), 2);
        assert!(m1.fds_truncated, "three descriptors, two allowed");
        let m2 = rx.recv(b.as_fd(), &LIMITS, Wait::default()).unwrap();
        assert_eq!(m2.payload, big);
        assert!(m2.fds.is_empty());
        drop(sender.join().unwrap());
    }

    #[test]
    fn the_stream_ending_inside_a_header_or_a_payload_is_truncation() {
        // (bytes sent, bytes of the part that arrived, bytes of the part expected)
        for (cut, got, want) in [(7, 7, HEADER_SIZE), (HEADER_SIZE + 3, 3, 10)] {
            let (mut a, b) = UnixStream::pair().unwrap();
            a.write_all(&message(1, &[0u8; 10])[..cut]).unwrap();
            drop(a);
            let mut rx = Receiver::new();
            match rx.recv(b.as_fd(), &LIMITS, Wait::default()) {
                Err(TransportError::Truncated { got: g, want: w }) => assert_eq!((g, w), (got, want)),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_message_over_the_limit_cannot_be_framed() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let limits = Limits {
            max_payload: 8,
            max_fds: 1,
        };
        a.write_all(&message(1, &[0u8; 9])).unwrap();
        let mut rx = Receiver::new();
        assert!(matches!(
            rx.recv(b.as_fd(), &limits, Wait::default()),
            Err(TransportError::Framing { .. })
        ));
    }

    /// Receiving on `b` with a deadline `after` from now and nothing sent times out, not before.
    fn times_out(rx: &mut Receiver, b: &UnixStream, after: Duration) {
        let deadline = Instant::now() + after;
        let until = Wait {
            stop: None,
            deadline: Some(deadline),
        };
        assert!(matches!(
            rx.recv(b.as_fd(), &LIMITS, until),
            Err(TransportError::TimedOut)
        ));
        assert!(Instant::now() >= deadline, "gave up before the deadline");
    }

    /// A message sent on `a` half a slice from now wakes a receive already waiting on `b`.
    fn receives_late(rx: &mut Receiver, a: UnixStream, b: &UnixStream) {
        let sender = std::thread::spawn(move || {
            std::thread::sleep(RECV_SLICE / 2);
            (&a).write_all(&message(9, b"late")).unwrap();
            a
        });
        let until = Wait {
            stop: None,
            deadline: Some(Instant::now() + Duration::from_secs(10)),
        };
        let m = rx.recv(b.as_fd(), &LIMITS, until).unwrap();
        assert_eq!((m.header.msg_id, m.payload.as_slice()), (9, &b"late"[..]));
        drop(sender.join().unwrap());
    }

    #[test]
    fn a_receive_waits_in_slices_until_its_deadline_or_its_stop() {
        let (a, b) = UnixStream::pair().unwrap();
        prepare(b.as_fd()).unwrap();
        let mut rx = Receiver::new();
        // Longer than a slice: the wait goes on in poll and ends at the deadline, not before.
        times_out(&mut rx, &b, RECV_SLICE * 3);
        // A stop already signalled is seen once the first slice passes.
        let stop = eventfd();
        rustix::io::write(&stop, &1u64.to_ne_bytes()).unwrap();
        let until = Wait {
            stop: Some(stop.as_fd()),
            deadline: None,
        };
        assert!(matches!(
            rx.recv(b.as_fd(), &LIMITS, until),
            Err(TransportError::Stopped)
        ));
        // Bytes that come while the receive sleeps in recvmsg wake it.
        receives_late(&mut rx, a, &b);
    }

    #[test]
    fn a_non_blocking_socket_waits_in_poll_until_its_deadline_or_its_bytes() {
        // What prepare falls back to when SO_RCVTIMEO cannot be set, and what a caller's own
        // non-blocking socket gets: every wait is a poll, bounded by the deadline.
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut rx = Receiver::new();
        times_out(&mut rx, &b, RECV_SLICE);
        receives_late(&mut rx, a, &b);
    }
}
