//! Helpers the uAPI decoding tests share: a command's bytes, the errno of a refusal, an object id.

#![allow(dead_code)] // each test file uses its own subset

use rustix::io::Errno;
use uvfio_iommufd::object::ObjectId;
use uvfio_iommufd::uapi::UapiError;
use zerocopy::{Immutable, IntoBytes};

/// The bytes of a command struct, as the driver passes them.
pub fn bytes<T: IntoBytes + Immutable>(cmd: &T) -> Vec<u8> {
    cmd.as_bytes().to_vec()
}

/// The errno of a command that must be refused.
pub fn errno<T: std::fmt::Debug>(r: Result<T, UapiError>) -> Errno {
    r.expect_err("the command must be refused").errno()
}

/// Object id `raw` (non-zero).
pub fn id(raw: u32) -> ObjectId {
    ObjectId::new(raw).expect("non-zero id")
}
