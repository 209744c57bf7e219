// SPDX-License-Identifier: GPL-2.0
//! Data frees kept back from the allocation tree until the transaction's
//! end (or until enough gather), then sorted, joined where they touch and
//! applied together.
//!
//! **Why.** Every changing call drains the queue of refcount changes
//! (`Store::apply_refs`), and a data extent's free is one change: find its
//! record in the allocation tree, then delete it, or shrink or split it.
//! Files written one after the other in a transaction share one record
//! (the allocator merges contiguous allocations), so `rm -rf` of such files
//! cut that record once per file: a delete and an insert of a shifted
//! record each time, about half of what freeing a small file cost. Kept
//! back and joined, the frees of a run of files become one change, which
//! deletes the record once.
//!
//! **Why this is safe.** Only drops of a reference wait here; every other
//! change is applied at the end of its call, as before. Applied later than
//! their turn, drops leave every count in the allocation tree *higher* than
//! it will be, never lower, so no count touches zero early and no block is
//! released while something still names it. A count read meanwhile may say
//! "shared" of an extent that is no longer: the callers that act on a count
//! copy on write then, which is correct, only not needed. The ones that
//! must be exact apply everything first (`Store::is_shared`, the checker, a
//! commit, a subvolume drop step). A block waiting here is not free yet: no
//! allocation can take it before its drop is applied.
//!
//! **Space.** Applying a drop copies a path of the allocation tree, so each
//! entry reserves that many node blocks (`Space::write_reserved`), as a
//! pending orphan does, and an entry is only kept back while the free
//! blocks cover its reservation and the floor the filesystem keeps
//! (`floor`, its global reserve); else the drop is queued at once. A
//! reservation that runs short commits, which applies everything.

use crate::error::Result;
use crate::mem::TryVec;

/// Entries kept back at most; past this the next changing call applies
/// them all. Each is one range, however many contiguous frees it joined.
pub const DEFERRED_FREES_MAX: usize = 1024;

/// The drops of data references not yet queued. Only a vector: the store
/// it lives in is copied on kernel stacks at mount, where every byte
/// counts.
#[derive(Default)]
pub struct DeferredFrees {
    /// `(start, len, nodes)` in the order freed, `nodes` the blocks the
    /// entry reserved (in `Space::write_reserved`); a free that continues
    /// the last one joins it.
    runs: TryVec<(u64, u64, u64)>,
}

impl DeferredFrees {
    /// Nothing kept back.
    pub const fn new() -> Self {
        DeferredFrees { runs: TryVec::new() }
    }

    /// Whether nothing is kept back.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Entries kept back.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Node blocks reserved for the entries.
    pub fn reserved(&self) -> u64 {
        self.runs.iter().fold(0u64, |sum, r| sum.saturating_add(r.2))
    }

    /// Keeps back the drop of `[start, start + len)`: joined to the last
    /// entry when it continues it, else as a new entry reserving `nodes`
    /// blocks, when `reservable` (the free blocks no reservation holds)
    /// covers them and `floor` (the filesystem's global reserve). Returns
    /// the blocks newly reserved, or `None` when the drop must be queued
    /// now.
    pub fn keep(&mut self, start: u64, len: u64, nodes: u64, reservable: u64, floor: u64) -> Result<Option<u64>> {
        if let Some(last) = self.runs.last_mut() {
            if last.0.checked_add(last.1) == Some(start) {
                last.1 = last.1.saturating_add(len);
                return Ok(Some(0));
            }
        }
        if self.runs.len() >= DEFERRED_FREES_MAX || reservable < nodes.saturating_add(floor) {
            return Ok(None);
        }
        self.runs.try_push((start, len, nodes))?;
        Ok(Some(nodes))
    }

    /// Takes every entry as `(start, len, _)`, sorted by start, with ranges
    /// that touch joined (ranges that overlap stay apart: each is a drop
    /// of its own), and the blocks they reserved.
    pub fn take_sorted(&mut self) -> (TryVec<(u64, u64, u64)>, u64) {
        let reserved = self.reserved();
        let mut runs = core::mem::take(&mut self.runs);
        runs.sort_unstable();
        let mut kept = 0usize;
        for i in 0..runs.len() {
            let Some(&(s, l, _)) = runs.get(i) else { break };
            if let Some(prev) = kept.checked_sub(1).and_then(|k| runs.get_mut(k)) {
                if prev.0.checked_add(prev.1) == Some(s) {
                    prev.1 = prev.1.saturating_add(l);
                    continue;
                }
            }
            if let Some(slot) = runs.get_mut(kept) {
                *slot = (s, l, 0);
            }
            kept += 1;
        }
        runs.truncate(kept);
        (runs, reserved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_frees_join_and_come_out_sorted_with_touching_ranges_joined() {
        let mut d = DeferredFrees::new();
        assert_eq!(d.keep(100, 4, 5, 1000, 0).unwrap(), Some(5));
        assert_eq!(d.keep(104, 2, 5, 1000, 0).unwrap(), Some(0), "continues the last entry");
        assert_eq!(d.keep(10, 5, 5, 1000, 0).unwrap(), Some(5));
        assert_eq!(d.keep(106, 1, 5, 1000, 0).unwrap(), Some(5), "does not continue the last entry");
        assert_eq!(d.keep(15, 85, 5, 1000, 0).unwrap(), Some(5), "continues an entry, but not the last");
        assert_eq!((d.len(), d.reserved()), (4, 20));
        let (runs, reserved) = d.take_sorted();
        assert_eq!(&runs[..], &[(10, 97, 0)]);
        assert_eq!(reserved, 20);
        assert!(d.is_empty() && d.reserved() == 0);
    }

    #[test]
    fn overlapping_drops_stay_apart() {
        let mut d = DeferredFrees::new();
        for (start, len) in [(10, 5), (0, 1), (10, 5), (12, 8), (20, 1)] {
            d.keep(start, len, 1, 100, 0).unwrap();
        }
        let (runs, _) = d.take_sorted();
        // Blocks 10..15 are dropped twice and 12..15 three times: joining
        // any overlapping pair would lose a drop.
        let ranges: std::vec::Vec<(u64, u64)> = runs.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(ranges, [(0, 1), (10, 5), (10, 5), (12, 9)]);
    }

    #[test]
    fn no_room_or_too_many_entries_queue_at_once() {
        let mut d = DeferredFrees::new();
        assert_eq!(d.keep(0, 1, 5, 54, 50).unwrap(), None, "the floor stays untouched");
        assert_eq!(d.keep(0, 1, 5, 55, 50).unwrap(), Some(5));
        let mut d = DeferredFrees::new();
        for i in 0..DEFERRED_FREES_MAX as u64 {
            assert!(d.keep(i * 2, 1, 1, u64::MAX, 0).unwrap().is_some());
        }
        assert_eq!(d.keep(1_000_000, 1, 1, u64::MAX, 0).unwrap(), None);
        // A free continuing the last entry still joins it.
        assert_eq!(d.keep(DEFERRED_FREES_MAX as u64 * 2 - 1, 1, 1, u64::MAX, 0).unwrap(), Some(0));
    }
}
