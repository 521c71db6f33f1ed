//! The edu example driver, unchanged, against a remote device: uvfio's vfio-user server on a Unix
//! socket, driven through `VfioUserBackend`.

#[path = "../../../examples/edu_driver.rs"]
#[allow(dead_code)]
mod edu_driver;

use std::os::unix::net::UnixListener;
use std::sync::Arc;
use uvfio_driver::{Device, VfioUserBackend};
use uvfio_host::EDU_BDF;
use uvfio_types::{Access, Iova};
use uvfio_vfio_user::{Server, ServerOptions};

#[test]
fn the_example_driver_runs_unchanged_over_vfio_user() {
    let dir = std::env::temp_dir().join(format!("uvfio-driver-vu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("edu.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = Server::embedded(ServerOptions::default()).unwrap();
    let host = Arc::clone(server.host());
    let stop = server.stop_handle();
    let thread = std::thread::spawn(move || server.serve(&listener));
    for msi in [true, false] {
        let device = Device::new(Arc::new(VfioUserBackend::connect(&path).unwrap())).unwrap();
        let mut report = edu_driver::drive(&device, msi, true).unwrap();
        assert_eq!(report.id, 0x0100_00ed);
        assert!(report.alive);
        assert_eq!(report.factorial, 3_628_800);
        assert_eq!(report.interrupts, 4, "msi={msi}");
        assert_eq!(report.dma_verified, 1024);
        // The client cannot see the server's IOMMU, but the server's host recorded the fault and
        // the buffer was not written.
        assert_eq!(report.fault, None);
        assert!(report.fault_wrote_nothing);
        let faults = host.dma_faults(EDU_BDF);
        assert!(
            faults
                .iter()
                .any(|f| f.iova == Iova::new(0x0dea_d000) && f.access.contains(Access::WRITE)),
            "{faults:?}"
        );
        report.buffer.take().unwrap().free().unwrap();
    }
    stop.stop();
    thread.join().unwrap().unwrap();
    assert_eq!(host.open_files(), 0);
    assert_eq!(host.memory().account().locked_pages, 0);
    assert_eq!(host.memory().stats().adopted_segments, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
