//! vfio-user (work in progress).

#![deny(missing_docs)]
