//! DMA regions without a file descriptor: "If no file descriptor is sent, the server must use
//! VFIO_USER_DMA_READ and VFIO_USER_DMA_WRITE messages to access that region". The edu device's
//! DMA into such a region becomes requests to the client, answered from its memory; the requests
//! respect the region's access flags and the client's `max_data_xfer_size`; a transfer that
//! crosses from a shared (memfd) region into one without a descriptor is split between the IOMMU
//! and the client; a client that refuses, answers wrongly, is silent or goes away fails the
//! transfer and nothing else; the host and this process end at their baseline.

mod common;

use common::{Harness, PAGE, edu, edu_dma, fds, map, memfd, pread, pwrite, qemu_caps, range, serial};
use parking_lot::Mutex;
use rustix::io::Errno;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use uvfio_devices::edu::EDU_DMA_START;
use uvfio_host::EDU_BDF;
use uvfio_types::{Access, Iova};
use uvfio_vfio_user::client::DmaMemory;
use uvfio_vfio_user::client::Reply;
use uvfio_vfio_user::proto::dma::{DmaData, DmaMap, DmaRead, UnmapTarget};
use uvfio_vfio_user::proto::region::RegionAccess;
use uvfio_vfio_user::proto::version::Capabilities;
use uvfio_vfio_user::proto::{Command, MessageType};
use uvfio_vfio_user::{Client, ServerOptions};

/// Where the region without a descriptor lies.
const IOVA: u64 = 0x20_0000;

/// The client's memory for the regions without a descriptor: `bytes` from `base`, each request
/// recorded; `refuse` makes every access fail with that errno.
#[derive(Debug, Clone)]
struct Memory {
    base: u64,
    bytes: Arc<Mutex<Vec<u8>>>,
    log: Arc<Mutex<Vec<(Command, u64, usize)>>>,
    refuse: Arc<Mutex<Option<Errno>>>,
}

impl Memory {
    fn new(base: u64, len: usize) -> Memory {
        Memory {
            base,
            bytes: Arc::new(Mutex::new(vec![0; len])),
            log: Arc::default(),
            refuse: Arc::default(),
        }
    }

    fn span(&self, addr: Iova, len: usize) -> Result<std::ops::Range<usize>, Errno> {
        let at = addr.raw().checked_sub(self.base).ok_or(Errno::FAULT)? as usize;
        let end = at.checked_add(len).ok_or(Errno::FAULT)?;
        if end > self.bytes.lock().len() {
            return Err(Errno::FAULT);
        }
        Ok(at..end)
    }

    fn get(&self, at: usize, len: usize) -> Vec<u8> {
        self.bytes.lock()[at..at + len].to_vec()
    }

    fn set(&self, at: usize, data: &[u8]) {
        self.bytes.lock()[at..at + data.len()].copy_from_slice(data);
    }

    fn requests(&self) -> Vec<(Command, u64, usize)> {
        self.log.lock().clone()
    }
}

impl DmaMemory for Memory {
    fn read(&self, addr: Iova, buf: &mut [u8]) -> Result<(), Errno> {
        self.log.lock().push((Command::DmaRead, addr.raw(), buf.len()));
        if let Some(e) = *self.refuse.lock() {
            return Err(e);
        }
        let span = self.span(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes.lock()[span]);
        Ok(())
    }

    fn write(&self, addr: Iova, data: &[u8]) -> Result<(), Errno> {
        self.log.lock().push((Command::DmaWrite, addr.raw(), data.len()));
        if let Some(e) = *self.refuse.lock() {
            return Err(e);
        }
        let span = self.span(addr, data.len())?;
        self.bytes.lock()[span].copy_from_slice(data);
        Ok(())
    }
}

fn remote_map(start: u64, len: u64, access: Access) -> DmaMap {
    DmaMap {
        range: range(start, len),
        offset: 0,
        access,
        has_fd: false,
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// A client with `memory` for its regions without a descriptor.
fn client_with(h: &Harness, memory: &Memory) -> Client {
    let mut c = edu(h);
    c.set_dma_memory(Some(Box::new(memory.clone())));
    c
}

#[test]
fn device_dma_to_and_from_a_region_without_a_descriptor_goes_through_dma_read_and_write() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let memory = Memory::new(IOVA, 2 * PAGE as usize);
        let mut c = client_with(&h, &memory);
        c.dma_map(&remote_map(IOVA, 2 * PAGE, Access::RW), None)
            .expect("DMA_MAP without a descriptor");
        // Nothing is pinned or mapped for it: the memory stays the client's.
        assert_eq!(h.state(), baseline);
        let data = pattern(1024, 3);
        memory.set(0, &data);
        edu_dma(&mut c, IOVA, EDU_DMA_START, 1024, false);
        edu_dma(&mut c, EDU_DMA_START, IOVA + 2048, 1024, true);
        assert_eq!(
            memory.get(2048, 1024),
            data,
            "the device's write reached the client's memory"
        );
        assert_eq!(
            memory.requests(),
            vec![
                (Command::DmaRead, IOVA, 1024),
                (Command::DmaWrite, IOVA + 2048, 1024)
            ]
        );
        // Nothing faulted in the IOMMU.
        assert!(h.host.dma_faults(EDU_BDF).is_empty());

        // Unmapped, the window is gone: the same DMA faults in the IOMMU and asks nothing.
        c.dma_unmap(UnmapTarget::Range(range(IOVA, 2 * PAGE)))
            .expect("DMA_UNMAP");
        edu_dma(&mut c, EDU_DMA_START, IOVA, 1024, true);
        assert_eq!(memory.requests().len(), 2);
        assert!(!h.host.dma_faults(EDU_BDF).is_empty());
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn requests_are_cut_to_the_clients_max_data_xfer_size() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let memory = Memory::new(IOVA, PAGE as usize);
        let mut c = h.connect();
        c.version(Capabilities {
            max_data_xfer_size: Some(1024),
            ..qemu_caps()
        })
        .expect("VFIO_USER_VERSION");
        common::enable_bus_master(&mut c);
        c.set_dma_memory(Some(Box::new(memory.clone())));
        c.dma_map(&remote_map(IOVA, PAGE, Access::RW), None)
            .expect("DMA_MAP");
        let data = pattern(4096, 11);
        memory.set(0, &data);
        edu_dma(&mut c, IOVA, EDU_DMA_START, 4096, false);
        memory.set(0, &[0; 4096]);
        edu_dma(&mut c, EDU_DMA_START, IOVA, 4096, true);
        assert_eq!(memory.get(0, 4096), data);
        let reqs = memory.requests();
        assert_eq!(reqs.len(), 8, "{reqs:?}");
        for (i, (cmd, addr, len)) in reqs.iter().enumerate() {
            let expect = if i < 4 {
                Command::DmaRead
            } else {
                Command::DmaWrite
            };
            assert_eq!((*cmd, *addr, *len), (expect, IOVA + (i as u64 % 4) * 1024, 1024));
        }
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn a_transfer_across_a_memfd_region_and_a_region_without_a_descriptor_is_split() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        // [IOVA - PAGE, IOVA) from a memfd, [IOVA, IOVA + PAGE) the client's.
        let memory = Memory::new(IOVA, PAGE as usize);
        let mut c = client_with(&h, &memory);
        let mem = memfd(PAGE);
        c.dma_map(&map(IOVA - PAGE, PAGE, 0), Some(mem.as_fd()))
            .expect("DMA_MAP with a memfd");
        c.dma_map(&remote_map(IOVA, PAGE, Access::RW), None)
            .expect("DMA_MAP without a descriptor");
        // A map overlapping either is refused, with or without a descriptor.
        for (m, fd) in [
            (remote_map(IOVA - 2 * PAGE, 2 * PAGE, Access::RW), None),
            (map(IOVA, PAGE, 0), Some(mem.as_fd())),
        ] {
            let e = c.dma_map(&m, fd).expect_err("an overlapping map");
            assert_eq!(e.errno(), Some(Errno::EXIST));
        }
        let data = pattern(4096, 5);
        pwrite(&mem, PAGE / 2, &data[..2048]);
        memory.set(0, &data[2048..]);
        // 4 KiB from the middle of the memfd page into the client's page, and back shifted.
        edu_dma(&mut c, IOVA - 2048, EDU_DMA_START, 4096, false);
        pwrite(&mem, 0, &[0; PAGE as usize]);
        memory.set(0, &[0; PAGE as usize]);
        edu_dma(&mut c, EDU_DMA_START, IOVA - 1024, 4096, true);
        assert_eq!(pread(&mem, 3072, 1024), data[..1024]);
        assert_eq!(memory.get(0, 3072), data[1024..]);
        assert_eq!(
            memory.requests(),
            vec![(Command::DmaRead, IOVA, 2048), (Command::DmaWrite, IOVA, 3072)]
        );
        // UNMAP_ALL takes both; the same DMA then faults and asks nothing.
        c.dma_unmap(UnmapTarget::All).expect("UNMAP_ALL");
        edu_dma(&mut c, EDU_DMA_START, IOVA - 1024, 4096, true);
        assert_eq!(memory.requests().len(), 2);
        assert_eq!(h.state().pinned_pages, baseline.pinned_pages);
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn a_read_only_region_refuses_device_writes_without_asking_the_client() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let memory = Memory::new(IOVA, PAGE as usize);
        let mut c = client_with(&h, &memory);
        c.dma_map(&remote_map(IOVA, PAGE, Access::READ), None)
            .expect("DMA_MAP read-only");
        let data = pattern(512, 9);
        memory.set(0, &data);
        edu_dma(&mut c, IOVA, EDU_DMA_START, 512, false);
        edu_dma(&mut c, EDU_DMA_START, IOVA + 1024, 512, true);
        assert_eq!(memory.get(1024, 512), vec![0; 512], "nothing written");
        assert_eq!(memory.requests(), vec![(Command::DmaRead, IOVA, 512)]);
    }
    h.settle(baseline, &fds_before);
}

/// Starts an edu DMA with the command register written by hand, and returns the server's first
/// request, which may come before or after the write's reply (the device's thread sends it).
fn start_dma_by_hand(c: &mut Client, src: u64, dst: u64, count: u64, cmd: u64) -> Reply {
    use uvfio_devices::edu::reg;
    common::write64(c, reg::DMA_SRC, src);
    common::write64(c, reg::DMA_DST, dst);
    common::write64(c, reg::DMA_COUNT, count);
    let write = RegionAccess {
        region: common::BAR0,
        offset: reg::DMA_CMD,
        count: 8,
    };
    let id = c
        .send(
            Command::RegionWrite,
            &write.encode_with(&cmd.to_ne_bytes()),
            &[],
            false,
        )
        .expect("send the DMA command");
    let (mut request, mut replied) = (None, false);
    while request.is_none() || !replied {
        let msg = c.recv().expect("a message from the server");
        if msg.header.message_type() == MessageType::Command {
            assert!(request.is_none(), "one request at a time: {msg:?}");
            request = Some(msg);
        } else {
            assert_eq!(msg.header.msg_id, id);
            assert!(!msg.header.is_error(), "{msg:?}");
            replied = true;
        }
    }
    request.expect("a request")
}

/// Where the memfd region of [`shared_and_remote`] lies.
const SHARED: u64 = 0x40_0000;

/// A client with a memfd page at [`SHARED`] and a page of its own memory at [`IOVA`], and the
/// edu buffer's first 256 bytes loaded with a known pattern (returned).
fn shared_and_remote(h: &Harness, seed: u8) -> (Memory, Client, std::os::fd::OwnedFd, Vec<u8>) {
    let memory = Memory::new(IOVA, PAGE as usize);
    let mut c = client_with(h, &memory);
    let mem = memfd(PAGE);
    c.dma_map(&map(SHARED, PAGE, 0), Some(mem.as_fd()))
        .expect("DMA_MAP with a memfd");
    c.dma_map(&remote_map(IOVA, PAGE, Access::RW), None)
        .expect("DMA_MAP without a descriptor");
    let known = pattern(256, seed);
    pwrite(&mem, 0, &known);
    edu_dma(&mut c, SHARED, EDU_DMA_START, 256, false);
    (memory, c, mem, known)
}

/// Sends, by hand, a reply to `request` with `payload` and the command number of `cmd`.
fn answer_by_hand(c: &Client, request: &Reply, cmd: Command, payload: &[u8]) {
    let mut header = request.header.reply(payload.len()).expect("a reply header");
    header.cmd = cmd.raw();
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(payload);
    c.send_raw(&bytes, &[]).expect("send the answer");
}

/// The edu buffer's first `len` bytes, read out through a memfd region at `at`.
fn edu_buffer(c: &mut Client, at: u64, mem: &std::os::fd::OwnedFd, len: u64) -> Vec<u8> {
    edu_dma(c, EDU_DMA_START, at, len, true);
    pread(mem, 0, len as usize)
}

#[test]
fn a_refused_or_malformed_answer_fails_the_transfer_and_the_session_goes_on() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let (memory, mut c, mem, known) = shared_and_remote(&h, 1);

        // The client refuses: the buffer keeps its bytes.
        memory.set(0, &pattern(256, 77));
        *memory.refuse.lock() = Some(Errno::FAULT);
        edu_dma(&mut c, IOVA, EDU_DMA_START, 256, false);
        assert_eq!(edu_buffer(&mut c, SHARED, &mem, 256), known);
        *memory.refuse.lock() = None;

        // Malformed answers, by hand: a wrong address, short data, the wrong command's reply.
        for bad in 0..3 {
            let req = start_dma_by_hand(&mut c, IOVA, EDU_DMA_START, 256, uvfio_devices::edu::DMA_RUN);

            assert_eq!(req.header.cmd, Command::DmaRead.raw());
            let q = DmaRead::decode(&req.payload, 1 << 20).expect("a DMA_READ");
            assert_eq!((q.addr, q.count), (Iova::new(IOVA), 256));
            let (payload, cmd) = match bad {
                0 => (
                    DmaData {
                        addr: Iova::new(IOVA + 8),
                        data: vec![0xaa; 256],
                    }
                    .encode(),
                    Command::DmaRead,
                ),
                1 => (
                    DmaData {
                        addr: Iova::new(IOVA),
                        data: vec![0xaa; 255],
                    }
                    .encode(),
                    Command::DmaRead,
                ),
                _ => (q.encode(), Command::DmaWrite),
            };
            answer_by_hand(&c, &req, cmd, &payload);
            common::wait_dma_idle(&mut c);
            assert_eq!(edu_buffer(&mut c, SHARED, &mem, 256), known, "bad answer {bad}");
        }
        // And the region still works.
        edu_dma(&mut c, IOVA, EDU_DMA_START, 256, false);
        assert_eq!(edu_buffer(&mut c, SHARED, &mem, 256), pattern(256, 77));
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn a_silent_client_times_the_transfer_out_and_its_late_answer_is_dropped() {
    let _g = serial();
    let h = Harness::with_options(ServerOptions {
        dma_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    });
    let baseline = h.state();
    let fds_before = fds();
    {
        let (memory, mut c, mem, known) = shared_and_remote(&h, 2);
        memory.set(0, &pattern(256, 99));
        let req = start_dma_by_hand(&mut c, IOVA, EDU_DMA_START, 256, uvfio_devices::edu::DMA_RUN);
        // Silent past the server's limit, then the stale request is answered: the server drops
        // that answer instead of treating it as a command.
        std::thread::sleep(Duration::from_millis(600));
        let q = DmaRead::decode(&req.payload, 1 << 20).expect("a DMA_READ");
        let late = DmaData {
            addr: q.addr,
            data: vec![0x55; 256],
        };
        answer_by_hand(&c, &req, Command::DmaRead, &late.encode());
        common::wait_dma_idle(&mut c);
        assert!(memory.requests().is_empty(), "the request was answered by hand");
        assert_eq!(edu_buffer(&mut c, SHARED, &mem, 256), known);
        edu_dma(&mut c, IOVA, EDU_DMA_START, 256, false);
        assert_eq!(edu_buffer(&mut c, SHARED, &mem, 256), pattern(256, 99));
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn a_client_gone_while_the_device_waits_fails_the_transfer_at_once() {
    let _g = serial();
    // A limit no test run reaches: only the disconnection can end the wait.
    let h = Harness::with_options(ServerOptions {
        dma_timeout: Duration::from_secs(3600),
        ..ServerOptions::default()
    });
    let baseline = h.state();
    let fds_before = fds();
    {
        let mut c = edu(&h);
        c.dma_map(&remote_map(IOVA, PAGE, Access::RW), None)
            .expect("DMA_MAP without a descriptor");
        let req = start_dma_by_hand(
            &mut c,
            EDU_DMA_START,
            IOVA,
            256,
            uvfio_devices::edu::DMA_RUN | uvfio_devices::edu::DMA_TO_RAM,
        );
        assert_eq!(req.header.cmd, Command::DmaWrite.raw());
    }
    // The next client finds the device idle (the waiting transfer failed when the first went) and
    // its own DMA works.
    {
        let memory = Memory::new(IOVA, PAGE as usize);
        let mut c = client_with(&h, &memory);
        c.dma_map(&remote_map(IOVA, PAGE, Access::RW), None)
            .expect("DMA_MAP without a descriptor");
        // The first client's transfer ends without waiting out the limit.
        common::wait_dma_idle(&mut c);
        memory.set(0, &pattern(128, 4));
        edu_dma(&mut c, IOVA, EDU_DMA_START, 128, false);
        edu_dma(&mut c, EDU_DMA_START, IOVA + 512, 128, true);
        assert_eq!(memory.get(512, 128), pattern(128, 4));
    }
    h.settle(baseline, &fds_before);
}
