//! Shared rig of the container tests: an iommufd context (object table, host memory, one IOMMU,
//! the user and mm accounts, the `vfio_ioas` slot) implementing `CompatContext`, groups of bound
//! devices implementing `ContainerGroup`, driver buffers the test owns, raw ioctl helpers, and the
//! end-of-test leak check.
#![allow(dead_code)]

use parking_lot::Mutex;
use rustix::io::Errno;
use std::collections::HashMap;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_CHECK_EXTENSION, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_IOMMU_GET_INFO,
    VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_SET_IOMMU, VfioIommuType1DmaMap, VfioIommuType1DmaUnmap,
};
use uvfio_iommu::{DomainConfig, Iommu, OwnerError, OwnerId};
use uvfio_iommufd::ctx::{BadFd, UserFault, UserMemory};
use uvfio_iommufd::device::{Device, DeviceError, GroupId, Groups};
use uvfio_iommufd::fail::FailPoints;
use uvfio_iommufd::hwpt::{HwptObject, HwptPaging};
use uvfio_iommufd::ioas::IoPageTable;
use uvfio_iommufd::object::{ObjectError, ObjectId, ObjectTable, ObjectType, TableObject};
use uvfio_iommufd::pages::Account;
use uvfio_iommufd::uapi::UserPtr;
use uvfio_memory::{HostMemory, MemoryConfig, UserBuffer};
use uvfio_types::{HostVa, IovaRange};
use uvfio_vfio::container::{
    BoundDevice, CompatContext, Container, ContainerConfig, ContainerGroup, GroupKind,
};
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::{FromBytes, IntoBytes};

pub const PAGE: u64 = 4096;
pub const RW: u32 = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
/// The selftest's `MOCK_APERTURE_START`: where the tests put their mappings.
pub const IOVA: u64 = 1 << 24;

/// A page-aligned heap buffer that outlives everything adopted from it in a test (declare it
/// before the rig, so it drops after).
pub struct Buffer {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Buffer {
    /// `pages` pages aligned to `align` bytes, each byte `fill`.
    pub fn aligned(pages: usize, align: usize, fill: u8) -> Self {
        let layout = std::alloc::Layout::from_size_align(pages * PAGE as usize, align).unwrap();
        // SAFETY: the size is not zero.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        let buf = Buffer { ptr, layout };
        for at in 0..buf.len() {
            buf.set(at, fill);
        }
        buf
    }

    /// `pages` pages, each byte `fill`.
    pub fn new(pages: usize, fill: u8) -> Self {
        Self::aligned(pages, PAGE as usize, fill)
    }

    /// Its address, as a driver passes it in `vaddr`.
    pub fn va(&self) -> u64 {
        self.ptr as u64
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// The byte at `at`.
    pub fn byte(&self, at: usize) -> u8 {
        assert!(at < self.len());
        let p = self.ptr.wrapping_add(at);
        // SAFETY: `at` is inside the allocation; volatile since devices write it.
        unsafe { p.read_volatile() }
    }

    /// Sets the byte at `at`.
    pub fn set(&self, at: usize, v: u8) {
        assert!(at < self.len());
        let p = self.ptr.wrapping_add(at);
        // SAFETY: as for `byte`.
        unsafe { p.write_volatile(v) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `aligned` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// The driver's side of `UserMemory`: the container only asks it for the buffers it maps.
pub struct TestUser;

impl UserMemory for TestUser {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<(), UserFault> {
        Err(UserFault {
            ptr: ptr.0,
            len: buf.len(),
        })
    }

    fn write(&self, ptr: UserPtr, buf: &[u8]) -> Result<(), UserFault> {
        Err(UserFault {
            ptr: ptr.0,
            len: buf.len(),
        })
    }

    fn file(&self, fd: i32) -> Result<std::os::fd::OwnedFd, BadFd> {
        Err(BadFd(fd))
    }

    fn buffer(&self, va: HostVa, len: u64) -> UserBuffer {
        // SAFETY: the tests map only `Buffer`s declared before their rig, which outlive every
        // segment adopted from them (the leak check at the end sees none left); the few bogus
        // addresses the errno tables pass lie in the never-mapped first pages of the address
        // space, so pinning them fails before anything is adopted.
        unsafe { UserBuffer::new(va, len) }
    }
}

/// The test's object type: what an iommufd context's object enum holds, cut down.
#[derive(Debug, Clone)]
pub enum Obj {
    Ioas(Arc<IoPageTable>),
    Hwpt(Arc<HwptPaging>),
}

impl TableObject for Obj {
    fn object_type(&self) -> ObjectType {
        match self {
            Obj::Ioas(_) => ObjectType::Ioas,
            Obj::Hwpt(_) => ObjectType::HwptPaging,
        }
    }
}

impl HwptObject for Obj {
    fn as_hwpt_paging(&self) -> Option<&Arc<HwptPaging>> {
        match self {
            Obj::Hwpt(h) => Some(h),
            Obj::Ioas(_) => None,
        }
    }

    fn as_ioas(&self) -> Option<&Arc<IoPageTable>> {
        match self {
            Obj::Ioas(i) => Some(i),
            Obj::Hwpt(_) => None,
        }
    }

    fn from_hwpt_paging(hwpt: Arc<HwptPaging>) -> Self {
        Obj::Hwpt(hwpt)
    }
}

/// One iommufd context opened as `/dev/vfio/vfio`.
pub struct Ctx {
    pub mem: Arc<HostMemory>,
    pub fail: Arc<FailPoints>,
    pub iommu: Arc<Iommu>,
    pub groups: Groups,
    pub table: ObjectTable<Obj>,
    /// The user's `RLIMIT_MEMLOCK` account: the legacy interface must not charge it.
    pub user_account: Arc<Account>,
    /// `mm->locked_vm`: what the compat IOAS charges.
    pub mm_account: Arc<Account>,
    vfio_ioas: Mutex<Option<ObjectId>>,
    /// The devices the tests bound with [`Ctx::device`], by (group, rid): the container's bind
    /// hands these out, so a test sees the very device a group's attach attached.
    made: Mutex<HashMap<(u32, u16), Arc<Device>>>,
}

impl CompatContext for Ctx {
    type Object = Obj;

    fn objects(&self) -> &ObjectTable<Obj> {
        &self.table
    }

    fn alloc_ioas(&self) -> Result<ObjectId, ObjectError> {
        let ioas = IoPageTable::new(
            Arc::clone(&self.mem),
            Arc::clone(&self.mm_account),
            Arc::clone(&self.fail),
        );
        let res = self.table.reserve(ObjectType::Ioas)?;
        let id = res.id();
        res.finalize(Obj::Ioas(Arc::new(ioas)));
        Ok(id)
    }

    fn vfio_ioas(&self) -> Option<ObjectId> {
        *self.vfio_ioas.lock()
    }

    fn set_vfio_ioas(&self, id: Option<ObjectId>) {
        *self.vfio_ioas.lock() = id;
    }

    fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    fn owner(&self) -> OwnerId {
        self.groups.owner()
    }

    /// The device the test made for (group, rid), or a new one. This rig publishes no device
    /// objects.
    fn bind_device(&self, group: GroupId, rid: u16) -> Result<BoundDevice, DeviceError> {
        let made = self.made.lock().get(&(group.0, rid)).cloned();
        let device = match made {
            Some(d) => d,
            None => Arc::new(Device::bind(
                &self.groups,
                &self.iommu,
                group,
                rid,
                DomainConfig::default(),
            )?),
        };
        Ok(BoundDevice { device, object: None })
    }

    /// The rig's devices are bound when a test makes them, before their group joins, so they
    /// hold the group's DMA for this context already: the group claim is taken as a device
    /// claim of the same owner here (Linux's group claim would need the group unowned).
    fn claim_group(&self, group: GroupId) -> Result<(), OwnerError> {
        self.iommu.owners().claim_device(group.0, self.groups.owner())
    }
}

impl Ctx {
    pub fn new() -> Arc<Self> {
        let mem = Arc::new(
            HostMemory::new(MemoryConfig {
                ram_bytes: 64 << 20,
                ..MemoryConfig::default()
            })
            .unwrap(),
        );
        let fail = Arc::new(FailPoints::default());
        Arc::new(Ctx {
            iommu: Arc::new(Iommu::new(Arc::clone(&mem))),
            groups: Groups::new(Arc::clone(&fail)),
            table: ObjectTable::new(Arc::clone(&fail)),
            user_account: Arc::new(Account::new(None)),
            mm_account: Arc::new(Account::new(None)),
            vfio_ioas: Mutex::new(None),
            made: Mutex::new(HashMap::new()),
            fail,
            mem,
        })
    }

    /// `IOMMU_IOAS_ALLOC` on the context (an IOAS the user makes and may hand to the compat layer).
    pub fn user_ioas(&self) -> (ObjectId, Arc<IoPageTable>) {
        let id = self.alloc_ioas().unwrap();
        let ioas = self
            .table
            .get(id.raw(), None)
            .unwrap()
            .as_ioas()
            .cloned()
            .unwrap();
        (id, ioas)
    }

    /// The compat IOAS's page table.
    pub fn compat_ioas(&self) -> Arc<IoPageTable> {
        let id = self.vfio_ioas().expect("a compat IOAS");
        self.table
            .get(id.raw(), Some(ObjectType::Ioas))
            .unwrap()
            .as_ioas()
            .cloned()
            .unwrap()
    }

    /// A device in IOMMU group `group`, bound to this context.
    pub fn device(&self, group: u32, rid: u16, config: DomainConfig) -> Arc<Device> {
        let device = Arc::new(Device::bind(&self.groups, &self.iommu, GroupId(group), rid, config).unwrap());
        self.made.lock().insert((group, rid), Arc::clone(&device));
        device
    }
}

/// An IOMMU group as the host hands it to `VFIO_GROUP_SET_CONTAINER`.
#[derive(Debug)]
pub struct TestGroup {
    pub id: GroupId,
    pub kind: GroupKind,
    pub devices: Vec<Arc<Device>>,
}

impl ContainerGroup for TestGroup {
    fn id(&self) -> GroupId {
        self.id
    }

    fn kind(&self) -> GroupKind {
        self.kind
    }

    fn device_rids(&self) -> Vec<u16> {
        self.devices.iter().map(|d| d.rid()).collect()
    }
}

/// A real IOMMU group `id` with `devices` devices (requester ids `id * 8 + n`).
pub fn group(ctx: &Ctx, id: u32, devices: u16) -> Arc<TestGroup> {
    let rid = |n: u16| u16::try_from(id).unwrap() * 8 + n;
    Arc::new(TestGroup {
        id: GroupId(id),
        kind: GroupKind::Iommu,
        devices: (0..devices)
            .map(|n| ctx.device(id, rid(n), DomainConfig::default()))
            .collect(),
    })
}

/// A `noiommu-N` group (no devices: nothing of theirs attaches anywhere).
pub fn noiommu_group(id: u32) -> Arc<TestGroup> {
    Arc::new(TestGroup {
        id: GroupId(id),
        kind: GroupKind::NoIommu,
        devices: Vec::new(),
    })
}

pub type Cont = Container<Ctx>;

pub fn container(ctx: &Arc<Ctx>, config: ContainerConfig) -> Cont {
    Container::new(Arc::clone(ctx), config)
}

/// `ioctl(fd, request, arg)` with a number argument.
pub fn ioctl_value(c: &Cont, request: u32, value: u64) -> Result<u32, Errno> {
    c.ioctl(request, IoctlArg::Value(value), &TestUser)
        .map_err(|e| e.errno())
}

/// `ioctl(fd, request, buf)`.
pub fn ioctl_buf(c: &Cont, request: u32, buf: &mut [u8]) -> Result<u32, Errno> {
    c.ioctl(request, IoctlArg::Buffer(buf), &TestUser)
        .map_err(|e| e.errno())
}

pub fn check_extension(c: &Cont, ext: u64) -> u32 {
    ioctl_value(c, VFIO_CHECK_EXTENSION, ext).unwrap()
}

pub fn set_iommu(c: &Cont, ty: u32) -> Result<(), Errno> {
    ioctl_value(c, VFIO_SET_IOMMU, u64::from(ty)).map(|_| ())
}

pub fn map_flags(c: &Cont, flags: u32, vaddr: u64, iova: u64, size: u64) -> Result<(), Errno> {
    let mut cmd = VfioIommuType1DmaMap {
        argsz: size_of::<VfioIommuType1DmaMap>() as u32,
        flags,
        vaddr,
        iova,
        size,
    };
    ioctl_buf(c, VFIO_IOMMU_MAP_DMA, cmd.as_mut_bytes()).map(|_| ())
}

pub fn map(c: &Cont, vaddr: u64, iova: u64, size: u64) -> Result<(), Errno> {
    map_flags(c, RW, vaddr, iova, size)
}

/// `VFIO_IOMMU_UNMAP_DMA`: the result and the struct as the kernel left it.
pub fn unmap_raw(c: &Cont, flags: u32, iova: u64, size: u64) -> (Result<(), Errno>, VfioIommuType1DmaUnmap) {
    let mut cmd = VfioIommuType1DmaUnmap {
        argsz: size_of::<VfioIommuType1DmaUnmap>() as u32,
        flags,
        iova,
        size,
    };
    let r = ioctl_buf(c, VFIO_IOMMU_UNMAP_DMA, cmd.as_mut_bytes()).map(|_| ());
    (r, cmd)
}

/// `VFIO_IOMMU_UNMAP_DMA` without flags: the bytes unmapped.
pub fn unmap(c: &Cont, iova: u64, size: u64) -> Result<u64, Errno> {
    let (r, cmd) = unmap_raw(c, 0, iova, size);
    r.map(|()| cmd.size)
}

/// `VFIO_IOMMU_GET_INFO` into a 4 KiB buffer filled with 0xAA past `argsz` (the selftest's
/// `ioctl_check_buf`): the result and the buffer.
pub fn get_info(c: &Cont, argsz: u32) -> (Result<u32, Errno>, Vec<u8>) {
    let mut buf = vec![0xAAu8; 4096];
    buf[..4].copy_from_slice(&argsz.to_ne_bytes());
    buf[4..(argsz as usize).clamp(4, 24)].fill(0);
    let r = ioctl_buf(c, VFIO_IOMMU_GET_INFO, &mut buf);
    (r, buf)
}

/// The `avail` of the `DMA_AVAIL` capability (the first of the compat chain, at offset 24).
pub fn dma_avail(c: &Cont) -> u32 {
    let (r, buf) = get_info(c, 256);
    r.unwrap();
    assert_eq!(
        u16::read_from_bytes(&buf[24..26]).unwrap(),
        uvfio_abi::vfio::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
        "DMA_AVAIL first"
    );
    u32::read_from_bytes(&buf[32..36]).unwrap()
}

/// The mappings of the compat IOAS.
pub fn areas(ctx: &Ctx) -> Vec<IovaRange> {
    ctx.compat_ioas().areas().into_iter().map(|(r, _)| r).collect()
}

pub fn range(start: u64, len: u64) -> IovaRange {
    IovaRange::from_start_len(uvfio_types::Iova::new(start), len).unwrap()
}

/// After every test: the container gone, the context closed, and nothing left — no object, no
/// reservation, no pin, nothing charged to either account, no adopted segment.
pub fn closed_clean(ctx: Arc<Ctx>, c: Cont) {
    drop(c);
    assert!(ctx.table.destroy_all().is_empty(), "objects left after close");
    assert!(ctx.table.is_empty());
    assert!(ctx.table.reserved().is_empty());
    assert_eq!(ctx.mm_account.locked_pages(), 0, "mm account");
    assert_eq!(ctx.user_account.locked_pages(), 0, "user account");
    assert_eq!(ctx.mem.account().locked_pages, 0, "host pins");
    assert_eq!(ctx.mem.stats().adopted_segments, 0, "adopted segments");
}
