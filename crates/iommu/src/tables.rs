//! Page-table frames in host memory: the production [`TableMemory`] over `HostMemory`.

use crate::pgtable::{TableAllocError, TableFrame, TableMemory};
use crate::sys;
use std::ptr::NonNull;
use std::sync::Arc;
use uvfio_memory::{HostMemory, RamWindow};
use uvfio_types::{Hpa, PageSize};

/// Table frames allocated from, and walked in, the host's RAM segment.
#[derive(Debug)]
pub(crate) struct HostTables {
    mem: Arc<HostMemory>,
    ram: RamWindow,
}

impl HostTables {
    pub(crate) fn new(mem: Arc<HostMemory>) -> Self {
        let ram = mem.ram();
        HostTables { mem, ram }
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

    /// Table frames always come from RAM, so this is a compare and an add: no segment lookup.
    #[inline(always)]
    fn table(&self, table: Hpa) -> Option<&TableFrame> {
        let offset = table.offset_from(self.ram.base)?;
        if offset >= self.ram.len || offset & PageSize::Size4K.offset_mask() != 0 {
            return None;
        }
        let ptr = NonNull::new(self.ram.ptr.as_ptr().wrapping_add(offset as usize))?;
        Some(sys::table_frame(ptr))
    }
}
