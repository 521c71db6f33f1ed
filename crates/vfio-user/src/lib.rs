//! vfio-user: VFIO over a Unix socket (QEMU `docs/interop/vfio-user.rst`), served by uvfio's
//! emulated host.
//!
//! "vfio-user is a protocol that allows a device to be emulated in a separate process outside of
//! a Virtual Machine Monitor (VMM)". This crate models the protocol ([`proto`]: every message,
//! decoded strictly, with the errno each refusal carries), its transport ([`transport`]: an
//! `AF_UNIX` stream with descriptors as `SCM_RIGHTS`), a server ([`Server`]) that serves one device
//! of a [`uvfio_host::Host`] — QEMU's edu on the embedded host by default — to a VMM such as QEMU's
//! `vfio-user-pci`, and a minimal [`Client`].
//!
//! The server drives the host device as a user-space driver drives `/dev/vfio`: through the
//! host's files with the raw uAPI bytes, on the iommufd cdev path (`/dev/iommu`, the cdev,
//! `VFIO_DEVICE_BIND_IOMMUFD` once for the server's life; `IOMMU_IOAS_ALLOC` and
//! `VFIO_DEVICE_ATTACH_IOMMUFD_PT` per connection), one IOAS per connection. So every DMA of the device goes through the IOMMU model: a client's memory
//! becomes device-visible only when it is mapped (`VFIO_USER_DMA_MAP` with the memory's file
//! descriptor → `IOMMU_IOAS_MAP_FILE` of that range at the client's address), and a DMA anywhere
//! else faults and moves nothing. Regions, IRQs and reset go to the device file (`pread` /
//! `pwrite` at `index << 40`, `VFIO_DEVICE_SET_IRQS` with the client's eventfds,
//! `VFIO_DEVICE_RESET`).
//!
//! When a client disconnects, the server does what the spec asks: its DMA regions are unmapped
//! (the connection's IOAS is detached and destroyed), the IRQ indexes it enabled are disabled (the
//! host releases its eventfds), and "the device state should otherwise be retained" — the device
//! stays open, so the next client finds its registers and config space as the last one left them.
//! Only `VFIO_USER_DEVICE_RESET`, or dropping the [`Server`], resets it.
//!
//! # DMA regions without a file descriptor
//!
//! The spec lets a client map memory it does not share ("the DMA region can be accessed by the
//! server using `VFIO_USER_DMA_READ` and `VFIO_USER_DMA_WRITE` messages"). This server refuses such
//! a map with `ENOTSUP`: the host's devices reach memory only through a `uvfio_iommu::DmaPort`, a
//! concrete type that translates through the domain's page tables into host memory, with no hook
//! that can supply or take the data of one access. The domain's fault handler may only map a page
//! and retry (or abort), so forwarding would need bounce pages whose write-back the server cannot
//! time: the edu signals completion through the client's eventfd directly, so the client could
//! read its memory before the device's writes reached it. The protocol side of `DMA_READ` /
//! `DMA_WRITE` is here ([`proto::dma`]) for a device model that calls the server for its DMA.
//!
//! # Why hand-written
//!
//! rust-vmm's `vfio-user` crate (0.1.x) has a server, but `Server::run` accepts one connection
//! and returns when it closes; it answers `VFIO_USER_DMA_READ` / `VFIO_USER_DMA_WRITE`,
//! `GET_REGION_IO_FDS` and unknown commands with an error reply whose errno is 0 (only `EINVAL`
//! gets through), without reading the refused message's payload; its backend trait is not the
//! host's uAPI, and its I/O needs `unsafe`. Its message layouts were a reference only. The layouts
//! here are in `uvfio_abi::vfio_user`, checked against the spec's tables; libvfio-user's server
//! (`lib/libvfio-user.c`, `lib/tran.c`) was the reference for behaviour the spec leaves open.
//!
//! # Logging
//!
//! One line per event to stderr, at the level of [`ServerOptions::log_level`] or of the `UVFIO_LOG`
//! environment variable (`error`, `warn` — the default —, `info`, `debug`, `trace`).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod log;
pub mod proto;
pub mod server;
pub mod transport;

pub use client::{Client, ClientError};
pub use log::Level;
pub use server::{CommandError, Disconnect, HostError, Server, ServerError, ServerOptions, StopHandle};
