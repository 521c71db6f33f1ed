//! The container's [`CompatContext`] over uvfio's own iommufd context: what makes
//! `/dev/vfio/vfio` a view of an iommufd context, as Linux's `vfio_compat.c` does.

use crate::container::CompatContext;
use uvfio_iommufd::ctx::{Iommufd, IommufdError, Object};
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
}
