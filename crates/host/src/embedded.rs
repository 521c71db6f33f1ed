//! The embedded default host: what `uvfio run` starts with no arguments.
//!
//! One edu device (QEMU's, `1234:11e8`) at `00:02.0` behind the software IOMMU, 256 MiB of host
//! memory, no locked-memory limit, an opener with `CAP_SYS_RAWIO` and `CAP_SYS_ADMIN` (as a
//! VFIO driver runs in practice). With [`HostOptions`] `{ iommu: false, unsafe_noiommu: true }`
//! the same machine without an IOMMU, in the unsafe no-IOMMU mode; its edu is configured with a
//! 48-bit DMA mask (QEMU's `-device edu,dma_mask=...`), since host physical memory lies above the
//! default 28 bits.

use crate::files::{Host, HostOptions, ModelSource};
use crate::topology::{Bdf, Topology, TopologyConfig};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_devices::edu::EDU_DMA_MASK;
use uvfio_devices::{DmaSource, edu_vfio};
use uvfio_iommufd::ctx::{Accounts, Credentials};
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_vfio::device::VfioDeviceModel;

/// Where the embedded host's edu device sits.
pub const EDU_BDF: Bdf = match Bdf::new(0, 2, 0) {
    Some(bdf) => bdf,
    None => unreachable!(),
};

/// Host memory of the embedded host.
pub const EMBEDDED_RAM: u64 = 256 << 20;

/// The embedded host started with `options`: `ENOMEM` if its memory cannot be made.
pub fn embedded_host(options: HostOptions) -> Result<Host, Errno> {
    let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(EMBEDDED_RAM)).map_err(|e| e.errno())?);
    let creds = Credentials {
        sys_resource: true,
        sys_rawio: true,
        sys_admin: true,
    };
    let topology = Topology::new(TopologyConfig::default()).map_err(|_| Errno::INVAL)?;
    let dma_mask = if options.iommu {
        EDU_DMA_MASK
    } else {
        (1 << 48) - 1
    };
    let edu = ModelSource::Factory(Box::new(move |dma: Arc<dyn DmaSource>| {
        // The edu function's layout is fixed and valid: building it cannot fail.
        let (model, _) = edu_vfio(dma, dma_mask).unwrap_or_else(|e| unreachable!("the edu function: {e}"));
        model as Arc<dyn VfioDeviceModel>
    }));
    Host::with_device_sources(
        mem,
        Accounts::unlimited(),
        creds,
        topology,
        options,
        vec![(EDU_BDF, edu)],
    )
}
