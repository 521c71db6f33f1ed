//! How a device reaches memory: [`DmaSource`], and memory outside the IOMMU's page tables
//! ([`RemoteDma`]).
//!
//! A device's DMA goes through the port of the IOMMU domain its requester id is attached to
//! ([`DmaSource::port`]); [`DmaSource::read`] and [`DmaSource::write`] are one transfer each,
//! through that port unless the source has *remote* memory.
//!
//! Remote memory is what a vfio-user client maps without sharing it: "If a DMA region being added
//! can be directly mapped by the server, a file descriptor must be sent as part of the message
//! meta-data. [...] If no file descriptor is sent, the server must use `VFIO_USER_DMA_READ` and
//! `VFIO_USER_DMA_WRITE` messages to access that region" (QEMU `docs/interop/vfio-user.rst`,
//! `VFIO_USER_DMA_MAP`). No page table can point at such memory, so a source with a [`RemoteDma`]
//! splits each transfer ([`split_transfer`]): the parts inside a remote window go to the remote
//! holder, the rest through the port (the IOMMU, which faults outside its mappings), in address
//! order. This is libvfio-user's `vfu_addr_to_sgl()` + `vfu_sgl_read()` / `vfu_sgl_write()`, where
//! a scatter-gather entry in a region without a file descriptor becomes a message to the client.

use uvfio_iommu::{DmaFault, DmaPort};
use uvfio_types::{Access, Iova, IovaRange};

/// Why a transfer did not complete. The parts before the failing one may have moved (a DMA that
/// crosses from a remote window into IOMMU-mapped memory is several transactions, as on a bus).
#[derive(Debug, thiserror::Error)]
pub enum DmaError {
    /// The IOMMU refused the access (the fault is in the domain's log).
    #[error("IOMMU fault")]
    Fault(#[source] DmaFault),
    /// The access needs a permission the remote window was not mapped with.
    #[error("{access:?} in remote window {window} mapped {allowed:?}")]
    Denied {
        /// The window.
        window: IovaRange,
        /// What the device tried.
        access: Access,
        /// What the window allows.
        allowed: Access,
    },
    /// The remote holder did not complete the access.
    #[error("remote DMA of {len} bytes at {iova} failed")]
    Remote {
        /// Where the failing part starts.
        iova: Iova,
        /// Its length.
        len: usize,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `iova + len` passes the end of the address space.
    #[error("{len} bytes at {iova} wrap the address space")]
    Wraps {
        /// The start.
        iova: Iova,
        /// The length.
        len: usize,
    },
}

/// Where a device's DMA goes: the port of the domain its requester id is attached to now, and any
/// remote memory.
pub trait DmaSource: Send + Sync + std::fmt::Debug {
    /// The port for one transfer (fetch it again for the next: attaching, replacing or detaching
    /// the device changes the domain).
    fn port(&self) -> DmaPort;

    /// Reads `buf.len()` bytes at `iova` into `buf`: through [`port`](Self::port) unless the
    /// source overrides it.
    fn read(&self, iova: Iova, buf: &mut [u8]) -> Result<(), DmaError> {
        read_split(&self.port(), None, iova, buf)
    }

    /// Writes `data` at `iova`: through [`port`](Self::port) unless the source overrides it.
    fn write(&self, iova: Iova, data: &[u8]) -> Result<(), DmaError> {
        write_split(&self.port(), None, iova, data)
    }
}

/// Memory a device reaches outside the IOMMU's page tables: windows of the device's address space
/// whose data someone else holds and moves on request (a vfio-user client's DMA regions without a
/// file descriptor). Windows never overlap IOMMU mappings (whoever installs them checks).
pub trait RemoteDma: Send + Sync + std::fmt::Debug {
    /// The lowest window overlapping `range`, with the access it was mapped with.
    fn window(&self, range: IovaRange) -> Option<(IovaRange, Access)>;

    /// Reads `buf.len()` bytes at `iova`, all inside one window.
    fn read(&self, iova: Iova, buf: &mut [u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

    /// Writes `data` at `iova`, all inside one window.
    fn write(&self, iova: Iova, data: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// One piece of a transfer: `len` bytes at `iova`, which are bytes `[at, at + len)` of the
/// device's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Where in the address space.
    pub iova: Iova,
    /// Where in the buffer.
    pub at: usize,
    /// How many bytes.
    pub len: usize,
}

/// Which way a [`Piece`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Through the IOMMU (the device's port).
    Port,
    /// To the holder of a remote window.
    Remote,
}

/// Moves `len` bytes at `iova` in address order: `each` gets every part inside a window of
/// `remote` (which must allow `access`) with [`Route::Remote`], every part between windows with
/// [`Route::Port`]. Stops at the first failure. A zero `len` moves nothing.
pub fn split_transfer(
    remote: &dyn RemoteDma,
    iova: Iova,
    len: usize,
    access: Access,
    mut each: impl FnMut(Piece, Route) -> Result<(), DmaError>,
) -> Result<(), DmaError> {
    if len == 0 {
        return Ok(());
    }
    let first = iova.raw();
    let last = first
        .checked_add(len as u64 - 1)
        .ok_or(DmaError::Wraps { iova, len })?;
    // Bytes `[from, to]` (inclusive) of the address space as a piece of the buffer.
    let piece = |from: u64, to: u64| Piece {
        iova: Iova::new(from),
        at: (from - first) as usize,
        len: (to - from) as usize + 1,
    };
    let mut from = first;
    loop {
        let rest =
            IovaRange::new(Iova::new(from), Iova::new(last)).map_err(|_| DmaError::Wraps { iova, len })?;
        // A window that does not overlap the rest (a holder that answers wrongly) counts as none.
        let found = remote
            .window(rest)
            .filter(|(w, _)| w.start().raw() <= last && w.last().raw() >= from);
        let Some((window, allowed)) = found else {
            return each(piece(from, last), Route::Port);
        };
        // The part before the window goes through the port.
        if window.start().raw() > from {
            each(piece(from, window.start().raw() - 1), Route::Port)?;
        }
        if !allowed.contains(access) {
            return Err(DmaError::Denied {
                window,
                access,
                allowed,
            });
        }
        let (inside_from, inside_to) = (window.start().raw().max(from), window.last().raw().min(last));
        each(piece(inside_from, inside_to), Route::Remote)?;
        if inside_to >= last {
            return Ok(());
        }
        from = inside_to + 1;
    }
}

/// [`DmaSource::read`] for a source that may have remote memory: the remote windows' parts through
/// `remote`, the others (all of it without `remote`) through `port`.
pub fn read_split(
    port: &DmaPort,
    remote: Option<&dyn RemoteDma>,
    iova: Iova,
    buf: &mut [u8],
) -> Result<(), DmaError> {
    let Some(remote) = remote else {
        return port.read(iova, buf).map_err(DmaError::Fault);
    };
    split_transfer(remote, iova, buf.len(), Access::READ, |p, route| {
        let part = &mut buf[p.at..p.at + p.len];
        match route {
            Route::Port => port.read(p.iova, part).map_err(DmaError::Fault),
            Route::Remote => remote
                .read(p.iova, part)
                .map_err(|source| remote_error(p, source)),
        }
    })
}

/// [`DmaSource::write`] for a source that may have remote memory.
pub fn write_split(
    port: &DmaPort,
    remote: Option<&dyn RemoteDma>,
    iova: Iova,
    data: &[u8],
) -> Result<(), DmaError> {
    let Some(remote) = remote else {
        return port.write(iova, data).map_err(DmaError::Fault);
    };
    split_transfer(remote, iova, data.len(), Access::WRITE, |p, route| {
        let part = &data[p.at..p.at + p.len];
        match route {
            Route::Port => port.write(p.iova, part).map_err(DmaError::Fault),
            Route::Remote => remote
                .write(p.iova, part)
                .map_err(|source| remote_error(p, source)),
        }
    })
}

fn remote_error(p: Piece, source: Box<dyn std::error::Error + Send + Sync>) -> DmaError {
    DmaError::Remote {
        iova: p.iova,
        len: p.len,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Windows over a byte array standing for the remote memory, recording each call.
    #[derive(Debug, Default)]
    struct Windows {
        windows: Vec<(IovaRange, Access)>,
        calls: Mutex<Vec<(char, u64, usize)>>,
    }

    impl RemoteDma for Windows {
        fn window(&self, range: IovaRange) -> Option<(IovaRange, Access)> {
            self.windows
                .iter()
                .filter(|(w, _)| w.overlaps(&range))
                .min_by_key(|(w, _)| w.start())
                .copied()
        }
        fn read(&self, iova: Iova, buf: &mut [u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            self.calls.lock().unwrap().push(('r', iova.raw(), buf.len()));
            buf.fill(0xee);
            Ok(())
        }
        fn write(&self, iova: Iova, data: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            self.calls.lock().unwrap().push(('w', iova.raw(), data.len()));
            Ok(())
        }
    }

    fn range(start: u64, len: u64) -> IovaRange {
        IovaRange::from_start_len(Iova::new(start), len).unwrap()
    }

    fn pieces(
        w: &Windows,
        iova: u64,
        len: usize,
        access: Access,
    ) -> (Vec<Piece>, Vec<Piece>, Result<(), DmaError>) {
        let (mut near, mut far) = (Vec::new(), Vec::new());
        let r = split_transfer(w, Iova::new(iova), len, access, |p, route| {
            match route {
                Route::Port => near.push(p),
                Route::Remote => far.push(p),
            }
            Ok(())
        });
        (near, far, r)
    }

    fn p(iova: u64, at: usize, len: usize) -> Piece {
        Piece {
            iova: Iova::new(iova),
            at,
            len,
        }
    }

    #[test]
    fn a_transfer_is_split_at_window_edges_in_address_order() {
        let w = Windows {
            windows: vec![
                (range(0x2000, 0x1000), Access::READ | Access::WRITE),
                (range(0x4000, 0x1000), Access::READ | Access::WRITE),
            ],
            ..Default::default()
        };
        // No window: one piece through the port.
        let (near, far, r) = pieces(&w, 0x0, 0x1000, Access::READ);
        assert!(r.is_ok());
        assert_eq!((near, far), (vec![p(0, 0, 0x1000)], vec![]));
        // Inside one window.
        let (near, far, r) = pieces(&w, 0x2100, 0x100, Access::WRITE);
        assert!(r.is_ok());
        assert_eq!((near, far), (vec![], vec![p(0x2100, 0, 0x100)]));
        // Port, window, port, window, port.
        let (near, far, r) = pieces(&w, 0x1800, 0x4000, Access::READ);
        assert!(r.is_ok());
        assert_eq!(
            near,
            vec![
                p(0x1800, 0, 0x800),
                p(0x3000, 0x1800, 0x1000),
                p(0x5000, 0x3800, 0x800)
            ]
        );
        assert_eq!(far, vec![p(0x2000, 0x800, 0x1000), p(0x4000, 0x2800, 0x1000)]);
        // Ending exactly on a window's last byte.
        let (near, far, r) = pieces(&w, 0x1f00, 0x1100, Access::READ);
        assert!(r.is_ok());
        assert_eq!(near, vec![p(0x1f00, 0, 0x100)]);
        assert_eq!(far, vec![p(0x2000, 0x100, 0x1000)]);
        assert!(pieces(&w, 0x1f00, 0, Access::READ).0.is_empty());
    }

    #[test]
    fn a_window_at_the_top_of_the_address_space_ends_the_walk() {
        let w = Windows {
            windows: vec![(range(u64::MAX - 0xfff, 0x1000), Access::READ)],
            ..Default::default()
        };
        let (near, far, r) = pieces(&w, u64::MAX - 0x1fff, 0x2000, Access::READ);
        assert!(r.is_ok());
        assert_eq!(near, vec![p(u64::MAX - 0x1fff, 0, 0x1000)]);
        assert_eq!(far, vec![p(u64::MAX - 0xfff, 0x1000, 0x1000)]);
        // Past the end: refused before anything moves.
        let (near, far, r) = pieces(&w, u64::MAX - 0xfff, 0x1001, Access::READ);
        assert!(matches!(r, Err(DmaError::Wraps { .. })));
        assert!(near.is_empty() && far.is_empty());
    }

    #[test]
    fn a_window_without_the_permission_is_denied_after_the_parts_before_it() {
        let w = Windows {
            windows: vec![(range(0x2000, 0x1000), Access::READ)],
            ..Default::default()
        };
        let (near, far, r) = pieces(&w, 0x1000, 0x2000, Access::WRITE);
        assert!(
            matches!(
                r,
                Err(DmaError::Denied {
                    access: Access::WRITE,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(near, vec![p(0x1000, 0, 0x1000)]);
        assert!(far.is_empty());
    }

    #[test]
    fn the_first_failure_stops_the_walk() {
        let w = Windows {
            windows: vec![(range(0x2000, 0x1000), Access::READ)],
            ..Default::default()
        };
        let mut far = 0;
        let r = split_transfer(
            &w,
            Iova::new(0x1000),
            0x3000,
            Access::READ,
            |_, route| match route {
                Route::Port => Err(DmaError::Wraps {
                    iova: Iova::new(0),
                    len: 0,
                }),
                Route::Remote => {
                    far += 1;
                    Ok(())
                }
            },
        );
        assert!(r.is_err());
        assert_eq!(far, 0);
    }
}
