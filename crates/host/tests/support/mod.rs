//! Helpers shared by the host's file tests: a host on the default topology, a page-aligned heap
//! buffer, the iommufd calls most tests start with, and the end-of-test baseline check.
#![allow(dead_code)]

use std::sync::Arc;
use uvfio_abi::iommufd::{IOMMU_IOAS_ALLOC, IommuIoasAlloc};
use uvfio_abi::selftest::{IOMMU_TEST_CMD, IOMMU_TEST_OP_MOCK_DOMAIN, IommuTestCmd, IommuTestMockDomain};
use uvfio_host::{Host, HostFd, Topology, TopologyConfig};
use uvfio_iommufd::ctx::{Accounts, Credentials};
use uvfio_memory::{HostMemory, MemoryConfig};
use zerocopy::{FromZeros, IntoBytes};

pub const PAGE: usize = 4096;
pub const IOVA: u64 = 1 << 24;

pub fn host() -> Host {
    let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
    let accounts = Accounts::unlimited();
    let topology = Topology::new(TopologyConfig::default()).unwrap();
    Host::new(mem, accounts, Credentials::default(), topology)
}

/// A heap buffer with `pages` page-aligned pages inside it; declared before the host so that it
/// outlives everything adopted from it.
pub struct Buffer {
    bytes: Vec<u8>,
    offset: usize,
}

impl Buffer {
    pub fn new(pages: usize, fill: u8) -> Self {
        let bytes = vec![fill; (pages + 1) * PAGE];
        let offset = (PAGE - bytes.as_ptr() as usize % PAGE) % PAGE;
        Buffer { bytes, offset }
    }

    pub fn va(&self) -> u64 {
        self.bytes[self.offset..].as_ptr() as u64
    }

    /// The byte at `at` of the aligned pages (read volatile: devices write them behind Rust's
    /// back).
    pub fn byte(&self, at: usize) -> u8 {
        let p: *const u8 = &self.bytes[self.offset + at];
        // SAFETY: `p` points into the live vector (the index was bounds-checked).
        unsafe { p.read_volatile() }
    }
}

pub fn ioas_alloc(host: &Host, fd: HostFd) -> u32 {
    let mut alloc = IommuIoasAlloc {
        size: size_of::<IommuIoasAlloc>() as u32,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(host.ioctl_buf(fd, IOMMU_IOAS_ALLOC, alloc.as_mut_bytes()), Ok(0));
    assert_ne!(alloc.out_ioas_id, 0);
    alloc.out_ioas_id
}

/// The selftest's `IOMMU_TEST_OP_MOCK_DOMAIN`: a mock device whose domain is attached to the IOAS,
/// so that mappings pin (an IOAS without a domain pins nothing, as in Linux).
pub fn mock_domain(host: &Host, fd: HostFd, ioas_id: u32) {
    let mut cmd = IommuTestCmd {
        size: size_of::<IommuTestCmd>() as u32,
        op: IOMMU_TEST_OP_MOCK_DOMAIN,
        id: ioas_id,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(host.ioctl_buf(fd, IOMMU_TEST_CMD, cmd.as_mut_bytes()), Ok(0));
    assert_ne!(cmd.member::<IommuTestMockDomain>().out_stdev_id, 0);
}

pub fn assert_baseline(host: &Host) {
    assert_eq!(host.open_files(), 0);
    assert_eq!(host.leaked_objects(), 0);
    assert_eq!(host.accounts().user.locked_pages(), 0);
    assert_eq!(host.accounts().mm.locked_pages(), 0);
    assert_eq!(host.memory().account().locked_pages, 0);
    assert_eq!(host.memory().stats().adopted_segments, 0);
}

/// `IOMMU_IOAS_MAP` of `pages` pages of `buf` at [`IOVA`], readable and writable.
pub fn ioas_map(host: &Host, fd: HostFd, ioas_id: u32, buf: &Buffer, pages: u64) {
    use uvfio_abi::iommufd::{
        IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE,
        IommuIoasMap,
    };
    let mut map = IommuIoasMap {
        size: size_of::<IommuIoasMap>() as u32,
        flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id,
        user_va: buf.va(),
        length: pages * PAGE as u64,
        iova: IOVA,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(host.ioctl_buf(fd, IOMMU_IOAS_MAP, map.as_mut_bytes()), Ok(0));
}

/// A host over `topology` started with `options`, with capabilities `creds` and a
/// locked-memory limit of `limit_pages` on both accounts.
pub fn host_with(
    topology: TopologyConfig,
    options: uvfio_host::HostOptions,
    creds: Credentials,
    limit_pages: Option<u64>,
) -> Host {
    use uvfio_iommufd::pages::Account;
    let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
    let accounts = Accounts {
        user: Arc::new(Account::new(limit_pages)),
        mm: Arc::new(Account::new(limit_pages)),
    };
    let topology = Topology::new(topology).unwrap();
    Host::with_options(mem, accounts, creds, topology, options).unwrap()
}
