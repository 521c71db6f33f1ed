//! The emulated host's physical memory (DESIGN.md, "Memory model").
//!
//! Host memory is a set of *segments*, each a memfd mapped once into this process (the host's
//! "direct map"), placed in a synthetic host-physical address space (HPA). `hpa → pointer` is a
//! table lookup with a fast path for the RAM segment. A frame allocator hands out folios of 4 KiB
//! (page tables), 2 MiB and 1 GiB (DMA buffers); each folio carries a pin count, and a
//! locked-memory account with a limit (RLIMIT_MEMLOCK semantics) charges every 4 KiB page once
//! however often it is pinned. A range of the caller's own memory can be *adopted* into the HPA
//! space, the way a driver's buffer becomes physical pages when `pin_user_pages()` pins it.
//!
//! Why hand-written: `vm-memory` models a guest's memory as seen by a VMM (GPA → host mapping), with
//! no frame allocator, no pin counts and no locked-memory account; those are the point here.
#![deny(missing_docs)]

// API skeleton: the implementation is being written (see the issue). Signatures are the contract.
