//! Pin counts and the locked-memory account.
//!
//! A page's pin count lives in a flat per-4 KiB-page array (4 KiB RAM frames), in a
//! [`PinRuns`](crate::PinRuns) of runs of equal count (adopted and fd segments, see `segment.rs`), or in a [`FolioPins`] of a 2 MiB / 1 GiB folio, where pinning the whole folio is one
//! increment of `whole` (as Linux's `folio_pin` bumps one count per folio) and only a pin of part of
//! the folio touches the lazily allocated per-page array. A page's count is `whole + partial[page]`.
//!
//! The account charges a page when its count goes 0 → 1 and uncharges it when it goes back to 0,
//! so a page pinned many times is charged once. Every operation comes as a check (which reads only,
//! and computes the exact charge) and a commit (which cannot fail), so a failed pin changes nothing.

use crate::MemoryError;

/// The largest count a single pin may push one component (`whole` or a per-page entry) to. Two
/// components at this bound still fit a `u32`, so `whole + partial` never overflows.
pub(crate) const PIN_MAX: u32 = u32::MAX / 2;

/// The locked-memory account: pages charged and the limit (`RLIMIT_MEMLOCK` semantics).
#[derive(Debug, Default)]
pub(crate) struct Account {
    locked: u64,
    limit: Option<u64>,
}

impl Account {
    /// An empty account with `limit_bytes` rounded down to whole pages.
    pub(crate) fn new(limit_bytes: Option<u64>) -> Self {
        Account {
            locked: 0,
            limit: limit_bytes.map(pages_of_bytes),
        }
    }

    /// Pages charged.
    pub(crate) fn locked(&self) -> u64 {
        self.locked
    }

    /// The limit in pages.
    pub(crate) fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Replace the limit; pages already charged stay charged even above it.
    pub(crate) fn set_limit(&mut self, limit_bytes: Option<u64>) {
        self.limit = limit_bytes.map(pages_of_bytes);
    }

    /// Whether `pages` more may be charged.
    pub(crate) fn check(&self, pages: u64) -> Result<(), MemoryError> {
        let Some(limit) = self.limit else { return Ok(()) };
        match self.locked.checked_add(pages) {
            Some(total) if total <= limit || pages == 0 => Ok(()),
            _ => Err(MemoryError::LimitExceeded {
                requested_pages: pages,
                locked_pages: self.locked,
                limit_pages: limit,
            }),
        }
    }

    /// Charge `pages` (checked before with [`Account::check`]).
    pub(crate) fn charge(&mut self, pages: u64) {
        self.locked = self.locked.saturating_add(pages);
    }

    /// Give back `pages`.
    pub(crate) fn uncharge(&mut self, pages: u64) {
        debug_assert!(pages <= self.locked, "uncharging {pages} of {}", self.locked);
        self.locked = self.locked.saturating_sub(pages);
    }
}

fn pages_of_bytes(bytes: u64) -> u64 {
    bytes >> 12
}

/// Check a pin of every count in `counts`: the number of pages it would newly charge, or the index
/// of a count that would pass [`PIN_MAX`].
pub(crate) fn slice_pin_check(counts: &[u32]) -> Result<u64, usize> {
    let mut fresh = 0u64;
    let mut saturated = false;
    for &c in counts {
        fresh += u64::from(c == 0);
        saturated |= c >= PIN_MAX;
    }
    if saturated {
        return Err(counts.iter().position(|&c| c >= PIN_MAX).unwrap_or(0));
    }
    Ok(fresh)
}

/// Pin every count in `counts` (checked with [`slice_pin_check`]).
pub(crate) fn slice_pin(counts: &mut [u32]) {
    for c in counts {
        *c += 1;
    }
}

/// Check an unpin of every count in `counts`: the index of the first count that is zero.
pub(crate) fn slice_unpin_check(counts: &[u32]) -> Result<(), usize> {
    if counts.iter().fold(false, |zero, &c| zero | (c == 0)) {
        return Err(counts.iter().position(|&c| c == 0).unwrap_or(0));
    }
    Ok(())
}

/// Unpin every count in `counts` (checked with [`slice_unpin_check`]); the pages that reached 0.
pub(crate) fn slice_unpin(counts: &mut [u32]) -> u64 {
    let mut released = 0u64;
    for c in counts {
        *c -= 1;
        released += u64::from(*c == 0);
    }
    released
}

/// The pin counts of one 2 MiB or 1 GiB folio.
#[derive(Debug)]
pub(crate) struct FolioPins {
    /// Pins of the whole folio.
    whole: u32,
    /// Per-page pins of parts of the folio, allocated on the first partial pin.
    partial: Option<Box<[u32]>>,
    /// Entries of `partial` that are non-zero.
    partial_nonzero: u32,
    /// Pages in the folio.
    pages: u32,
}

impl FolioPins {
    /// An unpinned folio of `pages` 4 KiB pages.
    pub(crate) fn new(pages: u32) -> Self {
        FolioPins {
            whole: 0,
            partial: None,
            partial_nonzero: 0,
            pages,
        }
    }

    /// The first pinned page, if any.
    pub(crate) fn first_pinned(&self) -> Option<usize> {
        if self.whole > 0 {
            return Some(0);
        }
        self.partial.as_deref()?.iter().position(|&c| c > 0)
    }

    /// The pin count of page `page`.
    pub(crate) fn count(&self, page: usize) -> u32 {
        let partial = self
            .partial
            .as_deref()
            .and_then(|p| p.get(page))
            .copied()
            .unwrap_or(0);
        self.whole + partial
    }

    fn is_whole(&self, first: usize, end: usize) -> bool {
        first == 0 && end == self.pages as usize
    }

    /// Check a pin of pages `[first, end)`: pages it would newly charge, or a saturated page.
    pub(crate) fn pin_check(&self, first: usize, end: usize) -> Result<u64, usize> {
        if self.is_whole(first, end) {
            if self.whole >= PIN_MAX {
                return Err(0);
            }
            return Ok(if self.whole == 0 {
                u64::from(self.pages - self.partial_nonzero)
            } else {
                0
            });
        }
        let fresh = match self.partial.as_deref() {
            Some(p) => slice_pin_check(&p[first..end]).map_err(|i| first + i)?,
            None => (end - first) as u64,
        };
        Ok(if self.whole == 0 { fresh } else { 0 })
    }

    /// Pin pages `[first, end)` (checked with [`FolioPins::pin_check`]); pages newly charged.
    pub(crate) fn pin(&mut self, first: usize, end: usize) -> u64 {
        if self.is_whole(first, end) {
            self.whole += 1;
            return if self.whole == 1 {
                u64::from(self.pages - self.partial_nonzero)
            } else {
                0
            };
        }
        let pages = self.pages as usize;
        let partial = self
            .partial
            .get_or_insert_with(|| vec![0; pages].into_boxed_slice());
        let fresh = slice_pin_check(&partial[first..end]).unwrap_or(0);
        slice_pin(&mut partial[first..end]);
        self.partial_nonzero += fresh as u32;
        if self.whole == 0 { fresh } else { 0 }
    }

    /// Check an unpin of pages `[first, end)`: the first page that is not pinned.
    pub(crate) fn unpin_check(&self, first: usize, end: usize) -> Result<(), usize> {
        if self.whole > 0 {
            return Ok(());
        }
        match self.partial.as_deref() {
            Some(p) => slice_unpin_check(&p[first..end]).map_err(|i| first + i),
            None => Err(first),
        }
    }

    /// Unpin pages `[first, end)` (checked with [`FolioPins::unpin_check`]); pages that reached 0.
    pub(crate) fn unpin(&mut self, first: usize, end: usize) -> u64 {
        if self.is_whole(first, end) && self.whole > 0 {
            self.whole -= 1;
            return if self.whole == 0 {
                u64::from(self.pages - self.partial_nonzero)
            } else {
                0
            };
        }
        let pages = self.pages as usize;
        let partial = self
            .partial
            .get_or_insert_with(|| vec![0; pages].into_boxed_slice());
        if partial[first..end].contains(&0) {
            // Part of a whole-folio pin is dropped: turn one whole pin into a pin of every page
            // (no count changes), then drop the pages asked for. Rare, and O(pages).
            self.whole -= 1;
            let fresh = slice_pin_check(partial).unwrap_or(0);
            slice_pin(partial);
            self.partial_nonzero += fresh as u32;
        }
        let released = slice_unpin(&mut partial[first..end]);
        self.partial_nonzero -= released as u32;
        if self.whole == 0 { released } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_pins_are_one_count() {
        let mut f = FolioPins::new(512);
        assert_eq!(f.pin_check(0, 512), Ok(512));
        assert_eq!(f.pin(0, 512), 512);
        assert_eq!(f.pin(0, 512), 0);
        assert_eq!(f.count(7), 2);
        assert!(f.partial.is_none());
        assert_eq!(f.unpin(0, 512), 0);
        assert_eq!(f.unpin(0, 512), 512);
        assert_eq!(f.first_pinned(), None);
        assert_eq!(f.unpin_check(0, 512), Err(0));
    }

    #[test]
    fn partial_then_whole_charges_each_page_once() {
        let mut f = FolioPins::new(512);
        assert_eq!(f.pin(10, 12), 2);
        assert_eq!(f.pin_check(0, 512), Ok(510));
        assert_eq!(f.pin(0, 512), 510);
        assert_eq!(f.pin(11, 13), 0);
        assert_eq!(f.count(11), 3);
        assert_eq!(f.count(12), 2);
        assert_eq!(f.unpin(0, 512), 509);
        assert_eq!(f.first_pinned(), Some(10));
        assert_eq!(f.unpin_check(9, 11), Err(9));
        assert_eq!(f.unpin(10, 13), 2);
        assert_eq!(f.unpin(11, 12), 1);
        assert_eq!(f.first_pinned(), None);
    }

    #[test]
    fn partial_unpin_of_a_whole_pin_splits_it() {
        let mut f = FolioPins::new(512);
        f.pin(0, 512);
        assert_eq!(f.unpin_check(100, 101), Ok(()));
        assert_eq!(f.unpin(100, 101), 1);
        assert_eq!(f.count(100), 0);
        assert_eq!(f.count(99), 1);
        assert_eq!(f.unpin_check(0, 512), Err(100));
        assert_eq!(f.unpin(0, 100), 100);
        assert_eq!(f.unpin(101, 512), 411);
        assert_eq!(f.first_pinned(), None);
    }

    #[test]
    fn saturation_is_reported() {
        let mut f = FolioPins::new(4);
        f.whole = PIN_MAX;
        assert_eq!(f.pin_check(0, 4), Err(0));
        assert_eq!(f.pin_check(1, 2), Ok(0));
        assert_eq!(slice_pin_check(&[0, 1, PIN_MAX]), Err(2));
        assert_eq!(slice_unpin_check(&[1, 0, 0]), Err(1));
    }

    #[test]
    fn account_limit() {
        let mut a = Account::new(Some(3 * 4096 + 100));
        assert_eq!(a.limit(), Some(3));
        a.check(3).unwrap();
        a.charge(3);
        assert!(matches!(
            a.check(1),
            Err(MemoryError::LimitExceeded {
                requested_pages: 1,
                locked_pages: 3,
                limit_pages: 3
            })
        ));
        a.check(0).unwrap();
        a.set_limit(None);
        a.check(u64::MAX).unwrap();
        a.uncharge(3);
        assert_eq!(a.locked(), 0);
    }
}
