//! The interrupt state of a device: Linux `drivers/vfio/pci/vfio_pci_intrs.c`.
//!
//! One of INTx, MSI or MSI-X is enabled at a time (`vdev->irq_type`), each interrupt signalled
//! through the eventfd the user gave for it (`ctx->trigger`); the ERR and REQ notifications have
//! an eventfd each. `SET_IRQS`, after [`crate::uapi::irqs::SetIrqs::decode`], goes to the handler
//! `vfio_pci_set_irqs_ioctl()` picks for its index and action:
//!
//! - INTx `TRIGGER` (`vfio_pci_set_intx_trigger()`): `DATA_NONE` with count 0 disables INTx;
//!   `DATA_EVENTFD` enables INTx (when nothing is enabled) or replaces its eventfd, `-1` meaning
//!   none; `DATA_NONE` / `DATA_BOOL` signal the eventfd (loopback). INTx is automasked: an
//!   interrupt masks it (`vfio_intx_handler()`), and one raised while masked is sent at `UNMASK`
//!   (`pci_check_and_unmask_intx()` finding the device's interrupt status set).
//! - INTx `MASK` / `UNMASK` with `DATA_NONE` / `DATA_BOOL`; `MASK` with an eventfd is `ENOTTY`
//!   ("XXX implement me").
//! - MSI / MSI-X `TRIGGER` (`vfio_pci_set_msi_trigger()`): eventfds for vectors `start..start +
//!   count` (enabling `start + count` vectors when nothing is enabled), `DATA_NONE` with count 0
//!   disables, `DATA_NONE` / `DATA_BOOL` loop back; `MASK` / `UNMASK` are `ENOTTY` ("XXX Need
//!   masking support exported").
//! - ERR (a PCI Express function only) and REQ `TRIGGER` (`vfio_pci_set_ctx_trigger_single()`).
//!
//! Enabling one of INTx, MSI, MSI-X while another is enabled is `EINVAL`.
//!
//! One deviation: an INTx `UNMASK` eventfd (Linux's `virqfd`, signalled by KVM's resampler, served
//! from a kernel wait-queue callback) is not served: `ENOTTY`, as the `MASK` one is in Linux; `-1`
//! (unregistering) succeeds.
//!
//! Locks, as Linux's: the device's `igate` (held by the caller) serialises the handlers; the
//! state itself is under the `irqlock` the model's interrupts take ([`IrqSink::trigger`]). The
//! model is never called with the `irqlock` held.

use super::{DeviceError, IrqMode, IrqSink};
use crate::uapi::irqs::{IrqAction, IrqData, SetIrqs};
use parking_lot::Mutex;
use std::os::fd::{AsRawFd, OwnedFd};
use uvfio_abi::vfio::{
    VFIO_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE, VFIO_IRQ_INFO_NORESIZE,
    VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_REQ_IRQ_INDEX,
};
use uvfio_iommufd::ctx::UserMemory;

/// What `/proc/self/fd/N` links to for an eventfd.
const EVENTFD_LINK: &str = "anon_inode:[eventfd]";

/// An eventfd the user passed, held by the device (`struct eventfd_ctx`): a duplicate of the
/// caller's descriptor, so the caller may close theirs.
#[derive(Debug)]
struct Eventfd(OwnedFd);

impl Eventfd {
    /// `eventfd_ctx_fdget(fd)`: `EBADF` for an fd that names no open file, `EINVAL` for a file
    /// that is not an eventfd (`if (file->f_op != &eventfd_fops) return ERR_PTR(-EINVAL);`).
    fn fdget(user: &dyn UserMemory, fd: i32) -> Result<Self, DeviceError> {
        let file = user.file(fd).map_err(|_| DeviceError::BadFd(fd))?;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
        match link {
            Ok(target) if target.as_os_str() == EVENTFD_LINK => Ok(Eventfd(file)),
            _ => Err(DeviceError::NotAnEventfd(fd)),
        }
    }

    /// `eventfd_signal()`: adds 1 to the counter (what `EventFd::write(1)` writes). Linux's
    /// signal cannot fail; a counter at its maximum on a non-blocking eventfd loses the signal
    /// here too.
    fn signal(&self) {
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }
}

/// `ctx[0]` of INTx.
#[derive(Debug, Default)]
struct Intx {
    /// `ctx->trigger`.
    trigger: Option<Eventfd>,
    /// `ctx->masked`.
    masked: bool,
    /// An interrupt raised while masked (the device's interrupt status, which
    /// `pci_check_and_unmask_intx()` finds at `UNMASK`).
    pending: bool,
}

impl Intx {
    /// `vfio_send_intx_eventfd()`.
    fn send(&self) {
        if let Some(t) = &self.trigger {
            t.signal();
        }
    }
}

/// `vdev->irq_type` and the contexts of its vectors.
#[derive(Debug, Default)]
enum Active {
    /// `VFIO_PCI_NUM_IRQS`: nothing enabled.
    #[default]
    None,
    /// INTx.
    Intx(Intx),
    /// MSI or MSI-X: the eventfd of each enabled vector, if it has one.
    Msi {
        /// MSI-X rather than MSI.
        msix: bool,
        /// One slot per vector enabled.
        vectors: Vec<Option<Eventfd>>,
    },
}

#[derive(Debug, Default)]
struct Inner {
    active: Active,
    /// `vdev->err_trigger`.
    err: Option<Eventfd>,
    /// `vdev->req_trigger`.
    req: Option<Eventfd>,
}

/// A device's interrupt state: the handlers of `SET_IRQS` and the model's [`IrqSink`].
#[derive(Debug, Default)]
pub(super) struct Irqs {
    /// `vdev->irqlock`.
    inner: Mutex<Inner>,
}

/// `VFIO_DEVICE_GET_IRQ_INFO`'s flags for `index` (`vfio_pci_ioctl_get_irq_info()`):
/// `info.flags = VFIO_IRQ_INFO_EVENTFD;` then `MASKABLE | AUTOMASKED` for INTx, `NORESIZE` for
/// every other index.
pub(super) fn irq_info_flags(index: u32) -> u32 {
    if index == VFIO_PCI_INTX_IRQ_INDEX {
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED
    } else {
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE
    }
}

/// What a handler did to the interrupt mode, for the model to follow once the `irqlock` is
/// released.
type ModeChange = Option<IrqMode>;

fn state(index: u32, reason: &'static str) -> DeviceError {
    DeviceError::IrqState { index, reason }
}

/// The first byte of `DATA_BOOL`, as the handlers read it (`*(uint8_t *)data`).
fn first_bool(b: &[u8]) -> bool {
    b.first().is_some_and(|&v| v != 0)
}

impl Irqs {
    /// The mode enabled now.
    pub(super) fn mode(&self) -> IrqMode {
        match &self.inner.lock().active {
            Active::None => IrqMode::None,
            Active::Intx(_) => IrqMode::Intx,
            Active::Msi { msix, vectors } => {
                let vectors = u32::try_from(vectors.len()).unwrap_or(u32::MAX);
                if *msix {
                    IrqMode::Msix { vectors }
                } else {
                    IrqMode::Msi { vectors }
                }
            }
        }
    }

    /// The last close: whatever is enabled is disabled and the ERR and REQ eventfds released.
    /// Returns whether a mode was enabled.
    pub(super) fn disable_all(&self) -> bool {
        let mut inner = self.inner.lock();
        let was = !matches!(inner.active, Active::None);
        *inner = Inner::default();
        was
    }

    /// `vfio_pci_set_irqs_ioctl()` after decoding, with `has_err` for `pci_is_pcie()`. Returns
    /// the mode the model must now be told, if it changed.
    pub(super) fn set_irqs(
        &self,
        cmd: &SetIrqs,
        has_err: bool,
        user: &dyn UserMemory,
    ) -> Result<ModeChange, DeviceError> {
        let index = cmd.index;
        let none = |what| DeviceError::NoIrqHandler { index, what };
        let mut inner = self.inner.lock();
        match (index, cmd.action) {
            (VFIO_PCI_INTX_IRQ_INDEX, IrqAction::Mask) => intx_mask(&mut inner, cmd).map(|()| None),
            (VFIO_PCI_INTX_IRQ_INDEX, IrqAction::Unmask) => intx_unmask(&mut inner, cmd).map(|()| None),
            (VFIO_PCI_INTX_IRQ_INDEX, IrqAction::Trigger) => intx_trigger(&mut inner, cmd, user),
            (VFIO_PCI_MSI_IRQ_INDEX | VFIO_PCI_MSIX_IRQ_INDEX, IrqAction::Trigger) => {
                msi_trigger(&mut inner, cmd, user)
            }
            // case VFIO_IRQ_SET_ACTION_MASK: case VFIO_IRQ_SET_ACTION_UNMASK:
            //         /* XXX Need masking support exported */
            (VFIO_PCI_MSI_IRQ_INDEX | VFIO_PCI_MSIX_IRQ_INDEX, _) => Err(none("MSI masking")),
            // if (pci_is_pcie(vdev->pdev)) func = vfio_pci_set_err_trigger;
            (VFIO_PCI_ERR_IRQ_INDEX, IrqAction::Trigger) if has_err => {
                trigger_single(&mut inner.err, cmd, user).map(|()| None)
            }
            (VFIO_PCI_REQ_IRQ_INDEX, IrqAction::Trigger) => {
                trigger_single(&mut inner.req, cmd, user).map(|()| None)
            }
            _ => Err(none("this index and action")),
        }
    }
}

/// `vfio_pci_set_intx_mask()`.
fn intx_mask(inner: &mut Inner, cmd: &SetIrqs) -> Result<(), DeviceError> {
    let index = cmd.index;
    // if (!is_intx(vdev) || start != 0 || count != 1) return -EINVAL;
    let Active::Intx(intx) = &mut inner.active else {
        return Err(state(index, "INTx is not enabled"));
    };
    if cmd.start != 0 || cmd.count != 1 {
        return Err(state(index, "INTx masking takes start 0, count 1"));
    }
    let mask = match &cmd.data {
        IrqData::None => true,
        IrqData::Bool(b) => first_bool(b),
        // return -ENOTTY; /* XXX implement me */
        IrqData::Eventfd(_) => {
            return Err(DeviceError::NoIrqHandler {
                index,
                what: "INTx mask eventfd",
            });
        }
    };
    // __vfio_pci_intx_mask(): if (!ctx->masked) { ... ctx->masked = true; }
    if mask {
        intx.masked = true;
    }
    Ok(())
}

/// `vfio_pci_set_intx_unmask()`.
fn intx_unmask(inner: &mut Inner, cmd: &SetIrqs) -> Result<(), DeviceError> {
    let index = cmd.index;
    // if (!is_intx(vdev) || start != 0 || count != 1) return -EINVAL;
    let Active::Intx(intx) = &mut inner.active else {
        return Err(state(index, "INTx is not enabled"));
    };
    if cmd.start != 0 || cmd.count != 1 {
        return Err(state(index, "INTx unmasking takes start 0, count 1"));
    }
    let unmask = match &cmd.data {
        IrqData::None => true,
        IrqData::Bool(b) => first_bool(b),
        // if (fd >= 0) return vfio_virqfd_enable(...); vfio_virqfd_disable(&ctx->unmask);
        // (deviation, see the module doc: only the -1 that unregisters is served)
        IrqData::Eventfd(fds) => {
            if fds.first().is_some_and(|&fd| fd >= 0) {
                return Err(DeviceError::NoIrqHandler {
                    index,
                    what: "INTx unmask eventfd",
                });
            }
            false
        }
    };
    if unmask {
        unmask_intx(intx);
    }
    Ok(())
}

/// `__vfio_pci_intx_unmask()`: `vfio_pci_intx_unmask_handler()` unmasks, unless the device's
/// interrupt is pending (`pci_check_and_unmask_intx()` fails), which is sent again and leaves the
/// line masked (`ctx->masked = (ret > 0)`).
fn unmask_intx(intx: &mut Intx) {
    if !intx.masked {
        return;
    }
    if intx.pending {
        intx.pending = false;
        intx.send();
    } else {
        intx.masked = false;
    }
}

/// `vfio_pci_set_intx_trigger()`.
fn intx_trigger(inner: &mut Inner, cmd: &SetIrqs, user: &dyn UserMemory) -> Result<ModeChange, DeviceError> {
    let index = cmd.index;
    let is_intx = matches!(inner.active, Active::Intx(_));
    let is_none = matches!(inner.active, Active::None);
    // if (is_intx(vdev) && !count && (flags & VFIO_IRQ_SET_DATA_NONE)) {
    //         vfio_intx_disable(vdev); return 0; }
    if is_intx && cmd.count == 0 && cmd.data == IrqData::None {
        inner.active = Active::None;
        return Ok(Some(IrqMode::None));
    }
    // if (!(is_intx(vdev) || is_irq_none(vdev)) || start != 0 || count != 1) return -EINVAL;
    if !(is_intx || is_none) {
        return Err(state(index, "another interrupt type is enabled"));
    }
    if cmd.start != 0 || cmd.count != 1 {
        return Err(state(index, "INTx takes start 0, count 1"));
    }
    match &cmd.data {
        IrqData::Eventfd(fds) => {
            // if (fd >= 0) { trigger = eventfd_ctx_fdget(fd); if (IS_ERR(trigger)) return ...; }
            let fd = fds.first().copied().unwrap_or(-1);
            let trigger = if fd >= 0 {
                Some(Eventfd::fdget(user, fd)?)
            } else {
                None
            };
            // if (is_intx(vdev)) ret = vfio_intx_set_signal(vdev, trigger);
            if let Active::Intx(intx) = &mut inner.active {
                intx.trigger = trigger;
                return Ok(None);
            }
            // else ret = vfio_intx_enable(vdev, trigger); (ctx->masked = vdev->virq_disabled)
            inner.active = Active::Intx(Intx {
                trigger,
                masked: false,
                pending: false,
            });
            Ok(Some(IrqMode::Intx))
        }
        // if (!is_intx(vdev)) return -EINVAL;
        _ if !is_intx => Err(state(index, "INTx is not enabled")),
        IrqData::None => {
            if let Active::Intx(intx) = &inner.active {
                intx.send();
            }
            Ok(None)
        }
        IrqData::Bool(b) => {
            if let Active::Intx(intx) = &inner.active
                && first_bool(b)
            {
                intx.send();
            }
            Ok(None)
        }
    }
}

/// `vfio_pci_set_msi_trigger()` (MSI or MSI-X, as `cmd.index` says).
fn msi_trigger(inner: &mut Inner, cmd: &SetIrqs, user: &dyn UserMemory) -> Result<ModeChange, DeviceError> {
    let index = cmd.index;
    let msix = index == VFIO_PCI_MSIX_IRQ_INDEX;
    let is_this = matches!(&inner.active, Active::Msi { msix: m, .. } if *m == msix);
    let is_none = matches!(inner.active, Active::None);
    // if (irq_is(vdev, index) && !count && (flags & VFIO_IRQ_SET_DATA_NONE)) {
    //         vfio_msi_disable(vdev, msix); return 0; }
    if is_this && cmd.count == 0 && cmd.data == IrqData::None {
        inner.active = Active::None;
        return Ok(Some(IrqMode::None));
    }
    // if (!(irq_is(vdev, index) || is_irq_none(vdev))) return -EINVAL;
    if !(is_this || is_none) {
        return Err(state(index, "another interrupt type is enabled"));
    }
    let start = cmd.start as usize;
    if let IrqData::Eventfd(fds) = &cmd.data {
        // if (vdev->irq_type == index) return vfio_msi_set_block(vdev, start, count, fds, msix);
        if let Active::Msi { vectors, .. } = &mut inner.active {
            set_block(index, vectors, start, fds, user)?;
            return Ok(None);
        }
        // ret = vfio_msi_enable(vdev, start + count, msix); → pci_alloc_irq_vectors(pdev, 1,
        // nvec, flag), -ERANGE for nvec 0. (start + count fits: the decoder checked it against
        // the index's count.)
        let nvec = cmd.start.saturating_add(cmd.count);
        if nvec == 0 {
            return Err(DeviceError::NoVectors { index });
        }
        let mut vectors: Vec<Option<Eventfd>> = (0..nvec).map(|_| None).collect();
        // ret = vfio_msi_set_block(...); if (ret) vfio_msi_disable(vdev, msix);
        set_block(index, &mut vectors, start, fds, user)?;
        inner.active = Active::Msi { msix, vectors };
        let mode = if msix {
            IrqMode::Msix { vectors: nvec }
        } else {
            IrqMode::Msi { vectors: nvec }
        };
        return Ok(Some(mode));
    }
    // if (!irq_is(vdev, index)) return -EINVAL;
    let Active::Msi { vectors, .. } = &inner.active else {
        return Err(state(index, "not enabled"));
    };
    // for (i = start; i < start + count; i++) { ctx = vfio_irq_ctx_get(vdev, i); if (!ctx)
    // continue; ... eventfd_signal(ctx->trigger) for DATA_NONE, or where bools[i - start]. }
    for i in 0..cmd.count as usize {
        let fire = match &cmd.data {
            IrqData::Bool(b) => b.get(i).is_some_and(|&v| v != 0),
            _ => true,
        };
        if let Some(Some(t)) = vectors.get(start + i)
            && fire
        {
            t.signal();
        }
    }
    Ok(None)
}

/// `vfio_msi_set_block()`: each vector from `start` gets its fd (`-1` or any negative: none); on
/// a failure the vectors from `start` up to the failing one are left without eventfd.
fn set_block(
    index: u32,
    vectors: &mut [Option<Eventfd>],
    start: usize,
    fds: &[i32],
    user: &dyn UserMemory,
) -> Result<(), DeviceError> {
    for (i, &fd) in fds.iter().enumerate() {
        let j = start + i;
        if let Err(e) = set_vector_signal(index, vectors, j, fd, user) {
            // for (i = start; i < j; i++) vfio_msi_set_vector_signal(vdev, i, -1, msix);
            // (j is one past the failing vector there)
            for slot in vectors.iter_mut().take(j + 1).skip(start) {
                *slot = None;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// `vfio_msi_set_vector_signal()`: the vector's old eventfd goes; a vector past the ones enabled
/// cannot take a new one (`vfio_msi_alloc_irq()`: `pci_irq_vector()` is `-EINVAL` for it, with no
/// dynamic MSI-X here).
fn set_vector_signal(
    index: u32,
    vectors: &mut [Option<Eventfd>],
    vector: usize,
    fd: i32,
    user: &dyn UserMemory,
) -> Result<(), DeviceError> {
    if let Some(slot) = vectors.get_mut(vector) {
        *slot = None;
    }
    // if (fd < 0) return 0;
    if fd < 0 {
        return Ok(());
    }
    let Some(slot) = vectors.get_mut(vector) else {
        return Err(state(index, "vector past the ones enabled"));
    };
    *slot = Some(Eventfd::fdget(user, fd)?);
    Ok(())
}

/// `vfio_pci_set_err_trigger()` / `vfio_pci_set_req_trigger()` with
/// `vfio_pci_set_ctx_trigger_single()`.
fn trigger_single(
    slot: &mut Option<Eventfd>,
    cmd: &SetIrqs,
    user: &dyn UserMemory,
) -> Result<(), DeviceError> {
    let index = cmd.index;
    // if (index != ... || start != 0 || count > 1) return -EINVAL;
    if cmd.start != 0 || cmd.count > 1 {
        return Err(state(index, "takes start 0, count 0 or 1"));
    }
    match &cmd.data {
        // /* DATA_NONE/DATA_BOOL enables loopback testing */
        // if (*ctx) { if (count) eventfd_signal(*ctx); else { put; *ctx = NULL; } return 0; }
        IrqData::None => {
            if let Some(t) = slot.as_ref() {
                if cmd.count > 0 {
                    t.signal();
                } else {
                    *slot = None;
                }
                return Ok(());
            }
            // (falls through to the final return -EINVAL)
            Err(state(index, "no eventfd registered"))
        }
        // if (!count) return -EINVAL; if (trigger && *ctx) eventfd_signal(*ctx); return 0;
        IrqData::Bool(b) => {
            if cmd.count == 0 {
                return Err(state(index, "DATA_BOOL takes count 1"));
            }
            if let Some(t) = slot.as_ref()
                && first_bool(b)
            {
                t.signal();
            }
            Ok(())
        }
        // if (!count) return -EINVAL; fd == -1: put, NULL; fd >= 0: replace; else nothing.
        IrqData::Eventfd(fds) => {
            if cmd.count == 0 {
                return Err(state(index, "DATA_EVENTFD takes count 1"));
            }
            match fds.first().copied().unwrap_or(-1) {
                -1 => *slot = None,
                fd if fd >= 0 => *slot = Some(Eventfd::fdget(user, fd)?),
                _ => {}
            }
            Ok(())
        }
    }
}

impl IrqSink for Irqs {
    /// The device raises an interrupt: `vfio_intx_handler()` (masks INTx and signals, or, masked
    /// already, leaves the interrupt pending for `UNMASK`), `vfio_msihandler()` (signals the
    /// vector's eventfd), `vfio_pci_core_request()` / AER's `eventfd_signal(err_trigger)`. An
    /// interrupt of a mode that is not enabled is lost, as the function does not send it.
    fn trigger(&self, index: u32, vector: u32) {
        let mut inner = self.inner.lock();
        match index {
            VFIO_PCI_INTX_IRQ_INDEX => {
                if let Active::Intx(intx) = &mut inner.active
                    && vector == 0
                {
                    if intx.masked {
                        intx.pending = true;
                    } else {
                        intx.masked = true;
                        intx.send();
                    }
                }
            }
            VFIO_PCI_MSI_IRQ_INDEX | VFIO_PCI_MSIX_IRQ_INDEX => {
                if let Active::Msi { msix, vectors } = &inner.active
                    && *msix == (index == VFIO_PCI_MSIX_IRQ_INDEX)
                    && let Some(Some(t)) = vectors.get(vector as usize)
                {
                    t.signal();
                }
            }
            VFIO_PCI_ERR_IRQ_INDEX => {
                if let Some(t) = &inner.err {
                    t.signal();
                }
            }
            VFIO_PCI_REQ_IRQ_INDEX => {
                if let Some(t) = &inner.req {
                    t.signal();
                }
            }
            _ => {}
        }
    }
}
