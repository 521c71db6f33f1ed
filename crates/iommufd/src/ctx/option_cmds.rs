//! `IOMMU_OPTION` (Linux `iommufd_option` in main.c, `iommufd_option_rlimit_mode` in ioas.c).

use super::{Iommufd, IommufdError};
use crate::uapi::misc::{IommuOptionCmd, OptionOp, option_bool};

impl Iommufd {
    /// `IOMMU_OPTION`: `RLIMIT_MODE` reads or sets which account pins charge; `HUGE_PAGES` of an
    /// IOAS is not served yet. The value goes back in `val64`.
    pub(super) fn option(&self, cmd: &IommuOptionCmd, arg: &mut [u8]) -> Result<(), IommufdError> {
        let val64 = match *cmd {
            IommuOptionCmd::RlimitMode(OptionOp::Get) => {
                // `cmd->val64 = ictx->account_mode == IOPT_PAGES_ACCOUNT_MM;`
                u64::from(*self.account_mm.lock())
            }
            IommuOptionCmd::RlimitMode(OptionOp::Set(val64)) => {
                // `if (!capable(CAP_SYS_RESOURCE)) return -EPERM;`
                if !self.creds.sys_resource {
                    return Err(IommufdError::NotPermitted(
                        "IOMMU_OPTION_RLIMIT_MODE needs CAP_SYS_RESOURCE",
                    ));
                }
                let mut mode = self.account_mm.lock();
                // `if (!xa_empty(&ictx->objects)) rc = -EBUSY;`
                if !self.objects.is_empty() {
                    return Err(IommufdError::Busy(
                        "the accounting mode changes only without objects",
                    ));
                }
                *mode = option_bool(val64)?;
                val64
            }
            IommuOptionCmd::HugePages { .. } => {
                return Err(IommufdError::NotServed("IOMMU_OPTION_HUGE_PAGES"));
            }
        };
        IommuOptionCmd::encode_reply(arg, val64)?;
        Ok(())
    }
}
