//! [`Interrupt`]: one interrupt vector as an eventfd the driver waits on.

use crate::backend::DeviceBackend;
use crate::error::DriverError;
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;
use uvfio_abi::vfio::VFIO_PCI_INTX_IRQ_INDEX;

/// One interrupt vector: the device signals its eventfd.
#[derive(Debug)]
pub struct Interrupt {
    backend: Arc<dyn DeviceBackend>,
    index: u32,
    vector: u32,
    fd: OwnedFd,
}

impl Interrupt {
    pub(crate) fn new(backend: Arc<dyn DeviceBackend>, index: u32, vector: u32) -> Result<Self, DriverError> {
        let fd =
            rustix::event::eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC).map_err(|errno| {
                DriverError::Os {
                    what: "making an eventfd",
                    errno,
                }
            })?;
        Ok(Interrupt {
            backend,
            index,
            vector,
            fd,
        })
    }

    /// The eventfd.
    pub fn eventfd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The IRQ index (`VFIO_PCI_INTX_IRQ_INDEX`, `..._MSI_...`, `..._MSIX_...`).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The vector within the index.
    pub fn vector(&self) -> u32 {
        self.vector
    }

    /// Waits until the interrupt fires; returns how many times it fired since the last wait.
    pub fn wait(&self) -> Result<u64, DriverError> {
        loop {
            if let Some(n) = self.wait_timeout(Duration::from_secs(3600))? {
                return Ok(n);
            }
        }
    }

    /// Waits up to `timeout`; `None` if the interrupt did not fire.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<u64>, DriverError> {
        if let Some(n) = self.take()? {
            return Ok(Some(n));
        }
        let ts = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        rustix::event::poll(&mut fds, Some(&ts)).map_err(|errno| DriverError::Os {
            what: "polling an eventfd",
            errno,
        })?;
        self.take()
    }

    /// Reads the counter if it is non-zero.
    fn take(&self) -> Result<Option<u64>, DriverError> {
        let mut counter = [0u8; 8];
        match rustix::io::read(&self.fd, &mut counter) {
            Ok(8) => Ok(Some(u64::from_ne_bytes(counter))),
            Ok(_) | Err(Errno::AGAIN) => Ok(None),
            Err(errno) => Err(DriverError::Os {
                what: "reading an eventfd",
                errno,
            }),
        }
    }

    /// Unmasks the vector (INTx is auto-masked when it fires: `VFIO_IRQ_SET_ACTION_UNMASK`).
    pub fn unmask(&self) -> Result<(), DriverError> {
        if self.index == VFIO_PCI_INTX_IRQ_INDEX {
            self.backend.unmask_irq(self.index, self.vector)
        } else {
            Ok(())
        }
    }
}
