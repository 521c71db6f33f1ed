//! The tests' harness: a server on its own thread behind an abstract-namespace socket, a client
//! that has done the handshake, and the host's and this process's resources to compare with a
//! baseline.

#![allow(dead_code)]

use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uvfio_devices::edu::{DMA_RUN, DMA_TO_RAM, reg};
use uvfio_host::Host;
use uvfio_types::{Access, Iova, IovaRange};
use uvfio_vfio_user::proto::dma::DmaMap;
use uvfio_vfio_user::proto::version::Capabilities;
use uvfio_vfio_user::{Client, Level, Server, ServerError, ServerOptions, StopHandle};

/// Region indexes and registers the tests use.
pub const BAR0: u32 = 0;
pub const CONFIG: u32 = 7;
pub const PAGE: u64 = 4096;

/// Serialises the tests of one binary: they count this process's file descriptors, which a test
/// running beside them would disturb (nextest runs each test in its own process anyway).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
}

/// The file descriptors open in this process (without the one listing them, and without the
/// `/proc/self/maps` descriptor `uvfio_memory::probe_user_range` keeps open for the process's
/// life once a buffer has been checked).
pub fn fds() -> BTreeSet<i32> {
    let listing = std::path::PathBuf::from(format!("/proc/{}/fd", std::process::id()));
    let maps = std::path::PathBuf::from(format!("/proc/{}/maps", std::process::id()));
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|n: &i32| {
                    let link = std::fs::read_link(format!("/proc/self/fd/{n}")).ok();
                    link.as_ref() != Some(&listing) && link.as_ref() != Some(&maps)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the host holds, to compare with a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostState {
    pub open_files: usize,
    pub pinned_pages: u64,
    pub user_charge: u64,
    pub mm_charge: u64,
    pub adopted_segments: usize,
    pub leaked_objects: usize,
}

pub fn host_state(host: &Host) -> HostState {
    HostState {
        open_files: host.open_files(),
        pinned_pages: host.memory().account().locked_pages,
        user_charge: host.accounts().user.locked_pages(),
        mm_charge: host.accounts().mm.locked_pages(),
        adopted_segments: host.memory().stats().adopted_segments,
        leaked_objects: host.leaked_objects(),
    }
}

/// A server serving on a thread.
pub struct Harness {
    pub host: Arc<Host>,
    addr: SocketAddr,
    stop: StopHandle,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

fn log_level() -> Option<Level> {
    // Quiet unless asked: UVFIO_LOG=debug shows the server's side of a failing test.
    Some(Level::from_env())
}

impl Harness {
    /// The embedded host's edu, default options.
    pub fn embedded() -> Harness {
        Harness::with_options(ServerOptions {
            log_level: log_level(),
            ..ServerOptions::default()
        })
    }

    /// The embedded host's edu with `options`.
    pub fn with_options(options: ServerOptions) -> Harness {
        Harness::serve(Server::embedded(options).expect("the embedded server"))
    }

    /// A server on `host`.
    pub fn on_host(host: Arc<Host>, options: ServerOptions) -> Harness {
        Harness::serve(Server::new(host, options).expect("a server"))
    }

    fn serve(server: Server) -> Harness {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "uvfio-vfio-user-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("an abstract address");
        let listener = UnixListener::bind_addr(&addr).expect("bind");
        let host = Arc::clone(server.host());
        let stop = server.stop_handle();
        let thread = std::thread::spawn(move || server.serve(&listener));
        Harness {
            host,
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// A connected client that has not done the handshake.
    pub fn connect(&self) -> Client {
        let mut c = Client::new(UnixStream::connect_addr(&self.addr).expect("connect"));
        c.set_timeout(Duration::from_secs(20));
        c
    }

    /// A connected client after `VFIO_USER_VERSION` with QEMU's proposal.
    pub fn client(&self) -> Client {
        let mut c = self.connect();
        c.version(qemu_caps()).expect("VFIO_USER_VERSION");
        c
    }

    /// What the host holds now.
    pub fn state(&self) -> HostState {
        host_state(&self.host)
    }

    /// Waits until the host is back at `baseline` (the server cleans up after a disconnection on
    /// its own thread) and this process's descriptors are `fds`; panics after 10 s.
    pub fn settle(&self, baseline: HostState, fds_before: &BTreeSet<i32>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (state, now) = (self.state(), fds());
            if state == baseline && &now == fds_before {
                return;
            }
            if Instant::now() > deadline {
                panic!("not back at baseline: {state:?} vs {baseline:?}; fds {now:?} vs {fds_before:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the server and waits for its thread; the serve loop's result.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop.stop();
        self.thread
            .take()
            .map_or(Ok(()), |t| t.join().expect("the server thread"))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// QEMU's `VFIO_USER_VERSION` proposal.
pub fn qemu_caps() -> Capabilities {
    Capabilities {
        max_msg_fds: Some(8),
        max_data_xfer_size: Some(1 << 20),
        max_dma_maps: Some(65535),
        pgsizes: Some(4096),
        write_multiple: Some(true),
        ..Capabilities::default()
    }
}

/// A memfd of `len` bytes.
pub fn memfd(len: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create("vfio-user-test", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
    rustix::fs::ftruncate(&fd, len).expect("ftruncate");
    fd
}

/// `len` bytes of `fd` at `offset`.
pub fn pread(fd: &OwnedFd, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let n = rustix::io::pread(fd.as_fd(), &mut buf, offset).expect("pread");
    buf.truncate(n);
    buf
}

/// Writes `data` at `offset` of `fd`.
pub fn pwrite(fd: &OwnedFd, offset: u64, data: &[u8]) {
    let n = rustix::io::pwrite(fd.as_fd(), data, offset).expect("pwrite");
    assert_eq!(n, data.len());
}

/// An eventfd.
pub fn eventfd() -> OwnedFd {
    rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )
    .expect("eventfd")
}

/// Waits up to 5 s for `fd` (an eventfd) to be signalled; its counter.
pub fn wait_event(fd: &OwnedFd) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut buf = [0u8; 8];
        if let Ok(8) = rustix::io::read(fd, &mut buf) {
            return Some(u64::from_ne_bytes(buf));
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// The edu device over a client.

/// The PCI command register and its bits.
pub const PCI_COMMAND: u64 = 0x04;
pub const COMMAND_MEMORY: u16 = 0x2;
pub const COMMAND_MASTER: u16 = 0x4;

/// `len` bytes at `start`.
pub fn range(start: u64, len: u64) -> IovaRange {
    IovaRange::from_start_len(Iova::new(start), len).expect("a range")
}

/// A read-write map of `len` bytes at `start` from `offset` of a descriptor.
pub fn map(start: u64, len: u64, offset: u64) -> DmaMap {
    DmaMap {
        range: range(start, len),
        offset,
        access: Access::RW,
        has_fd: true,
    }
}

/// Turns memory decode and bus mastering on.
pub fn enable_bus_master(c: &mut Client) {
    let cmd = c
        .region_read(CONFIG, PCI_COMMAND, 2)
        .expect("read the command register");
    let cmd = u16::from_ne_bytes([cmd[0], cmd[1]]) | COMMAND_MEMORY | COMMAND_MASTER;
    c.region_write(CONFIG, PCI_COMMAND, &cmd.to_ne_bytes())
        .expect("write the command register");
}

/// A client after the handshake, with memory decode and bus mastering on (a BAR access with memory
/// decode off is `EIO`, as vfio-pci answers it).
pub fn edu(h: &Harness) -> Client {
    let mut c = h.client();
    enable_bus_master(&mut c);
    c
}

/// A 64-bit BAR0 register write.
pub fn write64(c: &mut Client, offset: u64, value: u64) {
    c.region_write(BAR0, offset, &value.to_ne_bytes())
        .expect("a 64-bit register write");
}

/// Runs one edu DMA of `count` bytes and waits for it to finish.
pub fn edu_dma(c: &mut Client, src: u64, dst: u64, count: u64, to_ram: bool) {
    write64(c, reg::DMA_SRC, src);
    write64(c, reg::DMA_DST, dst);
    write64(c, reg::DMA_COUNT, count);
    write64(c, reg::DMA_CMD, DMA_RUN | if to_ram { DMA_TO_RAM } else { 0 });
    wait_dma_idle(c);
}

/// Waits (5 s at most) until the edu's DMA is no longer running; the register reads answer any
/// server requests in between.
pub fn wait_dma_idle(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.read32(BAR0, reg::DMA_CMD).expect("read DMA_CMD") as u64 & DMA_RUN != 0 {
        assert!(Instant::now() < deadline, "the edu DMA did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
}
