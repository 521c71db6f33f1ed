//! Mappable regions: a device model whose regions are backed by a memfd, one of them with sparse
//! mmap areas. `VFIO_USER_DEVICE_GET_REGION_INFO` answers with `VFIO_REGION_INFO_FLAG_MMAP`, the
//! sparse-mmap capability and the backing file as `SCM_RIGHTS` ("When this flag is set, the reply
//! will include a file descriptor in its meta-data"), its `offset` the file offset of the region.

mod common;

use common::{CONFIG, Harness, PAGE, fds, memfd, pread, pwrite, serial};
use parking_lot::Mutex;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_REGION_INFO_FLAG_CAPS, VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE, VfioRegionInfo,
};
use uvfio_host::{EDU_BDF, Host, HostOptions, Topology, TopologyConfig};
use uvfio_iommufd::ctx::{Accounts, Credentials};
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_vfio::device::{
    IrqMode, IrqSink, ModelError, RegionDesc, RegionMap, RegionOffset, SparseArea, VfioDeviceModel,
};
use uvfio_vfio_user::ServerOptions;
use uvfio_vfio_user::proto::Command;
use uvfio_vfio_user::proto::device::{RegionCap, encode_query};
use uvfio_vfio_user::proto::version::Capabilities;
use zerocopy::FromBytes;

const RW_MMAP: u32 = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;

/// Region 0: 4 pages at file offset 0, mmap-able in pages 1 and 3 only. Region 2: 2 pages at file
/// offset 4 pages, mmap-able whole. Config space: 256 bytes of zeros.
struct MmapDevice {
    mem: OwnedFd,
    sink: Mutex<Option<Arc<dyn IrqSink>>>,
}

impl std::fmt::Debug for MmapDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmapDevice").field("mem", &self.mem).finish()
    }
}

impl MmapDevice {
    fn base(index: u32) -> Option<u64> {
        match index {
            0 => Some(0),
            2 => Some(4 * PAGE),
            _ => None,
        }
    }
}

impl VfioDeviceModel for MmapDevice {
    fn flags(&self) -> u32 {
        VFIO_DEVICE_FLAGS_PCI
    }

    fn num_regions(&self) -> u32 {
        9
    }

    fn region(&self, index: u32) -> Option<RegionDesc> {
        let area = |offset, size| SparseArea {
            offset: RegionOffset::new(offset),
            size,
        };
        Some(match index {
            0 => RegionDesc {
                size: 4 * PAGE,
                flags: RW_MMAP,
                sparse: vec![area(PAGE, PAGE), area(3 * PAGE, PAGE)],
                msix_mappable: false,
            },
            2 => RegionDesc {
                size: 2 * PAGE,
                flags: RW_MMAP,
                ..RegionDesc::default()
            },
            7 => RegionDesc {
                size: 256,
                flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                ..RegionDesc::default()
            },
            8 => return None,
            _ => RegionDesc::default(),
        })
    }

    fn read(&self, index: u32, offset: RegionOffset, buf: &mut [u8]) -> Result<(), ModelError> {
        match Self::base(index) {
            Some(base) => {
                let len = buf.len();
                rustix::io::pread(&self.mem, buf, base + offset.raw()).map_err(|_| ModelError::Access {
                    index,
                    offset,
                    len,
                    reason: "pread",
                })?;
            }
            None => buf.fill(0),
        }
        Ok(())
    }

    fn write(&self, index: u32, offset: RegionOffset, data: &[u8]) -> Result<(), ModelError> {
        if let Some(base) = Self::base(index) {
            rustix::io::pwrite(&self.mem, data, base + offset.raw()).map_err(|_| ModelError::Access {
                index,
                offset,
                len: data.len(),
                reason: "pwrite",
            })?;
        }
        Ok(())
    }

    fn mmap(&self, index: u32, offset: RegionOffset, len: u64) -> Result<RegionMap, ModelError> {
        let base = Self::base(index).ok_or(ModelError::NotMappable { index, offset, len })?;
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.mem, 0).map_err(|_| ModelError::NotMappable {
            index,
            offset,
            len,
        })?;
        Ok(RegionMap {
            fd,
            file_offset: base + offset.raw(),
            len,
        })
    }

    fn irq_count(&self, _index: u32) -> u32 {
        0
    }

    fn set_irq_sink(&self, sink: Arc<dyn IrqSink>) {
        *self.sink.lock() = Some(sink);
    }

    fn irq_mode(&self, _mode: IrqMode) {}

    fn reset(&self) -> Result<(), ModelError> {
        Ok(())
    }
}

fn host() -> Arc<Host> {
    let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).expect("host memory"));
    let creds = Credentials {
        sys_resource: true,
        sys_rawio: true,
        sys_admin: true,
    };
    let topology = Topology::new(TopologyConfig::default()).expect("the default topology");
    let model = Arc::new(MmapDevice {
        mem: memfd(8 * PAGE),
        sink: Mutex::new(None),
    });
    let host = Host::with_devices(
        mem,
        Accounts::unlimited(),
        creds,
        topology,
        HostOptions::default(),
        vec![(EDU_BDF, model as Arc<dyn VfioDeviceModel>)],
    )
    .expect("a host with the model");
    Arc::new(host)
}

fn options() -> ServerOptions {
    ServerOptions {
        log_level: Some(uvfio_vfio_user::Level::from_env()),
        ..ServerOptions::default()
    }
}

#[test]
fn sparse_mmap_region_comes_with_its_file() {
    let _g = serial();
    let h = Harness::on_host(host(), options());
    let baseline = h.state();
    let fds_before = fds();
    {
        let mut c = h.client();
        let (info, fd) = c.region_info(0).expect("region 0");
        assert_eq!(info.flags, RW_MMAP);
        assert_eq!(info.size, 4 * PAGE);
        assert_eq!(info.offset, 0, "region 0 starts at offset 0 of its file");
        assert_eq!(info.sparse_areas(), Some(&[(PAGE, PAGE), (3 * PAGE, PAGE)][..]));
        let fd = fd.expect("the region's file");
        // The file is the region: a write through the socket shows in it, and the other way round.
        c.region_write(0, PAGE + 8, b"through the socket")
            .expect("REGION_WRITE");
        assert_eq!(pread(&fd, info.offset + PAGE + 8, 18), b"through the socket");
        pwrite(&fd, info.offset + 3 * PAGE, b"through the file");
        assert_eq!(
            c.region_read(0, 3 * PAGE, 16).expect("REGION_READ"),
            b"through the file"
        );

        let (whole, fd2) = c.region_info(2).expect("region 2");
        assert_eq!(whole.offset, 4 * PAGE, "region 2 starts 4 pages into its file");
        assert!(whole.caps.is_empty());
        let fd2 = fd2.expect("region 2's file");
        c.region_write(2, PAGE, &[0xab; 4]).expect("write region 2");
        assert_eq!(pread(&fd2, whole.offset + PAGE, 4), [0xab; 4]);

        // A region without MMAP comes without a file.
        let (config, none) = c.region_info(CONFIG).expect("config");
        assert_eq!(config.flags & VFIO_REGION_INFO_FLAG_MMAP, 0);
        assert!(none.is_none());

        // argsz too small for the chain: the struct alone, argsz the size needed, no CAPS flag,
        // the file all the same.
        let q = encode_query(Command::DeviceGetRegionInfo, 32, 0);
        let reply = c
            .call(Command::DeviceGetRegionInfo, &q, &[])
            .expect("short argsz");
        assert_eq!(reply.payload.len(), 32);
        let (raw, _) = VfioRegionInfo::read_from_prefix(&reply.payload).expect("region info");
        assert_eq!(raw.argsz, 32 + 16 + 2 * 16);
        assert_eq!(raw.flags & VFIO_REGION_INFO_FLAG_CAPS, 0);
        assert_eq!(raw.flags & VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_MMAP);
        assert_eq!(reply.fds.len(), 1);
    }
    h.settle(baseline, &fds_before);
}

#[test]
fn a_client_that_takes_no_descriptors_gets_no_mmap() {
    let _g = serial();
    let h = Harness::on_host(host(), options());
    let mut c = h.connect();
    c.version(Capabilities {
        max_msg_fds: Some(0),
        ..Capabilities::default()
    })
    .expect("VFIO_USER_VERSION");
    let (info, fd) = c.region_info(0).expect("region 0");
    assert!(fd.is_none());
    assert_eq!(info.flags & VFIO_REGION_INFO_FLAG_MMAP, 0);
    assert!(
        !info
            .caps
            .iter()
            .any(|cap| matches!(cap, RegionCap::SparseMmap(_)))
    );
    // Still served by messages.
    c.region_write(0, 0, &[1, 2, 3]).expect("REGION_WRITE");
    assert_eq!(c.region_read(0, 0, 3).expect("REGION_READ"), [1, 2, 3]);
    let _ = c.socket().as_fd();
}
