//! The capability list as a driver walks it, and each capability's registers.

mod common;

use common::*;
use uvfio_pci::regs::*;
use uvfio_pci::*;

/// Walks the list with config reads only, as Linux's `pci_find_capability` does.
fn walk_by_config_reads(f: &PciFunction) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    if read(f, PCI_STATUS, 2) as u16 & PCI_STATUS_CAP_LIST == 0 {
        return out;
    }
    let mut pos = read(f, PCI_CAPABILITY_LIST, 1) as u8 & !3;
    while pos >= 0x40 && out.len() < 48 {
        let header = read(f, u16::from(pos), 2);
        out.push((header as u8, pos));
        pos = (header >> 8) as u8 & !3;
    }
    out
}

#[test]
fn list_walk_from_capability_pointer() {
    let f = full_function();
    let expect = vec![
        (PCI_CAP_ID_PM, 0x40),
        (PCI_CAP_ID_MSI, 0x48),
        (PCI_CAP_ID_MSIX, 0x60),
        (PCI_CAP_ID_EXP, 0x6c),
    ];
    assert_eq!(walk_by_config_reads(&f), expect);
    let entries: Vec<(u8, u8)> = f.capabilities().iter().map(|e| (e.id, e.offset)).collect();
    assert_eq!(entries, expect);
    assert_eq!(f.find_capability(PCI_CAP_ID_MSIX), Some(MSIX as u8));
    assert_eq!(f.find_capability(PCI_CAP_ID_VNDR), None);
    assert!(expect.iter().all(|&(_, off)| off % 4 == 0), "DWORD aligned");
    // The list is read-only: pointers and IDs ignore writes.
    write(&f, PCI_CAPABILITY_LIST, 1, 0x80);
    for &(_, off) in &expect {
        write(&f, u16::from(off), 2, 0xffff);
    }
    assert_eq!(walk_by_config_reads(&f), expect);
}

#[test]
fn declaration_order_and_vendor_capabilities() {
    let f = PciFunction::builder(header())
        .vendor(vec![0x01, 0x02])
        .msi(MsiConfig {
            vectors: 1,
            address64: false,
            per_vector_mask: false,
        })
        .vendor(vec![0x03; 13])
        .build()
        .unwrap();
    let entries: Vec<(u8, u8)> = f.capabilities().iter().map(|e| (e.id, e.offset)).collect();
    assert_eq!(
        entries,
        vec![
            (PCI_CAP_ID_VNDR, 0x40),
            (PCI_CAP_ID_MSI, 0x48),
            (PCI_CAP_ID_VNDR, 0x54)
        ]
    );
    assert_eq!(
        read(&f, 0x40, 4),
        0x0105_4809,
        "id, next, length 5, first data byte"
    );
    assert_eq!(read(&f, 0x56, 1), 16, "length byte");
}

#[test]
fn capability_errors() {
    let pm = PmConfig::default();
    let err = PciFunction::builder(header())
        .power_management(pm)
        .power_management(pm)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::Capabilities(CapError::Duplicate { id: PCI_CAP_ID_PM })
    );
    let err = PciFunction::builder(header())
        .vendor(vec![0; 150])
        .vendor(vec![0; 40])
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        BuildError::Capabilities(CapError::NoRoom {
            id: PCI_CAP_ID_VNDR,
            ..
        })
    ));
    let msix = MsixConfig {
        table_size: 4,
        table_bar: 3,
        table_offset: 0,
        pba_bar: 3,
        pba_offset: 0x100,
    };
    let err = PciFunction::builder(header())
        .bar(3, BarConfig::io(0x100))
        .msix(msix)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::Capabilities(CapError::Msix(MsixError::NotMemoryBar { bar: 3 }))
    );
    let err = full_builder().pcie(PcieConfig::default()).build().unwrap_err();
    assert_eq!(
        err,
        BuildError::Capabilities(CapError::Duplicate { id: PCI_CAP_ID_EXP })
    );
}

#[test]
fn power_management_registers() {
    let f = full_function();
    assert_eq!(read(&f, PM + PCI_PM_PMC, 2), 3, "version 3, no D1/D2/PME");
    let pmcsr = PM + PCI_PM_CTRL;
    assert_eq!(read(&f, pmcsr, 2), u32::from(PCI_PM_CTRL_NO_SOFT_RESET));
    write(&f, pmcsr, 2, 0xffff);
    assert_eq!(
        read(&f, pmcsr, 2),
        u32::from(PCI_PM_CTRL_NO_SOFT_RESET | PCI_D3HOT),
        "only PowerState is RW"
    );
    assert_eq!(f.power_state(), PowerState::D3Hot);
    write(&f, pmcsr, 2, u32::from(PCI_D2));
    assert_eq!(f.power_state(), PowerState::D3Hot, "unsupported state discarded");
    // D3hot -> D0 with No_Soft_Reset: configuration is preserved.
    write(&f, PCI_BASE_ADDRESS_2, 4, 0xfebe_0000);
    write(&f, pmcsr, 2, u32::from(PCI_D0));
    assert_eq!(f.power_state(), PowerState::D0);
    assert_eq!(f.bar(2).map(|b| b.address), Some(0xfebe_0000));
}

#[test]
fn d3hot_to_d0_without_no_soft_reset_resets() {
    let f = PciFunction::builder(header())
        .bar(0, BarConfig::memory32(0x1000))
        .power_management(PmConfig { no_soft_reset: false })
        .build()
        .unwrap();
    assert_eq!(read(&f, 0x44, 2), 0);
    write(&f, PCI_COMMAND, 2, u32::from(PCI_COMMAND_MEMORY));
    write(&f, PCI_BASE_ADDRESS_0, 4, 0xfebf_0000);
    write(&f, 0x44, 2, u32::from(PCI_D3HOT));
    assert_eq!(
        f.bar(0).map(|b| b.address),
        Some(0xfebf_0000),
        "D0 -> D3hot keeps context"
    );
    write(&f, 0x44, 2, u32::from(PCI_D0));
    assert_eq!(
        f.bar(0).map(|b| b.address),
        Some(0),
        "internal reset on D3hot -> D0"
    );
    assert_eq!(f.command(), Command::empty());
}

#[test]
fn msi_registers() {
    let f = full_function();
    let flags = MSI + PCI_MSI_FLAGS;
    // 4 vectors requested (MMC = 2), 64-bit, per-vector masking.
    assert_eq!(
        read(&f, flags, 2),
        u32::from(PCI_MSI_FLAGS_MASKBIT | PCI_MSI_FLAGS_64BIT | 2 << 1)
    );
    write(&f, MSI + PCI_MSI_ADDRESS_LO, 4, 0xfee0_100f);
    write(&f, MSI + PCI_MSI_ADDRESS_HI, 4, 0x0000_0002);
    write(&f, MSI + PCI_MSI_DATA_64, 4, 0xdead_4020);
    write(&f, MSI + PCI_MSI_MASK_64, 4, 0xffff_ffff);
    write(&f, MSI + PCI_MSI_PENDING_64, 4, 0xffff_ffff);
    let state = f.msi_state().unwrap();
    assert_eq!(
        state,
        MsiState {
            enabled: false,
            vectors_capable: 4,
            vectors_enabled: 1,
            address: 0x2_fee0_100c,
            data: 0x4020,
            mask: Some(0xf),
            pending: Some(0),
        }
    );
    assert_eq!(read(&f, MSI + PCI_MSI_DATA_64, 4), 0x4020, "bits 31:16 reserved");
    // Enable with MME = 2 (4 vectors), then ask for 32: clamped to 4.
    write(&f, flags, 2, u32::from(PCI_MSI_FLAGS_ENABLE | 2 << 4));
    assert_eq!(
        f.msi_state().map(|s| (s.enabled, s.vectors_enabled)),
        Some((true, 4))
    );
    write(&f, flags, 2, u32::from(PCI_MSI_FLAGS_ENABLE | 5 << 4));
    assert_eq!(read(&f, flags, 2) & u32::from(PCI_MSI_FLAGS_QSIZE), 2 << 4);
    write(&f, flags, 2, u32::from(PCI_MSI_FLAGS_ENABLE | 1 << 4));
    assert_eq!(f.msi_state().map(|s| s.vectors_enabled), Some(2));
    // A byte write of the high byte of Message Control (RO) leaves the enable alone.
    write(&f, flags + 1, 1, 0xff);
    assert_eq!(f.msi_state().map(|s| s.enabled), Some(true));
}

#[test]
fn msi_32bit_layout_without_masking() {
    let f = PciFunction::builder(header())
        .msi(MsiConfig {
            vectors: 1,
            address64: false,
            per_vector_mask: false,
        })
        .build()
        .unwrap();
    let flags = read(&f, 0x42, 2) as u16;
    assert_eq!(
        flags & (PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT | PCI_MSI_FLAGS_QMASK),
        0
    );
    write(&f, 0x40 + PCI_MSI_DATA_32, 2, 0x0041);
    write(&f, 0x40 + PCI_MSI_MASK_32, 4, 0xffff_ffff);
    assert_eq!(read(&f, 0x40 + PCI_MSI_DATA_32, 2), 0x41);
    assert_eq!(
        read(&f, 0x40 + PCI_MSI_MASK_32, 4),
        0,
        "no mask register: reserved"
    );
    let state = f.msi_state().unwrap();
    assert_eq!((state.data, state.mask, state.pending), (0x41, None, None));
}

#[test]
fn msix_capability_registers() {
    let f = full_function();
    assert_eq!(read(&f, MSIX + PCI_MSIX_FLAGS, 2), u32::from(MSIX_VECTORS - 1));
    assert_eq!(read(&f, MSIX + PCI_MSIX_TABLE, 4), 0x2000);
    assert_eq!(read(&f, MSIX + PCI_MSIX_PBA, 4), 0x3000);
    write(&f, MSIX + PCI_MSIX_FLAGS, 2, 0xffff);
    assert_eq!(
        read(&f, MSIX + PCI_MSIX_FLAGS, 2),
        u32::from(0xc000 | (MSIX_VECTORS - 1))
    );
    assert_eq!(
        f.msix_state(),
        Some(MsixState {
            enabled: true,
            function_masked: true,
            table_size: MSIX_VECTORS
        })
    );
    write(&f, MSIX + PCI_MSIX_TABLE, 4, 0xffff_ffff);
    assert_eq!(read(&f, MSIX + PCI_MSIX_TABLE, 4), 0x2000);
    assert_eq!(
        f.msix_table_location(),
        Some(MsixLocation {
            bar: 0,
            offset: 0x2000,
            len: 0x100
        })
    );
    assert_eq!(
        f.msix_pba_location(),
        Some(MsixLocation {
            bar: 0,
            offset: 0x3000,
            len: 8
        })
    );
}

#[test]
fn pcie_capability_registers() {
    let f = full_function();
    assert_eq!(read(&f, EXP + PCI_EXP_FLAGS, 2), 0x0002, "version 2, endpoint");
    let devcap = read(&f, EXP + PCI_EXP_DEVCAP, 4);
    assert_eq!(devcap & PCI_EXP_DEVCAP_PAYLOAD, 1, "256-byte max payload");
    assert_ne!(devcap & PCI_EXP_DEVCAP_FLR, 0);
    assert_ne!(devcap & PCI_EXP_DEVCAP_RBER, 0);
    assert_eq!(read(&f, EXP + PCI_EXP_LNKCAP2, 4), PCI_EXP_LNKCAP2_SLS & 0x2);
}

#[test]
fn flr_through_device_control() {
    let f = full_function();
    let devctl = EXP + PCI_EXP_DEVCTL;
    enable_master(&f);
    write(&f, PCI_BASE_ADDRESS_2, 4, 0xfebe_0000);
    write(&f, MSIX + PCI_MSIX_FLAGS, 2, u32::from(PCI_MSIX_FLAGS_ENABLE));
    program_msix_entry(&f, 3, false);
    // MPS 256 and ASPM L1 are link settings an FLR keeps; CERE is not.
    write(&f, devctl, 2, u32::from(PCI_EXP_DEVCTL_CERE | 0x20));
    write(&f, EXP + PCI_EXP_LNKCTL, 2, 0x0002);
    write(&f, devctl, 2, u32::from(PCI_EXP_DEVCTL_BCR_FLR | 0x20));
    assert_eq!(f.command(), Command::empty());
    assert_eq!(f.bar(2).map(|b| b.address), Some(0));
    assert_eq!(f.msix_state().map(|s| s.enabled), Some(false));
    assert_eq!(
        f.msix_entry(3),
        Some(MsixEntry {
            address: 0,
            data: 0,
            masked: true
        })
    );
    assert_eq!(
        read(&f, devctl, 2),
        u32::from(PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_NOSNOOP_EN | 0x2000 | 0x20)
    );
    assert_eq!(read(&f, EXP + PCI_EXP_LNKCTL, 2), 0x0002);
    // Without FLR capability the bit is ignored.
    let no_flr = PciFunction::builder(header())
        .bar(0, BarConfig::memory32(0x1000))
        .pcie(PcieConfig {
            flr: false,
            ..PcieConfig::default()
        })
        .build()
        .unwrap();
    no_flr
        .config_write(u64::from(PCI_BASE_ADDRESS_0), 4, 0xfebf_0000)
        .unwrap();
    no_flr
        .config_write(
            0x40 + u64::from(PCI_EXP_DEVCTL),
            2,
            u32::from(PCI_EXP_DEVCTL_BCR_FLR),
        )
        .unwrap();
    assert_eq!(no_flr.bar(0).map(|b| b.address), Some(0xfebf_0000));
}
