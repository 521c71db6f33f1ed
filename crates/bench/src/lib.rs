#![deny(missing_docs)]
//! uvfio's benchmarks: each measurement once, shared by the criterion benches (`benches/`) and by
//! `uvfio bench`, which lets a user measure their own machine.
//!
//! What is measured (one module per group of rows):
//! - [`dma_copy`]: a device's DMA read + write of 64 B and 4 KiB through an IOTLB hit, against
//!   `memcpy` of the same bytes between two plain buffers (the physical limit of moving them);
//! - [`vm_memory_peer`]: the same 64 B access at a pseudo-random one of 1 or 65 536 mappings,
//!   against rust-vmm `vm-memory` 0.18's `IommuMemory` holding the same mappings (the peer a VMM
//!   would use);
//! - [`walk`]: an IOTLB miss, i.e. a full 4-level page walk over cached tables, against a chain of
//!   4 dependent loads (the limit of any 4-level walk);
//! - [`map_unmap`]: map + unmap of 1 GiB in 4 KiB, 2 MiB and 1 GiB pages with pinning and
//!   locked-memory accounting, against `mlock` + `MADV_POPULATE_WRITE` + `munlock` of 1 GiB of
//!   resident memory (the kernel's own cost of pinning);
//! - [`uapi_map`]: `IOMMU_IOAS_MAP` + `IOMMU_IOAS_UNMAP` (mock domain attached) and type1v2
//!   `VFIO_IOMMU_MAP_DMA` + `VFIO_IOMMU_UNMAP_DMA` of 1 GiB through the full ioctl path, in each
//!   page size, against the direct page-table map + unmap of [`map_unmap`] in the same run;
//! - [`vfio_user_rows`]: uvfio's vfio-user server and client — a 4-byte `REGION_READ` round trip
//!   against a raw Unix-socket ping-pong of the same bytes and against rust-vmm `vfio_user` 0.1.7's
//!   server; 64 KiB moved by the edu's DMA engine into a `DMA_MAP`ped memfd against `memcpy`;
//!   `DMA_MAP` with a descriptor + `DMA_UNMAP` against raw `sendmsg` with a descriptor;
//! - [`scaling`]: translation throughput on 2 threads against 1.
//!
//! Why the peer runs in the same run: an absolute time says more about the machine (its clock, its
//! caches, its neighbours) than about the code. Every row therefore times ours and its peer or
//! limit in interleaved rounds of the same process ([`harness`]) and reports their ratio, which
//! carries across machines; the targets are ratios too (except the per-page map costs, which are
//! anchored to Linux's published numbers and reported with their ratio beside them).

pub mod dma_copy;
mod fixture;
pub mod harness;
pub mod map_unmap;
pub mod placement;
pub mod scaling;
mod sys;
pub mod uapi_map;
pub mod vfio_user_peers;
pub mod vfio_user_rows;
pub mod vm_memory_peer;
pub mod walk;

pub use harness::{Comparison, Measured, Options, RatioDef, Row, RowSpec, Settings, Target, Unit};
pub use sys::Backing;

use std::time::Instant;

/// Every row, in report order.
pub fn all_specs() -> Vec<RowSpec> {
    [
        dma_copy::specs(),
        vm_memory_peer::specs(),
        walk::specs(),
        map_unmap::specs(),
        uapi_map::specs(),
        vfio_user_rows::specs(),
        scaling::specs(),
    ]
    .concat()
}

/// Runs the rows `opts` selects, in order, calling `progress` with a line before and after each.
/// A row that cannot be measured is reported with its error; the others still run.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Vec<Row> {
    let settings = opts.settings();
    let specs: Vec<RowSpec> = all_specs().into_iter().filter(|s| opts.selects(s.name)).collect();
    let n = specs.len();
    let mut rows = Vec::with_capacity(n);
    for (i, spec) in specs.iter().enumerate() {
        progress(&format!(
            "[{}/{n}] {}: {} vs {} ...",
            i + 1,
            spec.name,
            spec.what,
            spec.peer
        ));
        let started = Instant::now();
        let row = spec.run(&settings);
        let took = started.elapsed().as_secs_f64();
        let summary = match &row.outcome {
            Ok(c) => format!(
                "ratio {:.2} ({}), {}",
                c.ratio,
                spec.ratio_def.label(),
                if row.met() { "met" } else { "MISSED" }
            ),
            Err(_) => format!("ERROR: {}", row.error_chain().unwrap_or_default()),
        };
        progress(&format!(
            "[{}/{n}] {}: {summary} in {took:.1} s",
            i + 1,
            spec.name
        ));
        rows.push(row);
    }
    rows
}

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A system call of a peer or of the setup failed.
    #[error("{call} failed")]
    Sys {
        /// The call.
        call: &'static str,
        /// What the kernel said.
        #[source]
        errno: rustix::io::Errno,
    },
    /// `vm-memory` could not create its guest memory.
    #[error("vm-memory could not create guest memory")]
    VmMemoryRegions(#[source] vm_memory::mmap::FromRangesError),
    /// `vm-memory` refused an access.
    #[error("vm-memory access failed")]
    VmMemoryAccess(#[source] vm_memory::GuestMemoryError),
    /// `vm-memory`'s IOTLB refused a mapping.
    #[error("vm-memory IOTLB refused a mapping")]
    VmMemoryIommu(#[source] vm_memory::iommu::Error),
    /// A worker thread could not be started.
    #[error("could not start a worker thread")]
    Spawn(#[source] std::io::Error),
    /// A worker thread went away.
    #[error("a worker thread stopped")]
    WorkerGone,
    /// uvfio's host memory refused an operation.
    #[error("host memory")]
    Memory(#[source] uvfio_memory::MemoryError),
    /// uvfio's IOMMU refused an operation.
    #[error("IOMMU")]
    Iommu(#[source] uvfio_iommu::IommuError),
    /// A DMA through uvfio faulted.
    #[error("DMA fault")]
    Dma(#[source] uvfio_iommu::DmaFault),
    /// An ioctl on uvfio's `/dev/iommu` context failed.
    #[error("/dev/iommu ioctl")]
    Iommufd(#[source] uvfio_iommufd::ctx::IommufdError),
    /// An ioctl on a uvfio VFIO container failed.
    #[error("VFIO container ioctl")]
    Container(#[source] uvfio_vfio::container::ContainerError),
    /// An address range could not be formed.
    #[error("address range")]
    Types(#[source] uvfio_types::TypesError),
    /// The set-up of a row is inconsistent.
    #[error("benchmark set-up: {0}")]
    Setup(&'static str),
    /// uvfio's vfio-user client failed.
    #[error("vfio-user client")]
    VfioUser(#[source] Box<uvfio_vfio_user::ClientError>),
    /// uvfio's vfio-user server could not be set up.
    #[error("vfio-user server")]
    VfioUserServer(#[source] Box<uvfio_vfio_user::ServerError>),
    /// rust-vmm's `vfio_user` failed.
    #[error("rust-vmm vfio_user")]
    RustVmm(#[source] Box<vfio_user::Error>),
    /// Socket I/O of a peer or of the set-up failed.
    #[error("socket I/O")]
    Io(#[source] std::io::Error),
    /// A row could not be written as JSON.
    #[error("could not encode a row as JSON")]
    Json(#[source] serde_json::Error),
}
