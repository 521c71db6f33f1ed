//! The device side's own API: fd offsets (`VFIO_PCI_INDEX_TO_OFFSET()`), the errnos of device and
//! model errors, the open count, the limits the decoders read, and interrupts raised from another
//! thread while `SET_IRQS` changes the mode (no lock taken in the wrong order).

mod device_support;

use device_support::model::TestDevice;
use device_support::{ProcessFds, eventfd, fired, raw};
use rustix::io::Errno;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use uvfio_abi::vfio::{
    VFIO_DEVICE_SET_IRQS, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
    VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VfioIrqSet,
};
use uvfio_vfio::device::{
    DeviceError, DeviceOffset, IrqMode, ModelError, RegionOffset, VFIO_PCI_OFFSET_MASK, VfioDevice,
};
use uvfio_vfio::uapi::{DeviceLimits, IoctlArg, decode_device};
use zerocopy::IntoBytes;

#[test]
fn fd_offsets_carry_the_region_index_above_bit_40() {
    let off = DeviceOffset::of_region(7, RegionOffset::new(0x40)).unwrap();
    assert_eq!(off.raw(), (7 << 40) | 0x40);
    assert_eq!(
        (off.region_index(), off.region_offset()),
        (7, RegionOffset::new(0x40))
    );
    assert_eq!(
        DeviceOffset::of_region(2, RegionOffset::new(VFIO_PCI_OFFSET_MASK + 1)),
        None
    );
    let top = DeviceOffset::new(u64::MAX);
    assert_eq!(top.region_index(), (1 << 24) - 1);
    assert_eq!(top.region_offset().raw(), VFIO_PCI_OFFSET_MASK);
}

#[test]
fn device_and_model_errors_have_linux_errnos() {
    let io = |errno: Errno| ModelError::Io(std::io::Error::from_raw_os_error(errno.raw_os_error()));
    let cases = [
        (DeviceError::NoReset, Errno::INVAL),
        (DeviceError::BadFd(9), Errno::BADF),
        (DeviceError::NotAnEventfd(9), Errno::INVAL),
        (DeviceError::NoVectors { index: 1 }, Errno::RANGE),
        (DeviceError::NoIrqHandler { index: 1, what: "x" }, Errno::NOTTY),
        (DeviceError::Bare { op: "read" }, Errno::INVAL),
        (DeviceError::Model(io(Errno::NOMEM)), Errno::NOMEM),
        (
            DeviceError::Model(ModelError::Io(std::io::Error::other("no errno"))),
            Errno::IO,
        ),
        (
            DeviceError::Model(ModelError::Reset(std::io::Error::from_raw_os_error(11))),
            Errno::AGAIN,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.errno(), want, "{e:?}");
    }
}

#[test]
fn open_counts_and_the_first_and_last_close() {
    let model = TestDevice::new();
    let vfio = VfioDevice::new(model.model());
    assert!(Arc::ptr_eq(vfio.model(), &model.model()));
    assert_eq!(
        (vfio.open_count(), model.resets()),
        (0, 0),
        "registering neither opens nor resets"
    );
    let a = vfio.open();
    let b = vfio.open();
    assert_eq!((vfio.open_count(), model.resets()), (2, 1));
    assert!(Arc::ptr_eq(a.device(), &vfio));
    drop(a);
    assert_eq!((vfio.open_count(), model.resets()), (1, 1));
    drop(b);
    assert_eq!((vfio.open_count(), model.resets()), (0, 2));
    assert_eq!(model.modes(), [], "nothing was enabled: the model is not told");
}

#[test]
fn the_decoders_read_the_devices_limits() {
    let model = TestDevice::new();
    let vfio = VfioDevice::new(model.model());
    assert_eq!(vfio.num_irq_indexes(), VFIO_PCI_NUM_IRQS);
    let counts: Vec<u32> = (0..=VFIO_PCI_NUM_IRQS).map(|i| vfio.irq_count(i)).collect();
    assert_eq!(counts, [1, 4, 8, 0, 1, 0]);
    assert!(!vfio.pasid_capable());
    // SET_IRQS of MSI vectors 3..5: past the model's 4, refused by the decoder (EINVAL).
    let hdr = VfioIrqSet {
        argsz: 20,
        flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 3,
        count: 2,
    };
    let mut bytes = hdr.as_bytes().to_vec();
    let e = decode_device(VFIO_DEVICE_SET_IRQS, &IoctlArg::Buffer(&mut bytes), vfio.as_ref()).unwrap_err();
    assert_eq!(e.errno(), Errno::INVAL);
}

#[test]
fn interrupts_raised_from_another_thread_while_the_mode_changes() {
    let model = TestDevice::new();
    let vfio = VfioDevice::new(model.model());
    let open = vfio.open();
    let e = eventfd();
    let stop = Arc::new(AtomicBool::new(false));
    let raiser = {
        let (model, stop) = (Arc::clone(&model), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                model.raise(VFIO_PCI_MSIX_IRQ_INDEX, 0);
                model.raise(VFIO_PCI_INTX_IRQ_INDEX, 0);
            }
        })
    };
    let set = |flags: u32, index: u32, count: u32, fd: Option<i32>| {
        let data: Vec<u8> = fd.map(|f| f.to_ne_bytes().to_vec()).unwrap_or_default();
        let hdr = VfioIrqSet {
            argsz: (20 + data.len()) as u32,
            flags,
            index,
            start: 0,
            count,
        };
        let mut bytes = hdr.as_bytes().to_vec();
        bytes.extend_from_slice(&data);
        let cmd = decode_device(VFIO_DEVICE_SET_IRQS, &IoctlArg::Buffer(&mut bytes), vfio.as_ref()).unwrap();
        vfio.ioctl(cmd, IoctlArg::Buffer(&mut bytes), &ProcessFds)
            .unwrap();
    };
    let eventfd_trigger = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    let none_trigger = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    // How many interrupts arrive depends on the interleaving; that nothing deadlocks, and that
    // the state ends disabled, is the point.
    for _ in 0..200 {
        set(eventfd_trigger, VFIO_PCI_MSIX_IRQ_INDEX, 1, Some(raw(&e)));
        set(none_trigger, VFIO_PCI_MSIX_IRQ_INDEX, 0, None);
        set(eventfd_trigger, VFIO_PCI_INTX_IRQ_INDEX, 1, Some(raw(&e)));
        set(none_trigger, VFIO_PCI_INTX_IRQ_INDEX, 0, None);
        fired(&e);
    }
    stop.store(true, Ordering::Relaxed);
    raiser.join().unwrap();
    assert_eq!(vfio.irq_mode(), IrqMode::None);
    drop(open);
    assert_eq!(model.mode(), IrqMode::None);
}
