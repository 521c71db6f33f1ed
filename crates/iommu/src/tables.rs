//! Page-table frames in host memory: the production [`TableMemory`] over `HostMemory`.

use crate::pgtable::{TableAllocError, TableFrame, TableMemory};
use crate::sys;
use std::sync::Arc;
use uvfio_memory::{HostMemory, RamWindow};
use uvfio_types::{Hpa, PageSize};

/// Table frames allocated from, and walked in, the host's RAM segment.
#[derive(Debug)]
pub(crate) struct HostTables {
    mem: Arc<HostMemory>,
    ram: RamWindow,
    /// `ram.ptr - ram.base`: the host address of a RAM frame is `biased + hpa`, one add on the
    /// walker's dependent-load path (the range check runs beside it).
    biased: sys::BiasedRam,
}

impl HostTables {
    pub(crate) fn new(mem: Arc<HostMemory>) -> Self {
        let ram = mem.ram();
        HostTables {
            biased: sys::BiasedRam::new(ram.ptr, ram.base.raw()),
            mem,
            ram,
        }
    }
}

impl TableMemory for HostTables {
    fn alloc_table(&self) -> Result<Hpa, TableAllocError> {
        self.mem.alloc_table_frame().map_err(|e| TableAllocError {
            source: Some(Box::new(e)),
        })
    }

    fn free_table(&self, table: Hpa) {
        self.mem.free_table_frame(table);
    }

    /// Table frames always come from RAM, so this is a range check and an add: no segment lookup.
    /// An HPA below RAM wraps to a huge offset and fails the same compare. The frame returned is
    /// the one *containing* `table` (walkers only pass frame addresses).
    #[inline(always)]
    fn table(&self, table: Hpa) -> Option<&TableFrame> {
        let frame = table.raw() & !PageSize::Size4K.offset_mask();
        if frame.wrapping_sub(self.ram.base.raw()) >= self.ram.len {
            return None;
        }
        Some(self.biased.table_frame(frame))
    }
}
