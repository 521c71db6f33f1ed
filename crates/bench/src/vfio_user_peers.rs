//! The peers and limits of the vfio-user rows ([`crate::vfio_user_rows`]): a raw request/reply
//! ping-pong over a `UnixStream` pair, rust-vmm's `vfio_user` 0.1.7 server with a trivial backend,
//! `memcpy` of 64 KiB, and a `sendmsg` with a descriptor followed by a ping-pong — each the same
//! bytes, descriptors and round trips as ours, without uvfio's server.

use crate::BenchError;
use crate::harness::time_iters;
use crate::placement::Placement;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, recvmsg, sendmsg,
};
use std::fs::File;
use std::hint::black_box;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::vfio_user_rows::{BAR0, DMA_LEN, EDU_ID, MAP_LEN, io_err, memfd};

/// The limit: a request of `req` bytes and a reply of `reply` bytes over a connected `UnixStream`
/// pair, with a thread reading each request whole and writing the reply; a list of such exchanges
/// is one iteration.
#[derive(Debug)]
pub struct PingPong {
    sock: UnixStream,
    exchanges: Vec<(Vec<u8>, Vec<u8>)>,
    thread: Option<JoinHandle<()>>,
}

impl PingPong {
    /// The reply bytes of exchange `i` as the echo thread sends them (for checks).
    pub fn reply(&self, i: usize) -> Option<&[u8]> {
        self.exchanges.get(i).map(|(_, reply)| reply.as_slice())
    }

    /// A pair and an echoing thread for the `(request, reply)` byte counts of `exchanges`.
    pub fn new(exchanges: &[(usize, usize)]) -> Result<Self, BenchError> {
        let (sock, mut theirs) = UnixStream::pair().map_err(io_err)?;
        let sizes = exchanges.to_vec();
        let thread = std::thread::Builder::new()
            .name("ping-pong".into())
            .spawn(move || {
                Placement::from_env().server();
                let mut bufs: Vec<(Vec<u8>, Vec<u8>)> =
                    sizes.iter().map(|&(q, r)| (vec![0; q], vec![0x5a; r])).collect();
                'serve: loop {
                    for (req, reply) in &mut bufs {
                        if theirs.read_exact(req).is_err() || theirs.write_all(reply).is_err() {
                            break 'serve;
                        }
                    }
                }
            })
            .map_err(BenchError::Spawn)?;
        Ok(PingPong {
            sock,
            exchanges: exchanges
                .iter()
                .map(|&(q, r)| (vec![0xa5; q], vec![0; r]))
                .collect(),
            thread: Some(thread),
        })
    }

    fn op(&mut self) -> Result<(), BenchError> {
        for (req, reply) in &mut self.exchanges {
            self.sock.write_all(req).map_err(io_err)?;
            self.sock.read_exact(reply).map_err(io_err)?;
        }
        black_box(&self.exchanges);
        Ok(())
    }

    /// Runs `iters` iterations (every exchange once) and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// rust-vmm's backend: every read answers the edu's identification register.
struct IdBackend;

impl ::vfio_user::ServerBackend for IdBackend {
    fn region_read(&mut self, _region: u32, offset: u64, data: &mut [u8]) -> Result<(), std::io::Error> {
        let id = EDU_ID.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = id.get(offset as usize + i).copied().unwrap_or(0);
        }
        Ok(())
    }
    fn region_write(&mut self, _region: u32, _offset: u64, _data: &[u8]) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn dma_map(
        &mut self,
        _flags: ::vfio_user::DmaMapFlags,
        _offset: u64,
        _address: u64,
        _size: u64,
        _fd: Option<File>,
    ) -> Result<(), std::io::Error> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn dma_unmap(
        &mut self,
        _flags: ::vfio_user::DmaUnmapFlags,
        _address: u64,
        _size: u64,
    ) -> Result<(), std::io::Error> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn reset(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn set_irqs(
        &mut self,
        _index: u32,
        _flags: u32,
        _start: u32,
        _count: u32,
        _fds: Vec<File>,
    ) -> Result<(), std::io::Error> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// The peer: rust-vmm `vfio_user` 0.1.7's `Server` with one 4 KiB region answered by a trivial
/// backend, on a thread, driven by its `Client::region_read` of 4 bytes.
pub struct RustVmmRegionRead {
    client: Option<::vfio_user::Client>,
    thread: Option<JoinHandle<Result<(), ::vfio_user::Error>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for RustVmmRegionRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustVmmRegionRead")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl RustVmmRegionRead {
    /// The server on its socket (a file in a fresh temporary directory) and a connected client.
    pub fn new() -> Result<Self, BenchError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "uvfio-bench-rust-vmm-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let mut region = ::vfio_user::ServerRegion {
            region_info: Default::default(),
            sparse_areas: Vec::new(),
            mmap_fd: None,
        };
        region.region_info.argsz = 32;
        region.region_info.index = BAR0;
        region.region_info.size = 4096;
        region.region_info.flags = 0x3; // VFIO_REGION_INFO_FLAG_READ | _WRITE
        let server = ::vfio_user::Server::new(&path, false, Vec::new(), vec![region])
            .map_err(|e| BenchError::RustVmm(Box::new(e)))?;
        let thread = std::thread::Builder::new()
            .name("rust-vmm-server".into())
            .spawn(move || {
                Placement::from_env().server();
                server.run(&mut IdBackend)
            })
            .map_err(BenchError::Spawn)?;
        let mut peer = RustVmmRegionRead {
            client: None,
            thread: Some(thread),
            dir,
        };
        peer.client = Some(::vfio_user::Client::new(&path).map_err(|e| BenchError::RustVmm(Box::new(e)))?);
        Ok(peer)
    }

    /// One read of 4 bytes at offset 0 of region 0.
    pub fn read(&mut self) -> Result<u32, BenchError> {
        let c = self.client.as_mut().ok_or(BenchError::WorkerGone)?;
        let mut b = [0u8; 4];
        c.region_read(BAR0, black_box(0), &mut b)
            .map_err(|e| BenchError::RustVmm(Box::new(e)))?;
        Ok(u32::from_le_bytes(b))
    }

    /// Runs `iters` reads and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || {
            self.read().map(|v| {
                black_box(v);
            })
        })
    }
}

impl Drop for RustVmmRegionRead {
    fn drop(&mut self) {
        // Closing the connection ends the server's `run`.
        drop(self.client.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 64 KiB, page-aligned.
#[repr(C, align(4096))]
struct Buf64k([u8; DMA_LEN]);

/// The limit: `memcpy` of 64 KiB between two page-aligned buffers.
pub struct Memcpy64k {
    src: Box<Buf64k>,
    dst: Box<Buf64k>,
}

impl std::fmt::Debug for Memcpy64k {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memcpy64k").finish_non_exhaustive()
    }
}

impl Default for Memcpy64k {
    fn default() -> Self {
        Self::new()
    }
}

impl Memcpy64k {
    /// The destination buffer (for checks).
    pub fn copied(&self) -> &[u8] {
        &self.dst.0
    }

    /// Two buffers.
    pub fn new() -> Self {
        Memcpy64k {
            src: Box::new(Buf64k([0x5a; DMA_LEN])),
            dst: Box::new(Buf64k([0; DMA_LEN])),
        }
    }

    /// Runs `iters` copies and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || {
            let src = black_box(&self.src.0[..]);
            black_box(&mut self.dst.0[..]).copy_from_slice(src);
            Ok(())
        })
    }
}

/// The limit: `sendmsg` of the `DMA_MAP` byte count with a descriptor to a thread that receives
/// it, closes it and replies, then a plain ping-pong of the `DMA_UNMAP` byte counts.
#[derive(Debug)]
pub struct FdPingPong {
    sock: UnixStream,
    fd: OwnedFd,
    map: (Vec<u8>, Vec<u8>),
    unmap: (Vec<u8>, Vec<u8>),
    thread: Option<JoinHandle<()>>,
    /// Descriptors the echoing thread received (and closed).
    received: std::sync::Arc<AtomicUsize>,
}

fn recv_fd_msg(sock: &UnixStream, buf: &mut [u8]) -> Option<usize> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut got = 0;
    let mut fds = 0;
    while got < buf.len() {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut buf[got..])];
        let r = recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC).ok()?;
        if r.bytes == 0 {
            return None;
        }
        got += r.bytes;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                // Received and closed, as a server that did not keep the mapping would.
                fds += rights.count();
            }
        }
    }
    Some(fds)
}

impl FdPingPong {
    /// A pair, an echoing thread and a 4 KiB memfd to send, for the byte counts of `map` and
    /// `unmap` (`(request, reply)` each).
    pub fn new(map: (usize, usize), unmap: (usize, usize)) -> Result<Self, BenchError> {
        let (sock, theirs) = UnixStream::pair().map_err(io_err)?;
        let received = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&received);
        let thread = std::thread::Builder::new()
            .name("fd-ping-pong".into())
            .spawn(move || {
                Placement::from_env().server();
                let mut theirs = theirs;
                let (mut map_req, map_reply) = (vec![0u8; map.0], vec![0x5au8; map.1]);
                let (mut unmap_req, unmap_reply) = (vec![0u8; unmap.0], vec![0x5au8; unmap.1]);
                while let Some(n) = recv_fd_msg(&theirs, &mut map_req) {
                    counter.fetch_add(n, Ordering::Relaxed);
                    if theirs.write_all(&map_reply).is_err()
                        || theirs.read_exact(&mut unmap_req).is_err()
                        || theirs.write_all(&unmap_reply).is_err()
                    {
                        break;
                    }
                }
            })
            .map_err(BenchError::Spawn)?;
        Ok(FdPingPong {
            sock,
            fd: memfd(MAP_LEN)?,
            map: (vec![0xa5; map.0], vec![0; map.1]),
            unmap: (vec![0xa5; unmap.0], vec![0; unmap.1]),
            thread: Some(thread),
            received,
        })
    }

    fn op(&mut self) -> Result<(), BenchError> {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [self.fd.as_fd()];
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(BenchError::Setup("SCM_RIGHTS control buffer"));
        }
        let sent = sendmsg(
            &self.sock,
            &[IoSlice::new(&self.map.0)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(|errno| BenchError::Sys {
            call: "sendmsg",
            errno,
        })?;
        if sent != self.map.0.len() {
            return Err(BenchError::Setup("a short sendmsg"));
        }
        self.sock.read_exact(&mut self.map.1).map_err(io_err)?;
        self.sock.write_all(&self.unmap.0).map_err(io_err)?;
        self.sock.read_exact(&mut self.unmap.1).map_err(io_err)?;
        Ok(())
    }

    /// Descriptors the echoing thread has received so far.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// Runs `iters` iterations and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }
}

impl Drop for FdPingPong {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
