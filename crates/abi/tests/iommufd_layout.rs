//! `uvfio_abi::iommufd` against the `iommufd-bindings` crate (bindgen output of Linux v7.1
//! `include/uapi/linux/iommufd.h`): every struct's size and field offsets, every constant and
//! command number, and every request number (`_IO(IOMMUFD_TYPE, IOMMUFD_CMD_*)` computed from
//! the bindings' constants).

#[macro_use]
mod common;

use iommufd_bindings as b;
use uvfio_abi::Extensible;
use uvfio_abi::iommufd::*;

#[test]
fn ioas_structs() {
    same_layout!(IommuDestroy, b::iommu_destroy { size => size, id => id });
    same_layout!(IommuIoasAlloc, b::iommu_ioas_alloc {
        size => size, flags => flags, out_ioas_id => out_ioas_id,
    });
    same_layout!(IommuIovaRange, b::iommu_iova_range { start => start, last => last });
    same_layout!(IommuIoasIovaRanges, b::iommu_ioas_iova_ranges {
        size => size, ioas_id => ioas_id, num_iovas => num_iovas, reserved => __reserved,
        allowed_iovas => allowed_iovas, out_iova_alignment => out_iova_alignment,
    });
    same_layout!(IommuIoasAllowIovas, b::iommu_ioas_allow_iovas {
        size => size, ioas_id => ioas_id, num_iovas => num_iovas, reserved => __reserved,
        allowed_iovas => allowed_iovas,
    });
    same_layout!(IommuIoasMap, b::iommu_ioas_map {
        size => size, flags => flags, ioas_id => ioas_id, reserved => __reserved,
        user_va => user_va, length => length, iova => iova,
    });
    same_layout!(IommuIoasMapFile, b::iommu_ioas_map_file {
        size => size, flags => flags, ioas_id => ioas_id, fd => fd, start => start,
        length => length, iova => iova,
    });
    same_layout!(IommuIoasCopy, b::iommu_ioas_copy {
        size => size, flags => flags, dst_ioas_id => dst_ioas_id, src_ioas_id => src_ioas_id,
        length => length, dst_iova => dst_iova, src_iova => src_iova,
    });
    same_layout!(IommuIoasUnmap, b::iommu_ioas_unmap {
        size => size, ioas_id => ioas_id, iova => iova, length => length,
    });
    same_layout!(IommuOption, b::iommu_option {
        size => size, option_id => option_id, op => op, reserved => __reserved,
        object_id => object_id, val64 => val64,
    });
    same_layout!(IommuVfioIoas, b::iommu_vfio_ioas {
        size => size, ioas_id => ioas_id, op => op, reserved => __reserved,
    });
    same_layout!(IommuIoasChangeProcess, b::iommu_ioas_change_process {
        size => size, reserved => __reserved,
    });
}

#[test]
fn hwpt_structs() {
    same_layout!(IommuHwptVtdS1, b::iommu_hwpt_vtd_s1 {
        flags => flags, pgtbl_addr => pgtbl_addr, addr_width => addr_width,
        reserved => __reserved,
    });
    same_layout!(IommuHwptAlloc, b::iommu_hwpt_alloc {
        size => size, flags => flags, dev_id => dev_id, pt_id => pt_id,
        out_hwpt_id => out_hwpt_id, reserved => __reserved, data_type => data_type,
        data_len => data_len, data_uptr => data_uptr, fault_id => fault_id,
        reserved2 => __reserved2,
    });
    same_layout!(IommuHwInfoVtd, b::iommu_hw_info_vtd {
        flags => flags, reserved => __reserved, cap_reg => cap_reg, ecap_reg => ecap_reg,
    });
    same_layout!(IommuHwInfo, b::iommu_hw_info {
        size => size, flags => flags, dev_id => dev_id, data_len => data_len,
        data_uptr => data_uptr, data_type => __bindgen_anon_1,
        out_max_pasid_log2 => out_max_pasid_log2, reserved => __reserved,
        out_capabilities => out_capabilities,
    });
    same_layout!(IommuHwptSetDirtyTracking, b::iommu_hwpt_set_dirty_tracking {
        size => size, flags => flags, hwpt_id => hwpt_id, reserved => __reserved,
    });
    same_layout!(IommuHwptGetDirtyBitmap, b::iommu_hwpt_get_dirty_bitmap {
        size => size, hwpt_id => hwpt_id, flags => flags, reserved => __reserved, iova => iova,
        length => length, page_size => page_size, data => data,
    });
    same_layout!(IommuHwptVtdS1Invalidate, b::iommu_hwpt_vtd_s1_invalidate {
        addr => addr, npages => npages, flags => flags, reserved => __reserved,
    });
    same_layout!(IommuHwptInvalidate, b::iommu_hwpt_invalidate {
        size => size, hwpt_id => hwpt_id, data_uptr => data_uptr, data_type => data_type,
        entry_len => entry_len, entry_num => entry_num, reserved => __reserved,
    });
    same_layout!(IommuHwptPgfault, b::iommu_hwpt_pgfault {
        flags => flags, dev_id => dev_id, pasid => pasid, grpid => grpid, perm => perm,
        reserved => __reserved, addr => addr, length => length, cookie => cookie,
    });
    same_layout!(IommuHwptPageResponse, b::iommu_hwpt_page_response {
        cookie => cookie, code => code,
    });
    same_layout!(IommuFaultAlloc, b::iommu_fault_alloc {
        size => size, flags => flags, out_fault_id => out_fault_id,
        out_fault_fd => out_fault_fd,
    });
}

#[test]
fn viommu_structs() {
    same_layout!(IommuViommuAlloc, b::iommu_viommu_alloc {
        size => size, flags => flags, type_ => type_, dev_id => dev_id, hwpt_id => hwpt_id,
        out_viommu_id => out_viommu_id, data_len => data_len, reserved => __reserved,
        data_uptr => data_uptr,
    });
    same_layout!(IommuVdeviceAlloc, b::iommu_vdevice_alloc {
        size => size, viommu_id => viommu_id, dev_id => dev_id,
        out_vdevice_id => out_vdevice_id, virt_id => virt_id,
    });
    same_layout!(IommufdVeventHeader, b::iommufd_vevent_header {
        flags => flags, sequence => sequence,
    });
    same_layout!(IommuVeventqAlloc, b::iommu_veventq_alloc {
        size => size, flags => flags, viommu_id => viommu_id, type_ => type_,
        veventq_depth => veventq_depth, out_veventq_id => out_veventq_id,
        out_veventq_fd => out_veventq_fd, reserved => __reserved,
    });
    same_layout!(IommuHwQueueAlloc, b::iommu_hw_queue_alloc {
        size => size, flags => flags, viommu_id => viommu_id, type_ => type_, index => index,
        out_hw_queue_id => out_hw_queue_id, nesting_parent_iova => nesting_parent_iova,
        length => length,
    });
}

#[test]
fn constants() {
    same_consts!(
        IOMMUFD_TYPE => b::IOMMUFD_TYPE,
        IOMMUFD_CMD_BASE => b::IOMMUFD_CMD_BASE,
        IOMMUFD_CMD_DESTROY => b::IOMMUFD_CMD_DESTROY,
        IOMMUFD_CMD_IOAS_ALLOC => b::IOMMUFD_CMD_IOAS_ALLOC,
        IOMMUFD_CMD_IOAS_ALLOW_IOVAS => b::IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
        IOMMUFD_CMD_IOAS_COPY => b::IOMMUFD_CMD_IOAS_COPY,
        IOMMUFD_CMD_IOAS_IOVA_RANGES => b::IOMMUFD_CMD_IOAS_IOVA_RANGES,
        IOMMUFD_CMD_IOAS_MAP => b::IOMMUFD_CMD_IOAS_MAP,
        IOMMUFD_CMD_IOAS_UNMAP => b::IOMMUFD_CMD_IOAS_UNMAP,
        IOMMUFD_CMD_OPTION => b::IOMMUFD_CMD_OPTION,
        IOMMUFD_CMD_VFIO_IOAS => b::IOMMUFD_CMD_VFIO_IOAS,
        IOMMUFD_CMD_HWPT_ALLOC => b::IOMMUFD_CMD_HWPT_ALLOC,
        IOMMUFD_CMD_GET_HW_INFO => b::IOMMUFD_CMD_GET_HW_INFO,
        IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING => b::IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING,
        IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP => b::IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
        IOMMUFD_CMD_HWPT_INVALIDATE => b::IOMMUFD_CMD_HWPT_INVALIDATE,
        IOMMUFD_CMD_FAULT_QUEUE_ALLOC => b::IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
        IOMMUFD_CMD_IOAS_MAP_FILE => b::IOMMUFD_CMD_IOAS_MAP_FILE,
        IOMMUFD_CMD_VIOMMU_ALLOC => b::IOMMUFD_CMD_VIOMMU_ALLOC,
        IOMMUFD_CMD_VDEVICE_ALLOC => b::IOMMUFD_CMD_VDEVICE_ALLOC,
        IOMMUFD_CMD_IOAS_CHANGE_PROCESS => b::IOMMUFD_CMD_IOAS_CHANGE_PROCESS,
        IOMMUFD_CMD_VEVENTQ_ALLOC => b::IOMMUFD_CMD_VEVENTQ_ALLOC,
        IOMMUFD_CMD_HW_QUEUE_ALLOC => b::IOMMUFD_CMD_HW_QUEUE_ALLOC,
        IOMMU_IOAS_MAP_FIXED_IOVA => b::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_FIXED_IOVA,
        IOMMU_IOAS_MAP_WRITEABLE => b::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_WRITEABLE,
        IOMMU_IOAS_MAP_READABLE => b::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_READABLE,
        IOMMU_OPTION_RLIMIT_MODE => b::iommufd_option_IOMMU_OPTION_RLIMIT_MODE,
        IOMMU_OPTION_HUGE_PAGES => b::iommufd_option_IOMMU_OPTION_HUGE_PAGES,
        IOMMU_OPTION_OP_SET => b::iommufd_option_ops_IOMMU_OPTION_OP_SET,
        IOMMU_OPTION_OP_GET => b::iommufd_option_ops_IOMMU_OPTION_OP_GET,
        IOMMU_VFIO_IOAS_GET => b::iommufd_vfio_ioas_op_IOMMU_VFIO_IOAS_GET,
        IOMMU_VFIO_IOAS_SET => b::iommufd_vfio_ioas_op_IOMMU_VFIO_IOAS_SET,
        IOMMU_VFIO_IOAS_CLEAR => b::iommufd_vfio_ioas_op_IOMMU_VFIO_IOAS_CLEAR,
        IOMMU_HWPT_ALLOC_NEST_PARENT => b::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT,
        IOMMU_HWPT_ALLOC_DIRTY_TRACKING
            => b::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
        IOMMU_HWPT_FAULT_ID_VALID => b::iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID,
        IOMMU_HWPT_ALLOC_PASID => b::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID,
        IOMMU_HWPT_DATA_NONE => b::iommu_hwpt_data_type_IOMMU_HWPT_DATA_NONE,
        IOMMU_HWPT_DATA_VTD_S1 => b::iommu_hwpt_data_type_IOMMU_HWPT_DATA_VTD_S1,
        IOMMU_HWPT_DATA_ARM_SMMUV3 => b::iommu_hwpt_data_type_IOMMU_HWPT_DATA_ARM_SMMUV3,
        IOMMU_HWPT_DATA_AMD_GUEST => b::iommu_hwpt_data_type_IOMMU_HWPT_DATA_AMD_GUEST,
        IOMMU_VTD_S1_SRE => b::iommu_hwpt_vtd_s1_flags_IOMMU_VTD_S1_SRE,
        IOMMU_VTD_S1_EAFE => b::iommu_hwpt_vtd_s1_flags_IOMMU_VTD_S1_EAFE,
        IOMMU_VTD_S1_WPE => b::iommu_hwpt_vtd_s1_flags_IOMMU_VTD_S1_WPE,
        IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17
            => b::iommu_hw_info_vtd_flags_IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
        IOMMU_HW_INFO_TYPE_NONE => b::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_NONE,
        IOMMU_HW_INFO_TYPE_DEFAULT => b::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT,
        IOMMU_HW_INFO_TYPE_INTEL_VTD => b::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_INTEL_VTD,
        IOMMU_HW_INFO_TYPE_ARM_SMMUV3 => b::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
        IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV
            => b::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV,
        IOMMU_HW_INFO_TYPE_AMD => b::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_AMD,
        IOMMU_HW_CAP_DIRTY_TRACKING => b::iommufd_hw_capabilities_IOMMU_HW_CAP_DIRTY_TRACKING,
        IOMMU_HW_CAP_PCI_PASID_EXEC => b::iommufd_hw_capabilities_IOMMU_HW_CAP_PCI_PASID_EXEC,
        IOMMU_HW_CAP_PCI_PASID_PRIV => b::iommufd_hw_capabilities_IOMMU_HW_CAP_PCI_PASID_PRIV,
        IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED
            => b::iommufd_hw_capabilities_IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED,
        IOMMU_HW_INFO_FLAG_INPUT_TYPE => b::iommufd_hw_info_flags_IOMMU_HW_INFO_FLAG_INPUT_TYPE,
        IOMMU_HWPT_DIRTY_TRACKING_ENABLE
            => b::iommufd_hwpt_set_dirty_tracking_flags_IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
        IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
            => b::iommufd_hwpt_get_dirty_bitmap_flags_IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
        IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
            => b::iommu_hwpt_invalidate_data_type_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
        IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3
            => b::iommu_hwpt_invalidate_data_type_IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
        IOMMU_VTD_INV_FLAGS_LEAF => b::iommu_hwpt_vtd_s1_invalidate_flags_IOMMU_VTD_INV_FLAGS_LEAF,
        IOMMU_PGFAULT_FLAGS_PASID_VALID
            => b::iommu_hwpt_pgfault_flags_IOMMU_PGFAULT_FLAGS_PASID_VALID,
        IOMMU_PGFAULT_FLAGS_LAST_PAGE => b::iommu_hwpt_pgfault_flags_IOMMU_PGFAULT_FLAGS_LAST_PAGE,
        IOMMU_PGFAULT_PERM_READ => b::iommu_hwpt_pgfault_perm_IOMMU_PGFAULT_PERM_READ,
        IOMMU_PGFAULT_PERM_WRITE => b::iommu_hwpt_pgfault_perm_IOMMU_PGFAULT_PERM_WRITE,
        IOMMU_PGFAULT_PERM_EXEC => b::iommu_hwpt_pgfault_perm_IOMMU_PGFAULT_PERM_EXEC,
        IOMMU_PGFAULT_PERM_PRIV => b::iommu_hwpt_pgfault_perm_IOMMU_PGFAULT_PERM_PRIV,
        IOMMUFD_PAGE_RESP_SUCCESS => b::iommufd_page_response_code_IOMMUFD_PAGE_RESP_SUCCESS,
        IOMMUFD_PAGE_RESP_INVALID => b::iommufd_page_response_code_IOMMUFD_PAGE_RESP_INVALID,
        IOMMU_VIOMMU_TYPE_DEFAULT => b::iommu_viommu_type_IOMMU_VIOMMU_TYPE_DEFAULT,
        IOMMU_VIOMMU_TYPE_ARM_SMMUV3 => b::iommu_viommu_type_IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
        IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV => b::iommu_viommu_type_IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
        IOMMU_VEVENTQ_FLAG_LOST_EVENTS => b::iommu_veventq_flag_IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
        IOMMU_VEVENTQ_TYPE_DEFAULT => b::iommu_veventq_type_IOMMU_VEVENTQ_TYPE_DEFAULT,
        IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 => b::iommu_veventq_type_IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
        IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV
            => b::iommu_veventq_type_IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
        IOMMU_HW_QUEUE_TYPE_DEFAULT => b::iommu_hw_queue_type_IOMMU_HW_QUEUE_TYPE_DEFAULT,
        IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV
            => b::iommu_hw_queue_type_IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
    );
}

#[test]
fn request_numbers() {
    same_requests!(b::IOMMUFD_TYPE;
        IOMMU_DESTROY => b::IOMMUFD_CMD_DESTROY,
        IOMMU_IOAS_ALLOC => b::IOMMUFD_CMD_IOAS_ALLOC,
        IOMMU_IOAS_ALLOW_IOVAS => b::IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
        IOMMU_IOAS_COPY => b::IOMMUFD_CMD_IOAS_COPY,
        IOMMU_IOAS_IOVA_RANGES => b::IOMMUFD_CMD_IOAS_IOVA_RANGES,
        IOMMU_IOAS_MAP => b::IOMMUFD_CMD_IOAS_MAP,
        IOMMU_IOAS_UNMAP => b::IOMMUFD_CMD_IOAS_UNMAP,
        IOMMU_OPTION => b::IOMMUFD_CMD_OPTION,
        IOMMU_VFIO_IOAS => b::IOMMUFD_CMD_VFIO_IOAS,
        IOMMU_HWPT_ALLOC => b::IOMMUFD_CMD_HWPT_ALLOC,
        IOMMU_GET_HW_INFO => b::IOMMUFD_CMD_GET_HW_INFO,
        IOMMU_HWPT_SET_DIRTY_TRACKING => b::IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING,
        IOMMU_HWPT_GET_DIRTY_BITMAP => b::IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
        IOMMU_HWPT_INVALIDATE => b::IOMMUFD_CMD_HWPT_INVALIDATE,
        IOMMU_FAULT_QUEUE_ALLOC => b::IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
        IOMMU_IOAS_MAP_FILE => b::IOMMUFD_CMD_IOAS_MAP_FILE,
        IOMMU_VIOMMU_ALLOC => b::IOMMUFD_CMD_VIOMMU_ALLOC,
        IOMMU_VDEVICE_ALLOC => b::IOMMUFD_CMD_VDEVICE_ALLOC,
        IOMMU_IOAS_CHANGE_PROCESS => b::IOMMUFD_CMD_IOAS_CHANGE_PROCESS,
        IOMMU_VEVENTQ_ALLOC => b::IOMMUFD_CMD_VEVENTQ_ALLOC,
        IOMMU_HW_QUEUE_ALLOC => b::IOMMUFD_CMD_HW_QUEUE_ALLOC,
    );
    assert_eq!(IOMMU_DESTROY, 0x3b80);
    assert_eq!(IOMMU_IOAS_MAP, 0x3b85);
}

#[test]
fn minimum_sizes_are_the_ioctl_table_min_size() {
    // `IOCTL_OP(..., struct, last)` in drivers/iommu/iommufd/main.c: min_size = offsetofend(last).
    assert_eq!(IommuDestroy::MIN_SIZE, 8);
    assert_eq!(IommuFaultAlloc::MIN_SIZE, 16);
    assert_eq!(IommuHwInfo::MIN_SIZE, 32);
    assert_eq!(IommuHwptAlloc::MIN_SIZE, 24);
    assert_eq!(IommuHwptGetDirtyBitmap::MIN_SIZE, 48);
    assert_eq!(IommuHwptInvalidate::MIN_SIZE, 32);
    assert_eq!(IommuHwptSetDirtyTracking::MIN_SIZE, 16);
    assert_eq!(IommuIoasAlloc::MIN_SIZE, 12);
    assert_eq!(IommuIoasAllowIovas::MIN_SIZE, 24);
    assert_eq!(IommuIoasCopy::MIN_SIZE, 40);
    assert_eq!(IommuIoasIovaRanges::MIN_SIZE, 32);
    assert_eq!(IommuIoasMap::MIN_SIZE, 40);
    assert_eq!(IommuIoasMapFile::MIN_SIZE, 40);
    assert_eq!(IommuIoasUnmap::MIN_SIZE, 24);
    assert_eq!(IommuOption::MIN_SIZE, 24);
    assert_eq!(IommuVfioIoas::MIN_SIZE, 12);
    assert_eq!(IommuIoasChangeProcess::MIN_SIZE, 8);
    assert_eq!(IommuViommuAlloc::MIN_SIZE, 24);
    assert_eq!(IommuVdeviceAlloc::MIN_SIZE, 24);
    assert_eq!(IommuVeventqAlloc::MIN_SIZE, 28);
    assert_eq!(IommuHwQueueAlloc::MIN_SIZE, 40);
}

#[test]
fn an_ioas_map_reads_from_raw_bytes_as_the_kernel_reads_it() {
    use uvfio_abi::{Tail, read_extensible};
    use zerocopy::IntoBytes;
    let map = IommuIoasMap {
        size: 40,
        flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE,
        ioas_id: 3,
        reserved: 0,
        user_va: 0x7f00_0000_0000,
        length: 0x20_0000,
        iova: 0x100_0000,
    };
    // The same bytes through bindgen's struct: a C driver's view.
    let c = b::iommu_ioas_map {
        size: 40,
        flags: map.flags,
        ioas_id: 3,
        __reserved: 0,
        user_va: map.user_va,
        length: map.length,
        iova: map.iova,
    };
    // Lay the C struct's fields out at bindgen's offsets.
    let mut c_bytes = [0u8; 40];
    let mut put = |offset: usize, bytes: &[u8]| {
        c_bytes[offset..offset + bytes.len()].copy_from_slice(bytes);
    };
    use std::mem::offset_of;
    put(offset_of!(b::iommu_ioas_map, size), &c.size.to_ne_bytes());
    put(offset_of!(b::iommu_ioas_map, flags), &c.flags.to_ne_bytes());
    put(offset_of!(b::iommu_ioas_map, ioas_id), &c.ioas_id.to_ne_bytes());
    put(
        offset_of!(b::iommu_ioas_map, __reserved),
        &c.__reserved.to_ne_bytes(),
    );
    put(offset_of!(b::iommu_ioas_map, user_va), &c.user_va.to_ne_bytes());
    put(offset_of!(b::iommu_ioas_map, length), &c.length.to_ne_bytes());
    put(offset_of!(b::iommu_ioas_map, iova), &c.iova.to_ne_bytes());
    assert_eq!(map.as_bytes(), &c_bytes[..]);
    assert_eq!(
        read_extensible::<IommuIoasMap>(&c_bytes, Tail::MustBeZero),
        Ok(map)
    );
}
