//! vfio-user: uvfio's server (`uvfio_vfio_user::Server`, the embedded host's edu on a socket, on
//! its own thread) driven by uvfio's client, against the cost of the socket itself and against
//! rust-vmm's `vfio_user` 0.1.7 server, in the same run.
//!
//! - `REGION_READ` of 4 bytes of BAR 0 (the edu's identification register), round trip, against a
//!   raw ping-pong of the same byte counts over a `UnixStream` pair with a thread echoing (the
//!   limit of any request/reply over the socket), and against rust-vmm's `Server` with a trivial
//!   `ServerBackend` answering the same 4 bytes, driven by its own `Client::region_read`;
//! - 64 KiB moved by the edu's DMA engine into a memfd the client mapped with `DMA_MAP`, against
//!   `memcpy` of 64 KiB. The engine moves at most 4 KiB at a time (its buffer at 0x40000), so one
//!   operation is 16 transfers, each programmed with one `REGION_WRITE_MULTI` (source,
//!   destination, count, command) and polled to completion with `REGION_READ`s of the command
//!   register: the end-to-end cost a vfio-user driver of this device pays, socket round trips
//!   included (info only); and the device's data path alone — one 64 KiB DMA write through the
//!   device's current domain into the client's memfd (`Host::device_dma_port`) — against
//!   `memcpy` of 64 KiB into the same memfd.
//! - `DMA_MAP` of a 4 KiB memfd with its descriptor + `DMA_UNMAP`, against a raw `sendmsg` of
//!   the `DMA_MAP` byte count with a descriptor (`SCM_RIGHTS`) to a thread that receives it,
//!   closes it and replies with the reply's byte count, followed by a plain ping-pong of the
//!   `DMA_UNMAP` byte counts: the same messages, descriptors and round trips without a server.
//!
//! Message sizes are taken from the messages themselves: the request from the encoded payload,
//! the reply from a reply the server sent during set-up.

use crate::harness::{RatioDef, RowSpec, Settings, Side, Target, Unit, compare, time_iters};
use crate::placement::Placement;
pub use crate::vfio_user_peers::{FdPingPong, Memcpy64k, PingPong, RustVmmRegionRead};
use crate::{BenchError, Measured};
use std::hint::black_box;
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uvfio_host::EDU_BDF;
use uvfio_types::{Access, Iova, IovaRange};
use uvfio_vfio_user::proto::dma::{DmaMap, DmaUnmap, UnmapTarget};
use uvfio_vfio_user::proto::region::{MultiWrite, RegionAccess, encode_write_multi};
use uvfio_vfio_user::proto::version::Capabilities;
use uvfio_vfio_user::proto::{Command, HEADER_SIZE};
use uvfio_vfio_user::{Client, Server, ServerError, ServerOptions, StopHandle};

/// BAR 0 and the config space region.
pub(crate) const BAR0: u32 = 0;
const CONFIG: u32 = 7;
/// The edu's identification register (BAR 0 offset 0) and its value.
pub const EDU_ID: u32 = 0x0100_00ed;
/// PCI command: memory decode + bus mastering.
const COMMAND_MEMORY_MASTER: u16 = 0x0006;
/// The edu's DMA registers and command bits.
const DMA_SRC: u64 = 0x80;
const DMA_DST: u64 = 0x88;
const DMA_COUNT: u64 = 0x90;
const DMA_CMD: u64 = 0x98;
const DMA_RUN: u64 = 1;
const DMA_TO_RAM: u64 = 2;
/// The edu's DMA buffer and its size (the most one transfer moves).
const EDU_BUF: u64 = 0x40000;
const EDU_BUF_LEN: u64 = 4096;
/// Where the client maps its memfd (below the edu's 28-bit DMA mask).
const IOVA: u64 = 0x10_0000;
/// Bytes one DMA operation moves.
pub const DMA_LEN: usize = 64 << 10;
/// Bytes of the memfd `DMA_MAP`ped per iteration of the map row.
pub(crate) const MAP_LEN: u64 = 4096;

/// The rows of this group.
pub fn specs() -> Vec<RowSpec> {
    vec![
        RowSpec {
            name: "vfio_user_region_read_4b_vs_socket_ping_pong",
            what: "vfio-user REGION_READ 4 B of BAR0, round trip",
            peer: "raw UnixStream ping-pong of the same byte counts",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Op,
            target: Target::AtMost(1.3),
            measure: measure_read_vs_ping_pong,
        },
        RowSpec {
            name: "vfio_user_region_read_4b_vs_rust_vmm",
            what: "vfio-user REGION_READ 4 B of BAR0, round trip",
            peer: "rust-vmm vfio_user 0.1.7 Server + Client::region_read",
            ratio_def: RatioDef::PeerOverOurs,
            unit: Unit::Op,
            target: Target::AtLeast(1.0),
            measure: measure_read_vs_rust_vmm,
        },
        RowSpec {
            name: "vfio_user_device_dma_64k_into_memfd",
            what: "device DMA write 64 KiB into a client memfd (DMA_MAPped), through the IOMMU",
            peer: "memcpy of 64 KiB into the same memfd",
            ratio_def: RatioDef::PeerOverOurs,
            unit: Unit::Op,
            target: Target::AtLeast(0.8),
            measure: measure_device_dma,
        },
        RowSpec {
            name: "vfio_user_edu_dma_64k_into_memfd",
            what: "edu DMA 64 KiB into a DMA_MAPped memfd (16 x 4 KiB, programmed + polled)",
            peer: "memcpy of 64 KiB",
            ratio_def: RatioDef::PeerOverOurs,
            unit: Unit::Op,
            target: Target::None,
            measure: measure_dma,
        },
        RowSpec {
            name: "vfio_user_dma_map_unmap_4k_fd",
            what: "vfio-user DMA_MAP 4 KiB memfd (fd) + DMA_UNMAP, round trips",
            peer: "raw sendmsg with an fd + ping-pong, same byte counts",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Op,
            target: Target::AtMost(1.2),
            measure: measure_map,
        },
    ]
}

fn measure_read_vs_ping_pong(s: &Settings) -> Result<Measured, BenchError> {
    let placement = Placement::from_env();
    let _client = placement.client();
    let mut ours = OursRegionRead::new()?;
    let (req, reply) = ours.sizes();
    let mut peer = PingPong::new(&[(req, reply)])?;
    let c = compare(
        s,
        Side::new(1.0, &mut |n| ours.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::OursOverPeer,
    )?;
    Ok(Measured {
        comparison: c,
        note: Some(format!("request {req} B, reply {reply} B; {}", placement.name())),
    })
}

fn measure_read_vs_rust_vmm(s: &Settings) -> Result<Measured, BenchError> {
    let placement = Placement::from_env();
    let _client = placement.client();
    let mut ours = OursRegionRead::new()?;
    let mut peer = RustVmmRegionRead::new()?;
    let c = compare(
        s,
        Side::new(1.0, &mut |n| ours.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::PeerOverOurs,
    )?;
    Ok(Measured::from(c))
}

fn measure_device_dma(s: &Settings) -> Result<Measured, BenchError> {
    let ours = OursEduDma::new()?;
    let port = ours
        ._server
        .host
        .device_dma_port(EDU_BDF)
        .ok_or(BenchError::Setup("the edu device has no DMA path"))?;
    let data = vec![0xa5u8; DMA_LEN];
    let peer_map = crate::sys::FileMap::new(ours.mem.as_fd(), DMA_LEN)?;
    let c = compare(
        s,
        Side::new(1.0, &mut |n| {
            time_iters(n, || {
                port.write(Iova::new(IOVA), black_box(&data))
                    .map_err(|_| BenchError::Setup("the device's DMA into the memfd faulted"))
            })
        }),
        Side::new(1.0, &mut |n| {
            time_iters(n, || {
                peer_map.copy_in(black_box(&data));
                Ok(())
            })
        }),
        RatioDef::PeerOverOurs,
    )?;
    Ok(Measured {
        comparison: c,
        note: Some(
            "the device's data path: one 64 KiB DMA write through the device's current domain (the \
             server's IOAS for this client) into the client's memfd, as the edu engine issues it; the limit is memcpy into the same memfd pages"
                .to_string(),
        ),
    })
}

fn measure_dma(s: &Settings) -> Result<Measured, BenchError> {
    let placement = Placement::from_env();
    let _client = placement.client();
    let mut ours = OursEduDma::new()?;
    let mut peer = Memcpy64k::new();
    let c = compare(
        s,
        Side::new(1.0, &mut |n| ours.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::PeerOverOurs,
    )?;
    Ok(Measured {
        comparison: c,
        note: Some(
            "end to end: 16 x (REGION_WRITE_MULTI + polling REGION_READs) per 64 KiB; the socket \
             round trips dominate, not the data path"
                .to_string(),
        ),
    })
}

fn measure_map(s: &Settings) -> Result<Measured, BenchError> {
    let placement = Placement::from_env();
    let _client = placement.client();
    let mut ours = OursDmaMap::new()?;
    let (map, unmap) = ours.sizes();
    let mut peer = FdPingPong::new(map, unmap)?;
    let c = compare(
        s,
        Side::new(1.0, &mut |n| ours.time(n)),
        Side::new(1.0, &mut |n| peer.time(n)),
        RatioDef::OursOverPeer,
    )?;
    Ok(Measured {
        comparison: c,
        note: Some(format!(
            "DMA_MAP {}+{} B with 1 fd, DMA_UNMAP {}+{} B; {}",
            map.0,
            map.1,
            unmap.0,
            unmap.1,
            placement.name()
        )),
    })
}

fn client_err(e: uvfio_vfio_user::ClientError) -> BenchError {
    BenchError::VfioUser(Box::new(e))
}

pub(crate) fn io_err(e: std::io::Error) -> BenchError {
    BenchError::Io(e)
}

/// uvfio's server on the embedded host's edu, serving an abstract-namespace socket on a thread.
#[derive(Debug)]
pub struct OursServer {
    /// The server's host (its devices' DMA paths).
    pub host: Arc<uvfio_host::Host>,
    addr: SocketAddr,
    stop: StopHandle,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl OursServer {
    /// Starts the server on its thread.
    pub fn start() -> Result<OursServer, BenchError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let server = Server::embedded(ServerOptions::default())
            .map_err(|e| BenchError::VfioUserServer(Box::new(e)))?;
        let name = format!(
            "uvfio-bench-vfio-user-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(io_err)?;
        let listener = UnixListener::bind_addr(&addr).map_err(io_err)?;
        let stop = server.stop_handle();
        let host = Arc::clone(server.host());
        let thread = std::thread::Builder::new()
            .name("vfio-user-server".into())
            .spawn(move || {
                Placement::from_env().server();
                server.serve(&listener)
            })
            .map_err(BenchError::Spawn)?;
        Ok(OursServer {
            host,
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// A client after `VFIO_USER_VERSION` (QEMU's proposal), with memory decode and bus
    /// mastering on.
    pub fn client(&self) -> Result<Client, BenchError> {
        let mut c = Client::new(UnixStream::connect_addr(&self.addr).map_err(io_err)?);
        c.set_timeout(Duration::from_secs(20));
        c.version(Capabilities {
            max_msg_fds: Some(8),
            max_data_xfer_size: Some(1 << 20),
            max_dma_maps: Some(65535),
            pgsizes: Some(4096),
            write_multiple: Some(true),
            ..Capabilities::default()
        })
        .map_err(client_err)?;
        c.region_write(CONFIG, 4, &COMMAND_MEMORY_MASTER.to_le_bytes())
            .map_err(client_err)?;
        Ok(c)
    }
}

impl Drop for OursServer {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Ours: `REGION_READ` of BAR 0's first 4 bytes through uvfio's client and server.
#[derive(Debug)]
pub struct OursRegionRead {
    client: Client,
    _server: OursServer,
}

impl OursRegionRead {
    /// A server and a client ready to read BAR 0.
    pub fn new() -> Result<Self, BenchError> {
        let server = OursServer::start()?;
        let client = server.client()?;
        Ok(OursRegionRead {
            client,
            _server: server,
        })
    }

    /// One read: the edu's identification register.
    pub fn read(&mut self) -> Result<u32, BenchError> {
        self.client.read32(BAR0, black_box(0)).map_err(client_err)
    }

    /// Bytes of the request and of the reply (headers included), from one real exchange.
    pub fn sizes(&mut self) -> (usize, usize) {
        let a = RegionAccess {
            region: BAR0,
            offset: 0,
            count: 4,
        }
        .encode();
        let reply = self
            .client
            .call(Command::RegionRead, &a, &[])
            .map_or(0, |r| r.payload.len());
        (HEADER_SIZE + a.len(), HEADER_SIZE + reply)
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

fn iova_range(start: u64, len: u64) -> Result<IovaRange, BenchError> {
    IovaRange::from_start_len(Iova::new(start), len).map_err(BenchError::Types)
}

pub(crate) fn memfd(len: u64) -> Result<OwnedFd, BenchError> {
    let fd = rustix::fs::memfd_create("uvfio-bench-vfio-user", rustix::fs::MemfdFlags::CLOEXEC).map_err(
        |errno| BenchError::Sys {
            call: "memfd_create",
            errno,
        },
    )?;
    rustix::fs::ftruncate(&fd, len).map_err(|errno| BenchError::Sys {
        call: "ftruncate",
        errno,
    })?;
    Ok(fd)
}

fn multi_write(offset: u64, value: u64) -> MultiWrite {
    MultiWrite {
        access: RegionAccess {
            region: BAR0,
            offset,
            count: 8,
        },
        data: value.to_le_bytes(),
    }
}

/// Ours: the edu's DMA engine writes 64 KiB into a memfd the client mapped, 4 KiB per transfer;
/// each transfer programmed with one `REGION_WRITE_MULTI` and polled to completion.
#[derive(Debug)]
pub struct OursEduDma {
    client: Client,
    mem: OwnedFd,
    programs: Vec<Vec<u8>>,
    _server: OursServer,
}

impl OursEduDma {
    /// A server, a client with a 64 KiB memfd mapped at [`IOVA`], and the edu's buffer filled
    /// with a pattern (by a DMA from the memfd).
    pub fn new() -> Result<Self, BenchError> {
        let server = OursServer::start()?;
        let mut client = server.client()?;
        let mem = memfd(DMA_LEN as u64)?;
        let pattern: Vec<u8> = (0..EDU_BUF_LEN).map(|i| (i * 7 + 3) as u8).collect();
        rustix::io::pwrite(&mem, &pattern, 0).map_err(|errno| BenchError::Sys {
            call: "pwrite",
            errno,
        })?;
        let map = DmaMap {
            range: iova_range(IOVA, DMA_LEN as u64)?,
            offset: 0,
            access: Access::RW,
            has_fd: true,
        };
        client.dma_map(&map, Some(mem.as_fd())).map_err(client_err)?;
        let mut ours = OursEduDma {
            client,
            mem,
            programs: Vec::new(),
            _server: server,
        };
        // Memfd -> edu buffer, once.
        let load = encode_write_multi(&[
            multi_write(DMA_SRC, IOVA),
            multi_write(DMA_DST, EDU_BUF),
            multi_write(DMA_COUNT, EDU_BUF_LEN),
            multi_write(DMA_CMD, DMA_RUN),
        ]);
        ours.transfer(&load)?;
        ours.programs = (0..DMA_LEN as u64 / EDU_BUF_LEN)
            .map(|i| {
                encode_write_multi(&[
                    multi_write(DMA_SRC, EDU_BUF),
                    multi_write(DMA_DST, IOVA + i * EDU_BUF_LEN),
                    multi_write(DMA_COUNT, EDU_BUF_LEN),
                    multi_write(DMA_CMD, DMA_RUN | DMA_TO_RAM),
                ])
            })
            .collect();
        Ok(ours)
    }

    fn transfer(&mut self, program: &[u8]) -> Result<(), BenchError> {
        self.client
            .call(Command::RegionWriteMulti, program, &[])
            .map_err(client_err)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while u64::from(self.client.read32(BAR0, DMA_CMD).map_err(client_err)?) & DMA_RUN != 0 {
            if Instant::now() > deadline {
                return Err(BenchError::Setup("the edu DMA did not finish"));
            }
        }
        Ok(())
    }

    /// One operation: 64 KiB from the edu's buffer into the memfd.
    pub fn op(&mut self) -> Result<(), BenchError> {
        let programs = std::mem::take(&mut self.programs);
        let r = programs.iter().try_for_each(|p| self.transfer(p));
        self.programs = programs;
        r
    }

    /// The memfd's bytes at `offset`.
    pub fn memfd_bytes(&self, offset: u64, len: usize) -> Result<Vec<u8>, BenchError> {
        let mut buf = vec![0u8; len];
        let n = rustix::io::pread(&self.mem, &mut buf, offset)
            .map_err(|errno| BenchError::Sys { call: "pread", errno })?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Runs `iters` operations and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }
}

/// Ours: `DMA_MAP` of a 4 KiB memfd with its descriptor, then `DMA_UNMAP` of it.
#[derive(Debug)]
pub struct OursDmaMap {
    client: Client,
    mem: OwnedFd,
    map: DmaMap,
    _server: OursServer,
}

impl OursDmaMap {
    /// A server, a client, and a 4 KiB memfd.
    pub fn new() -> Result<Self, BenchError> {
        let server = OursServer::start()?;
        let client = server.client()?;
        let map = DmaMap {
            range: iova_range(IOVA, MAP_LEN)?,
            offset: 0,
            access: Access::RW,
            has_fd: true,
        };
        Ok(OursDmaMap {
            client,
            mem: memfd(MAP_LEN)?,
            map,
            _server: server,
        })
    }

    /// One map + unmap.
    pub fn op(&mut self) -> Result<(), BenchError> {
        self.client
            .dma_map(&self.map, Some(self.mem.as_fd()))
            .map_err(client_err)?;
        self.client
            .dma_unmap(UnmapTarget::Range(self.map.range))
            .map_err(client_err)
    }

    /// `(request, reply)` bytes of `DMA_MAP` and of `DMA_UNMAP` (headers included), from one
    /// real exchange of each.
    pub fn sizes(&mut self) -> ((usize, usize), (usize, usize)) {
        let map = self.map.encode();
        let unmap = DmaUnmap::new(UnmapTarget::Range(self.map.range)).encode();
        let map_reply = self
            .client
            .call(Command::DmaMap, &map, &[self.mem.as_fd()])
            .map_or(0, |r| r.payload.len());
        let unmap_reply = self
            .client
            .call(Command::DmaUnmap, &unmap, &[])
            .map_or(0, |r| r.payload.len());
        (
            (HEADER_SIZE + map.len(), HEADER_SIZE + map_reply),
            (HEADER_SIZE + unmap.len(), HEADER_SIZE + unmap_reply),
        )
    }

    /// Runs `iters` map + unmap pairs and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        time_iters(iters, || self.op())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_reads_the_edu_id_and_ping_pong_echoes() {
        let mut ours = OursRegionRead::new().unwrap();
        assert_eq!(ours.read().unwrap(), EDU_ID);
        let (req, reply) = ours.sizes();
        assert_eq!((req, reply), (HEADER_SIZE + 16, HEADER_SIZE + 20));
        ours.time(3).unwrap();
        let mut peer = PingPong::new(&[(req, reply)]).unwrap();
        peer.time(3).unwrap();
        assert_eq!(peer.reply(0), Some(&vec![0x5a; reply][..]));
    }

    #[test]
    fn rust_vmm_server_answers_the_same_bytes() {
        let mut peer = RustVmmRegionRead::new().unwrap();
        assert_eq!(peer.read().unwrap(), EDU_ID);
        peer.time(3).unwrap();
    }

    #[test]
    fn edu_dma_writes_the_memfd() {
        let mut ours = OursEduDma::new().unwrap();
        ours.op().unwrap();
        let pattern: Vec<u8> = (0..EDU_BUF_LEN).map(|i| (i * 7 + 3) as u8).collect();
        for i in 0..(DMA_LEN as u64 / EDU_BUF_LEN) {
            assert_eq!(
                ours.memfd_bytes(i * EDU_BUF_LEN, EDU_BUF_LEN as usize).unwrap(),
                pattern
            );
        }
        let mut peer = Memcpy64k::new();
        peer.time(2).unwrap();
        assert!(peer.copied().iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn dma_map_unmap_and_fd_ping_pong() {
        let mut ours = OursDmaMap::new().unwrap();
        ours.time(3).unwrap();
        let (map, unmap) = ours.sizes();
        assert!(map.0 > HEADER_SIZE && unmap.0 > HEADER_SIZE, "{map:?} {unmap:?}");
        // Still mappable: every map was undone.
        ours.op().unwrap();
        let mut peer = FdPingPong::new(map, unmap).unwrap();
        peer.time(3).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while peer.received() < 3 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(peer.received(), 3);
    }
}
