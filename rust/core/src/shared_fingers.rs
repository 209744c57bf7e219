// SPDX-License-Identifier: GPL-2.0
//! Fingers (`btree::Fingers`) that walks on the shared read path note
//! (`tree_read::CachedNodes`), many at once and holding only the core lock
//! taken for read: without them every shared lookup would descend from the
//! root, as nothing else notes the leaves readers reach.
//!
//! Each slot is a few atomics written under a sequence count that is odd
//! while a writer fills it, as a seqlock works: a reader that sees the
//! same even count before and after reading the words has a whole finger,
//! otherwise none. A writer that finds the count odd, or loses the race to
//! make it odd, notes nothing (a finger is a hint). The rules that keep a
//! finger true are `Fingers`' own: only calls holding the lock for write
//! change trees, and they end the fingers a change makes untrue
//! (`Fingers::forget`, `reshaped`), these slots included.

use crate::btree::{Finger, Range};
use crate::format::Key;
use crate::mem::TryVec;
use core::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

/// Slots readers share.
pub(crate) const SHARED_FINGERS: usize = 8;

/// The words of one finger: root, epoch, leaf block, leaf generation, the
/// range's low key (objectid, offset), its high key (objectid, offset),
/// and one word with both types and whether there is a high key.
const WORDS: usize = 9;

/// One slot.
pub(crate) struct SharedSlot {
    seq: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl SharedSlot {
    fn new() -> Self {
        SharedSlot { seq: AtomicU64::new(0), words: Default::default() }
    }
}

fn encode(f: &Finger) -> [u64; WORDS] {
    let (lo, hi) = (f.range.lo, f.range.hi);
    let hi_key = hi.unwrap_or_default();
    let types = lo.ty as u64 | (hi_key.ty as u64) << 8 | (hi.is_some() as u64) << 16;
    [f.root, f.epoch, f.blk, f.gen, lo.objectid, lo.offset, hi_key.objectid, hi_key.offset, types]
}

fn decode(w: &[u64; WORDS]) -> Finger {
    let types = w[8];
    let lo = Key::new(w[4], types as u8, w[5]);
    let hi = (types >> 16 & 1 == 1).then(|| Key::new(w[6], (types >> 8) as u8, w[7]));
    Finger { root: w[0], epoch: w[1], used: 0, blk: w[2], gen: w[3], range: Range { lo, hi } }
}

/// The slots, allocated with the fingers, or none.
pub(crate) struct SharedFingers {
    slots: TryVec<SharedSlot>,
    /// Where the next note goes (round robin).
    next: AtomicUsize,
}

impl core::fmt::Debug for SharedFingers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SharedFingers({} slots)", self.slots.len())
    }
}

impl SharedFingers {
    /// No slots; allocates nothing.
    pub(crate) const fn new() -> Self {
        SharedFingers { slots: TryVec::new(), next: AtomicUsize::new(0) }
    }

    /// `SHARED_FINGERS` slots, or none if that memory is not there.
    pub(crate) fn with_room() -> Self {
        let mut s = Self::new();
        if s.slots.try_reserve(SHARED_FINGERS).is_ok() {
            for _ in 0..SHARED_FINGERS {
                // Within the room reserved above.
                let _ = s.slots.try_push(SharedSlot::new());
            }
        }
        s
    }

    /// The finger in `slot` if no writer was filling it meanwhile.
    fn read(slot: &SharedSlot) -> Option<Finger> {
        let before = slot.seq.load(Ordering::Acquire);
        if before & 1 == 1 {
            return None;
        }
        let mut w = [0u64; WORDS];
        for (o, a) in w.iter_mut().zip(slot.words.iter()) {
            *o = a.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        (slot.seq.load(Ordering::Relaxed) == before).then(|| decode(&w))
    }

    /// A finger of epoch `epoch` of the tree rooted at `root` whose range
    /// holds `key`.
    pub(crate) fn find(&self, epoch: u64, root: u64, key: &Key) -> Option<Finger> {
        self.slots.iter().filter_map(Self::read).find(|f| f.serves(epoch, root, key))
    }

    /// Notes `f` in the next slot, unless a slot already holds its leaf
    /// for its root and epoch, or another writer is filling that slot.
    pub(crate) fn note(&self, f: &Finger) {
        if self.slots.is_empty() || self.find(f.epoch, f.root, &f.range.lo).is_some_and(|g| g.blk == f.blk) {
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % SHARED_FINGERS;
        let Some(slot) = self.slots.get(i) else { return };
        let seq = slot.seq.load(Ordering::Relaxed);
        if seq & 1 == 1 || slot.seq.compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        for (a, v) in slot.words.iter().zip(encode(f)) {
            a.store(v, Ordering::Relaxed);
        }
        slot.seq.store(seq + 2, Ordering::Release);
    }

    /// Node `blk` left its place (see `Fingers::forget`): the slots on it
    /// end. The caller holds the lock for write, so no reader or writer of
    /// the slots runs.
    pub(crate) fn forget(&mut self, blk: u64) {
        for slot in self.slots.iter_mut() {
            let words = &mut slot.words;
            if *words[2].get_mut() == blk {
                // Epoch 0 is never current.
                *words[1].get_mut() = 0;
            }
        }
    }
}
