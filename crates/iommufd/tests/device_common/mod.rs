//! Shared rig of the device tests: host memory, one IOMMU, an object table over a test object type
//! that implements [`HwptObject`] as the iommufd context's does, groups, and driver buffers.
#![allow(dead_code)]

use std::sync::Arc;
use uvfio_iommu::{DomainConfig, Iommu, Levels};
use uvfio_iommufd::device::{AttachTarget, Device, GroupId, Groups};
use uvfio_iommufd::fail::FailPoints;
use uvfio_iommufd::hwpt::{HwptObject, HwptPaging};
use uvfio_iommufd::ioas::IoPageTable;
use uvfio_iommufd::iova_space::Placement;
use uvfio_iommufd::object::{ObjectId, ObjectTable, ObjectType, TableObject};
use uvfio_iommufd::pages::Account;
use uvfio_memory::{HostMemory, MemoryConfig, UserBuffer};
use uvfio_types::{Access, HostVa, Iova, IovaRange};

/// A page-aligned heap buffer that outlives everything adopted from it in a test.
pub struct Buffer {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Buffer {
    /// `pages` zeroed pages, each filled with `fill`.
    pub fn new(pages: usize, fill: u8) -> Self {
        let layout = std::alloc::Layout::from_size_align(pages * 4096, 4096).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        let buf = Buffer { ptr, layout };
        for at in 0..pages * 4096 {
            buf.set(at, fill);
        }
        buf
    }

    /// The driver's promise for `len` bytes from `offset`.
    pub fn user(&self, offset: u64, len: u64) -> UserBuffer {
        let va = HostVa::from_ptr(self.ptr).checked_add(offset).unwrap();
        // SAFETY: freed only when `Buffer` drops, after every IOAS and domain that adopted it.
        unsafe { UserBuffer::new(va, len) }
    }

    /// The byte at `at`.
    pub fn byte(&self, at: usize) -> u8 {
        let p = self.ptr.wrapping_add(at);
        // SAFETY: `at` is inside the allocation; volatile since devices write it.
        unsafe { p.read_volatile() }
    }

    /// Sets the byte at `at`.
    pub fn set(&self, at: usize, v: u8) {
        let p = self.ptr.wrapping_add(at);
        // SAFETY: as for `byte`.
        unsafe { p.write_volatile(v) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// The test's object type: what the iommufd context's object enum holds, cut down.
#[derive(Debug, Clone)]
pub enum Obj {
    Ioas(Arc<IoPageTable>),
    Hwpt(Arc<HwptPaging>),
    Device(Arc<Device>),
}

impl TableObject for Obj {
    fn object_type(&self) -> ObjectType {
        match self {
            Obj::Ioas(_) => ObjectType::Ioas,
            Obj::Hwpt(_) => ObjectType::HwptPaging,
            Obj::Device(_) => ObjectType::Device,
        }
    }
}

impl HwptObject for Obj {
    fn as_hwpt_paging(&self) -> Option<&Arc<HwptPaging>> {
        match self {
            Obj::Hwpt(h) => Some(h),
            _ => None,
        }
    }

    fn as_ioas(&self) -> Option<&Arc<IoPageTable>> {
        match self {
            Obj::Ioas(i) => Some(i),
            _ => None,
        }
    }

    fn from_hwpt_paging(hwpt: Arc<HwptPaging>) -> Self {
        Obj::Hwpt(hwpt)
    }
}

/// One iommufd context on one host.
pub struct Rig {
    pub mem: Arc<HostMemory>,
    pub account: Arc<Account>,
    pub fail: Arc<FailPoints>,
    pub iommu: Arc<Iommu>,
    pub table: ObjectTable<Obj>,
    pub groups: Groups,
}

pub fn rig() -> Rig {
    let mem = Arc::new(
        HostMemory::new(MemoryConfig {
            ram_bytes: 64 << 20,
            ..MemoryConfig::default()
        })
        .unwrap(),
    );
    let fail = Arc::new(FailPoints::default());
    Rig {
        iommu: Arc::new(Iommu::new(Arc::clone(&mem))),
        account: Arc::new(Account::new(None)),
        table: ObjectTable::new(Arc::clone(&fail)),
        groups: Groups::new(Arc::clone(&fail)),
        fail,
        mem,
    }
}

pub const PAGE: u64 = 4096;

pub fn five_level() -> DomainConfig {
    DomainConfig {
        levels: Levels::Five,
        ..DomainConfig::default()
    }
}

impl Rig {
    /// `IOMMU_IOAS_ALLOC`.
    pub fn ioas(&self) -> (ObjectId, Arc<IoPageTable>) {
        let iopt = Arc::new(IoPageTable::new(
            Arc::clone(&self.mem),
            Arc::clone(&self.account),
            Arc::clone(&self.fail),
        ));
        let res = self.table.reserve(ObjectType::Ioas).unwrap();
        let id = res.id();
        res.finalize(Obj::Ioas(Arc::clone(&iopt)));
        (id, iopt)
    }

    /// Binds a device with the default (4-level) domain configuration.
    pub fn device(&self, group: u32, rid: u16) -> Device {
        Device::bind(
            &self.groups,
            &self.iommu,
            GroupId(group),
            rid,
            DomainConfig::default(),
        )
        .unwrap()
    }

    /// `IOMMU_HWPT_ALLOC` of a paging HWPT for `dev` over IOAS `ioas`, as the context's handler
    /// does it: reserve, take a use of the IOAS, build, publish.
    pub fn hwpt_alloc(&self, dev: &Device, ioas: ObjectId) -> ObjectId {
        let res = self.table.reserve(ObjectType::HwptPaging).unwrap();
        let (obj, ioas_use) = self.table.get_with_user(ioas.raw(), ObjectType::Ioas).unwrap();
        let iopt = Arc::clone(obj.as_ioas().unwrap());
        let hwpt = HwptPaging::new(res.id(), dev, iopt, ioas_use, false, &self.fail).unwrap();
        let id = res.id();
        res.finalize(Obj::Hwpt(hwpt));
        id
    }

    /// What `pt_id` names, as the attach handlers resolve it.
    pub fn target(&self, pt_id: ObjectId) -> AttachTarget {
        AttachTarget::lookup(&self.table, pt_id.raw()).unwrap()
    }

    pub fn attach(&self, dev: &Device, pt_id: ObjectId) -> ObjectId {
        dev.attach(&self.table, self.target(pt_id)).unwrap()
    }

    pub fn replace(&self, dev: &Device, pt_id: ObjectId) -> ObjectId {
        dev.replace(&self.table, self.target(pt_id)).unwrap()
    }

    /// The HWPT objects in the table.
    pub fn hwpts(&self) -> Vec<ObjectId> {
        self.table
            .snapshot()
            .into_iter()
            .filter(|&(_, ty)| ty == ObjectType::HwptPaging)
            .map(|(id, _)| id)
            .collect()
    }

    pub fn users(&self, id: ObjectId) -> u32 {
        self.table.users(id.raw()).unwrap()
    }

    /// Maps `len` bytes of `buf` at `iova` into `iopt`.
    pub fn map(&self, iopt: &IoPageTable, buf: &Buffer, iova: Iova, len: u64) -> IovaRange {
        iopt.map(buf.user(0, len), Placement::Fixed(iova), Access::RW)
            .unwrap()
    }

    /// Everything back to baseline: no pins, no charge, no adopted segment, no domain.
    pub fn assert_baseline(&self) {
        assert_eq!(self.account.locked_pages(), 0, "pins charged to the context");
        assert_eq!(self.mem.account().locked_pages, 0, "host locked memory");
        assert_eq!(self.iommu.domain_count(), 0, "live paging domains");
    }
}
