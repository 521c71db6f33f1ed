//! [`PinRuns`]: pin counts of a range of pages kept as disjoint runs of equal count, so pinning or
//! unpinning a range costs O(runs it touches · log runs), not O(pages).

use std::collections::BTreeMap;

/// Pin counts of pages `0..=u64::MAX - 1`, as disjoint runs `first → (last, count)` with
/// `count > 0` (unpinned pages are not stored); neighbouring runs never have the same count.
#[derive(Debug, Default, Clone)]
pub struct PinRuns {
    runs: BTreeMap<u64, (u64, u32)>,
    /// Pages with a non-zero count.
    pinned: u64,
}

/// Why a range cannot be pinned or unpinned; the page named is the first one at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsError {
    /// A page's count is already at the bound asked for.
    Saturated(u64),
    /// A page is not pinned.
    NotPinned(u64),
}

impl PinRuns {
    /// No page pinned.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pages with a non-zero count.
    pub fn pinned(&self) -> u64 {
        self.pinned
    }

    /// Whether no page is pinned.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The first pinned page.
    pub fn first_pinned(&self) -> Option<u64> {
        self.runs.keys().next().copied()
    }

    /// The count of page `page`.
    pub fn count(&self, page: u64) -> u32 {
        match self.runs.range(..=page).next_back() {
            Some((_, &(last, c))) if last >= page => c,
            _ => 0,
        }
    }

    /// The runs overlapping `first..=last`, clipped to it: (first, last, count).
    fn overlapping(&self, first: u64, last: u64) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        let head = self
            .runs
            .range(..first)
            .next_back()
            .filter(|(_, (l, _))| *l >= first)
            .map(|(&s, &(l, c))| (s, l, c));
        let rest = self.runs.range(first..=last).map(|(&s, &(l, c))| (s, l, c));
        head.into_iter()
            .chain(rest)
            .map(move |(s, l, c)| (s.max(first), l.min(last), c))
    }

    /// Check a pin of `first..=last` (with `first <= last < u64::MAX`) where no count may reach
    /// `max`: the number of pages it would newly pin (count 0 → 1), or the first page at `max`.
    pub fn pin_check(&self, first: u64, last: u64, max: u32) -> Result<u64, RunsError> {
        let mut covered = 0u64;
        for (s, l, c) in self.overlapping(first, last) {
            if c >= max {
                return Err(RunsError::Saturated(s));
            }
            covered += l - s + 1;
        }
        Ok(last - first + 1 - covered)
    }

    /// Check an unpin of `first..=last`: the first page that is not pinned.
    pub fn unpin_check(&self, first: u64, last: u64) -> Result<(), RunsError> {
        let mut next = first;
        for (s, l, _) in self.overlapping(first, last) {
            if s != next {
                return Err(RunsError::NotPinned(next));
            }
            match l.checked_add(1) {
                Some(n) => next = n,
                None => return Ok(()),
            }
        }
        if next <= last {
            return Err(RunsError::NotPinned(next));
        }
        Ok(())
    }

    /// Make `at` the first page of a run if a run crosses it.
    fn split(&mut self, at: u64) {
        let Some((&s, &(l, c))) = self.runs.range(..at).next_back() else {
            return;
        };
        if l >= at {
            self.runs.insert(s, (at - 1, c));
            self.runs.insert(at, (l, c));
        }
    }

    /// Merge the runs from the one before `first` through the one starting after `last` where
    /// they touch and have equal counts.
    fn merge(&mut self, first: u64, last: u64) {
        let from = self.runs.range(..first).next_back().map_or(first, |(&s, _)| s);
        let to = last.saturating_add(1);
        let keys: Vec<(u64, u64, u32)> = self
            .runs
            .range(from..=to)
            .map(|(&s, &(l, c))| (s, l, c))
            .collect();
        let mut cur: Option<(u64, u64, u32)> = None;
        for (s, l, c) in keys {
            match cur {
                Some((cs, cl, cc)) if cc == c && cl.checked_add(1) == Some(s) => {
                    self.runs.remove(&s);
                    self.runs.insert(cs, (l, c));
                    cur = Some((cs, l, c));
                }
                _ => cur = Some((s, l, c)),
            }
        }
    }

    /// Splits the runs at `first` and after `last`; the runs inside `first..=last` as
    /// `(start, last, count)`.
    fn isolate(&mut self, first: u64, last: u64) -> Vec<(u64, u64, u32)> {
        self.split(first);
        if let Some(end) = last.checked_add(1) {
            self.split(end);
        }
        self.runs
            .range(first..=last)
            .map(|(&s, &(l, c))| (s, l, c))
            .collect()
    }

    /// Pin `first..=last` once more (checked with [`PinRuns::pin_check`]); pages newly pinned.
    pub fn pin(&mut self, first: u64, last: u64) -> u64 {
        let inside = self.isolate(first, last);
        let mut fresh = 0u64;
        let mut next = Some(first);
        for (s, l, c) in inside {
            if let Some(n) = next.filter(|&n| n < s) {
                self.runs.insert(n, (s - 1, 1));
                fresh += s - n;
            }
            self.runs.insert(s, (l, c + 1));
            next = l.checked_add(1);
        }
        if let Some(n) = next.filter(|&n| n <= last) {
            self.runs.insert(n, (last, 1));
            fresh += last - n + 1;
        }
        self.pinned += fresh;
        self.merge(first, last);
        fresh
    }

    /// Drop one pin of `first..=last` (checked with [`PinRuns::unpin_check`]); pages whose count
    /// reached 0.
    pub fn unpin(&mut self, first: u64, last: u64) -> u64 {
        let inside = self.isolate(first, last);
        let mut released = 0u64;
        for (s, l, c) in inside {
            if c <= 1 {
                self.runs.remove(&s);
                released += l - s + 1;
            } else {
                self.runs.insert(s, (l, c - 1));
            }
        }
        self.pinned -= released;
        self.merge(first, last);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pins_split_and_merge() {
        let mut r = PinRuns::new();
        assert_eq!(r.pin_check(0, 9, u32::MAX), Ok(10));
        assert_eq!(r.pin(0, 9), 10);
        assert_eq!(r.pin(3, 5), 0);
        assert_eq!(r.runs.len(), 3);
        assert_eq!(r.count(4), 2);
        assert_eq!(r.pin_check(8, 12, u32::MAX), Ok(3));
        assert_eq!(r.pin_check(0, 12, 2), Err(RunsError::Saturated(3)));
        assert_eq!(r.unpin_check(5, 11), Err(RunsError::NotPinned(10)));
        assert_eq!(r.unpin(3, 5), 0);
        assert_eq!(r.runs.len(), 1, "equal neighbours merge");
        assert_eq!(r.unpin(0, 9), 10);
        assert!(r.is_empty());
        assert_eq!(r.unpin_check(0, 0), Err(RunsError::NotPinned(0)));
        assert_eq!(r.pin(u64::MAX - 1, u64::MAX - 1), 1);
        assert_eq!(r.unpin_check(u64::MAX - 1, u64::MAX - 1), Ok(()));
    }

    proptest! {
        #[test]
        fn matches_a_flat_array(ops in prop::collection::vec((any::<bool>(), 0u64..40, 0u64..40), 1..60)) {
            let mut r = PinRuns::new();
            let mut flat = [0u32; 40];
            for (pin, a, b) in ops {
                let (first, last) = (a.min(b), a.max(b));
                let slice = &mut flat[first as usize..=last as usize];
                if pin {
                    let fresh = slice.iter().filter(|&&c| c == 0).count() as u64;
                    prop_assert_eq!(r.pin_check(first, last, u32::MAX), Ok(fresh));
                    prop_assert_eq!(r.pin(first, last), fresh);
                    slice.iter_mut().for_each(|c| *c += 1);
                } else {
                    let zero = slice.iter().position(|&c| c == 0).map(|i| first + i as u64);
                    match zero {
                        Some(p) => prop_assert_eq!(r.unpin_check(first, last), Err(RunsError::NotPinned(p))),
                        None => {
                            prop_assert_eq!(r.unpin_check(first, last), Ok(()));
                            let freed = slice.iter().filter(|&&c| c == 1).count() as u64;
                            prop_assert_eq!(r.unpin(first, last), freed);
                            slice.iter_mut().for_each(|c| *c -= 1);
                        }
                    }
                }
                for (i, &c) in flat.iter().enumerate() {
                    prop_assert_eq!(r.count(i as u64), c);
                }
                prop_assert_eq!(r.pinned(), flat.iter().filter(|&&c| c > 0).count() as u64);
                prop_assert_eq!(r.first_pinned(), flat.iter().position(|&c| c > 0).map(|i| i as u64));
                let v: Vec<_> = r.runs.iter().map(|(&s, &(l, c))| (s, l, c)).collect();
                for w in v.windows(2) {
                    prop_assert!(w[0].1 < w[1].0);
                    prop_assert!(!(w[0].1 + 1 == w[1].0 && w[0].2 == w[1].2), "unmerged {:?}", w);
                }
            }
        }
    }
}
