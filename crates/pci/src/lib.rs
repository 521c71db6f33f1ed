//! The PCI function model of uvfio (work in progress).

#![deny(missing_docs)]
#![forbid(unsafe_code)]
