//! `IOMMU_HWPT_ALLOC` (Linux `iommufd_hwpt_alloc` in hw_pagetable.c).

use super::{Iommufd, IommufdError, Object};
use crate::hwpt::HwptPaging;
use crate::object::{ObjectType, TableObject};
use crate::uapi::hwpt::HwptAlloc;
use std::sync::Arc;

impl Iommufd {
    /// `IOMMU_HWPT_ALLOC`: a paging HWPT over an IOAS, made as the device's IOMMU makes domains;
    /// its id goes back in `out_hwpt_id`.
    pub(super) fn hwpt_alloc(&self, cmd: &HwptAlloc, arg: &mut [u8]) -> Result<(), IommufdError> {
        // `idev = iommufd_get_device(ucmd, cmd->dev_id);`
        let Object::Device(device) = self.objects.get(cmd.dev_id, Some(ObjectType::Device))? else {
            return Err(crate::object::ObjectError::NotFound(cmd.dev_id).into());
        };
        // `pt_obj = iommufd_get_object(ucmd->ictx, cmd->pt_id, IOMMUFD_OBJ_ANY);
        //  if (IS_ERR(pt_obj)) { rc = -EINVAL; ...`
        let pt = self
            .objects
            .get(cmd.pt_id, None)
            .map_err(|_| IommufdError::Invalid("pt_id names no object"))?;
        match pt.object_type() {
            ObjectType::Ioas => {}
            // Nesting on a paging HWPT needs a driver that builds nested domains.
            ObjectType::HwptPaging => return Err(IommufdError::Unsupported("nested HWPTs")),
            _ => return Err(IommufdError::Invalid("pt_id is neither an IOAS nor a HWPT")),
        }
        cmd.check_paging_flags()?;
        if cmd.data.is_some() {
            return Err(IommufdError::Unsupported("driver data for a paging HWPT"));
        }
        let reservation = self.objects.reserve(ObjectType::HwptPaging)?;
        let (ioas_obj, ioas_use) = self.objects.get_with_user(cmd.pt_id, ObjectType::Ioas)?;
        let Object::Ioas(ioas) = ioas_obj else {
            return Err(IommufdError::Invalid("pt_id is not an IOAS"));
        };
        let hwpt = HwptPaging::new(reservation.id(), &device, ioas, ioas_use, false, &self.fail)?;
        HwptAlloc::encode_reply(arg, reservation.id())?;
        reservation.finalize(Object::HwptPaging(Arc::clone(&hwpt)));
        Ok(())
    }
}
