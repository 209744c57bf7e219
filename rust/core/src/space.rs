// SPDX-License-Identifier: GPL-2.0
//! In-memory space bookkeeping: sets of block ranges (free, pinned,
//! allocated in the running transaction) and the queue of reference-count
//! changes waiting to be applied to the allocation tree.
//!
//! # Why it is shaped like this
//!
//! The allocation tree (`crate::alloc_tree`) is the durable truth: records
//! `(start, len) -> refcount`. Updating it needs copy-on-write of its own
//! nodes, which allocates and frees blocks, which changes refcounts again.
//! Rather than recursing, every refcount change is queued here and the queue
//! is drained (FIFO, so +1 of a block precedes a later -1) by
//! `Store::apply_refs` after each operation and at commit; the
//! allocation tree's own CoW only adds entries to the queue being drained,
//! and since a node is copied at most once per transaction this converges.
//!
//! The free set is rebuilt from the allocation tree at mount (the
//! complement of all records), so nothing about free space needs its own
//! crash-safe structure. A block whose count drops to zero is only reusable
//! at once if it was allocated in the running transaction (the last
//! committed state never saw it); otherwise it is *pinned* until the commit
//! that stops referencing it is on disk.
//!
//! While the kernel reads file data outside the core lock, blocks it has
//! mapped must not be handed out again before its I/O ends. A reader can
//! only have mapped blocks that were in use when it mapped them, so it is
//! enough that no block freed meanwhile becomes reusable: while
//! `io_in_flight` is set, blocks that would become free (released in the
//! running transaction, or pinned blocks at a commit) go to `held`
//! instead, which is free space in every other sense (statfs, the
//! superblock's count) and joins `free` once the reads that might use it
//! have ended.
//!
//! Which reads those are, the kernel tells by *hold generations*: it counts
//! each I/O in the generation current when it began, and starts a new
//! generation only once every I/O of the one before has ended
//! (`next_hold_generation`). A block freed in generation g can only be
//! used by I/O of g or of g - 1 (I/O of g - 2 ended before g began), so it
//! is free again once generation g + 2 begins: `held` collects the blocks
//! freed in the current generation, `held_before` those of the one before,
//! and a new generation frees `held_before` and moves `held` there. A
//! steady stream of I/O thus keeps back only what was freed in its last
//! two generations, and once no I/O is in flight at all, nothing.

use crate::deferred_frees::DeferredFrees;
use crate::error::{Error, Result};
use crate::mem::TryVec;
use crate::subvol::SubvolId;
use crate::write_streams::WriteStreams;
use crate::written_crc::WrittenCrcs;

/// A set of block ranges, kept sorted, disjoint and merged.
pub struct ExtentSet {
    v: TryVec<(u64, u64)>,
    total: u64,
}

impl ExtentSet {
    /// An empty set.
    pub const fn new() -> Self {
        ExtentSet { v: TryVec::new(), total: 0 }
    }

    /// Blocks in the set.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.v
    }

    /// Drops every range.
    pub fn clear(&mut self) {
        self.v.clear();
        self.total = 0;
    }

    /// Index of the first range ending after `block`.
    fn first_ending_after(&self, block: u64) -> usize {
        self.v.partition_point(|&(s, l)| s + l <= block)
    }

    /// Adds `[start, start+len)`, which must not overlap the set.
    pub fn insert(&mut self, start: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let end = start.checked_add(len).ok_or(Error::corrupt("block range overflows"))?;
        let i = self.v.partition_point(|&(s, _)| s < start);
        if let Some(&(s, _)) = self.v.get(i) {
            if s < end {
                return Err(Error::corrupt("block range added twice"));
            }
        }
        if i > 0 {
            if let Some(&(s, l)) = self.v.get(i - 1) {
                if s + l > start {
                    return Err(Error::corrupt("block range added twice"));
                }
            }
        }
        let merge_left = i > 0 && self.v.get(i - 1).is_some_and(|&(s, l)| s + l == start);
        let merge_right = self.v.get(i).is_some_and(|&(s, _)| s == end);
        match (merge_left, merge_right) {
            (true, true) => {
                let (_, rl) = self.v.remove(i);
                if let Some(p) = self.v.get_mut(i - 1) {
                    p.1 += len + rl;
                }
            }
            (true, false) => {
                if let Some(p) = self.v.get_mut(i - 1) {
                    p.1 += len;
                }
            }
            (false, true) => {
                if let Some(p) = self.v.get_mut(i) {
                    *p = (start, p.1 + len);
                }
            }
            (false, false) => self.v.try_insert(i, (start, len))?,
        }
        self.total += len;
        Ok(())
    }

    /// Removes `[start, start+len)`, which must lie inside one range.
    pub fn remove(&mut self, start: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let i = self.first_ending_after(start);
        let &(s, l) = self.v.get(i).ok_or(Error::corrupt("removing blocks not in the set"))?;
        let end = start + len;
        if s > start || s + l < end {
            return Err(Error::corrupt("removing blocks not in the set"));
        }
        let (left, right) = (start - s, s + l - end);
        match (left, right) {
            (0, 0) => {
                self.v.remove(i);
            }
            (0, r) => self.v[i] = (end, r),
            (lft, 0) => self.v[i] = (s, lft),
            (lft, r) => {
                self.v[i] = (s, lft);
                self.v.try_insert(i + 1, (end, r))?;
            }
        }
        self.total -= len;
        Ok(())
    }

    /// Whether every block of the range is in the set.
    pub fn contains(&self, start: u64, len: u64) -> bool {
        let i = self.first_ending_after(start);
        self.v.get(i).is_some_and(|&(s, l)| s <= start && s + l >= start.saturating_add(len))
    }

    /// Whether any block of the range is in the set.
    pub fn overlaps(&self, start: u64, len: u64) -> bool {
        let i = self.first_ending_after(start);
        self.v.get(i).is_some_and(|&(s, _)| s < start.saturating_add(len))
    }

    /// Calls `f(start, len, inside)` for consecutive pieces of the range,
    /// telling which are in the set.
    pub fn split_by(&self, start: u64, len: u64, mut f: impl FnMut(u64, u64, bool) -> Result<()>) -> Result<()> {
        let end = start + len;
        let mut pos = start;
        let mut i = self.first_ending_after(start);
        while pos < end {
            match self.v.get(i) {
                Some(&(s, l)) if s < end => {
                    if s > pos {
                        f(pos, s - pos, false)?;
                        pos = s;
                    }
                    let e = (s + l).min(end);
                    f(pos, e - pos, true)?;
                    pos = e;
                    i += 1;
                }
                _ => {
                    f(pos, end - pos, false)?;
                    pos = end;
                }
            }
        }
        Ok(())
    }

    /// Takes up to `want` contiguous blocks from block `at` on, if it is
    /// in the set with at least `least` of them there (fewer than `want`
    /// where its range ends sooner).
    pub fn take_at(&mut self, at: u64, want: u64, least: u64) -> Result<Option<(u64, u64)>> {
        let Some(&(s, l)) = self.v.get(self.first_ending_after(at)) else { return Ok(None) };
        if want == 0 || at < s || s + l - at < least.min(want) {
            return Ok(None);
        }
        let got = want.min(s + l - at);
        self.remove(at, got)?;
        Ok(Some((at, got)))
    }

    /// Takes up to `want` contiguous blocks, searching from `hint` and
    /// wrapping around; prefers a range that can give all of `want`.
    pub fn take(&mut self, hint: u64, want: u64) -> Result<Option<(u64, u64)>> {
        self.take_sparing_front(hint, want, u64::MAX)
    }

    /// `take`, except that a range longer than `long` gives the last
    /// `want` blocks of its end, so that what `take` gives from its front
    /// (file data, searched from the data hint) stays in one piece.
    pub fn take_sparing_front(&mut self, hint: u64, want: u64, long: u64) -> Result<Option<(u64, u64)>> {
        if want == 0 || self.v.is_empty() {
            return Ok(None);
        }
        let n = self.v.len();
        let per = crate::store::divisor(n as u64);
        let first = (self.first_ending_after(hint) as u64 % per) as usize;
        let mut best: Option<usize> = None;
        for k in 0..n {
            let i = ((first + k) as u64 % per) as usize;
            let (_, l) = self.v[i];
            if l >= want {
                best = Some(i);
                break;
            }
            if best.map_or(true, |b| self.v[b].1 < l) {
                best = Some(i);
            }
            // A bounded search: giving a shorter run beats scanning forever.
            if k >= 64 && best.is_some() {
                break;
            }
        }
        let Some(i) = best else { return Ok(None) };
        let (s, l) = self.v[i];
        let start = if l > long && l >= want {
            s + l - want
        } else if s < hint && hint < s + l && s + l - hint >= want {
            hint
        } else {
            s
        };
        let got = want.min(s + l - start);
        self.remove(start, got)?;
        Ok(Some((start, got)))
    }
}

impl Default for ExtentSet {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for Space {
    fn default() -> Self {
        Self::new()
    }
}

/// A queued refcount change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefOp {
    /// First block.
    pub start: u64,
    /// Block count.
    pub len: u64,
    /// +1 or -1.
    pub delta: i8,
}

/// Everything the allocator keeps in memory.
pub struct Space {
    /// Blocks nobody references and the last commit does not need.
    pub free: ExtentSet,
    /// Blocks freed in this transaction that the last commit still uses.
    pub pinned: ExtentSet,
    /// Blocks allocated in this transaction.
    pub txn_alloc: ExtentSet,
    /// Free blocks kept from reuse while reads outside the core lock may
    /// still be reading them: those freed in the current hold generation
    /// (see the module doc).
    pub held: ExtentSet,
    /// The same for blocks freed in the generation before.
    pub held_before: ExtentSet,
    /// Free blocks that the records being replayed at mount name, out of
    /// `free` until their records claim them (`pin_for_replay`).
    pub replay_pinned: ExtentSet,
    /// Blocks that become free go to `held`, not `free`.
    pub io_in_flight: bool,
    /// Blocks taken for file data being written outside the core lock
    /// (`crate::data_write`): not free, but referenced by nothing and not
    /// in the allocation tree until the write is finished, so a commit in
    /// between records them as free and a crash loses nothing.
    pub writing: ExtentSet,
    /// Blocks reserved for the tree changes that will map the `writing`
    /// blocks: no other reservation may count on them.
    pub write_reserved: u64,
    /// Refcount changes not yet in the allocation tree.
    pub queue: TryVec<RefOp>,
    /// Drops of data references not queued yet (`crate::deferred_frees`).
    pub deferred: DeferredFrees,
    /// Where the next search for free data blocks starts.
    pub hint: u64,
    /// Free blocks set aside for the next metadata nodes, `(first, count)`:
    /// taken from `free` as one run, so that a transaction's nodes sit side
    /// by side however much data is written between them, and its commit
    /// writes them with few device writes. Nothing references them: they
    /// are free space in every other sense.
    pub meta_run: (u64, u64),
    /// Where the next run for metadata is searched from.
    pub meta_hint: u64,
    /// Whether nodes take their blocks from `meta_run`; off until mount has
    /// replayed the records that claim particular free blocks.
    pub cluster_meta: bool,
    /// The CRCs of data written in this transaction, for fsync records;
    /// blocks that become free lose theirs.
    pub written: WrittenCrcs,
    /// Where the files written back lately go next (`take_for_write`).
    pub streams: WriteStreams,
}

/// Free blocks left after the head of a file's write stream for its next
/// runs (16 MiB of 4 KiB blocks), once it has more than one run: other
/// allocations search from past them, so that files written back side by side each grow in runs this
/// long rather than taking turns block batch by block batch. Only the
/// search moves: the blocks stay free for anyone (a search wraps around
/// to them).
const STREAM_WINDOW: u64 = 4096;

/// Fewest blocks a write stream's goal must offer (unless the write wants
/// fewer) to be taken; else the search runs from the hint.
const STREAM_LEAST: u64 = 64;

/// Most blocks `meta_run` takes at once.
const META_RUN_BLOCKS: u64 = 64;

/// A free range longer than this gives `meta_run` the blocks of its end,
/// not of its front (16 MiB of 4 KiB blocks): file data written
/// sequentially takes such a range from its front, and metadata cutting
/// in there would end the file's extent at every refill of the run.
const META_SPARES_FRONT_OF: u64 = 4096;

impl Space {
    /// Nothing free, nothing queued.
    pub const fn new() -> Self {
        Space {
            free: ExtentSet::new(),
            pinned: ExtentSet::new(),
            txn_alloc: ExtentSet::new(),
            held: ExtentSet::new(),
            held_before: ExtentSet::new(),
            replay_pinned: ExtentSet::new(),
            io_in_flight: false,
            writing: ExtentSet::new(),
            write_reserved: 0,
            queue: TryVec::new(),
            deferred: DeferredFrees::new(),
            hint: 0,
            meta_run: (0, 0),
            meta_hint: 0,
            cluster_meta: false,
            written: WrittenCrcs::new(),
            streams: WriteStreams::new(),
        }
    }

    /// Queues a refcount change, merging it into the previous one when they
    /// are contiguous with the same sign.
    pub fn queue(&mut self, start: u64, len: u64, delta: i8) -> Result<()> {
        if let Some(last) = self.queue.last_mut() {
            if last.delta == delta && last.start + last.len == start {
                last.len += len;
                return Ok(());
            }
        }
        self.queue.try_push(RefOp { start, len, delta })
    }

    /// Drops a reference to data blocks `[start, start + len)`: kept back
    /// for a later `Store::apply_refs` when there is room to reserve the
    /// `nodes` blocks applying it may copy and leave `floor` free
    /// (`crate::deferred_frees`), else queued now.
    pub fn drop_data_ref(&mut self, start: u64, len: u64, nodes: u64, floor: u64) -> Result<()> {
        match self.deferred.keep(start, len, nodes, self.reservable(), floor)? {
            Some(reserved) => {
                self.write_reserved = self.write_reserved.saturating_add(reserved);
                Ok(())
            }
            None => self.queue(start, len, -1),
        }
    }

    /// Queues every drop kept back, sorted and joined, and gives back
    /// their reservation.
    pub fn queue_deferred(&mut self) -> Result<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let (runs, reserved) = self.deferred.take_sorted();
        self.write_reserved = self.write_reserved.saturating_sub(reserved);
        for &(start, len, _) in runs.iter() {
            self.queue(start, len, -1)?;
        }
        Ok(())
    }

    /// Takes blocks from the free set for the running transaction. When
    /// the free set is empty, the blocks set aside for metadata go back to
    /// it first: data never fails for space only they hold.
    pub fn allocate(&mut self, want: u64) -> Result<(u64, u64)> {
        let (s, l) = self.allocate_free(want)?;
        self.hint = s + l;
        self.txn_alloc.insert(s, l)?;
        self.queue(s, l, 1)?;
        Ok((s, l))
    }

    /// Up to `want` contiguous blocks out of the free set, searched from
    /// the data hint (see `allocate`).
    fn allocate_free(&mut self, want: u64) -> Result<(u64, u64)> {
        match self.free.take(self.hint, want)? {
            Some(run) => Ok(run),
            None if self.meta_run.1 > 0 => {
                let (s, l) = core::mem::take(&mut self.meta_run);
                self.free.insert(s, l)?;
                self.free.take(self.hint, want)?.ok_or(Error::NoSpace)
            }
            None => Err(Error::NoSpace),
        }
    }

    /// Takes one block for a metadata node: the next of `meta_run`,
    /// refilled with up to `META_RUN_BLOCKS` contiguous free blocks when
    /// empty (or straight from the free set while `cluster_meta` is off),
    /// from the end of a long free range (`META_SPARES_FRONT_OF`): on a
    /// young filesystem nodes fill the device from its end downwards, each
    /// run just below the last, while data fills it from the front.
    pub fn allocate_meta(&mut self) -> Result<u64> {
        if !self.cluster_meta {
            return Ok(self.allocate(1)?.0);
        }
        if self.meta_run.1 == 0 {
            let (s, l) = self.free.take_sparing_front(self.meta_hint, META_RUN_BLOCKS, META_SPARES_FRONT_OF)?.ok_or(Error::NoSpace)?;
            self.meta_run = (s, l);
            self.meta_hint = s + l;
        }
        let (s, l) = self.meta_run;
        self.txn_alloc.insert(s, 1)?;
        self.meta_run = (s + 1, l - 1);
        self.queue(s, 1, 1)?;
        Ok(s)
    }

    /// Takes up to `want` contiguous blocks for file blocks from `fb` of
    /// `ino`, for a data write done outside the core lock: they leave the
    /// free set for `writing`, and nothing else records them yet (see
    /// `writing`). Where the file's stream says they should go, if free
    /// there (`crate::write_streams`), and the hint then moves
    /// `STREAM_WINDOW` past them; else from the hint, as `allocate`.
    pub fn take_for_write(&mut self, sv: SubvolId, ino: u64, fb: u64, want: u64) -> Result<(u64, u64)> {
        let placed = match self.streams.goal(sv, ino, fb) {
            // Not a sliver: a stale goal in fragmented space would cut
            // the write into runs of a few blocks.
            Some(goal) => self.free.take_at(goal, want, STREAM_LEAST)?,
            None => None,
        };
        let (s, l) = match placed {
            // The hint only moves on: a run that filled a gap behind the
            // stream leaves it past the runs ahead.
            Some((s, l)) => {
                self.hint = self.hint.max((s + l).saturating_add(STREAM_WINDOW));
                (s, l)
            }
            // A file's first run (or one far from its stream) packs in
            // after what was taken last, as any allocation: a window
            // after every small file would spread them over the device.
            None => {
                let (s, l) = self.allocate_free(want)?;
                self.hint = s + l;
                (s, l)
            }
        };
        self.writing.insert(s, l)?;
        self.streams.placed(sv, ino, fb, s, l);
        Ok((s, l))
    }

    /// A data write outside the lock is done and its blocks are about to be
    /// mapped: they become the running transaction's, referenced once.
    pub fn claim_written(&mut self, start: u64, len: u64) -> Result<()> {
        self.writing.remove(start, len)?;
        self.txn_alloc.insert(start, len)?;
        self.queue(start, len, 1)
    }

    /// A data write outside the lock that will not be mapped: its blocks
    /// are free again (held while reads are in flight: a failed write's
    /// blocks were never readable, but the rule stays simple).
    pub fn abandon_written(&mut self, start: u64, len: u64) -> Result<()> {
        self.writing.remove(start, len)?;
        self.make_free(start, len)
    }

    /// Blocks an allocation can get: the free set and the run set aside
    /// for metadata.
    pub fn allocatable(&self) -> u64 {
        self.free.total() + self.meta_run.1
    }

    /// Blocks a new reservation may count on: `allocatable` less what
    /// writes in flight reserved.
    pub fn reservable(&self) -> u64 {
        self.allocatable().saturating_sub(self.write_reserved)
    }

    /// Unreferenced blocks not promised to writes in flight: what statfs
    /// calls free.
    pub fn free_for_statfs(&self) -> u64 {
        (self.unreferenced() - self.writing.total()).saturating_sub(self.write_reserved)
    }

    /// Sets aside free blocks that records being replayed name (see
    /// `claim`): tree nodes allocated while earlier records are applied
    /// cannot land on the data of later ones.
    pub fn pin_for_replay(&mut self, start: u64, len: u64) -> Result<()> {
        if !self.free.contains(start, len) {
            return Err(Error::corrupt("claimed blocks are not free"));
        }
        self.free.remove(start, len)?;
        self.replay_pinned.insert(start, len)
    }

    /// Whether `claim` can take these blocks: free, or set aside by
    /// `pin_for_replay`.
    pub fn claimable(&self, start: u64, len: u64) -> bool {
        self.free.contains(start, len) || self.replay_pinned.contains(start, len)
    }

    /// Gives back to the free set what `pin_for_replay` set aside and no
    /// record claimed (replay stopped early, or failed).
    pub fn unpin_replay(&mut self) -> Result<()> {
        for &(s, l) in self.replay_pinned.ranges() {
            self.free.insert(s, l)?;
        }
        self.replay_pinned.clear();
        Ok(())
    }

    /// Takes exactly `len` blocks from `start` for the running
    /// transaction (replaying a record that names them), from those
    /// `pin_for_replay` set aside or else from the free set; `Corrupt` if
    /// any of them is neither.
    pub fn claim(&mut self, start: u64, len: u64) -> Result<()> {
        if self.replay_pinned.contains(start, len) {
            self.replay_pinned.remove(start, len)?;
        } else if self.free.contains(start, len) {
            self.free.remove(start, len)?;
        } else {
            return Err(Error::corrupt("claimed blocks are not free"));
        }
        self.txn_alloc.insert(start, len)?;
        self.queue(start, len, 1)
    }

    /// Where the allocator stands now, so that `undo_allocations` can give
    /// back what `allocate` hands out after this point.
    pub fn mark(&self) -> AllocMark {
        AllocMark { queue_len: self.queue.len(), queue_last: self.queue.last().copied(), hint: self.hint }
    }

    /// Returns the runs `allocate` gave out since `m` to the free set and
    /// forgets their queued references, for an operation that must either
    /// get all of its space or change nothing (fallocate). Only `allocate`
    /// may have run since the mark.
    pub fn undo_allocations(&mut self, m: &AllocMark, runs: impl IntoIterator<Item = (u64, u64)>) -> Result<()> {
        self.queue.truncate(m.queue_len);
        // The first run may have been merged into the op queued before the mark.
        if let (Some(q), Some(old)) = (self.queue.last_mut(), m.queue_last) {
            *q = old;
        }
        for (s, l) in runs {
            self.written.forget(s, l);
            self.txn_alloc.remove(s, l)?;
            self.free.insert(s, l)?;
        }
        self.hint = m.hint;
        Ok(())
    }

    /// A range whose count reached zero: free at once if this transaction
    /// allocated it, pinned until commit otherwise. Returns whether any
    /// of it may be allocated again before the commit. `Corrupt` if any of
    /// it is unreferenced already: only a damaged allocation tree (a count
    /// reaching zero twice) releases a block twice, and a block counted
    /// twice as unreferenced would later make the used-block count wrong.
    pub fn release(&mut self, start: u64, len: u64) -> Result<bool> {
        if self.any_unreferenced(start, len) {
            return Err(Error::corrupt("a block released twice"));
        }
        let mut pieces: TryVec<(u64, u64, bool)> = TryVec::new();
        self.txn_alloc.split_by(start, len, |s, l, inside| pieces.try_push((s, l, inside)))?;
        let mut reusable = false;
        for &(s, l, inside) in pieces.iter() {
            if inside {
                reusable = true;
                self.txn_alloc.remove(s, l)?;
                self.make_free(s, l)?;
            } else {
                self.pinned.insert(s, l)?;
            }
        }
        Ok(reusable)
    }

    /// After a commit: pinned blocks become free, nothing is new any more.
    pub fn committed(&mut self) -> Result<()> {
        let pinned = core::mem::take(&mut self.pinned);
        for &(s, l) in pinned.ranges() {
            self.make_free(s, l)?;
        }
        self.txn_alloc.clear();
        self.written.clear();
        Ok(())
    }

    /// Blocks nothing references any more: free, or held while reads
    /// outside the core lock may be using them.
    fn make_free(&mut self, start: u64, len: u64) -> Result<()> {
        self.written.forget(start, len);
        if self.io_in_flight {
            self.held.insert(start, len)
        } else {
            self.free.insert(start, len)
        }
    }

    /// Whether reads outside the core lock may be in flight. When none
    /// are, the blocks held for them become free.
    pub fn set_io_in_flight(&mut self, active: bool) -> Result<()> {
        self.io_in_flight = active;
        if !active {
            Self::free_all(&mut self.free, &mut self.held_before)?;
            Self::free_all(&mut self.free, &mut self.held)?;
        }
        Ok(())
    }

    /// A new hold generation began: every read of the one before the
    /// current has ended, so the blocks freed back then become free, and
    /// those freed in the current one wait one more generation.
    /// A failure (no memory for the free set) leaves both sets as they are,
    /// which only keeps their blocks back longer: those of `held` are then
    /// freed one generation late, with the next `held_before`.
    pub fn next_hold_generation(&mut self) -> Result<()> {
        Self::free_all(&mut self.free, &mut self.held_before)?;
        core::mem::swap(&mut self.held, &mut self.held_before);
        Ok(())
    }

    /// Whether any freed block is still kept back for reads.
    pub fn holds_any(&self) -> bool {
        self.held.total() != 0 || self.held_before.total() != 0
    }

    /// Whether a block of `start..start + len` is kept back for reads.
    pub fn held_overlaps(&self, start: u64, len: u64) -> bool {
        self.held.overlaps(start, len) || self.held_before.overlaps(start, len)
    }

    /// Moves every block of `held` into `free`, range by range, so a failed
    /// insert leaves every block in exactly one of the sets (removing a
    /// whole range never allocates).
    fn free_all(free: &mut ExtentSet, held: &mut ExtentSet) -> Result<()> {
        while let Some(&(s, l)) = held.ranges().first() {
            free.insert(s, l)?;
            held.remove(s, l)?;
        }
        Ok(())
    }

    /// Whether a block of `start..start + len` is one that no tree
    /// references (see `unreferenced`).
    fn any_unreferenced(&self, start: u64, len: u64) -> bool {
        let (ms, ml) = self.meta_run;
        let in_meta_run = ml > 0 && start < ms.saturating_add(ml) && ms < start.saturating_add(len);
        in_meta_run
            || self.free.overlaps(start, len)
            || self.pinned.overlaps(start, len)
            || self.held_overlaps(start, len)
            || self.writing.overlaps(start, len)
            || self.replay_pinned.overlaps(start, len)
    }

    /// Blocks no tree references (free, pinned until commit, held for
    /// reads in flight, or being written outside the lock): what the
    /// device's last commit may call free.
    pub fn unreferenced(&self) -> u64 {
        self.allocatable()
            + self.pinned.total()
            + self.held.total()
            + self.held_before.total()
            + self.writing.total()
            + self.replay_pinned.total()
    }
}

/// The allocator's position taken by `Space::mark`.
#[derive(Debug, Clone, Copy)]
pub struct AllocMark {
    queue_len: usize,
    queue_last: Option<RefOp>,
    hint: u64,
}

/// One record of the allocation tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefRecord {
    /// First block.
    pub start: u64,
    /// Block count.
    pub len: u64,
    /// References to each block.
    pub count: u64,
}

/// Computes the records replacing `old` (sorted, disjoint records that
/// overlap or touch `[start, start+len)`) after adding `delta` to every block
/// of the range. Pieces whose count becomes zero are reported through
/// `freed`. Adjacent pieces with equal counts are merged.
pub fn recount(
    old: &[RefRecord],
    start: u64,
    len: u64,
    delta: i8,
    out: &mut TryVec<RefRecord>,
    freed: &mut TryVec<(u64, u64)>,
) -> Result<()> {
    let end = start.checked_add(len).ok_or(Error::corrupt("refcount range overflows"))?;
    let mut cuts: TryVec<u64> = TryVec::try_with_capacity(old.len() * 2 + 2)?;
    cuts.try_push(start)?;
    cuts.try_push(end)?;
    for r in old {
        let e = r.start.checked_add(r.len).ok_or(Error::corrupt("refcount record overflows"))?;
        cuts.try_push(r.start)?;
        cuts.try_push(e)?;
    }
    cuts.sort_unstable();
    out.clear();
    let mut j = 0;
    for w in 0..cuts.len().saturating_sub(1) {
        let (a, b) = (cuts[w], cuts[w + 1]);
        if a == b {
            continue;
        }
        while old.get(j).is_some_and(|r| r.start + r.len <= a) {
            j += 1;
        }
        let before = match old.get(j) {
            Some(r) if r.start <= a => r.count,
            _ => 0,
        };
        let inside = a >= start && b <= end;
        let after = if !inside {
            before
        } else if delta > 0 {
            before.checked_add(1).ok_or(Error::corrupt("refcount overflows"))?
        } else {
            if before == 0 {
                return Err(Error::corrupt("freeing a block with no references"));
            }
            before - 1
        };
        if inside && after == 0 {
            match freed.last_mut() {
                Some(f) if f.0 + f.1 == a => f.1 += b - a,
                _ => freed.try_push((a, b - a))?,
            }
        }
        if after == 0 {
            continue;
        }
        match out.last_mut() {
            Some(r) if r.start + r.len == a && r.count == after => r.len += b - a,
            _ => out.try_push(RefRecord { start: a, len: b - a, count: after })?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(r: &[(u64, u64)]) -> ExtentSet {
        let mut s = ExtentSet::new();
        for &(a, l) in r {
            s.insert(a, l).unwrap();
        }
        s
    }

    #[test]
    fn extent_set_merges_and_splits() {
        let mut s = set(&[(10, 5), (20, 5)]);
        s.insert(15, 5).unwrap();
        assert_eq!(s.ranges(), &[(10, 15)]);
        assert!(s.insert(12, 1).is_err());
        s.remove(12, 3).unwrap();
        assert_eq!(s.ranges(), &[(10, 2), (15, 10)]);
        assert_eq!(s.total(), 12);
        assert!(s.contains(16, 9) && !s.contains(11, 2) && s.overlaps(11, 2));
        assert!(s.remove(11, 2).is_err());
        let mut pieces = std::vec::Vec::new();
        s.split_by(8, 10, |a, l, i| {
            pieces.push((a, l, i));
            Ok(())
        })
        .unwrap();
        assert_eq!(pieces, [(8, 2, false), (10, 2, true), (12, 3, false), (15, 3, true)]);
    }

    #[test]
    fn take_prefers_hint_and_whole_runs() {
        let mut s = set(&[(10, 2), (20, 8), (40, 100)]);
        assert_eq!(s.take(0, 4).unwrap(), Some((20, 4)));
        assert_eq!(s.take(50, 4).unwrap(), Some((50, 4)));
        assert_eq!(s.take(0, 1000).unwrap(), Some((54, 86)));
        assert_eq!(s.total(), 2 + 4 + 10);
    }

    #[test]
    fn a_long_range_gives_metadata_its_end() {
        let mut s = set(&[(10, 8), (100, 1000)]);
        // Short ranges give their front, as `take` does.
        assert_eq!(s.take_sparing_front(0, 4, 500).unwrap(), Some((10, 4)));
        // A long one its end, whatever the hint.
        assert_eq!(s.take_sparing_front(0, 64, 500).unwrap(), Some((1036, 64)));
        assert_eq!(s.take_sparing_front(200, 64, 500).unwrap(), Some((972, 64)));
        // Its front is whole for data.
        assert_eq!(s.take(100, 872).unwrap(), Some((100, 872)));
    }

    #[test]
    fn take_at_gives_from_the_block_asked_or_nothing() {
        let mut s = set(&[(10, 8), (100, 50)]);
        assert_eq!(s.take_at(120, 10, 4).unwrap(), Some((120, 10)));
        // Fewer than asked where the range ends, if at least `least`.
        assert_eq!(s.take_at(140, 20, 4).unwrap(), Some((140, 10)));
        // Not in the set, or too few there.
        assert_eq!(s.take_at(50, 4, 1).unwrap(), None);
        assert_eq!(s.take_at(125, 4, 1).unwrap(), None);
        assert_eq!(s.take_at(14, 8, 5).unwrap(), None);
        assert_eq!(s.take_at(14, 3, 5).unwrap(), Some((14, 3)));
        assert_eq!(s.total(), 8 - 3 + 50 - 20);
    }

    #[test]
    fn sequential_data_stays_in_one_run_while_nodes_take_runs_of_their_own() {
        let mut sp = Space::new();
        sp.free.insert(1000, 1 << 20).unwrap();
        sp.cluster_meta = true;
        let mut next = None;
        let mut nodes = std::vec::Vec::new();
        // 256-block batches of data, each mapped by a few nodes: many
        // refills of the node run, none in the data's way.
        for i in 0..192 {
            let (s, l) = sp.take_for_write(SubvolId::DEFAULT, 5, i * 256, 256).unwrap();
            assert_eq!(l, 256);
            if let Some(n) = next {
                assert_eq!(s, n, "the data run broke");
            }
            next = Some(s + l);
            for _ in 0..20 {
                nodes.push(sp.allocate_meta().unwrap());
            }
        }
        // 3840 nodes, 60 whole runs of 64 from the end down: each run
        // continues at the block below the last, so in block order they
        // are one run.
        nodes.sort_unstable();
        assert!(nodes.windows(2).all(|w| w[1] == w[0] + 1), "nodes not side by side");
        assert_eq!(*nodes.last().unwrap(), 1000 + (1 << 20) - 1);
    }

    #[test]
    fn undo_allocations_restores_everything() {
        let mut sp = Space::new();
        sp.free.insert(100, 50).unwrap();
        sp.free.insert(300, 10).unwrap();
        let a = sp.allocate(5).unwrap();
        let m = sp.mark();
        let (free, txn, queue, hint) = (sp.free.ranges().to_vec(), sp.txn_alloc.ranges().to_vec(), sp.queue.to_vec(), sp.hint);
        // The first run continues the queued one, so it merges into it.
        let b = sp.allocate(20).unwrap();
        assert_eq!(b.0, a.0 + a.1);
        assert_eq!(sp.queue.len(), queue.len());
        let c = sp.allocate(40).unwrap();
        sp.undo_allocations(&m, [b, c]).unwrap();
        assert_eq!(sp.free.ranges(), &free[..]);
        assert_eq!(sp.txn_alloc.ranges(), &txn[..]);
        assert_eq!(&sp.queue[..], &queue[..]);
        assert_eq!(sp.hint, hint);
    }

    #[test]
    fn releasing_a_block_no_tree_references_is_damage() {
        let mut sp = Space::new();
        sp.free.insert(100, 50).unwrap();
        // A committed block: pinned until the commit.
        assert!(!sp.release(10, 2).unwrap());
        assert!(matches!(sp.release(11, 1), Err(Error::Corrupt(_))));
        // A free block (a count reaching zero for space the allocation
        // tree does not hold): it would count as free and pinned at once.
        assert!(matches!(sp.release(120, 1), Err(Error::Corrupt(_))));
        assert!(matches!(sp.release(149, 5), Err(Error::Corrupt(_))));
        // A block held for I/O in flight.
        sp.set_io_in_flight(true).unwrap();
        let (a, _) = sp.allocate(1).unwrap();
        assert!(sp.release(a, 1).unwrap());
        assert!(sp.held.contains(a, 1));
        assert!(matches!(sp.release(a, 1), Err(Error::Corrupt(_))));
        // Nothing was counted twice.
        assert_eq!(sp.unreferenced(), 50 + 2);
    }

    #[test]
    fn recount_splits_merges_and_frees() {
        let old = [RefRecord { start: 10, len: 10, count: 1 }];
        let mut out = TryVec::new();
        let mut freed = TryVec::new();
        recount(&old, 12, 3, -1, &mut out, &mut freed).unwrap();
        assert_eq!(&out[..], &[RefRecord { start: 10, len: 2, count: 1 }, RefRecord { start: 15, len: 5, count: 1 }]);
        assert_eq!(&freed[..], &[(12, 3)]);
        freed.clear();
        recount(&out.try_clone().unwrap(), 12, 3, 1, &mut out, &mut freed).unwrap();
        assert_eq!(&out[..], &old);
        recount(&old, 15, 10, 1, &mut out, &mut freed).unwrap();
        assert_eq!(
            &out[..],
            &[
                RefRecord { start: 10, len: 5, count: 1 },
                RefRecord { start: 15, len: 5, count: 2 },
                RefRecord { start: 20, len: 5, count: 1 }
            ]
        );
        assert!(recount(&old, 30, 1, -1, &mut out, &mut freed).is_err());
    }
}
