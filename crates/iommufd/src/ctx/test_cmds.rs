//! `IOMMU_TEST_CMD`, the kernel's selftest hooks (Linux `drivers/iommu/iommufd/selftest.c`): mock
//! devices attached to an IOAS or HWPT, and checks of what the model did (which IOVA maps to which
//! of the caller's bytes, how often each page is pinned).

use super::{Iommufd, IommufdError, Object, UserMemory};
use crate::device::{AttachTarget, Device, GroupId};
use crate::object::{ObjectId, ObjectType, UserRef};
use crate::uapi::selftest::{TestCmd, TestReply};
use rustix::io::Errno;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use uvfio_iommu::DomainConfig;
use uvfio_types::{HostVa, Iova, PageSize};

const PAGE: u64 = PageSize::Size4K.bytes();

/// A mock device (`struct selftest_obj` with its `mock_dev`): bound to the context as a device
/// object, which it keeps in use, and attached to an IOAS or a HWPT.
#[derive(Debug)]
pub struct MockDevice {
    device: Arc<Device>,
    idev_id: ObjectId,
    idev_use: parking_lot::Mutex<Option<UserRef>>,
}

/// Mock devices get requester ids and IOMMU groups of their own.
fn next_mock() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Iommufd {
    /// `IOMMU_TEST_CMD`: one op.
    pub(super) fn test_cmd(
        &self,
        cmd: &TestCmd,
        arg: &mut [u8],
        user: &dyn UserMemory,
    ) -> Result<(), IommufdError> {
        let reply = match *cmd {
            TestCmd::MockDomain { pt_id, .. } => Some(self.mock_domain(pt_id)?),
            TestCmd::MockDomainReplace { stdev_id, pt_id } => {
                Some(self.mock_domain_replace(stdev_id, pt_id)?)
            }
            TestCmd::CheckMap {
                mockpt_id,
                iova,
                length,
                uptr,
            } => {
                self.check_map(cmd, mockpt_id, iova, length, uptr)?;
                None
            }
            TestCmd::CheckRefs { uptr, length, refs } => {
                self.check_refs(uptr, length, refs, user)?;
                None
            }
            TestCmd::SetTempMemoryLimit { limit } => {
                // uvfio pins without temporary page batches: the limit is recorded, and has no
                // effect beyond the check the decoder already made (at least 12 pages).
                self.temp_memory_limit.store(limit, Ordering::Relaxed);
                None
            }
            TestCmd::AddReserved { ioas_id, range } => {
                self.ioas(ioas_id)?.add_reserved(range)?;
                None
            }
            _ => match self.test_access_cmd(cmd, user) {
                Some(reply) => reply?,
                None => return Err(IommufdError::NotServed("this IOMMU_TEST_CMD op")),
            },
        };
        if let Some(reply) = reply {
            TestCmd::encode_reply(arg, reply)?;
        }
        Ok(())
    }

    /// `IOMMU_TEST_OP_MOCK_DOMAIN`: a new mock device, bound (a device object) and attached to
    /// `pt_id` (an IOAS gets an automatic HWPT). Everything is undone on failure.
    fn mock_domain(&self, pt_id: u32) -> Result<TestReply, IommufdError> {
        let stdev = self.objects.reserve(ObjectType::Selftest)?;
        let n = next_mock();
        let rid = (n & 0xffff) as u16;
        let device = Arc::new(Device::bind(
            &self.groups,
            &self.iommu,
            GroupId(n | 1 << 31),
            rid,
            DomainConfig::default(),
        )?);
        let idev = self.objects.reserve(ObjectType::Device)?;
        let idev_id = idev.id();
        idev.finalize(Object::Device(Arc::clone(&device)));
        let attached = self
            .objects
            .get_with_user(idev_id.raw(), ObjectType::Device)
            .map_err(IommufdError::from)
            .and_then(|(_, idev_use)| {
                let target = AttachTarget::lookup(&self.objects, pt_id)?;
                let hwpt_id = device.attach(&self.objects, target)?;
                Ok((idev_use, hwpt_id))
            });
        let (idev_use, hwpt_id) = match attached {
            Ok(v) => v,
            Err(e) => {
                drop(self.objects.destroy(idev_id.raw()));
                return Err(e);
            }
        };
        let stdev_id = stdev.id();
        stdev.finalize(Object::Selftest(Arc::new(MockDevice {
            device,
            idev_id,
            idev_use: parking_lot::Mutex::new(Some(idev_use)),
        })));
        Ok(TestReply::MockDomain {
            stdev_id,
            hwpt_id,
            idev_id,
        })
    }

    /// `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`: attach a mock device to another IOAS or HWPT.
    fn mock_domain_replace(&self, stdev_id: u32, pt_id: u32) -> Result<TestReply, IommufdError> {
        let Object::Selftest(mock) = self.objects.get(stdev_id, Some(ObjectType::Selftest))? else {
            return Err(crate::object::ObjectError::NotFound(stdev_id).into());
        };
        let target = AttachTarget::lookup(&self.objects, pt_id)?;
        let pt_id = mock.device.replace(&self.objects, target)?;
        Ok(TestReply::MockDomainReplace { pt_id })
    }

    /// Detaches and unbinds a destroyed selftest device (its device object goes too).
    pub(super) fn unbind_mock(&self, mock: &MockDevice) {
        mock.device.detach(&self.objects);
        drop(mock.idev_use.lock().take());
        drop(self.objects.destroy(mock.idev_id.raw()));
    }

    /// `IOMMU_TEST_OP_MD_CHECK_MAP`: every page of `iova..+length` of the HWPT's domain must map to
    /// the caller's bytes at `uptr` (`EINVAL` where one does not, `EFAULT` for an unreadable
    /// `uptr`).
    fn check_map(
        &self,
        cmd: &TestCmd,
        mockpt_id: u32,
        iova: Iova,
        length: u64,
        uptr: HostVa,
    ) -> Result<(), IommufdError> {
        let Object::HwptPaging(hwpt) = self.objects.get(mockpt_id, Some(ObjectType::HwptPaging))? else {
            return Err(crate::object::ObjectError::NotFound(mockpt_id).into());
        };
        cmd.check_map_alignment(PAGE)?;
        let mismatch = IommufdError::CheckFailed {
            what: "an IOVA does not map to the caller's page",
            errno: Errno::INVAL,
        };
        for i in 0..length / PAGE {
            let (Some(at), Some(va)) = (iova.checked_add(i * PAGE), uptr.checked_add(i * PAGE)) else {
                return Err(mismatch);
            };
            uvfio_memory::probe_user_range(va.align_down(PageSize::Size4K), PAGE, false).map_err(|_| {
                IommufdError::CheckFailed {
                    what: "uptr is not mapped",
                    errno: Errno::FAULT,
                }
            })?;
            let translated = hwpt.domain().lookup(at).and_then(|t| t.hpa(at));
            let host = translated.and_then(|hpa| self.mem.host_ptr(hpa, 1).ok());
            if host.map(|p| p.as_ptr().addr() as u64) != Some(va.raw()) {
                return Err(mismatch);
            }
        }
        Ok(())
    }

    /// `IOMMU_TEST_OP_MD_CHECK_REFS`: every page of the caller's `uptr..+length` must be pinned
    /// exactly `refs` times (`EIO` if not, `EFAULT` for an unmapped page).
    fn check_refs(
        &self,
        uptr: HostVa,
        length: u64,
        refs: u32,
        _user: &dyn UserMemory,
    ) -> Result<(), IommufdError> {
        for i in 0..length / PAGE {
            let va = uptr
                .checked_add(i * PAGE)
                .ok_or(IommufdError::Invalid("uptr + length wraps"))?;
            uvfio_memory::probe_user_range(va, PAGE, false).map_err(|_| IommufdError::CheckFailed {
                what: "uptr is not mapped",
                errno: Errno::FAULT,
            })?;
            let pins: u32 = self
                .mem
                .adopted_hpas(va)
                .into_iter()
                .map(|hpa| self.mem.pin_count(hpa).unwrap_or(0))
                .sum();
            if pins != refs {
                return Err(IommufdError::CheckFailed {
                    what: "a page's pin count differs",
                    errno: Errno::IO,
                });
            }
        }
        Ok(())
    }
}
