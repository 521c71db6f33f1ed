//! A real peer: rust-vmm's `vfio_user` crate (0.1.7), whose `Client` is what cloud-hypervisor
//! uses, against uvfio's server. It negotiates, reads the device, region and IRQ info and config
//! space, maps a memfd for DMA, drives the edu device's BAR 0 (identification, a DMA into the
//! memfd), and leaves the host at its baseline when it disconnects.

mod common;

use common::{fds, host_state, memfd, pread, pwrite, serial};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uvfio_vfio_user::{Server, ServerOptions};

const BAR0: u32 = 0;
const CONFIG: u32 = 7;
const PAGE: u64 = 4096;
const IOVA: u64 = 0x10_0000;

fn read32(c: &mut vfio_user::Client, region: u32, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(region, offset, &mut b).expect("REGION_READ");
    u32::from_le_bytes(b)
}

fn write(c: &mut vfio_user::Client, region: u32, offset: u64, data: &[u8]) {
    c.region_write(region, offset, data).expect("REGION_WRITE");
}

#[test]
fn rust_vmm_client_drives_the_edu_device() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("uvfio-rust-vmm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("edu.sock");
    let _ = std::fs::remove_file(&path);
    let fds_before = fds();
    let listener = UnixListener::bind(&path).unwrap();
    let server = Server::embedded(ServerOptions::default()).unwrap();
    let host = Arc::clone(server.host());
    let baseline = host_state(&host);
    let stop = server.stop_handle();
    let thread = std::thread::spawn(move || server.serve(&listener));
    {
        let mut c = vfio_user::Client::new(&path).expect("negotiation and device info");
        // Regions as the client read them: BAR 0 of 1 MiB, 256 bytes of config space.
        assert_eq!(c.region(BAR0).expect("BAR 0").size, 1 << 20);
        assert_eq!(c.region(CONFIG).expect("config").size, 256);
        // (vfio_user 0.1.7 inverts the RESET flag: `resettable = flags & RESET != RESET`, so it
        // reports a device that can reset as one that cannot. Our reply sets the flag; the reset
        // below works.)
        assert!(!c.resettable());
        let irq = c.get_irq_info(0).expect("INTx info");
        assert_eq!(irq.count, 1);
        assert_eq!(c.get_irq_info(1).expect("MSI info").count, 1);
        // Config space: 1234:11e8; enable memory decode and bus mastering.
        assert_eq!(read32(&mut c, CONFIG, 0), 0x11e8_1234);
        write(&mut c, CONFIG, 4, &0x0006u16.to_le_bytes());
        assert_eq!(read32(&mut c, BAR0, 0), 0x0100_00ed);
        // DMA: map a memfd, have the edu copy 256 bytes from page 0 to page 1.
        let mem = memfd(2 * PAGE);
        let pattern: Vec<u8> = (0..=255u8).collect();
        pwrite(&mem, 0, &pattern);
        c.dma_map(0, IOVA, 2 * PAGE, mem.as_raw_fd()).expect("DMA_MAP");
        for (src, dst, cmd) in [(IOVA, 0x40000, 1u64), (0x40000, IOVA + PAGE, 3)] {
            write(&mut c, BAR0, 0x80, &src.to_le_bytes());
            write(&mut c, BAR0, 0x88, &dst.to_le_bytes());
            write(&mut c, BAR0, 0x90, &256u64.to_le_bytes());
            write(&mut c, BAR0, 0x98, &cmd.to_le_bytes());
            let deadline = Instant::now() + Duration::from_secs(5);
            while read32(&mut c, BAR0, 0x98) & 1 != 0 {
                assert!(Instant::now() < deadline, "DMA stuck");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(
            pread(&mem, PAGE, 256),
            pattern,
            "the device wrote the client's memory"
        );
        c.dma_unmap(IOVA, 2 * PAGE).expect("DMA_UNMAP");
        c.reset().expect("DEVICE_RESET");
        c.shutdown().expect("shutdown");
    }
    // The server notices the disconnect and puts everything back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while host_state(&host) != baseline {
        assert!(
            Instant::now() < deadline,
            "host not back at baseline: {:?}",
            host_state(&host)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.stop();
    thread.join().unwrap().unwrap();
    drop(stop);
    let left: Vec<_> = fds()
        .difference(&fds_before)
        .map(|n| (*n, std::fs::read_link(format!("/proc/self/fd/{n}"))))
        .collect();
    assert!(left.is_empty(), "descriptors left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
