//! The vfio-user server: one device of a [`uvfio_host::Host`], served to one client at a time over
//! a Unix socket.
//!
//! [`Server::serve`] accepts a client, serves it until it disconnects, and accepts the next ("A
//! server can serve: 1) one or more clients [...]"; this one serves them in turn, as libvfio-user
//! does). The server opens the device once, through the host's cdev path (see the `device`
//! module), and holds it for its whole life; each connection gets an IOAS of its own, the device
//! attached to it. On a client disconnection the spec asks that "all client memory regions are
//! unmapped and cleaned up (including closing any passed file descriptors)", "all IRQ file
//! descriptors passed from the old client are closed", and "the device state should otherwise be
//! retained": the device is detached from the connection's IOAS, which is emptied and destroyed
//! (every mapping and pin goes; the device's DMA faults until the next client maps memory), every
//! IRQ index the client enabled is disabled (the host releases its eventfds), and the device is
//! not closed, so not reset — its registers and config space are as the client left them.
//! `VFIO_USER_DEVICE_RESET` still resets it; dropping the [`Server`] closes it (the last close
//! resets it, as Linux's vfio-pci does on release).
//!
//! [`StopHandle::stop`] ends [`Server::serve`] (and a session in progress, which is cleaned up as
//! on a disconnection; a session waiting for the client's next message sees it within
//! [`crate::transport::RECV_SLICE`]) from any thread; it is one `write(2)` to an eventfd, so a signal handler
//! may call it (SIGINT / SIGTERM handling is the caller's: "The backend program must honor the
//! SIGTERM signal").

mod device;
mod link;
mod session;

pub use device::HostError;
pub use link::RemoteDmaError;
pub use session::{CommandError, Disconnect};

use crate::log::{Level, Logger, log};
use crate::proto::version::ServerLimits;
use crate::transport::{self, TransportError};
use parking_lot::Mutex;
use rustix::event::{EventfdFlags, PollFd, PollFlags, eventfd, poll};
use rustix::io::Errno;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;
use uvfio_host::{Bdf, EDU_BDF, Host, HostOptions, embedded_host};

/// How a [`Server`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// The device to serve (default: the embedded host's edu at `00:02.0`).
    pub device: Bdf,
    /// File descriptors accepted in one message (`max_msg_fds` of the reply; QEMU's client
    /// accepts at most 16).
    pub max_msg_fds: u32,
    /// Largest data transfer accepted (`max_data_xfer_size`; lowered to the client's).
    pub max_data_xfer_size: u32,
    /// DMA regions at once (`max_dma_maps`; lowered to the client's).
    pub max_dma_maps: u32,
    /// The log level; `None` reads `UVFIO_LOG`.
    pub log_level: Option<Level>,
    /// How long the device waits for the client's answer to a `VFIO_USER_DMA_READ` /
    /// `VFIO_USER_DMA_WRITE` (a transfer into a DMA region without a file descriptor) before the
    /// transfer fails.
    pub dma_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            device: EDU_BDF,
            max_msg_fds: 16,
            max_data_xfer_size: 1 << 20,
            max_dma_maps: 65535,
            log_level: None,
            dma_timeout: link::REMOTE_DMA_TIMEOUT,
        }
    }
}

/// Why the server could not be set up or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The host has no device cdev at the address.
    #[error("the host has no VFIO device cdev at {0}")]
    NoDevice(Bdf),
    /// The embedded host could not be started.
    #[error("starting the embedded host")]
    Host(#[source] Errno),
    /// The stop eventfd could not be made.
    #[error("creating the stop eventfd")]
    Eventfd(#[source] Errno),
    /// Waiting for or accepting a connection failed.
    #[error("accepting a connection")]
    Accept(#[source] std::io::Error),
    /// Opening the device, or giving a connection its IOAS, failed.
    #[error("opening the device")]
    Open(#[source] HostError),
    /// [`Server::serve_connection`] while another connection is being served.
    #[error("another connection is being served")]
    Busy,
    /// The connection's socket failed (not the client closing it).
    #[error("the connection's socket")]
    Socket(#[source] TransportError),
}

/// Stops a [`Server`]: clone it into another thread or a signal handler.
#[derive(Debug, Clone)]
pub struct StopHandle {
    fd: Arc<OwnedFd>,
}

impl StopHandle {
    fn new() -> Result<StopHandle, ServerError> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(ServerError::Eventfd)?;
        Ok(StopHandle { fd: Arc::new(fd) })
    }

    /// Makes the server stop: [`Server::serve`] returns, a session in progress ends. For good:
    /// the server serves nobody after this.
    pub fn stop(&self) {
        // The counter only grows; a full counter (EAGAIN) is already stopped.
        let _ = rustix::io::write(&*self.fd, &1u64.to_ne_bytes());
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        transport::stopped(self.fd.as_fd())
    }
}

/// A vfio-user server for one device of a host.
#[derive(Debug)]
pub struct Server {
    host: Arc<Host>,
    options: ServerOptions,
    cdev: String,
    /// The device, open for the server's life; locked by the connection being served.
    dev: Mutex<device::HostDevice>,
    log: Logger,
    stop: StopHandle,
}

impl Server {
    /// A server for the device at `options.device` of `host`, which it opens and binds to an
    /// iommufd of its own until dropped: [`ServerError::NoDevice`] if the host has no cdev for it,
    /// [`ServerError::Open`] if the device cannot be opened (it is open elsewhere, say).
    pub fn new(host: Arc<Host>, options: ServerOptions) -> Result<Server, ServerError> {
        let cdev = host
            .vfio_paths(options.device)
            .and_then(|(_, cdev)| cdev)
            .ok_or(ServerError::NoDevice(options.device))?;
        let dev = device::HostDevice::open(Arc::clone(&host), &cdev).map_err(ServerError::Open)?;
        Ok(Server {
            host,
            options,
            cdev,
            dev: Mutex::new(dev),
            log: Logger::new(options.log_level.unwrap_or_else(Level::from_env)),
            stop: StopHandle::new()?,
        })
    }

    /// A server for the edu device of a new embedded host (`uvfio_host::embedded_host`).
    pub fn embedded(options: ServerOptions) -> Result<Server, ServerError> {
        let host = embedded_host(HostOptions::default()).map_err(ServerError::Host)?;
        Server::new(Arc::new(host), options)
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The options.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The device cdev the server holds open.
    pub fn cdev(&self) -> &str {
        &self.cdev
    }

    /// A handle that stops the server.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves the clients connecting to `listener`, one at a time, until stopped. A failure of one
    /// connection (its socket, attaching the device to an IOAS for it) is logged and the next
    /// client is served; only a failing listener ends the loop with an error.
    pub fn serve(&self, listener: &UnixListener) -> Result<(), ServerError> {
        log!(
            self.log,
            Level::Info,
            "serving {} ({})",
            self.options.device,
            self.cdev
        );
        loop {
            let ready = {
                let mut set = [
                    PollFd::new(listener, PollFlags::IN),
                    PollFd::new(&*self.stop.fd, PollFlags::IN),
                ];
                match poll(&mut set, None) {
                    Ok(_) => {}
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(ServerError::Accept(e.into())),
                }
                if !set[1].revents().is_empty() {
                    log!(self.log, Level::Info, "stopped");
                    return Ok(());
                }
                !set[0].revents().is_empty()
            };
            if !ready {
                continue;
            }
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ServerError::Accept(e)),
            };
            match self.serve_connection(&stream) {
                Ok(Disconnect::Stopped) => {
                    log!(self.log, Level::Info, "stopped");
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => log!(
                    self.log,
                    Level::Error,
                    "connection: {e}: {:?}",
                    std::error::Error::source(&e)
                ),
            }
        }
    }

    /// Serves the client at the other end of `stream` until the connection ends; the device is
    /// attached to a new IOAS for it, and after it the IOAS is destroyed and the IRQs it enabled
    /// are disabled, the device's state otherwise kept. [`ServerError::Busy`] while another
    /// connection is being served.
    pub fn serve_connection(&self, stream: &UnixStream) -> Result<Disconnect, ServerError> {
        if self.stop.is_stopped() {
            return Ok(Disconnect::Stopped);
        }
        let dev = self.dev.try_lock().ok_or(ServerError::Busy)?;
        let info = dev.info().map_err(ServerError::Open)?;
        let ioas = dev.attach_ioas().map_err(ServerError::Open)?;
        log!(
            self.log,
            Level::Info,
            "client connected: device {} attached to IOAS {ioas} ({} regions, {} IRQ indexes)",
            self.options.device,
            info.num_regions,
            info.num_irqs
        );
        let link = match link::Link::new(
            stream.as_fd(),
            self.stop.fd.as_fd(),
            self.log,
            self.options.dma_timeout,
        ) {
            Ok(link) => Arc::new(link),
            Err(errno) => {
                let _ = dev.release_ioas(ioas);
                return Err(ServerError::Socket(TransportError::Io {
                    op: "duplicating the connection's socket",
                    source: errno,
                }));
            }
        };
        let mut session = session::Session {
            sock: stream.as_fd(),
            stop: self.stop.fd.as_fd(),
            link,
            bdf: self.options.device,
            remote: false,
            log: self.log,
            limits: ServerLimits {
                max_msg_fds: self.options.max_msg_fds.into(),
                max_data_xfer_size: self.options.max_data_xfer_size.into(),
                max_dma_maps: self.options.max_dma_maps.into(),
                // Any power of two from 4 KiB: an IOAS maps at 4 KiB granularity.
                pgsizes: !0xfff,
            },
            dev: &dev,
            ioas,
            flags: info.flags,
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
            negotiated: None,
            maps: BTreeMap::new(),
            irqs: BTreeSet::new(),
        };
        let end = session.run();
        let (regions, irqs) = (session.maps.len(), session.irqs.len());
        // Dropping the session destroys the IOAS and disables the IRQs: every DMA region and
        // eventfd of the client goes, the device stays open.
        drop(session);
        match end {
            Ok(how) => {
                log!(
                    self.log,
                    Level::Info,
                    "client gone ({how:?}): {regions} DMA regions unmapped, {irqs} IRQ indexes disabled, device state kept"
                );
                Ok(how)
            }
            Err(e) => Err(ServerError::Socket(e)),
        }
    }
}
