//! BAR sizing and programming through a function's config space, the way Linux's `__pci_read_base`
//! does it: save, write all-ones, read the mask back, restore.

mod common;

use common::*;
use uvfio_pci::regs::*;
use uvfio_pci::*;

/// Sizes the (possibly 64-bit) BAR at `offset` and restores it; returns (size, type bits).
fn probe(f: &PciFunction, offset: u16) -> (u64, u32) {
    let low = read(f, offset, 4);
    let io = low & PCI_BASE_ADDRESS_SPACE_IO != 0;
    let is64 = !io && low & PCI_BASE_ADDRESS_MEM_TYPE_MASK == PCI_BASE_ADDRESS_MEM_TYPE_64;
    let high = if is64 { read(f, offset + 4, 4) } else { 0 };
    write(f, offset, 4, 0xffff_ffff);
    let mut mask = u64::from(read(f, offset, 4));
    write(f, offset, 4, low);
    if is64 {
        write(f, offset + 4, 4, 0xffff_ffff);
        mask |= u64::from(read(f, offset + 4, 4)) << 32;
        write(f, offset + 4, 4, high);
    } else {
        mask |= 0xffff_ffff_0000_0000;
    }
    let type_bits = if io { 0x3 } else { 0xf };
    let size = (!(mask & !type_bits)).wrapping_add(1);
    (size, (mask & type_bits) as u32)
}

#[test]
fn every_kind_sizes_per_spec() {
    let f = full_function();
    // BAR 0: 64-bit, 16 KiB, non-prefetchable.
    assert_eq!(
        probe(&f, PCI_BASE_ADDRESS_0),
        (0x4000, PCI_BASE_ADDRESS_MEM_TYPE_64)
    );
    // BAR 2: 32-bit, 4 KiB, prefetchable.
    assert_eq!(
        probe(&f, PCI_BASE_ADDRESS_2),
        (
            0x1000,
            PCI_BASE_ADDRESS_MEM_TYPE_32 | PCI_BASE_ADDRESS_MEM_PREFETCH
        )
    );
    // BAR 3: I/O, 32 bytes.
    assert_eq!(probe(&f, PCI_BASE_ADDRESS_3), (0x20, PCI_BASE_ADDRESS_SPACE_IO));
    // BAR 4: 64-bit, 8 GiB, prefetchable — the size lives in the upper half.
    assert_eq!(
        probe(&f, PCI_BASE_ADDRESS_4),
        (
            1 << 33,
            PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH
        )
    );
    // Probing restored everything.
    assert_eq!(
        f.bars().iter().map(|b| b.address).collect::<Vec<_>>(),
        vec![0, 0, 0, 0]
    );
}

#[test]
fn raw_readback_after_all_ones() {
    let f = full_function();
    let cases = [
        (PCI_BASE_ADDRESS_0, 0xffff_c004),
        (PCI_BASE_ADDRESS_1, 0xffff_ffff),
        (PCI_BASE_ADDRESS_2, 0xffff_f008),
        (PCI_BASE_ADDRESS_3, 0xffff_ffe1),
        (PCI_BASE_ADDRESS_4, 0x0000_000c),
        (PCI_BASE_ADDRESS_5, 0xffff_fffe),
    ];
    for (offset, expect) in cases {
        write(&f, offset, 4, 0xffff_ffff);
        assert_eq!(read(&f, offset, 4), expect, "BAR at {offset:#x}");
    }
}

#[test]
fn programmed_addresses_decode() {
    let f = full_function();
    write(&f, PCI_BASE_ADDRESS_0, 4, 0xfebf_0000 | 0xf); // type bits are RO: the 0xf is dropped
    write(&f, PCI_BASE_ADDRESS_1, 4, 0x0000_0001);
    write(&f, PCI_BASE_ADDRESS_2, 4, 0xfebe_1fff); // below-size bits read 0
    write(&f, PCI_BASE_ADDRESS_3, 4, 0x0000_c043);
    write(&f, PCI_BASE_ADDRESS_4, 4, 0xffff_ffff);
    write(&f, PCI_BASE_ADDRESS_5, 4, 0x0000_0004);
    let bar = |i| f.bar(i).unwrap();
    assert_eq!(
        bar(0),
        Bar {
            index: 0,
            kind: BarKind::Memory64,
            size: 0x4000,
            address: 0x1_febf_0000,
            prefetchable: false
        }
    );
    assert_eq!(
        bar(2),
        Bar {
            index: 2,
            kind: BarKind::Memory32,
            size: 0x1000,
            address: 0xfebe_1000,
            prefetchable: true
        }
    );
    assert_eq!(
        bar(3),
        Bar {
            index: 3,
            kind: BarKind::Io,
            size: 0x20,
            address: 0xc040,
            prefetchable: false
        }
    );
    assert_eq!(
        bar(4),
        Bar {
            index: 4,
            kind: BarKind::Memory64,
            size: 1 << 33,
            address: 0x4_0000_0000,
            prefetchable: true
        }
    );
    assert_eq!(read(&f, PCI_BASE_ADDRESS_0, 4), 0xfebf_0004);
    // Upper halves and nothing else are not BARs of their own.
    assert_eq!([f.bar(1), f.bar(5), f.bar(6)], [None, None, None]);
    assert_eq!(f.bars().len(), 4);
}

#[test]
fn sub_dword_writes_to_a_bar() {
    let f = full_function();
    write(&f, PCI_BASE_ADDRESS_2 + 2, 2, 0xfe00);
    write(&f, PCI_BASE_ADDRESS_2 + 1, 1, 0xff);
    assert_eq!(read(&f, PCI_BASE_ADDRESS_2, 4), 0xfe00_f008);
    write(&f, PCI_BASE_ADDRESS_2, 1, 0xff);
    assert_eq!(
        read(&f, PCI_BASE_ADDRESS_2, 4),
        0xfe00_f008,
        "the low byte is type bits and size"
    );
}

#[test]
fn unused_bars_and_rom() {
    let f = PciFunction::builder(header())
        .bar(1, BarConfig::memory32(0x100))
        .build()
        .unwrap();
    for offset in [
        PCI_BASE_ADDRESS_0,
        PCI_BASE_ADDRESS_2,
        PCI_BASE_ADDRESS_5,
        PCI_ROM_ADDRESS,
    ] {
        write(&f, offset, 4, 0xffff_ffff);
        assert_eq!(read(&f, offset, 4), 0, "offset {offset:#x}");
    }
    assert_eq!(f.rom(), None);

    let f = full_function();
    write(&f, PCI_ROM_ADDRESS, 4, 0xffff_fffe);
    assert_eq!(
        read(&f, PCI_ROM_ADDRESS, 4),
        0xffff_0000,
        "64 KiB ROM, bits 10:1 reserved"
    );
    write(&f, PCI_ROM_ADDRESS, 4, 0xfeb8_0001);
    assert_eq!(
        f.rom(),
        Some(RomBar {
            size: 0x1_0000,
            address: 0xfeb8_0000,
            enabled: true
        })
    );
}

#[test]
fn reset_unprograms_bars() {
    let f = full_function();
    write(&f, PCI_BASE_ADDRESS_0, 4, 0xfebf_0000);
    write(&f, PCI_BASE_ADDRESS_3, 4, 0xc000);
    write(&f, PCI_ROM_ADDRESS, 4, 0xfeb8_0001);
    f.reset();
    assert!(f.bars().iter().all(|b| b.address == 0));
    assert_eq!(f.rom().map(|r| (r.address, r.enabled)), Some((0, false)));
    assert_eq!(read(&f, PCI_BASE_ADDRESS_0, 4), PCI_BASE_ADDRESS_MEM_TYPE_64);
}

#[test]
fn builder_rejects_bad_bars() {
    let err = PciFunction::builder(header())
        .bar(0, BarConfig::memory32(0x1800))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::Bars(BarError::NotPowerOfTwo {
            index: 0,
            size: 0x1800
        })
    );
    let err = PciFunction::builder(header())
        .bar(5, BarConfig::memory64(0x1000))
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::Bars(BarError::NoUpperSlot));
    let err = PciFunction::builder(header()).rom(0x100).build().unwrap_err();
    assert_eq!(err, BuildError::Bars(BarError::RomSize { size: 0x100 }));
}
