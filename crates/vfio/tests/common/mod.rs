//! Helpers shared by the uAPI test files.
#![allow(dead_code)]

use rustix::io::Errno;
use uvfio_vfio::uapi::UapiError;
use zerocopy::{Immutable, IntoBytes};

/// The bytes of a uAPI struct, as a caller lays them out.
pub fn bytes_of<T: IntoBytes + Immutable>(value: &T) -> Vec<u8> {
    value.as_bytes().to_vec()
}

/// The bytes of a uAPI struct followed by `extra` zero bytes (room for a chain or `data[]`).
pub fn with_room<T: IntoBytes + Immutable>(value: &T, extra: usize) -> Vec<u8> {
    let mut v = bytes_of(value);
    v.resize(v.len() + extra, 0);
    v
}

/// The errno of a failed decode (panics on success, naming the case).
pub fn errno_of<T: std::fmt::Debug>(case: &str, result: Result<T, UapiError>) -> Errno {
    match result {
        Ok(v) => panic!("{case}: expected an error, decoded {v:?}"),
        Err(e) => e.errno(),
    }
}

/// Checks one row of an errno table.
pub fn expect_errno<T: std::fmt::Debug>(case: &str, result: Result<T, UapiError>, want: Errno) {
    let got = errno_of(case, result);
    assert_eq!(got, want, "{case}: got {got:?}, want {want:?}");
}

/// A `u32` read at `offset` of `buf`.
pub fn u32_at(buf: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(buf[offset..offset + 4].try_into().unwrap())
}

/// A `u64` read at `offset` of `buf`.
pub fn u64_at(buf: &[u8], offset: usize) -> u64 {
    u64::from_ne_bytes(buf[offset..offset + 8].try_into().unwrap())
}
