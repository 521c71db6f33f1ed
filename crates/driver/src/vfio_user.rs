//! [`VfioUserBackend`]: a device served over a vfio-user socket (QEMU `docs/interop/vfio-user.rst`),
//! so a driver written against [`crate::Device`] runs unchanged against a remote device —
//! `uvfio serve`'s, or any vfio-user server's.
//!
//! Each [`DeviceBackend`] call is one vfio-user message: region access is `REGION_READ` /
//! `REGION_WRITE`, interrupts are `DEVICE_SET_IRQS` with the eventfds passed over the socket, and a
//! DMA buffer is `DMA_MAP` with its memfd (the server maps the file; every DMA the device does is
//! checked against those mappings). The server's IOMMU fault log is not visible from here.

use crate::backend::{DeviceBackend, DeviceInfo, IrqInfo, RegionInfo};
use crate::error::DriverError;
use crate::sys::DmaMemory;
use parking_lot::Mutex;
use rustix::io::Errno;
use std::os::fd::BorrowedFd;
use std::path::Path;
use uvfio_abi::vfio::{VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK};
use uvfio_types::{Access, Iova, IovaRange};
use uvfio_vfio_user::proto::device::{IrqData, SetIrqs};
use uvfio_vfio_user::proto::dma::{DmaMap, UnmapTarget};
use uvfio_vfio_user::proto::version::Capabilities;
use uvfio_vfio_user::{Client, ClientError};

/// Bytes moved by one `REGION_READ` / `REGION_WRITE` at most (the server may accept more).
const CHUNK: usize = 64 << 10;

/// A remote device over a vfio-user socket.
#[derive(Debug)]
pub struct VfioUserBackend {
    client: Mutex<Client>,
}

/// Wraps a vfio-user call's failure.
fn remote(what: &'static str) -> impl Fn(ClientError) -> DriverError {
    move |e| DriverError::Uapi {
        what,
        errno: e.errno().unwrap_or(Errno::IO),
    }
}

impl VfioUserBackend {
    /// Connects to the server at `socket` and negotiates the protocol version.
    pub fn connect(socket: impl AsRef<Path>) -> Result<Self, DriverError> {
        let mut client = Client::connect(socket).map_err(remote("connecting to the vfio-user socket"))?;
        client
            .version(Capabilities {
                max_msg_fds: Some(16),
                max_data_xfer_size: Some(CHUNK as u64),
                pgsizes: Some(4096),
                ..Capabilities::default()
            })
            .map_err(remote("VFIO_USER_VERSION"))?;
        Ok(VfioUserBackend {
            client: Mutex::new(client),
        })
    }

    fn set_irqs(&self, set: &SetIrqs, fds: &[BorrowedFd<'_>]) -> Result<(), DriverError> {
        self.client
            .lock()
            .set_irqs(set, fds)
            .map_err(remote("VFIO_USER_DEVICE_SET_IRQS"))
    }
}

impl DeviceBackend for VfioUserBackend {
    fn info(&self) -> Result<DeviceInfo, DriverError> {
        let info = self
            .client
            .lock()
            .device_info()
            .map_err(remote("VFIO_USER_DEVICE_GET_INFO"))?;
        Ok(DeviceInfo {
            flags: info.flags,
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
        })
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo, DriverError> {
        let (info, _fd) = self
            .client
            .lock()
            .region_info(index)
            .map_err(remote("VFIO_USER_DEVICE_GET_REGION_INFO"))?;
        Ok(RegionInfo {
            index,
            flags: info.flags,
            size: info.size,
            offset: info.offset,
        })
    }

    fn read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), DriverError> {
        let mut client = self.client.lock();
        for (i, chunk) in buf.chunks_mut(CHUNK).enumerate() {
            let at = offset + (i * CHUNK) as u64;
            let data = client
                .region_read(index, at, chunk.len() as u32)
                .map_err(remote("VFIO_USER_REGION_READ"))?;
            if data.len() != chunk.len() {
                return Err(remote("VFIO_USER_REGION_READ")(ClientError::Timeout(
                    Default::default(),
                )));
            }
            chunk.copy_from_slice(&data);
        }
        Ok(())
    }

    fn write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), DriverError> {
        let mut client = self.client.lock();
        for (i, chunk) in data.chunks(CHUNK).enumerate() {
            let at = offset + (i * CHUNK) as u64;
            client
                .region_write(index, at, chunk)
                .map_err(remote("VFIO_USER_REGION_WRITE"))?;
        }
        Ok(())
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, DriverError> {
        let info = self
            .client
            .lock()
            .irq_info(index)
            .map_err(remote("VFIO_USER_DEVICE_GET_IRQ_INFO"))?;
        Ok(IrqInfo {
            index,
            flags: info.flags,
            count: info.count,
        })
    }

    fn set_irq_eventfds(
        &self,
        index: u32,
        start: u32,
        fds: &[Option<BorrowedFd<'_>>],
    ) -> Result<(), DriverError> {
        // A message's descriptors cover consecutive sub-indexes: send each run of assigned
        // vectors in one message, and de-assign the others.
        let mut at = 0;
        while at < fds.len() {
            let assign = fds[at].is_some();
            let run = fds[at..].iter().take_while(|fd| fd.is_some() == assign).count();
            let sent: Vec<BorrowedFd<'_>> = fds[at..at + run].iter().flatten().copied().collect();
            let set = SetIrqs {
                action: VFIO_IRQ_SET_ACTION_TRIGGER,
                index,
                start: start + at as u32,
                count: run as u32,
                data: IrqData::Eventfds { assign },
            };
            self.set_irqs(&set, &sent)?;
            at += run;
        }
        Ok(())
    }

    fn disable_irq(&self, index: u32) -> Result<(), DriverError> {
        let set = SetIrqs {
            action: VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: 0,
            data: IrqData::None,
        };
        self.set_irqs(&set, &[])
    }

    fn unmask_irq(&self, index: u32, vector: u32) -> Result<(), DriverError> {
        let set = SetIrqs {
            action: VFIO_IRQ_SET_ACTION_UNMASK,
            index,
            start: vector,
            count: 1,
            data: IrqData::None,
        };
        self.set_irqs(&set, &[])
    }

    fn reset(&self) -> Result<(), DriverError> {
        self.client
            .lock()
            .reset()
            .map_err(remote("VFIO_USER_DEVICE_RESET"))
    }

    fn dma_map(&self, mem: &DmaMemory, iova: Iova, access: Access) -> Result<Iova, DriverError> {
        let range = IovaRange::from_start_len(iova, mem.len() as u64)
            .map_err(|_| remote("VFIO_USER_DMA_MAP")(ClientError::Timeout(Default::default())))?;
        let map = DmaMap {
            range,
            offset: 0,
            access,
            has_fd: true,
        };
        self.client
            .lock()
            .dma_map(&map, Some(mem.fd()))
            .map_err(remote("VFIO_USER_DMA_MAP"))?;
        Ok(iova)
    }

    fn dma_unmap(&self, mem: &DmaMemory, addr: Iova) -> Result<(), DriverError> {
        let range = IovaRange::from_start_len(addr, mem.len() as u64)
            .map_err(|_| remote("VFIO_USER_DMA_UNMAP")(ClientError::Timeout(Default::default())))?;
        self.client
            .lock()
            .dma_unmap(UnmapTarget::Range(range))
            .map_err(remote("VFIO_USER_DMA_UNMAP"))
    }

    fn dma_faults(&self) -> Option<Vec<(Iova, bool)>> {
        None
    }
}
