//! The entry format of VT-d second-stage tables (Intel VT-d spec, "Second-Stage Paging Entries").
//!
//! Every level uses the same 64-bit entry: bit 0 `R`, bit 1 `W`, bit 7 `PS` (in level 2 and 3
//! entries: the entry maps a 2 MiB / 1 GiB page instead of pointing to a table), bit 8 `A` and
//! bit 9 `D` (accessed/dirty, set by hardware when second-stage A/D tracking is enabled), and the
//! address in bits 51:12. An entry is present when `R` or `W` is set; an entry that points to a
//! table has both set, so that the leaf decides the permissions.

use uvfio_types::{Access, Hpa, PageSize};

/// Bit 0, `R` — "Read: if 0, reads to the page/table referenced by this entry are not allowed".
pub const PTE_READ: u64 = 1 << 0;
/// Bit 1, `W` — "Write: if 0, writes to the page/table referenced by this entry are not allowed".
pub const PTE_WRITE: u64 = 1 << 1;
/// Bit 7, `PS` — "Page Size: must be 1 (this entry maps a 2-MByte or 1-GByte page) or 0 (this
/// entry references a second-stage paging-structure)"; only in level 2 (PDE) and 3 (PDPE) entries.
pub const PTE_PAGE_SIZE: u64 = 1 << 7;
/// Bit 8, `A` — "Accessed: indicates whether this entry has been used for address translation"
/// (with second-stage A/D tracking; defined here for dirty tracking, never set by this module).
pub const PTE_ACCESSED: u64 = 1 << 8;
/// Bit 9, `D` — "Dirty: if 1, indicates that software has written to the page referenced by this
/// entry" (leaf entries only, with second-stage A/D tracking; never set by this module).
pub const PTE_DIRTY: u64 = 1 << 9;
/// Bits 51:12, `ADDR` — "Address: host physical address of the page-frame or of the next
/// second-stage paging structure".
pub const ADDR_MASK: u64 = ((1 << 52) - 1) & !0xfff;
/// The bits any of which makes an entry present: `R` or `W`.
pub const PRESENT_MASK: u64 = PTE_READ | PTE_WRITE;

/// The shift of the IOVA bits that index the table at `level` (1 = the 4 KiB leaf level); also the
/// log2 of the bytes one entry at that level covers.
#[inline]
pub const fn level_shift(level: u8) -> u32 {
    12 + 9 * (level as u32 - 1)
}

/// The index into the table at `level` of the entry that translates `iova`.
#[inline]
pub const fn level_index(iova: u64, level: u8) -> usize {
    ((iova >> level_shift(level)) & 0x1ff) as usize
}

/// The level at which a leaf of size `ps` lives: 1, 2 or 3.
pub const fn level_of(ps: PageSize) -> u8 {
    match ps {
        PageSize::Size4K => 1,
        PageSize::Size2M => 2,
        PageSize::Size1G => 3,
    }
}

/// The size of a leaf at `level`, if leaves may live there.
#[inline]
pub const fn leaf_size(level: u8) -> Option<PageSize> {
    match level {
        1 => Some(PageSize::Size4K),
        2 => Some(PageSize::Size2M),
        3 => Some(PageSize::Size1G),
        _ => None,
    }
}

/// The `R`/`W` bits for `prot` (`EXEC` and `PRIV` have no second-stage bits and are ignored).
#[inline]
pub const fn prot_bits(prot: Access) -> u64 {
    let mut bits = 0;
    if prot.contains(Access::READ) {
        bits |= PTE_READ;
    }
    if prot.contains(Access::WRITE) {
        bits |= PTE_WRITE;
    }
    bits
}

/// One page-table entry, by value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// The not-present entry.
    pub const NONE: Pte = Pte(0);

    /// A leaf at `level` mapping the page at `page` with `prot`; `PS` is set at levels 2 and 3.
    #[inline]
    pub const fn leaf(page: Hpa, prot: Access, level: u8) -> Pte {
        let ps = if level > 1 { PTE_PAGE_SIZE } else { 0 };
        Pte((page.raw() & ADDR_MASK) | prot_bits(prot) | ps)
    }

    /// An entry pointing to the next-level table at `table` (`R` and `W` set).
    #[inline]
    pub const fn table(table: Hpa) -> Pte {
        Pte((table.raw() & ADDR_MASK) | PTE_READ | PTE_WRITE)
    }

    /// The raw 64 bits.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether `R` or `W` is set.
    #[inline]
    pub const fn is_present(self) -> bool {
        self.0 & PRESENT_MASK != 0
    }

    /// Whether `PS` is set (meaningful in level 2 and 3 entries).
    #[inline]
    pub const fn is_super_page(self) -> bool {
        self.0 & PTE_PAGE_SIZE != 0
    }

    /// Whether this entry, found at `level`, is a leaf (maps a page rather than a table).
    #[inline]
    pub const fn is_leaf(self, level: u8) -> bool {
        level == 1 || self.is_super_page()
    }

    /// The address field: the page or the next table.
    #[inline]
    pub const fn addr(self) -> Hpa {
        Hpa::new(self.0 & ADDR_MASK)
    }

    /// The permissions the `R`/`W` bits grant.
    #[inline]
    pub const fn access(self) -> Access {
        Access::from_bits_truncate((self.0 & PRESENT_MASK) as u8)
    }

    /// Whether `A` is set.
    pub const fn accessed(self) -> bool {
        self.0 & PTE_ACCESSED != 0
    }

    /// Whether `D` is set.
    pub const fn dirty(self) -> bool {
        self.0 & PTE_DIRTY != 0
    }
}

impl std::fmt::Debug for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.is_present() {
            return write!(f, "Pte(none {:#x})", self.0);
        }
        let r = if self.0 & PTE_READ != 0 { "R" } else { "-" };
        let w = if self.0 & PTE_WRITE != 0 { "W" } else { "-" };
        let ps = if self.is_super_page() { " PS" } else { "" };
        write!(f, "Pte({r}{w}{ps} {:#x})", self.0 & ADDR_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_sit_where_the_spec_puts_them() {
        assert_eq!(PTE_READ, 0x1);
        assert_eq!(PTE_WRITE, 0x2);
        assert_eq!(PTE_PAGE_SIZE, 0x80);
        assert_eq!(PTE_ACCESSED, 0x100);
        assert_eq!(PTE_DIRTY, 0x200);
        assert_eq!(ADDR_MASK, 0x000f_ffff_ffff_f000);
        assert_eq!(ADDR_MASK.trailing_zeros(), 12);
        assert_eq!(64 - ADDR_MASK.leading_zeros(), 52);
    }

    #[test]
    fn leaf_encoding() {
        let p = Pte::leaf(Hpa::new(0x1234_5000), Access::READ, 1);
        assert_eq!(p.raw(), 0x1234_5001);
        assert!(p.is_present() && p.is_leaf(1) && !p.is_super_page());
        assert_eq!(p.access(), Access::READ);
        assert_eq!(p.addr(), Hpa::new(0x1234_5000));

        let p = Pte::leaf(Hpa::new(0x4000_0000), Access::RW | Access::EXEC | Access::PRIV, 3);
        assert_eq!(p.raw(), 0x4000_0083);
        assert!(p.is_leaf(3) && p.is_super_page());
        assert_eq!(p.access(), Access::RW);

        let p = Pte::leaf(Hpa::new(0x20_0000), Access::WRITE, 2);
        assert_eq!(p.raw(), 0x20_0082);
        assert_eq!(p.access(), Access::WRITE);
        assert!(!p.accessed() && !p.dirty());
    }

    #[test]
    fn table_encoding() {
        let p = Pte::table(Hpa::new(0xabc_d000));
        assert_eq!(p.raw(), 0xabc_d003);
        assert!(p.is_present() && !p.is_leaf(2) && !p.is_leaf(4));
        assert!(p.is_leaf(1));
        assert_eq!(p.addr(), Hpa::new(0xabc_d000));
    }

    #[test]
    fn presence_is_read_or_write() {
        assert!(!Pte::NONE.is_present());
        assert!(!Pte(PTE_ACCESSED | PTE_DIRTY | PTE_PAGE_SIZE | 0x1000).is_present());
        assert!(Pte(PTE_WRITE).is_present());
        assert_eq!(prot_bits(Access::EXEC | Access::PRIV), 0);
        assert!(Pte(PTE_ACCESSED).accessed() && Pte(PTE_DIRTY).dirty());
    }

    #[test]
    fn address_bits_above_51_are_dropped() {
        let p = Pte::leaf(Hpa::new(0xfff0_0000_0000_1000), Access::READ, 1);
        assert_eq!(p.addr(), Hpa::new(0x0000_0000_0000_1000));
    }

    #[test]
    fn level_geometry() {
        assert_eq!(level_shift(1), 12);
        assert_eq!(level_shift(2), 21);
        assert_eq!(level_shift(3), 30);
        assert_eq!(level_shift(4), 39);
        assert_eq!(level_shift(5), 48);
        let iova = (3 << 48) | (5 << 39) | (7 << 30) | (11 << 21) | (13 << 12) | 0xabc;
        assert_eq!([1, 2, 3, 4, 5].map(|l| level_index(iova, l)), [13, 11, 7, 5, 3]);
        for ps in PageSize::ALL {
            assert_eq!(leaf_size(level_of(ps)), Some(ps));
            assert_eq!(level_shift(level_of(ps)), ps.shift());
        }
        assert_eq!(leaf_size(4), None);
    }

    #[test]
    fn debug_shows_flags() {
        assert_eq!(
            format!("{:?}", Pte::leaf(Hpa::new(0x20_0000), Access::RW, 2)),
            "Pte(RW PS 0x200000)"
        );
        assert_eq!(format!("{:?}", Pte::NONE), "Pte(none 0x0)");
    }
}
