//! A well-behaved client driving the embedded host's edu through the server: the handshake, the
//! device's regions and IRQs, config space and BAR0, DMA into a mapped memfd (and a fault outside
//! it), interrupts through eventfds, reset — and the host back at its baseline after each client.

mod common;

use common::{
    BAR0, COMMAND_MASTER, COMMAND_MEMORY, CONFIG, Harness, PAGE, PCI_COMMAND, edu, edu_dma,
    enable_bus_master, eventfd, fds, map, memfd, pread, pwrite, qemu_caps, range, serial, wait_event,
    write64,
};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use uvfio_abi::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use uvfio_devices::edu::{EDU_BAR0_SIZE, EDU_DMA_START, EDU_ID, STATUS_COMPUTING, reg};
use uvfio_devices::{EDU_DEVICE, EDU_VENDOR};
use uvfio_host::EDU_BDF;
use uvfio_types::{Access, Iova};
use uvfio_vfio_user::Client;
use uvfio_vfio_user::proto::Command;
use uvfio_vfio_user::proto::device::{IrqData, SetIrqs, encode_query};
use uvfio_vfio_user::proto::dma::UnmapTarget;
use uvfio_vfio_user::proto::region::{MultiWrite, RegionAccess, encode_write_multi};
use uvfio_vfio_user::proto::version::Capabilities;

/// Where the tests map their memfd in the device's address space.
const IOVA: u64 = 0x10_0000;
/// An address never mapped (below the edu's 28-bit DMA mask).
const UNMAPPED: u64 = 0x0dea_d000;

#[test]
fn version_negotiation() {
    let _g = serial();
    let h = Harness::embedded();
    let mut c = h.connect();
    let reply = c
        .version(Capabilities {
            max_msg_fds: Some(4),
            max_data_xfer_size: Some(4096),
            max_dma_maps: Some(8),
            pgsizes: Some(4096 | (2 << 20)),
            write_multiple: Some(true),
            ..Capabilities::default()
        })
        .expect("VFIO_USER_VERSION");
    assert_eq!((reply.major, reply.minor), (0, 0));
    // The server's own fd limit; the others lowered to the client's.
    assert_eq!(reply.caps.max_msg_fds, Some(16));
    assert_eq!(reply.caps.max_data_xfer_size, Some(4096));
    assert_eq!(reply.caps.max_dma_maps, Some(8));
    assert_eq!(reply.caps.pgsizes, Some(4096 | (2 << 20)));
    assert_eq!(reply.caps.write_multiple, Some(true));
    assert!(reply.caps.migration.is_none() && reply.caps.twin_socket.is_none());
    // max_data_xfer_size is enforced.
    let e = c
        .region_read(CONFIG, 0, 4097)
        .expect_err("above max_data_xfer_size");
    assert_eq!(e.errno(), Some(rustix::io::Errno::INVAL));
    assert_eq!(c.region_read(CONFIG, 0, 4).expect("a read").len(), 4);
}

#[test]
fn device_region_and_irq_info() {
    let _g = serial();
    let h = Harness::embedded();
    let mut c = h.client();
    let info = c.device_info().expect("DEVICE_GET_INFO");
    assert_eq!(info.argsz, 16);
    assert_eq!(info.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    assert_eq!(info.num_regions, VFIO_PCI_NUM_REGIONS);
    assert_eq!(info.num_irqs, VFIO_PCI_NUM_IRQS);

    let (bar0, fd) = c.region_info(BAR0).expect("BAR0 info");
    assert_eq!(bar0.size, EDU_BAR0_SIZE);
    assert_eq!(
        bar0.flags,
        VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
    );
    assert_eq!(bar0.flags & VFIO_REGION_INFO_FLAG_MMAP, 0);
    assert!(fd.is_none() && bar0.caps.is_empty());
    assert_eq!(bar0.offset, 0);
    let (config, _) = c.region_info(CONFIG).expect("config info");
    assert!(config.size >= 256);
    let (bar1, _) = c.region_info(1).expect("an absent BAR");
    assert_eq!((bar1.size, bar1.flags), (0, 0));

    let intx = c.irq_info(VFIO_PCI_INTX_IRQ_INDEX).expect("INTx info");
    assert_eq!(intx.count, 1);
    assert_ne!(intx.flags & VFIO_IRQ_INFO_EVENTFD, 0);
    let msi = c.irq_info(VFIO_PCI_MSI_IRQ_INDEX).expect("MSI info");
    assert!(msi.count >= 1);

    // No ioeventfd sub-regions: a reply with count 0 and no descriptor.
    let q = encode_query(Command::DeviceGetRegionIoFds, 16, BAR0);
    let reply = c
        .call(Command::DeviceGetRegionIoFds, &q, &[])
        .expect("GET_REGION_IO_FDS");
    assert_eq!(reply.payload.len(), 16);
    assert_eq!(&reply.payload[12..16], &0u32.to_ne_bytes());
    assert!(reply.fds.is_empty());
}

#[test]
fn config_space_and_bar0_registers() {
    let _g = serial();
    let h = Harness::embedded();
    let mut c = edu(&h);
    let id = c.read32(CONFIG, 0).expect("vendor and device id");
    assert_eq!(id & 0xffff, u32::from(EDU_VENDOR));
    assert_eq!(id >> 16, u32::from(EDU_DEVICE));
    assert_eq!(c.read32(BAR0, reg::ID).expect("the id register"), EDU_ID);
    assert_eq!(EDU_ID, 0x0100_00ed);
    c.write32(BAR0, reg::LIVENESS, 0x1234_5678)
        .expect("liveness write");
    assert_eq!(
        c.read32(BAR0, reg::LIVENESS).expect("liveness read"),
        !0x1234_5678
    );
    // A coalesced write (write_multiple was negotiated).
    let w = MultiWrite {
        access: RegionAccess {
            region: BAR0,
            offset: reg::LIVENESS,
            count: 4,
        },
        data: [0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0],
    };
    let reply = c
        .call(Command::RegionWriteMulti, &encode_write_multi(&[w]), &[])
        .expect("REGION_WRITE_MULTI");
    assert_eq!(reply.payload, 1u64.to_ne_bytes());
    assert_eq!(
        c.read32(BAR0, reg::LIVENESS).expect("liveness read"),
        !0x4433_2211
    );
}

#[test]
fn dma_into_a_mapped_memfd_and_a_fault_outside_it() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let mut c = edu(&h);
        let mem = memfd(4 * PAGE);
        let pattern: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
        pwrite(&mem, PAGE, &pattern);
        // Map pages 1 and 2 of the memfd at IOVA.
        c.dma_map(&map(IOVA, 2 * PAGE, PAGE), Some(mem.as_fd()))
            .expect("DMA_MAP with a memfd");
        assert!(
            h.state().pinned_pages >= 2,
            "the IOAS pinned the pages: {:?}",
            h.state()
        );
        // RAM -> edu, then edu -> RAM at IOVA + 2048.
        edu_dma(&mut c, IOVA, EDU_DMA_START, 1024, false);
        edu_dma(&mut c, EDU_DMA_START, IOVA + 2048, 1024, true);
        assert_eq!(
            pread(&mem, PAGE + 2048, 1024),
            pattern,
            "the device wrote the memfd"
        );

        // A DMA to an address nobody mapped faults in the IOMMU and writes nothing.
        let _ = h.host.dma_faults(EDU_BDF);
        let before = pread(&mem, 0, (4 * PAGE) as usize);
        edu_dma(&mut c, EDU_DMA_START, UNMAPPED, 1024, true);
        assert_eq!(pread(&mem, 0, (4 * PAGE) as usize), before);
        let faults = h.host.dma_faults(EDU_BDF);
        assert!(
            faults
                .iter()
                .any(|f| f.iova == Iova::new(UNMAPPED) && f.access.contains(Access::WRITE)),
            "{faults:?}"
        );

        // Unmap, and the same DMA faults too.
        c.dma_unmap(UnmapTarget::Range(range(IOVA, 2 * PAGE)))
            .expect("DMA_UNMAP");
        pwrite(&mem, PAGE + 2048, &[0; 1024]);
        edu_dma(&mut c, EDU_DMA_START, IOVA + 2048, 1024, true);
        assert_eq!(pread(&mem, PAGE + 2048, 1024), vec![0; 1024]);
        assert!(!h.host.dma_faults(EDU_BDF).is_empty());
        assert_eq!(h.state().pinned_pages, baseline.pinned_pages);
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn dma_unmap_needs_an_exact_match_and_unmap_all_drops_everything() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let mut c = h.client();
        let mem = memfd(8 * PAGE);
        for i in 0..4 {
            c.dma_map(&map(IOVA + i * 2 * PAGE, PAGE, i * PAGE), Some(mem.as_fd()))
                .expect("DMA_MAP");
        }
        // "A command to map over an existing region must be failed by the server with EEXIST".
        for over in [
            map(IOVA, 2 * PAGE, 0),
            map(IOVA + PAGE, 2 * PAGE, 0),
            map(IOVA - PAGE, 16 * PAGE, 0),
        ] {
            let e = c.dma_map(&over, Some(mem.as_fd())).expect_err("overlap");
            assert_eq!(e.errno(), Some(rustix::io::Errno::EXIST));
        }
        // The gap between two regions is free.
        c.dma_map(&map(IOVA + PAGE, PAGE, 0), Some(mem.as_fd()))
            .expect("a map in a gap");
        c.dma_unmap(UnmapTarget::Range(range(IOVA + PAGE, PAGE)))
            .expect("its unmap");
        for partial in [range(IOVA, 2 * PAGE), range(IOVA + PAGE, PAGE)] {
            let e = c
                .dma_unmap(UnmapTarget::Range(partial))
                .expect_err("not a mapped region");
            assert_eq!(e.errno(), Some(rustix::io::Errno::NOENT));
        }
        c.dma_unmap(UnmapTarget::Range(range(IOVA, PAGE)))
            .expect("exact unmap");
        c.dma_unmap(UnmapTarget::All).expect("VFIO_DMA_UNMAP_FLAG_ALL");
        assert_eq!(h.state().pinned_pages, baseline.pinned_pages);
        // Everything is gone: the first region can be mapped again.
        c.dma_map(&map(IOVA, PAGE, 0), Some(mem.as_fd()))
            .expect("map again");
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn intx_interrupt_through_an_eventfd() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    {
        let mut c = edu(&h);
        let ev = eventfd();
        let set = SetIrqs {
            action: VFIO_IRQ_SET_ACTION_TRIGGER,
            index: VFIO_PCI_INTX_IRQ_INDEX,
            start: 0,
            count: 1,
            data: IrqData::Eventfds { assign: true },
        };
        c.set_irqs(&set, &[ev.as_fd()]).expect("SET_IRQS with an eventfd");
        c.write32(BAR0, reg::IRQ_RAISE, 1).expect("raise");
        assert!(wait_event(&ev).is_some(), "no INTx");
        assert_eq!(c.read32(BAR0, reg::IRQ_STATUS).expect("irq status"), 1);
        c.write32(BAR0, reg::IRQ_ACK, 1).expect("ack");
        // De-assigned (no descriptors): the eventfd is released by the host.
        let off = SetIrqs {
            data: IrqData::Eventfds { assign: false },
            ..set
        };
        c.set_irqs(&off, &[]).expect("SET_IRQS without eventfds");
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn msi_interrupt_through_an_eventfd() {
    let _g = serial();
    let h = Harness::embedded();
    let mut c = edu(&h);
    let ev = eventfd();
    let set = SetIrqs {
        action: VFIO_IRQ_SET_ACTION_TRIGGER,
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 1,
        data: IrqData::Eventfds { assign: true },
    };
    c.set_irqs(&set, &[ev.as_fd()]).expect("SET_IRQS MSI");
    c.write32(BAR0, reg::IRQ_RAISE, 2).expect("raise");
    assert!(wait_event(&ev).is_some(), "no MSI");
    c.write32(BAR0, reg::IRQ_ACK, 2).expect("ack");
    // DATA_NONE | TRIGGER with count 0 disables the index.
    let off = SetIrqs {
        count: 0,
        data: IrqData::None,
        ..set
    };
    c.set_irqs(&off, &[]).expect("disable MSI");
}

#[test]
fn device_reset() {
    let _g = serial();
    let h = Harness::embedded();
    let mut c = edu(&h);
    write64(&mut c, reg::DMA_SRC, 0x1234_5000);
    c.write32(BAR0, reg::LIVENESS, 7).expect("liveness");
    c.reset().expect("DEVICE_RESET");
    // The function reset cleared the command register too: BAR access is off again.
    let cmd = c.region_read(CONFIG, PCI_COMMAND, 2).expect("command register");
    assert_eq!(
        u16::from_ne_bytes([cmd[0], cmd[1]]) & (COMMAND_MEMORY | COMMAND_MASTER),
        0
    );
    let e = c.read32(BAR0, reg::ID).expect_err("memory decode is off");
    assert_eq!(e.errno(), Some(rustix::io::Errno::IO));
    enable_bus_master(&mut c);
    assert_eq!(c.read32(BAR0, reg::DMA_SRC).expect("DMA_SRC"), 0);
    assert_eq!(c.read32(BAR0, reg::LIVENESS).expect("liveness"), 0);
    assert_eq!(c.read32(BAR0, reg::ID).expect("id"), EDU_ID);
}

#[test]
fn next_client_is_served_after_a_disconnect_and_the_host_is_back_at_baseline() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let fds_before = fds();
    for round in 0..3 {
        let mut c = edu(&h);
        let mem = memfd(2 * PAGE);
        c.dma_map(&map(IOVA, 2 * PAGE, 0), Some(mem.as_fd()))
            .expect("DMA_MAP");
        let ev = eventfd();
        let set = SetIrqs {
            action: VFIO_IRQ_SET_ACTION_TRIGGER,
            index: VFIO_PCI_INTX_IRQ_INDEX,
            start: 0,
            count: 1,
            data: IrqData::Eventfds { assign: true },
        };
        c.set_irqs(&set, &[ev.as_fd()]).expect("SET_IRQS");
        assert_ne!(h.state(), baseline, "round {round}: the client holds something");
        assert_eq!(c.read32(BAR0, reg::ID).expect("id"), EDU_ID);
        // The client goes without unmapping or releasing anything.
        drop(c);
        drop((mem, ev));
        h.settle(baseline, &fds_before);
    }
    h.shutdown().expect("the serve loop ends cleanly when stopped");
}

#[test]
fn no_reply_commands_are_processed_in_order() {
    let _g = serial();
    let h = Harness::embedded();
    let mut c = edu(&h);
    let a = RegionAccess {
        region: BAR0,
        offset: reg::LIVENESS,
        count: 4,
    };
    c.send(
        Command::RegionWrite,
        &a.encode_with(&5u32.to_ne_bytes()),
        &[],
        true,
    )
    .expect("a write without reply");
    // The next reply is the read's: the write was processed first and not answered.
    assert_eq!(c.read32(BAR0, reg::LIVENESS).expect("read"), !5);
    let _ = qemu_caps();
}

#[test]
fn stop_ends_a_session_in_progress_and_cleans_it_up() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    let host = std::sync::Arc::clone(&h.host);
    let mut c = h.client();
    let mem = memfd(2 * PAGE);
    c.dma_map(&map(IOVA, 2 * PAGE, 0), Some(mem.as_fd()))
        .expect("DMA_MAP");
    assert_ne!(h.state(), baseline);
    h.shutdown().expect("serve returns Ok when stopped");
    assert!(matches!(
        c.recv(),
        Err(uvfio_vfio_user::ClientError::Transport(
            uvfio_vfio_user::transport::TransportError::Closed
        ))
    ));
    // The stopped server is dropped with its thread: its own files (the iommufd and the device
    // cdev it held for its life) are closed too.
    assert_eq!(
        common::host_state(&host),
        common::HostState {
            open_files: 0,
            ..baseline
        }
    );
}

/// Waits for the edu's factorial to finish; its result.
fn factorial(c: &mut Client) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.read32(BAR0, reg::STATUS).expect("status") & STATUS_COMPUTING != 0 {
        assert!(Instant::now() < deadline, "the factorial did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    c.read32(BAR0, reg::FACTORIAL).expect("factorial")
}

/// Whether `fd` (a non-blocking eventfd) was signalled: its counter, without waiting.
fn poll_event(fd: &std::os::fd::OwnedFd) -> Option<u64> {
    let mut buf = [0u8; 8];
    match rustix::io::read(fd, &mut buf) {
        Ok(8) => Some(u64::from_ne_bytes(buf)),
        _ => None,
    }
}

#[test]
fn device_state_is_retained_across_clients_but_dma_maps_and_eventfds_are_not() {
    let _g = serial();
    let h = Harness::embedded();
    let baseline = h.state();
    // The server holds the device for its life: the iommufd and the device cdev.
    assert_eq!(baseline.open_files, 2);
    let mem1 = memfd(2 * PAGE);
    let ev1 = eventfd();
    let fds_before = fds();
    let intx = |assign| SetIrqs {
        action: VFIO_IRQ_SET_ACTION_TRIGGER,
        index: VFIO_PCI_INTX_IRQ_INDEX,
        start: 0,
        count: 1,
        data: IrqData::Eventfds { assign },
    };
    let pattern: Vec<u8> = (0..=255u8).rev().cycle().take(512).collect();
    {
        let mut c1 = edu(&h);
        c1.write32(BAR0, reg::LIVENESS, 0x1357_9bdf)
            .expect("liveness write");
        c1.write32(BAR0, reg::FACTORIAL, 6).expect("factorial write");
        assert_eq!(factorial(&mut c1), 720);
        // DMA through client 1's map works, and leaves the pattern in the edu's buffer.
        pwrite(&mem1, 0, &pattern);
        c1.dma_map(&map(IOVA, 2 * PAGE, 0), Some(mem1.as_fd()))
            .expect("DMA_MAP");
        edu_dma(&mut c1, IOVA, EDU_DMA_START, 512, false);
        edu_dma(&mut c1, EDU_DMA_START, IOVA + PAGE, 512, true);
        assert_eq!(pread(&mem1, PAGE, 512), pattern);
        // Client 1's eventfd gets INTx.
        c1.set_irqs(&intx(true), &[ev1.as_fd()]).expect("SET_IRQS");
        c1.write32(BAR0, reg::IRQ_RAISE, 1).expect("raise");
        assert!(wait_event(&ev1).is_some(), "no INTx for client 1");
        c1.write32(BAR0, reg::IRQ_ACK, 1).expect("ack");
        // Client 1 goes without unmapping or releasing anything.
    }
    h.settle(baseline, &fds_before);
    pwrite(&mem1, 0, &[0; 2 * PAGE as usize]);

    // Client 2 does not touch the command register: memory decode and bus mastering are still on.
    let mut c2 = h.client();
    let cmd = c2.region_read(CONFIG, PCI_COMMAND, 2).expect("command register");
    assert_eq!(
        u16::from_ne_bytes([cmd[0], cmd[1]]) & (COMMAND_MEMORY | COMMAND_MASTER),
        COMMAND_MEMORY | COMMAND_MASTER
    );
    assert_eq!(
        c2.read32(BAR0, reg::LIVENESS).expect("liveness read"),
        !0x1357_9bdf
    );
    assert_eq!(c2.read32(BAR0, reg::FACTORIAL).expect("factorial"), 720);
    assert_eq!(
        c2.read32(BAR0, reg::DMA_SRC).expect("DMA_SRC") as u64,
        EDU_DMA_START
    );

    // Client 1's mapping is gone: a DMA to its IOVA faults and writes nothing to its memfd.
    let _ = h.host.dma_faults(EDU_BDF);
    edu_dma(&mut c2, EDU_DMA_START, IOVA + PAGE, 512, true);
    assert_eq!(pread(&mem1, 0, 2 * PAGE as usize), vec![0; 2 * PAGE as usize]);
    let faults = h.host.dma_faults(EDU_BDF);
    assert!(
        faults
            .iter()
            .any(|f| f.iova == Iova::new(IOVA + PAGE) && f.access.contains(Access::WRITE)),
        "{faults:?}"
    );
    // The edu's own buffer kept what client 1 loaded into it: client 2 reads it through its map.
    let mem2 = memfd(PAGE);
    c2.dma_map(&map(IOVA, PAGE, 0), Some(mem2.as_fd()))
        .expect("client 2's DMA_MAP at the same IOVA");
    edu_dma(&mut c2, EDU_DMA_START, IOVA, 512, true);
    assert_eq!(pread(&mem2, 0, 512), pattern);

    // Client 1's eventfd no longer fires; client 2's does.
    c2.write32(BAR0, reg::IRQ_RAISE, 1).expect("raise");
    c2.write32(BAR0, reg::IRQ_ACK, 1).expect("ack");
    let ev2 = eventfd();
    c2.set_irqs(&intx(true), &[ev2.as_fd()])
        .expect("client 2's SET_IRQS");
    c2.write32(BAR0, reg::IRQ_RAISE, 1).expect("raise");
    assert!(wait_event(&ev2).is_some(), "no INTx for client 2");
    c2.write32(BAR0, reg::IRQ_ACK, 1).expect("ack");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(poll_event(&ev1), None, "client 1's eventfd fired");

    // DEVICE_RESET from a client still resets.
    c2.reset().expect("DEVICE_RESET");
    enable_bus_master(&mut c2);
    assert_eq!(c2.read32(BAR0, reg::LIVENESS).expect("liveness"), 0);
    drop(c2);
    drop((mem2, ev2));
    h.settle(baseline, &fds_before);
    // Client 3 sees the reset state.
    let mut c3 = edu(&h);
    assert_eq!(c3.read32(BAR0, reg::LIVENESS).expect("liveness"), 0);
    assert_eq!(c3.read32(BAR0, reg::FACTORIAL).expect("factorial"), 0);
}

#[test]
fn a_reply_that_never_comes_is_a_timeout_after_the_clients_timeout() {
    // Serial like the others: its descriptors must not show up in another test's fd baseline.
    let _g = serial();
    // No server: the other end of the pair reads nothing and answers nothing.
    let (ours, _silent) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    let mut c = Client::new(ours);
    let timeout = Duration::from_millis(40);
    c.set_timeout(timeout);
    let start = Instant::now();
    let got = c.call(Command::DeviceGetInfo, &[0u8; 16], &[]);
    assert!(
        matches!(got, Err(uvfio_vfio_user::ClientError::Timeout(t)) if t == timeout),
        "{got:?}"
    );
    assert!(start.elapsed() >= timeout, "gave up before its timeout");
}
