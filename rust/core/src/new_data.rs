// SPDX-License-Identifier: GPL-2.0
//! Where each file gained new data blocks since the last commit: one
//! range of file blocks per inode, so that a fast-commit or tree-log
//! record looks for the runs it must carry (`Filesystem::new_runs`) in
//! that range only, not through every extent of the file. An appender
//! that fsyncs after every write would otherwise decode its whole extent
//! map at each fsync, under the core lock, as ext4's fast commit avoids
//! with its per-inode range of changed logical blocks.
//!
//! **The rule it keeps.** Every extent of an inode whose blocks this
//! transaction allocated and no record has taken yet (blocks still in
//! `Space::txn_alloc`) lies within the inode's range. Such extents come
//! only from `map_extent_as`, which notes its range here; splitting one
//! (a punch) only narrows it. A record takes every such run in the range
//! and removes its blocks from `txn_alloc`, after which the range is
//! forgotten (`taken`); a commit forgets all of them (`clear`).
//!
//! Bounded: past `MAX_INODES` inodes, or with no memory for one more,
//! a note is not kept and the inodes without a range are scanned whole
//! (`Scan::Whole`) until the next commit, as before this index existed.

use crate::mem::TryVec;
use crate::subvol::SubvolId;

/// Most inodes with a range kept at once.
const MAX_INODES: usize = 4096;

/// Where a record of one inode must look for new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Nowhere: the inode gained no data blocks since its last record or
    /// the last commit.
    Nothing,
    /// File blocks `[from, to)`.
    Range { from: u64, to: u64 },
    /// Every extent of the inode (a note may have been dropped).
    Whole,
}

/// The ranges of file blocks that gained new data, per (subvolume, inode).
#[derive(Debug, Default)]
pub struct NewData {
    /// (subvolume, inode, first block, end block), sorted by the first two.
    ranges: TryVec<(u64, u64, u64, u64)>,
    /// A note was dropped since the last commit.
    dropped: bool,
}

impl NewData {
    /// File blocks `[fb, fb+n)` of `ino` in `sv` were mapped to new blocks.
    pub fn note(&mut self, sv: SubvolId, ino: u64, fb: u64, n: u64) {
        let end = fb.saturating_add(n);
        match self.ranges.binary_search_by(|e| (e.0, e.1).cmp(&(sv.0, ino))) {
            Ok(i) => {
                let e = &mut self.ranges[i];
                e.2 = e.2.min(fb);
                e.3 = e.3.max(end);
            }
            Err(i) => {
                if self.ranges.len() >= MAX_INODES || self.ranges.try_insert(i, (sv.0, ino, fb, end)).is_err() {
                    self.dropped = true;
                }
            }
        }
    }

    /// Where the next record of `ino` in `sv` must look.
    pub fn scan(&self, sv: SubvolId, ino: u64) -> Scan {
        match self.ranges.binary_search_by(|e| (e.0, e.1).cmp(&(sv.0, ino))) {
            Ok(i) => Scan::Range { from: self.ranges[i].2, to: self.ranges[i].3 },
            Err(_) if self.dropped => Scan::Whole,
            Err(_) => Scan::Nothing,
        }
    }

    /// A record took every new run of `ino` in `sv`.
    pub fn taken(&mut self, sv: SubvolId, ino: u64) {
        if let Ok(i) = self.ranges.binary_search_by(|e| (e.0, e.1).cmp(&(sv.0, ino))) {
            self.ranges.remove(i);
        }
    }

    /// A commit: nothing is new any more.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.dropped = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SubvolId = SubvolId(5);
    const B: SubvolId = SubvolId(256);

    #[test]
    fn a_range_grows_to_cover_every_note_and_is_kept_per_subvolume_and_inode() {
        let mut d = NewData::default();
        assert_eq!(d.scan(A, 7), Scan::Nothing);
        d.note(A, 7, 10, 2);
        d.note(A, 7, 4, 1);
        d.note(B, 7, 100, 1);
        assert_eq!(d.scan(A, 7), Scan::Range { from: 4, to: 12 });
        assert_eq!(d.scan(B, 7), Scan::Range { from: 100, to: 101 });
        assert_eq!(d.scan(A, 8), Scan::Nothing);
        d.taken(A, 7);
        assert_eq!(d.scan(A, 7), Scan::Nothing);
        assert_eq!(d.scan(B, 7), Scan::Range { from: 100, to: 101 });
        d.clear();
        assert_eq!(d.scan(B, 7), Scan::Nothing);
    }

    #[test]
    fn past_the_bound_the_inodes_without_a_range_are_scanned_whole_until_a_commit() {
        let mut d = NewData::default();
        for ino in 0..MAX_INODES as u64 {
            d.note(A, ino, 0, 1);
        }
        assert_eq!(d.scan(A, MAX_INODES as u64), Scan::Nothing);
        d.note(A, MAX_INODES as u64, 0, 1);
        assert_eq!(d.scan(A, MAX_INODES as u64), Scan::Whole);
        // Kept ranges stay exact, and grow in place.
        d.note(A, 3, 9, 1);
        assert_eq!(d.scan(A, 3), Scan::Range { from: 0, to: 10 });
        d.taken(A, 3);
        assert_eq!(d.scan(A, 3), Scan::Whole, "forgotten: a dropped note may have been its");
        d.clear();
        assert_eq!(d.scan(A, MAX_INODES as u64), Scan::Nothing);
    }
}
