//! The MSI-X table and Pending Bit Array: device memory the function owns (PCI Local Bus Spec
//! 3.0, 6.8.2.6 – 6.8.2.10). The device's BAR handler forwards accesses that fall in them.
//!
//! A table entry is 16 bytes: `PCI_MSIX_ENTRY_LOWER_ADDR` (bits 1:0 RO 0),
//! `PCI_MSIX_ENTRY_UPPER_ADDR`, `PCI_MSIX_ENTRY_DATA`, `PCI_MSIX_ENTRY_VECTOR_CTRL` (bit 0,
//! `PCI_MSIX_ENTRY_CTRL_MASKBIT`, RW; the rest reserved, RO 0). Every entry starts masked: 6.8.2.9,
//! Mask Bit: "This bit's state after reset is 1 (entry is masked)." The PBA is RO: one bit per
//! entry, in QWORDs.
//!
//! Access sizes: 6.8.2: "For all accesses to MSI-X Table and MSI-X PBA fields, software must use
//! aligned full DWORD or aligned full QWORD transactions; otherwise, the result is undefined." This
//! model refuses anything else with a [`TableError`].

use crate::regs::{PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE};

/// Most entries an MSI-X table can have (Table Size is 11 bits, N - 1).
pub const MAX_TABLE_SIZE: usize = 2048;

/// Bytes of PBA for `table_size` entries: one bit each, rounded up to QWORDs.
pub(crate) fn pba_len(table_size: u16) -> u64 {
    u64::from(table_size).div_ceil(64) * 8
}

/// One MSI-X table entry as currently programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixEntry {
    /// Message address (upper and lower dwords).
    pub address: u64,
    /// Message data.
    pub data: u32,
    /// `PCI_MSIX_ENTRY_CTRL_MASKBIT`.
    pub masked: bool,
}

/// An MSI-X table or PBA access the function refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The function has no MSI-X capability.
    #[error("the function has no MSI-X table")]
    NoMsix,
    /// Only DWORD and QWORD accesses exist.
    #[error("MSI-X access of {len} bytes: only 4 or 8 bytes are allowed")]
    Length {
        /// The requested length.
        len: usize,
    },
    /// The access is not naturally aligned.
    #[error("MSI-X access of {len} bytes at {offset:#x} is not naturally aligned")]
    Unaligned {
        /// The requested offset.
        offset: u64,
        /// The requested length.
        len: usize,
    },
    /// The access is beyond the structure, or straddles its edge.
    #[error("MSI-X access of {len} bytes at {offset:#x} is outside the structure")]
    OutOfRange {
        /// The requested offset.
        offset: u64,
        /// The requested length.
        len: usize,
    },
}

/// The table entries and pending bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MsixTable {
    /// Per entry: lower address, upper address, data, vector control.
    entries: Vec<[u32; 4]>,
    pba: Vec<u64>,
}

const LOWER_ADDR: usize = 0;
const UPPER_ADDR: usize = 1;
const DATA: usize = 2;
const VECTOR_CTRL: usize = 3;

/// Checks an access of `len` bytes at `offset` within a structure of `size` bytes; returns the
/// offset as an index.
fn check(offset: u64, len: usize, size: u64) -> Result<usize, TableError> {
    if len != 4 && len != 8 {
        return Err(TableError::Length { len });
    }
    if offset % len as u64 != 0 {
        return Err(TableError::Unaligned { offset, len });
    }
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => {
            usize::try_from(offset).map_err(|_| TableError::OutOfRange { offset, len })
        }
        _ => Err(TableError::OutOfRange { offset, len }),
    }
}

impl MsixTable {
    /// A table of `size` entries, all masked, nothing pending.
    pub(crate) fn new(size: u16) -> Self {
        let mut table = Self {
            entries: vec![[0; 4]; size.into()],
            pba: vec![0; (pba_len(size) / 8) as usize],
        };
        table.reset();
        table
    }

    /// Back to the reset state: entries zeroed and masked, PBA cleared.
    pub(crate) fn reset(&mut self) {
        self.entries.fill([0, 0, 0, PCI_MSIX_ENTRY_CTRL_MASKBIT]);
        self.pba.fill(0);
    }

    fn table_bytes(&self) -> u64 {
        self.entries.len() as u64 * PCI_MSIX_ENTRY_SIZE
    }

    fn dword(&self, index: usize) -> u32 {
        self.entries
            .get(index / 4)
            .and_then(|e| e.get(index % 4))
            .copied()
            .unwrap_or(0)
    }

    fn set_dword(&mut self, index: usize, value: u32) {
        let field = index % 4;
        let value = match field {
            // The message address is DWORD aligned: bits 1:0 read 0 (6.8.2.6).
            LOWER_ADDR => value & !0x3,
            // Bits 31:1 of Vector Control are reserved (6.8.2.9).
            VECTOR_CTRL => value & PCI_MSIX_ENTRY_CTRL_MASKBIT,
            _ => value,
        };
        if let Some(slot) = self.entries.get_mut(index / 4).and_then(|e| e.get_mut(field)) {
            *slot = value;
        }
    }

    /// A read of the table at `offset` (relative to the table start).
    pub(crate) fn read(&self, offset: u64, len: usize) -> Result<u64, TableError> {
        let at = check(offset, len, self.table_bytes())? / 4;
        let low = u64::from(self.dword(at));
        Ok(if len == 8 {
            low | u64::from(self.dword(at + 1)) << 32
        } else {
            low
        })
    }

    /// A write of the table at `offset` (relative to the table start).
    pub(crate) fn write(&mut self, offset: u64, len: usize, value: u64) -> Result<(), TableError> {
        let at = check(offset, len, self.table_bytes())? / 4;
        self.set_dword(at, value as u32);
        if len == 8 {
            self.set_dword(at + 1, (value >> 32) as u32);
        }
        Ok(())
    }

    /// A read of the PBA at `offset` (relative to the PBA start).
    pub(crate) fn pba_read(&self, offset: u64, len: usize) -> Result<u64, TableError> {
        let at = check(offset, len, self.pba.len() as u64 * 8)?;
        let qword = self.pba.get(at / 8).copied().unwrap_or(0);
        Ok(match len {
            8 => qword,
            _ if at % 8 == 4 => qword >> 32,
            _ => qword & 0xffff_ffff,
        })
    }

    /// Validates a write of the PBA, which is then ignored (6.8.2.10: "Software should never
    /// write, and should only read Pending Bits. If software writes to Pending Bits, the result is
    /// undefined." — here the write is discarded).
    pub(crate) fn pba_write(&self, offset: u64, len: usize) -> Result<(), TableError> {
        check(offset, len, self.pba.len() as u64 * 8).map(|_| ())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn entry(&self, vector: u16) -> Option<MsixEntry> {
        let e = self.entries.get(usize::from(vector))?;
        Some(MsixEntry {
            address: u64::from(e[UPPER_ADDR]) << 32 | u64::from(e[LOWER_ADDR]),
            data: e[DATA],
            masked: e[VECTOR_CTRL] & PCI_MSIX_ENTRY_CTRL_MASKBIT != 0,
        })
    }

    pub(crate) fn pending(&self, vector: u16) -> bool {
        let v = usize::from(vector);
        self.pba.get(v / 64).is_some_and(|q| q >> (v % 64) & 1 != 0)
    }

    pub(crate) fn set_pending(&mut self, vector: u16, pending: bool) {
        let v = usize::from(vector);
        if v >= self.entries.len() {
            return;
        }
        if let Some(q) = self.pba.get_mut(v / 64) {
            let bit = 1u64 << (v % 64);
            *q = if pending { *q | bit } else { *q & !bit };
        }
    }

    /// The vectors whose pending bit is set, in order.
    pub(crate) fn pending_vectors(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for (word, &bits) in self.pba.iter().enumerate() {
            let mut rest = bits;
            while rest != 0 {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if let Ok(v) = u16::try_from(word * 64 + bit) {
                    out.push(v);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_start_masked() {
        let table = MsixTable::new(3);
        for v in 0..3 {
            assert_eq!(
                table.entry(v),
                Some(MsixEntry {
                    address: 0,
                    data: 0,
                    masked: true
                })
            );
            assert_eq!(table.read(u64::from(v) * 16 + 12, 4), Ok(1));
        }
        assert_eq!(table.entry(3), None);
    }

    #[test]
    fn dword_and_qword_access() {
        let mut table = MsixTable::new(2);
        table.write(16, 8, 0x0000_0001_fee0_1003).unwrap();
        table.write(24, 4, 0x4041).unwrap();
        table.write(28, 4, 0xffff_fffe).unwrap();
        assert_eq!(
            table.entry(1),
            Some(MsixEntry {
                address: 0x1_fee0_1000,
                data: 0x4041,
                masked: false
            })
        );
        assert_eq!(table.read(16, 8), Ok(0x0000_0001_fee0_1000));
        assert_eq!(
            table.read(24, 8),
            Ok(0x0000_4041),
            "vector control reserved bits read 0"
        );
        table.write(24, 8, 0x0000_0001_0000_0042).unwrap();
        assert_eq!(table.entry(1).map(|e| (e.data, e.masked)), Some((0x42, true)));
        assert_eq!(
            table.entry(0),
            Some(MsixEntry {
                address: 0,
                data: 0,
                masked: true
            }),
            "entry 0 untouched"
        );
    }

    #[test]
    fn bad_accesses() {
        let mut table = MsixTable::new(2);
        assert_eq!(table.read(0, 2), Err(TableError::Length { len: 2 }));
        assert_eq!(table.read(0, 1), Err(TableError::Length { len: 1 }));
        assert_eq!(table.read(2, 4), Err(TableError::Unaligned { offset: 2, len: 4 }));
        assert_eq!(table.read(4, 8), Err(TableError::Unaligned { offset: 4, len: 8 }));
        assert_eq!(
            table.read(32, 4),
            Err(TableError::OutOfRange { offset: 32, len: 4 })
        );
        assert_eq!(
            table.write(u64::MAX - 7, 8, 0),
            Err(TableError::OutOfRange {
                offset: u64::MAX - 7,
                len: 8
            })
        );
        assert_eq!(
            table.pba_read(8, 4),
            Err(TableError::OutOfRange { offset: 8, len: 4 })
        );
        assert_eq!(
            table.pba_write(1, 4),
            Err(TableError::Unaligned { offset: 1, len: 4 })
        );
    }

    #[test]
    fn pba_bits() {
        let mut table = MsixTable::new(70);
        assert_eq!(pba_len(70), 16);
        table.set_pending(0, true);
        table.set_pending(33, true);
        table.set_pending(69, true);
        table.set_pending(70, true); // beyond the table: ignored
        assert_eq!(table.pba_read(0, 8), Ok(1 | 1 << 33));
        assert_eq!(table.pba_read(0, 4), Ok(1));
        assert_eq!(table.pba_read(4, 4), Ok(0b10));
        assert_eq!(table.pba_read(8, 8), Ok(1 << 5));
        assert_eq!(table.pending_vectors(), vec![0, 33, 69]);
        table.pba_write(0, 8).unwrap();
        assert!(table.pending(33));
        table.set_pending(33, false);
        assert!(!table.pending(33));
        table.reset();
        assert_eq!(table.pending_vectors(), Vec::<u16>::new());
    }
}
