//! The software IOMMU: the hardware model every uvfio DMA goes through.
//!
//! Modelled on Intel VT-d: IO page tables in the second-stage format live in host-memory frames and
//! are walked by HPA; domains (blocked, identity, paging) own a page table and an IOTLB; a device
//! sees its domain through a [`DmaPort`]-style view that translates and copies, checking every page.
#![deny(missing_docs)]

pub mod pgtable;
