//! `uvfio_abi::vfio` against rust-vmm's `vfio-bindings` (bindgen output of Linux v7.2
//! `include/uapi/linux/vfio.h`): every struct's size and field offsets, every constant, and every
//! request number (bindgen cannot expand `_IO`, so those are checked against `_IO(VFIO_TYPE,
//! VFIO_BASE + n)` with `n` from the header and the `_IOC_*` constants from the bindings).

#[macro_use]
mod common;

use uvfio_abi::vfio::*;
use vfio_bindings::bindings::vfio as b;

#[test]
fn container_group_and_device_structs() {
    same_layout!(VfioInfoCapHeader, b::vfio_info_cap_header {
        id => id, version => version, next => next,
    });
    same_layout!(VfioGroupStatus, b::vfio_group_status { argsz => argsz, flags => flags });
    same_layout!(VfioDeviceInfo, b::vfio_device_info {
        argsz => argsz, flags => flags, num_regions => num_regions, num_irqs => num_irqs,
        cap_offset => cap_offset, pad => pad,
    });
    same_layout!(VfioDeviceInfoCapPciAtomicComp, b::vfio_device_info_cap_pci_atomic_comp {
        header => header, flags => flags, reserved => reserved,
    });
    same_layout!(VfioRegionInfo, b::vfio_region_info {
        argsz => argsz, flags => flags, index => index, cap_offset => cap_offset,
        size => size, offset => offset,
    });
    same_layout!(VfioRegionSparseMmapArea, b::vfio_region_sparse_mmap_area {
        offset => offset, size => size,
    });
    same_layout!(flex VfioRegionInfoCapSparseMmap, b::vfio_region_info_cap_sparse_mmap {
        header => header, nr_areas => nr_areas, reserved => reserved,
    });
    assert_eq!(
        size_of::<VfioRegionInfoCapSparseMmap>(),
        std::mem::offset_of!(b::vfio_region_info_cap_sparse_mmap, areas)
    );
    same_layout!(VfioRegionInfoCapType, b::vfio_region_info_cap_type {
        header => header, type_ => type_, subtype => subtype,
    });
    same_layout!(VfioIrqInfo, b::vfio_irq_info {
        argsz => argsz, flags => flags, index => index, count => count,
    });
    same_layout!(flex VfioIrqSet, b::vfio_irq_set {
        argsz => argsz, flags => flags, index => index, start => start, count => count,
    });
    assert_eq!(
        size_of::<VfioIrqSet>(),
        std::mem::offset_of!(b::vfio_irq_set, data)
    );
    same_layout!(VfioPciDependentDevice, b::vfio_pci_dependent_device {
        group_id_or_devid => __bindgen_anon_1, segment => segment, bus => bus, devfn => devfn,
    });
    same_layout!(flex VfioPciHotResetInfo, b::vfio_pci_hot_reset_info {
        argsz => argsz, flags => flags, count => count,
    });
    assert_eq!(
        size_of::<VfioPciHotResetInfo>(),
        std::mem::offset_of!(b::vfio_pci_hot_reset_info, devices)
    );
    same_layout!(flex VfioPciHotReset, b::vfio_pci_hot_reset {
        argsz => argsz, flags => flags, count => count,
    });
    same_layout!(VfioDeviceIoeventfd, b::vfio_device_ioeventfd {
        argsz => argsz, flags => flags, offset => offset, data => data, fd => fd,
        reserved => reserved,
    });
    same_layout!(flex VfioDeviceFeature, b::vfio_device_feature { argsz => argsz, flags => flags });
}

#[test]
fn cdev_structs() {
    same_layout!(VfioDeviceBindIommufd, b::vfio_device_bind_iommufd {
        argsz => argsz, flags => flags, iommufd => iommufd, out_devid => out_devid,
        token_uuid_ptr => token_uuid_ptr,
    });
    same_layout!(VfioDeviceAttachIommufdPt, b::vfio_device_attach_iommufd_pt {
        argsz => argsz, flags => flags, pt_id => pt_id, pasid => pasid,
    });
    same_layout!(VfioDeviceDetachIommufdPt, b::vfio_device_detach_iommufd_pt {
        argsz => argsz, flags => flags, pasid => pasid,
    });
}

#[test]
fn type1_structs() {
    same_layout!(VfioIommuType1Info, b::vfio_iommu_type1_info {
        argsz => argsz, flags => flags, iova_pgsizes => iova_pgsizes, cap_offset => cap_offset,
        pad => pad,
    });
    same_layout!(VfioIovaRange, b::vfio_iova_range { start => start, last => end });
    same_layout!(flex VfioIommuType1InfoCapIovaRange, b::vfio_iommu_type1_info_cap_iova_range {
        header => header, nr_iovas => nr_iovas, reserved => reserved,
    });
    assert_eq!(
        size_of::<VfioIommuType1InfoCapIovaRange>(),
        std::mem::offset_of!(b::vfio_iommu_type1_info_cap_iova_range, iova_ranges)
    );
    // The C struct pads 4 bytes after `flags`; ours names them `pad`.
    same_layout!(VfioIommuType1InfoCapMigration, b::vfio_iommu_type1_info_cap_migration {
        header => header, flags => flags, pgsize_bitmap => pgsize_bitmap,
        max_dirty_bitmap_size => max_dirty_bitmap_size,
    } pad pad);
    assert_eq!(std::mem::offset_of!(VfioIommuType1InfoCapMigration, pad), 12);
    same_layout!(VfioIommuType1InfoDmaAvail, b::vfio_iommu_type1_info_dma_avail {
        header => header, avail => avail,
    });
    same_layout!(VfioIommuType1DmaMap, b::vfio_iommu_type1_dma_map {
        argsz => argsz, flags => flags, vaddr => vaddr, iova => iova, size => size,
    });
    same_layout!(VfioBitmap, b::vfio_bitmap { pgsize => pgsize, size => size, data => data });
    same_layout!(VfioIommuType1DmaUnmap, b::vfio_iommu_type1_dma_unmap {
        argsz => argsz, flags => flags, iova => iova, size => size,
    });
    assert_eq!(
        size_of::<VfioIommuType1DmaUnmap>(),
        std::mem::offset_of!(b::vfio_iommu_type1_dma_unmap, data)
    );
    same_layout!(flex VfioIommuType1DirtyBitmap, b::vfio_iommu_type1_dirty_bitmap {
        argsz => argsz, flags => flags,
    });
    same_layout!(VfioIommuType1DirtyBitmapGet, b::vfio_iommu_type1_dirty_bitmap_get {
        iova => iova, size => size, bitmap => bitmap,
    });
}

#[test]
fn constants() {
    same_consts!(
        VFIO_API_VERSION => b::VFIO_API_VERSION,
        VFIO_TYPE1_IOMMU => b::VFIO_TYPE1_IOMMU,
        VFIO_SPAPR_TCE_IOMMU => b::VFIO_SPAPR_TCE_IOMMU,
        VFIO_TYPE1v2_IOMMU => b::VFIO_TYPE1v2_IOMMU,
        VFIO_DMA_CC_IOMMU => b::VFIO_DMA_CC_IOMMU,
        VFIO_EEH => b::VFIO_EEH,
        VFIO_TYPE1_NESTING_IOMMU => b::__VFIO_RESERVED_TYPE1_NESTING_IOMMU,
        VFIO_SPAPR_TCE_v2_IOMMU => b::VFIO_SPAPR_TCE_v2_IOMMU,
        VFIO_NOIOMMU_IOMMU => b::VFIO_NOIOMMU_IOMMU,
        VFIO_UNMAP_ALL => b::VFIO_UNMAP_ALL,
        VFIO_UPDATE_VADDR => b::VFIO_UPDATE_VADDR,
        VFIO_TYPE => b::VFIO_TYPE,
        VFIO_BASE => b::VFIO_BASE,
        VFIO_GROUP_FLAGS_VIABLE => b::VFIO_GROUP_FLAGS_VIABLE,
        VFIO_GROUP_FLAGS_CONTAINER_SET => b::VFIO_GROUP_FLAGS_CONTAINER_SET,
        VFIO_DEVICE_FLAGS_RESET => b::VFIO_DEVICE_FLAGS_RESET,
        VFIO_DEVICE_FLAGS_PCI => b::VFIO_DEVICE_FLAGS_PCI,
        VFIO_DEVICE_FLAGS_PLATFORM => b::VFIO_DEVICE_FLAGS_PLATFORM,
        VFIO_DEVICE_FLAGS_AMBA => b::VFIO_DEVICE_FLAGS_AMBA,
        VFIO_DEVICE_FLAGS_CCW => b::VFIO_DEVICE_FLAGS_CCW,
        VFIO_DEVICE_FLAGS_AP => b::VFIO_DEVICE_FLAGS_AP,
        VFIO_DEVICE_FLAGS_FSL_MC => b::VFIO_DEVICE_FLAGS_FSL_MC,
        VFIO_DEVICE_FLAGS_CAPS => b::VFIO_DEVICE_FLAGS_CAPS,
        VFIO_DEVICE_FLAGS_CDX => b::VFIO_DEVICE_FLAGS_CDX,
        VFIO_DEVICE_INFO_CAP_ZPCI_BASE => b::VFIO_DEVICE_INFO_CAP_ZPCI_BASE,
        VFIO_DEVICE_INFO_CAP_ZPCI_GROUP => b::VFIO_DEVICE_INFO_CAP_ZPCI_GROUP,
        VFIO_DEVICE_INFO_CAP_ZPCI_UTIL => b::VFIO_DEVICE_INFO_CAP_ZPCI_UTIL,
        VFIO_DEVICE_INFO_CAP_ZPCI_PFIP => b::VFIO_DEVICE_INFO_CAP_ZPCI_PFIP,
        VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP => b::VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
        VFIO_PCI_ATOMIC_COMP32 => b::VFIO_PCI_ATOMIC_COMP32,
        VFIO_PCI_ATOMIC_COMP64 => b::VFIO_PCI_ATOMIC_COMP64,
        VFIO_PCI_ATOMIC_COMP128 => b::VFIO_PCI_ATOMIC_COMP128,
        VFIO_REGION_INFO_FLAG_READ => b::VFIO_REGION_INFO_FLAG_READ,
        VFIO_REGION_INFO_FLAG_WRITE => b::VFIO_REGION_INFO_FLAG_WRITE,
        VFIO_REGION_INFO_FLAG_MMAP => b::VFIO_REGION_INFO_FLAG_MMAP,
        VFIO_REGION_INFO_FLAG_CAPS => b::VFIO_REGION_INFO_FLAG_CAPS,
        VFIO_REGION_INFO_CAP_SPARSE_MMAP => b::VFIO_REGION_INFO_CAP_SPARSE_MMAP,
        VFIO_REGION_INFO_CAP_TYPE => b::VFIO_REGION_INFO_CAP_TYPE,
        VFIO_REGION_INFO_CAP_MSIX_MAPPABLE => b::VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
        VFIO_REGION_TYPE_PCI_VENDOR_TYPE => b::VFIO_REGION_TYPE_PCI_VENDOR_TYPE,
        VFIO_REGION_TYPE_PCI_VENDOR_MASK => b::VFIO_REGION_TYPE_PCI_VENDOR_MASK,
        VFIO_REGION_TYPE_GFX => b::VFIO_REGION_TYPE_GFX,
        VFIO_REGION_TYPE_CCW => b::VFIO_REGION_TYPE_CCW,
        VFIO_REGION_TYPE_MIGRATION_DEPRECATED => b::VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
        VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION => b::VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
        VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG => b::VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
        VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG => b::VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG,
        VFIO_REGION_SUBTYPE_GFX_EDID => b::VFIO_REGION_SUBTYPE_GFX_EDID,
        VFIO_IRQ_INFO_EVENTFD => b::VFIO_IRQ_INFO_EVENTFD,
        VFIO_IRQ_INFO_MASKABLE => b::VFIO_IRQ_INFO_MASKABLE,
        VFIO_IRQ_INFO_AUTOMASKED => b::VFIO_IRQ_INFO_AUTOMASKED,
        VFIO_IRQ_INFO_NORESIZE => b::VFIO_IRQ_INFO_NORESIZE,
        VFIO_IRQ_SET_DATA_NONE => b::VFIO_IRQ_SET_DATA_NONE,
        VFIO_IRQ_SET_DATA_BOOL => b::VFIO_IRQ_SET_DATA_BOOL,
        VFIO_IRQ_SET_DATA_EVENTFD => b::VFIO_IRQ_SET_DATA_EVENTFD,
        VFIO_IRQ_SET_ACTION_MASK => b::VFIO_IRQ_SET_ACTION_MASK,
        VFIO_IRQ_SET_ACTION_UNMASK => b::VFIO_IRQ_SET_ACTION_UNMASK,
        VFIO_IRQ_SET_ACTION_TRIGGER => b::VFIO_IRQ_SET_ACTION_TRIGGER,
        VFIO_IRQ_SET_DATA_TYPE_MASK => b::VFIO_IRQ_SET_DATA_TYPE_MASK,
        VFIO_IRQ_SET_ACTION_TYPE_MASK => b::VFIO_IRQ_SET_ACTION_TYPE_MASK,
        VFIO_PCI_BAR0_REGION_INDEX => b::VFIO_PCI_BAR0_REGION_INDEX,
        VFIO_PCI_BAR1_REGION_INDEX => b::VFIO_PCI_BAR1_REGION_INDEX,
        VFIO_PCI_BAR2_REGION_INDEX => b::VFIO_PCI_BAR2_REGION_INDEX,
        VFIO_PCI_BAR3_REGION_INDEX => b::VFIO_PCI_BAR3_REGION_INDEX,
        VFIO_PCI_BAR4_REGION_INDEX => b::VFIO_PCI_BAR4_REGION_INDEX,
        VFIO_PCI_BAR5_REGION_INDEX => b::VFIO_PCI_BAR5_REGION_INDEX,
        VFIO_PCI_ROM_REGION_INDEX => b::VFIO_PCI_ROM_REGION_INDEX,
        VFIO_PCI_CONFIG_REGION_INDEX => b::VFIO_PCI_CONFIG_REGION_INDEX,
        VFIO_PCI_VGA_REGION_INDEX => b::VFIO_PCI_VGA_REGION_INDEX,
        VFIO_PCI_NUM_REGIONS => b::VFIO_PCI_NUM_REGIONS,
        VFIO_PCI_INTX_IRQ_INDEX => b::VFIO_PCI_INTX_IRQ_INDEX,
        VFIO_PCI_MSI_IRQ_INDEX => b::VFIO_PCI_MSI_IRQ_INDEX,
        VFIO_PCI_MSIX_IRQ_INDEX => b::VFIO_PCI_MSIX_IRQ_INDEX,
        VFIO_PCI_ERR_IRQ_INDEX => b::VFIO_PCI_ERR_IRQ_INDEX,
        VFIO_PCI_REQ_IRQ_INDEX => b::VFIO_PCI_REQ_IRQ_INDEX,
        VFIO_PCI_NUM_IRQS => b::VFIO_PCI_NUM_IRQS,
        VFIO_PCI_DEVID_OWNED => b::VFIO_PCI_DEVID_OWNED,
        VFIO_PCI_DEVID_NOT_OWNED => b::VFIO_PCI_DEVID_NOT_OWNED,
        VFIO_PCI_HOT_RESET_FLAG_DEV_ID => b::VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
        VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED => b::VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
        VFIO_DEVICE_IOEVENTFD_8 => b::VFIO_DEVICE_IOEVENTFD_8,
        VFIO_DEVICE_IOEVENTFD_16 => b::VFIO_DEVICE_IOEVENTFD_16,
        VFIO_DEVICE_IOEVENTFD_32 => b::VFIO_DEVICE_IOEVENTFD_32,
        VFIO_DEVICE_IOEVENTFD_64 => b::VFIO_DEVICE_IOEVENTFD_64,
        VFIO_DEVICE_IOEVENTFD_SIZE_MASK => b::VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
        VFIO_DEVICE_FEATURE_MASK => b::VFIO_DEVICE_FEATURE_MASK,
        VFIO_DEVICE_FEATURE_GET => b::VFIO_DEVICE_FEATURE_GET,
        VFIO_DEVICE_FEATURE_SET => b::VFIO_DEVICE_FEATURE_SET,
        VFIO_DEVICE_FEATURE_PROBE => b::VFIO_DEVICE_FEATURE_PROBE,
        VFIO_DEVICE_FEATURE_PCI_VF_TOKEN => b::VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
        VFIO_DEVICE_FEATURE_MIGRATION => b::VFIO_DEVICE_FEATURE_MIGRATION,
        VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE => b::VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
        VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY => b::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
        VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP
            => b::VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
        VFIO_DEVICE_FEATURE_LOW_POWER_EXIT => b::VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_START => b::VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP => b::VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
        VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT => b::VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
        VFIO_DEVICE_FEATURE_MIG_DATA_SIZE => b::VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
        VFIO_DEVICE_FEATURE_BUS_MASTER => b::VFIO_DEVICE_FEATURE_BUS_MASTER,
        VFIO_DEVICE_BIND_FLAG_TOKEN => b::VFIO_DEVICE_BIND_FLAG_TOKEN,
        VFIO_DEVICE_ATTACH_PASID => b::VFIO_DEVICE_ATTACH_PASID,
        VFIO_DEVICE_DETACH_PASID => b::VFIO_DEVICE_DETACH_PASID,
        VFIO_IOMMU_INFO_PGSIZES => b::VFIO_IOMMU_INFO_PGSIZES,
        VFIO_IOMMU_INFO_CAPS => b::VFIO_IOMMU_INFO_CAPS,
        VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE => b::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
        VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION => b::VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
        VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL => b::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
        VFIO_DMA_MAP_FLAG_READ => b::VFIO_DMA_MAP_FLAG_READ,
        VFIO_DMA_MAP_FLAG_WRITE => b::VFIO_DMA_MAP_FLAG_WRITE,
        VFIO_DMA_MAP_FLAG_VADDR => b::VFIO_DMA_MAP_FLAG_VADDR,
        VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP => b::VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
        VFIO_DMA_UNMAP_FLAG_ALL => b::VFIO_DMA_UNMAP_FLAG_ALL,
        VFIO_DMA_UNMAP_FLAG_VADDR => b::VFIO_DMA_UNMAP_FLAG_VADDR,
        VFIO_IOMMU_DIRTY_PAGES_FLAG_START => b::VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
        VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP => b::VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
        VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP => b::VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
    );
    assert_eq!(
        VFIO_DEVICE_API_PCI_STRING.as_bytes(),
        &b::VFIO_DEVICE_API_PCI_STRING[..8]
    );
    assert_eq!(
        VFIO_DEVICE_API_PLATFORM_STRING.as_bytes(),
        &b::VFIO_DEVICE_API_PLATFORM_STRING[..13]
    );
    assert_eq!(
        VFIO_DEVICE_API_AMBA_STRING.as_bytes(),
        &b::VFIO_DEVICE_API_AMBA_STRING[..9]
    );
    assert_eq!(
        VFIO_DEVICE_API_CCW_STRING.as_bytes(),
        &b::VFIO_DEVICE_API_CCW_STRING[..8]
    );
    assert_eq!(
        VFIO_DEVICE_API_AP_STRING.as_bytes(),
        &b::VFIO_DEVICE_API_AP_STRING[..7]
    );
}

#[test]
fn request_numbers() {
    // `n` of each `_IO(VFIO_TYPE, VFIO_BASE + n)` in include/uapi/linux/vfio.h.
    same_requests!(b::VFIO_TYPE;
        VFIO_GET_API_VERSION => b::VFIO_BASE,
        VFIO_CHECK_EXTENSION => b::VFIO_BASE + 1,
        VFIO_SET_IOMMU => b::VFIO_BASE + 2,
        VFIO_GROUP_GET_STATUS => b::VFIO_BASE + 3,
        VFIO_GROUP_SET_CONTAINER => b::VFIO_BASE + 4,
        VFIO_GROUP_UNSET_CONTAINER => b::VFIO_BASE + 5,
        VFIO_GROUP_GET_DEVICE_FD => b::VFIO_BASE + 6,
        VFIO_DEVICE_GET_INFO => b::VFIO_BASE + 7,
        VFIO_DEVICE_GET_REGION_INFO => b::VFIO_BASE + 8,
        VFIO_DEVICE_GET_IRQ_INFO => b::VFIO_BASE + 9,
        VFIO_DEVICE_SET_IRQS => b::VFIO_BASE + 10,
        VFIO_DEVICE_RESET => b::VFIO_BASE + 11,
        VFIO_DEVICE_GET_PCI_HOT_RESET_INFO => b::VFIO_BASE + 12,
        VFIO_DEVICE_PCI_HOT_RESET => b::VFIO_BASE + 13,
        VFIO_DEVICE_QUERY_GFX_PLANE => b::VFIO_BASE + 14,
        VFIO_DEVICE_GET_GFX_DMABUF => b::VFIO_BASE + 15,
        VFIO_DEVICE_IOEVENTFD => b::VFIO_BASE + 16,
        VFIO_DEVICE_FEATURE => b::VFIO_BASE + 17,
        VFIO_DEVICE_BIND_IOMMUFD => b::VFIO_BASE + 18,
        VFIO_DEVICE_ATTACH_IOMMUFD_PT => b::VFIO_BASE + 19,
        VFIO_DEVICE_DETACH_IOMMUFD_PT => b::VFIO_BASE + 20,
        VFIO_MIG_GET_PRECOPY_INFO => b::VFIO_BASE + 21,
        VFIO_IOMMU_GET_INFO => b::VFIO_BASE + 12,
        VFIO_IOMMU_MAP_DMA => b::VFIO_BASE + 13,
        VFIO_IOMMU_UNMAP_DMA => b::VFIO_BASE + 14,
        VFIO_IOMMU_ENABLE => b::VFIO_BASE + 15,
        VFIO_IOMMU_DISABLE => b::VFIO_BASE + 16,
        VFIO_IOMMU_DIRTY_PAGES => b::VFIO_BASE + 17,
        VFIO_IOMMU_SPAPR_TCE_GET_INFO => b::VFIO_BASE + 12,
        VFIO_IOMMU_SPAPR_REGISTER_MEMORY => b::VFIO_BASE + 17,
        VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY => b::VFIO_BASE + 18,
        VFIO_IOMMU_SPAPR_TCE_CREATE => b::VFIO_BASE + 19,
        VFIO_IOMMU_SPAPR_TCE_REMOVE => b::VFIO_BASE + 20,
        VFIO_EEH_PE_OP => b::VFIO_BASE + 21,
    );
    // The numbers drivers hard-code: _IO(';', 100) and _IO(';', 113).
    assert_eq!(VFIO_GET_API_VERSION, 0x3b64);
    assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3b71);
    assert_eq!(VFIO_DEVICE_DETACH_IOMMUFD_PT, 0x3b78);
}

#[test]
fn minimum_sizes_are_the_handlers_minsz() {
    use uvfio_abi::Extensible;
    // `minsz = offsetofend(struct ..., field)` in drivers/vfio/{vfio_main,group,device_cdev}.c,
    // pci/vfio_pci_core.c and vfio_iommu_type1.c.
    assert_eq!(VfioGroupStatus::MIN_SIZE, 8);
    assert_eq!(VfioDeviceInfo::MIN_SIZE, 16);
    assert_eq!(VfioRegionInfo::MIN_SIZE, 32);
    assert_eq!(VfioIrqInfo::MIN_SIZE, 16);
    assert_eq!(VfioIrqSet::MIN_SIZE, 20);
    assert_eq!(VfioPciHotResetInfo::MIN_SIZE, 12);
    assert_eq!(VfioPciHotReset::MIN_SIZE, 12);
    assert_eq!(VfioDeviceIoeventfd::MIN_SIZE, 28);
    assert_eq!(VfioDeviceFeature::MIN_SIZE, 8);
    assert_eq!(VfioDeviceBindIommufd::MIN_SIZE, 16);
    assert_eq!(VfioDeviceAttachIommufdPt::MIN_SIZE, 12);
    assert_eq!(VfioDeviceDetachIommufdPt::MIN_SIZE, 8);
    assert_eq!(VfioIommuType1Info::MIN_SIZE, 16);
    assert_eq!(VfioIommuType1DmaMap::MIN_SIZE, 32);
    assert_eq!(VfioIommuType1DmaUnmap::MIN_SIZE, 24);
    assert_eq!(VfioIommuType1DirtyBitmap::MIN_SIZE, 8);
}
