//! `IOMMU_OPTION` (Linux `iommufd_option` in main.c, `iommufd_option_rlimit_mode` and
//! `iommufd_ioas_option` / `iommufd_ioas_option_huge_pages` in ioas.c).

use super::{Iommufd, IommufdError};
use crate::uapi::misc::{IommuOptionCmd, OptionOp, option_bool};

impl Iommufd {
    /// `IOMMU_OPTION`: `RLIMIT_MODE` reads or sets which account pins charge; `HUGE_PAGES` reads
    /// or sets whether an IOAS's domains may use large pages. The value goes back in `val64`.
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
            IommuOptionCmd::HugePages { ioas_id, .. } => {
                // ioas = iommufd_get_ioas(ucmd->ictx, cmd->object_id); (ENOENT before the op)
                let ioas = self.ioas(ioas_id)?;
                match cmd.huge_pages_op()? {
                    // cmd->val64 = !ioas->iopt.disable_large_pages;
                    OptionOp::Get => u64::from(!ioas.large_pages_disabled()),
                    OptionOp::Set(val64) => {
                        // 0: iopt_disable_large_pages() (EINVAL with domains and areas,
                        // EADDRINUSE for an area off the new alignment); 1:
                        // iopt_enable_large_pages(); else EINVAL.
                        if option_bool(val64)? {
                            ioas.enable_large_pages();
                        } else {
                            ioas.disable_large_pages()?;
                        }
                        val64
                    }
                }
            }
        };
        IommuOptionCmd::encode_reply(arg, val64)?;
        Ok(())
    }
}
