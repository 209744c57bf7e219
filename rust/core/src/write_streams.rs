// SPDX-License-Identifier: GPL-2.0
//! Where each file being written back goes next on disk, so that a file's
//! blocks land in file order even when two writebacks of it run side by
//! side (the flusher thread and an fsync, each taking its own range of
//! dirty pages) and ask for their blocks out of order: a write of file
//! blocks a little past where the file's stream stands leaves the gap free
//! for the blocks before it, and those fill the gap when they come, as
//! ext4's per-inode preallocation lines up logical and physical blocks.
//! Only a goal: blocks that are no longer free there are not waited for,
//! the allocator then searches from its hint as before.

use crate::mem::TryVec;
use crate::subvol::SubvolId;

/// Files followed at once; the least recently placed one makes room.
const STREAMS: usize = 16;

/// How far (in blocks) a write may be from where its file's stream
/// stands and still be placed relative to it: a few writeback batches.
const NEAR: u64 = 8192;

#[derive(Debug, Clone, Copy)]
struct Stream {
    sv: u64,
    ino: u64,
    /// The file block after the last placed run, and the disk block after
    /// it.
    next_file: u64,
    next_disk: u64,
    /// When it was last placed (a count of placements), 0 when unused.
    used: u64,
}

/// The streams of the files written back lately, on the heap (a
/// filesystem's state lives on kernel stacks in places, by value).
#[derive(Debug, Default)]
pub struct WriteStreams {
    slots: TryVec<Stream>,
    clock: u64,
}

impl WriteStreams {
    /// No file followed.
    pub const fn new() -> Self {
        WriteStreams { slots: TryVec::new(), clock: 0 }
    }

    /// The slot following `ino` of `sv`, if one does.
    fn slot(&self, sv: SubvolId, ino: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.used != 0 && s.sv == sv.0 && s.ino == ino)
    }

    /// The disk block file block `fb` of `ino` should go to: as far from
    /// its stream's next disk block as `fb` is from its next file block,
    /// either way, when that is within `NEAR`.
    pub fn goal(&self, sv: SubvolId, ino: u64, fb: u64) -> Option<u64> {
        let s = self.slots.get(self.slot(sv, ino)?)?;
        if fb >= s.next_file {
            let ahead = fb - s.next_file;
            (ahead <= NEAR).then(|| s.next_disk.checked_add(ahead)).flatten()
        } else {
            let behind = s.next_file - fb;
            (behind <= NEAR).then(|| s.next_disk.checked_sub(behind)).flatten()
        }
    }

    /// File blocks `[fb, fb + n)` of `ino` went to disk blocks from
    /// `disk`. A run that fills a gap behind the stream leaves it where it
    /// stands.
    pub fn placed(&mut self, sv: SubvolId, ino: u64, fb: u64, disk: u64, n: u64) {
        let (Some(next_file), Some(next_disk)) = (fb.checked_add(n), disk.checked_add(n)) else { return };
        self.clock += 1;
        let clock = self.clock;
        let fresh = Stream { sv: sv.0, ino, next_file, next_disk, used: clock };
        let i = match self.slot(sv, ino) {
            Some(i) => i,
            // Without memory for one more, the file is not followed.
            None if self.slots.len() < STREAMS => {
                let _ = self.slots.try_push(fresh);
                return;
            }
            None => {
                // The least recently placed makes room.
                let i = (0..self.slots.len()).min_by_key(|&i| self.slots.get(i).map_or(0, |s| s.used)).unwrap_or(0);
                if let Some(s) = self.slots.get_mut(i) {
                    *s = fresh;
                }
                return;
            }
        };
        if let Some(s) = self.slots.get_mut(i) {
            s.used = clock;
            if next_file >= s.next_file {
                s.next_file = next_file;
                s.next_disk = next_disk;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SV: SubvolId = SubvolId::DEFAULT;

    #[test]
    fn writes_out_of_order_get_the_places_of_file_order() {
        let mut w = WriteStreams::new();
        assert_eq!(w.goal(SV, 7, 0), None);
        w.placed(SV, 7, 0, 1000, 256);
        // Blocks 512.. ask first: they leave a gap for 256..512.
        assert_eq!(w.goal(SV, 7, 512), Some(1512));
        w.placed(SV, 7, 512, 1512, 256);
        assert_eq!(w.goal(SV, 7, 256), Some(1256));
        w.placed(SV, 7, 256, 1256, 256);
        // Filling the gap left the stream at its head.
        assert_eq!(w.goal(SV, 7, 768), Some(1768));
        // Far away, another file, another subvolume: no goal.
        assert_eq!(w.goal(SV, 7, 768 + NEAR + 1), None);
        assert_eq!(w.goal(SV, 8, 768), None);
        assert_eq!(w.goal(SubvolId(SV.0 + 1), 7, 768), None);
    }

    #[test]
    fn the_least_recently_placed_file_makes_room() {
        let mut w = WriteStreams::new();
        for ino in 0..STREAMS as u64 {
            w.placed(SV, ino, 0, ino * 100, 10);
        }
        w.placed(SV, 0, 10, 10, 10);
        w.placed(SV, 99, 0, 5000, 10);
        assert_eq!(w.goal(SV, 1, 10), None, "the oldest went");
        assert_eq!(w.goal(SV, 0, 20), Some(20));
        assert_eq!(w.goal(SV, 99, 10), Some(5010));
    }
}
