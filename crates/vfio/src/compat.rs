//! The container's [`CompatContext`] over uvfio's own iommufd context: what makes
//! `/dev/vfio/vfio` a view of an iommufd context, as Linux's `vfio_compat.c` does.

use crate::container::{BoundDevice, CompatContext};
use std::sync::Arc;
use uvfio_iommu::{Iommu, OwnerId};
use uvfio_iommufd::ctx::{Iommufd, IommufdError, Object};
use uvfio_iommufd::device::{DeviceError, GroupId};
use uvfio_iommufd::object::{ObjectError, ObjectId, ObjectTable};

impl CompatContext for Iommufd {
    type Object = Object;

    fn objects(&self) -> &ObjectTable<Object> {
        Iommufd::objects(self)
    }

    fn alloc_ioas(&self) -> Result<ObjectId, ObjectError> {
        Iommufd::alloc_ioas(self).map_err(|e| match e {
            IommufdError::Object(e) => e,
            // Allocating an IOAS can only fail in the object table (or at an injected step,
            // which the table reports as its own).
            _ => ObjectError::NoIds,
        })
    }

    fn vfio_ioas(&self) -> Option<ObjectId> {
        self.compat_ioas_id().and_then(ObjectId::new)
    }

    fn set_vfio_ioas(&self, id: Option<ObjectId>) {
        self.record_compat_ioas(id.map(ObjectId::raw));
    }

    fn iommu(&self) -> &Arc<Iommu> {
        Iommufd::iommu(self)
    }

    fn owner(&self) -> OwnerId {
        Iommufd::owner(self)
    }

    fn bind_device(&self, group: GroupId, rid: u16) -> Result<BoundDevice, DeviceError> {
        match Iommufd::bind_device(self, group, rid) {
            Ok((id, device)) => Ok(BoundDevice {
                device,
                object: Some(id),
            }),
            Err(IommufdError::Device(e)) => Err(e),
            Err(IommufdError::Object(e)) => Err(DeviceError::Object(e)),
            // Binding fails only in the object table or in the device's own bind.
            Err(_) => Err(DeviceError::Object(ObjectError::NoIds)),
        }
    }
}
