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
//! "If no file descriptor is sent, the server must use `VFIO_USER_DMA_READ` and
//! `VFIO_USER_DMA_WRITE` messages to access that region" — QEMU sends such maps for guest RAM that
//! is not backed by a shareable file. No IOMMU page table can point at memory the server does not
//! have, so these regions are not mapped into the IOAS: they become *windows* of the device's
//! remote memory on the host ([`uvfio_host::Host::set_remote_dma`], `uvfio_devices::RemoteDma`).
//! The device model's transfers are split at the windows' edges; the parts inside a window become
//! requests to the client (at most its `max_data_xfer_size` each), sent on the connection by the
//! device's own thread, which waits for each answer before it goes on — so a device that signals
//! completion (edu's interrupt) does so only after the client has the data. The session's thread
//! reads every message the client sends and hands each reply to the request waiting for it; a
//! client that does not answer within [`ServerOptions::dma_timeout`] fails the transfer, and a
//! disconnection fails it at once. A window's access flags are enforced (a device write into a
//! read-only window sends nothing and fails); outside every window and every mapping, the IOMMU
//! faults as before. This is the path libvfio-user's `vfu_sgl_read()` / `vfu_sgl_write()` take for
//! a region without a descriptor.
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
