//! Helpers shared by the layout tests (each test binary uses a subset).

#![allow(dead_code, unused_macros)]

/// Size of the field a projection closure points at.
pub fn field_size<T, F>(_project: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Linux `_IO(type, nr)` computed from the `_IOC_*` constants of rust-vmm's `vfio-bindings`
/// (bindgen output of `asm-generic/ioctl.h`), independent of `uvfio_abi::io`.
pub fn c_io(ty: u8, nr: u32) -> u32 {
    use vfio_bindings::bindings::vfio as b;
    (b::_IOC_NONE << b::_IOC_DIRSHIFT)
        | (u32::from(ty) << b::_IOC_TYPESHIFT)
        | (nr << b::_IOC_NRSHIFT)
        | (0 << b::_IOC_SIZESHIFT)
}

/// Asserts that `$ours` and `$theirs` have the same size (and alignment, unless marked `flex`:
/// a C struct ending in a flexible array takes the array's alignment, ours stops before it), that
/// each listed field pair has the same offset and size, and that the listed fields of `$ours`,
/// plus those named after `pad` (C's implicit padding, made explicit here), cover all of its bytes
/// (zerocopy's `IntoBytes` rules out hidden padding, so no field is forgotten).
macro_rules! same_layout {
    (flex $ours:ty, $theirs:ty { $($of:ident => $tf:ident),* $(,)? } $(pad $($p:ident),*)?) => {
        same_layout!(@fields $ours, $theirs { $($of => $tf),* } [$($($p),*)?]);
    };
    ($ours:ty, $theirs:ty { $($of:ident => $tf:ident),* $(,)? } $(pad $($p:ident),*)?) => {
        assert_eq!(
            ::core::mem::align_of::<$ours>(),
            ::core::mem::align_of::<$theirs>(),
            "alignment of {}",
            stringify!($ours)
        );
        same_layout!(@fields $ours, $theirs { $($of => $tf),* } [$($($p),*)?]);
    };
    (@fields $ours:ty, $theirs:ty { $($of:ident => $tf:ident),* } [$($p:ident),*]) => {{
        assert_eq!(
            ::core::mem::size_of::<$ours>(),
            ::core::mem::size_of::<$theirs>(),
            "size of {}",
            stringify!($ours)
        );
        $(
            assert_eq!(
                ::core::mem::offset_of!($ours, $of),
                ::core::mem::offset_of!($theirs, $tf),
                "offset of {}::{}",
                stringify!($ours),
                stringify!($of)
            );
            assert_eq!(
                $crate::common::field_size(|s: &$ours| &s.$of),
                $crate::common::field_size(|s: &$theirs| &s.$tf),
                "size of {}::{}",
                stringify!($ours),
                stringify!($of)
            );
        )*
        let listed = 0
            $(+ $crate::common::field_size(|s: &$ours| &s.$of))*
            $(+ $crate::common::field_size(|s: &$ours| &s.$p))*;
        assert_eq!(
            listed,
            ::core::mem::size_of::<$ours>(),
            "the listed fields of {} cover the struct",
            stringify!($ours)
        );
    }};
}

/// Asserts the size, alignment and field offsets of `$ours` against values from a kernel header
/// (for structs the bindings crates lack), and that the listed fields cover the struct.
macro_rules! layout_is {
    ($ours:ty, size $size:literal, align $align:literal { $($f:ident @ $off:literal),* $(,)? }) => {{
        assert_eq!(::core::mem::size_of::<$ours>(), $size, "size of {}", stringify!($ours));
        assert_eq!(::core::mem::align_of::<$ours>(), $align, "alignment of {}", stringify!($ours));
        $(
            assert_eq!(
                ::core::mem::offset_of!($ours, $f),
                $off,
                "offset of {}::{}",
                stringify!($ours),
                stringify!($f)
            );
        )*
        let listed = 0 $(+ $crate::common::field_size(|s: &$ours| &s.$f))*;
        assert_eq!(
            listed,
            ::core::mem::size_of::<$ours>(),
            "the listed fields of {} cover the struct",
            stringify!($ours)
        );
    }};
}

/// Asserts `ours == theirs` for each pair of integer constants, whatever their integer types.
macro_rules! same_consts {
    ($($ours:expr => $theirs:expr),* $(,)?) => {
        $(
            assert_eq!(
                i128::from($ours),
                i128::from($theirs),
                "{} vs {}",
                stringify!($ours),
                stringify!($theirs)
            );
        )*
    };
}

/// Asserts each request number equals `_IO(type, nr)` computed independently.
macro_rules! same_requests {
    ($ty:expr; $($req:expr => $nr:expr),* $(,)?) => {
        $(
            assert_eq!(
                $req,
                $crate::common::c_io($ty, $nr),
                "request {}",
                stringify!($req)
            );
        )*
    };
}
