// SPDX-License-Identifier: GPL-2.0
//! The store's cache of metadata nodes: a slab of slots found by block
//! number through an open-addressing hash index, the clean slots on a
//! least-recently-used list and the dirty ones on a list of their own.
//!
//! Every operation is O(1) but growing the slab or the index (amortised),
//! so a cache of hundreds of thousands of nodes costs no more per lookup
//! than a small one; a sorted vector paid a shift of the whole tail for
//! every node read or copied. Dropping the oldest clean nodes (to stay
//! under the limit, or for memory reclaim) walks the LRU list from its
//! head and allocates nothing. Dirty nodes are never dropped: they are the
//! only copy of the running transaction's changes.

use crate::error::Result;
use crate::mem::TryVec;

/// "No slot": the end of a list, an empty index bucket.
const NIL: u32 = u32::MAX;

/// Smallest index: a fresh mount reads a handful of nodes at once.
const MIN_BUCKETS: usize = 64;

/// One cached node.
struct Slot {
    blk: u64,
    dirty: bool,
    /// Neighbours on the slot's list (clean LRU or dirty); `next` links
    /// the free list of unused slots.
    prev: u32,
    next: u32,
    buf: TryVec<u8>,
}

/// A doubly linked list of slots; the head is the oldest.
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl List {
    const EMPTY: List = List { head: NIL, tail: NIL, len: 0 };
}

/// The cache: see the module doc. A slot's id stays the same while it is
/// cached; `find` returns it.
pub(crate) struct NodeCache {
    slots: TryVec<Slot>,
    /// Unused slots, linked through `next`.
    free: u32,
    /// Slot ids by hash of block number, linear probing, at most half full
    /// (a power of two long, or empty).
    index: TryVec<u32>,
    clean: List,
    dirty: List,
}

/// Fibonacci hashing: block numbers are dense, the multiply spreads them.
#[inline]
fn bucket_of(blk: u64, buckets: usize) -> usize {
    let bits = buckets.trailing_zeros();
    if bits == 0 {
        return 0;
    }
    (blk.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

impl NodeCache {
    /// An empty cache; allocates nothing.
    pub(crate) const fn new() -> Self {
        NodeCache { slots: TryVec::new(), free: NIL, index: TryVec::new(), clean: List::EMPTY, dirty: List::EMPTY }
    }

    /// Clean nodes cached.
    pub(crate) fn clean_len(&self) -> usize {
        self.clean.len
    }

    /// Dirty nodes cached.
    pub(crate) fn dirty_len(&self) -> usize {
        self.dirty.len
    }

    fn len(&self) -> usize {
        self.clean.len + self.dirty.len
    }

    /// The slot caching `blk`.
    #[inline]
    pub(crate) fn find(&self, blk: u64) -> Option<u32> {
        let n = self.index.len();
        if n == 0 {
            return None;
        }
        let mut b = bucket_of(blk, n);
        loop {
            let id = self.index[b];
            if id == NIL {
                return None;
            }
            if self.slots[id as usize].blk == blk {
                return Some(id);
            }
            b = (b + 1) & (n - 1);
        }
    }

    /// Whether slot `id` holds a change of the running transaction.
    #[inline]
    pub(crate) fn is_dirty(&self, id: u32) -> bool {
        self.slots[id as usize].dirty
    }

    /// The node in slot `id`.
    #[inline]
    pub(crate) fn buf(&self, id: u32) -> &[u8] {
        &self.slots[id as usize].buf
    }

    /// The node in slot `id`, for changing (callers change dirty ones only).
    #[inline]
    pub(crate) fn buf_mut(&mut self, id: u32) -> &mut TryVec<u8> {
        &mut self.slots[id as usize].buf
    }

    /// Records a use of slot `id`: a clean node becomes the newest.
    #[inline]
    pub(crate) fn touch(&mut self, id: u32) {
        if !self.slots[id as usize].dirty && self.clean.tail != id {
            self.unlink(id);
            self.link_tail(id);
        }
    }

    /// Caches `buf` as block `blk`, which is not cached yet, as the newest
    /// clean node or as a dirty one.
    pub(crate) fn insert(&mut self, blk: u64, dirty: bool, buf: TryVec<u8>) -> Result<u32> {
        self.reserve_one()?;
        let slot = Slot { blk, dirty, prev: NIL, next: NIL, buf };
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.slots[id as usize].next;
            self.slots[id as usize] = slot;
            id
        } else {
            // Below NIL: reserve_one refuses to grow that far.
            let id = self.slots.len() as u32;
            self.slots.try_push(slot)?;
            id
        };
        self.index_insert(id);
        self.link_tail(id);
        Ok(id)
    }

    /// Makes slot `id` dirty, holding `buf`.
    pub(crate) fn set_dirty(&mut self, id: u32, buf: TryVec<u8>) {
        if !self.slots[id as usize].dirty {
            self.unlink(id);
            self.slots[id as usize].dirty = true;
            self.link_tail(id);
        }
        self.slots[id as usize].buf = buf;
    }

    /// Drops slot `id` from the cache.
    pub(crate) fn remove(&mut self, id: u32) {
        self.unlink(id);
        self.index_remove(id);
        let s = &mut self.slots[id as usize];
        s.buf = TryVec::new();
        s.dirty = false;
        s.next = self.free;
        self.free = id;
    }

    /// Drops up to `n` clean nodes, least recently used first; how many
    /// went.
    pub(crate) fn drop_oldest_clean(&mut self, n: usize) -> usize {
        let mut dropped = 0;
        while dropped < n && self.clean.head != NIL {
            self.remove(self.clean.head);
            dropped += 1;
        }
        if self.len() == 0 {
            // Emptied (drop_caches on an idle filesystem): the slab and the
            // index go too, so reclaim leaves nothing sized by the peak.
            self.slots = TryVec::new();
            self.index = TryVec::new();
            self.free = NIL;
        }
        dropped
    }

    /// The dirty slots, into `out` (cleared first), in block order.
    pub(crate) fn dirty_slots(&self, out: &mut TryVec<u32>) -> Result<()> {
        out.clear();
        out.try_reserve(self.dirty.len)?;
        let mut id = self.dirty.head;
        while id != NIL {
            out.try_push(id)?;
            id = self.slots[id as usize].next;
        }
        out.sort_unstable_by_key(|&id| self.slots[id as usize].blk);
        Ok(())
    }

    /// The block slot `id` caches.
    pub(crate) fn blk(&self, id: u32) -> u64 {
        self.slots[id as usize].blk
    }

    /// After a commit wrote them: every dirty node becomes clean, the
    /// newest ones (they were the last changed).
    pub(crate) fn mark_all_clean(&mut self) {
        let mut id = self.dirty.head;
        while id != NIL {
            self.slots[id as usize].dirty = false;
            id = self.slots[id as usize].next;
        }
        let d = self.dirty;
        if d.head == NIL {
            return;
        }
        if self.clean.tail == NIL {
            self.clean = d;
        } else {
            self.slots[self.clean.tail as usize].next = d.head;
            self.slots[d.head as usize].prev = self.clean.tail;
            self.clean.tail = d.tail;
            self.clean.len += d.len;
        }
        self.dirty = List::EMPTY;
    }

    fn list_of(&mut self, id: u32) -> &mut List {
        if self.slots[id as usize].dirty {
            &mut self.dirty
        } else {
            &mut self.clean
        }
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next) = (self.slots[id as usize].prev, self.slots[id as usize].next);
        if prev != NIL {
            self.slots[prev as usize].next = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        }
        let l = self.list_of(id);
        if l.head == id {
            l.head = next;
        }
        if l.tail == id {
            l.tail = prev;
        }
        l.len -= 1;
        let s = &mut self.slots[id as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn link_tail(&mut self, id: u32) {
        let tail = self.list_of(id).tail;
        {
            let s = &mut self.slots[id as usize];
            s.prev = tail;
            s.next = NIL;
        }
        if tail != NIL {
            self.slots[tail as usize].next = id;
        }
        let l = self.list_of(id);
        if l.head == NIL {
            l.head = id;
        }
        l.tail = id;
        l.len += 1;
    }

    /// Room for one more node: a free slot id below NIL, and an index that
    /// stays at most half full (grown by rehashing into one twice as long).
    fn reserve_one(&mut self) -> Result<()> {
        let want = self.len() + 1;
        if self.free == NIL && self.slots.len() >= NIL as usize {
            return Err(crate::error::Error::NoMemory);
        }
        if want * 2 <= self.index.len() {
            return Ok(());
        }
        let buckets = (self.index.len() * 2).max(MIN_BUCKETS);
        let old = core::mem::replace(&mut self.index, TryVec::try_from_elem(NIL, buckets)?);
        for &id in old.iter().filter(|&&id| id != NIL) {
            self.index_insert(id);
        }
        Ok(())
    }

    fn index_insert(&mut self, id: u32) {
        let n = self.index.len();
        let mut b = bucket_of(self.slots[id as usize].blk, n);
        while self.index[b] != NIL {
            b = (b + 1) & (n - 1);
        }
        self.index[b] = id;
    }

    /// Takes `id` out of the index, shifting later entries of its probe run
    /// back so lookups need no tombstones.
    fn index_remove(&mut self, id: u32) {
        let n = self.index.len();
        let mut hole = bucket_of(self.slots[id as usize].blk, n);
        while self.index[hole] != id {
            if self.index[hole] == NIL {
                // Not indexed: cannot happen for a cached slot, and must not
                // loop if it did.
                return;
            }
            hole = (hole + 1) & (n - 1);
        }
        let mut b = hole;
        loop {
            b = (b + 1) & (n - 1);
            let other = self.index[b];
            if other == NIL {
                break;
            }
            let home = bucket_of(self.slots[other as usize].blk, n);
            // `other` may fill the hole if its home is not in (hole, b].
            let dist_home = b.wrapping_sub(home) & (n - 1);
            let dist_hole = b.wrapping_sub(hole) & (n - 1);
            if dist_home >= dist_hole {
                self.index[hole] = other;
                hole = b;
            }
        }
        self.index[hole] = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    fn node(blk: u64) -> TryVec<u8> {
        let mut v = TryVec::new();
        v.try_extend_from_slice(&blk.to_le_bytes()).unwrap();
        v
    }

    /// Checks every structure against a model of what is cached.
    fn check(c: &NodeCache, model: &BTreeMap<u64, bool>) {
        assert_eq!(c.len(), model.len());
        assert_eq!(c.dirty_len(), model.values().filter(|&&d| d).count());
        for (&blk, &dirty) in model {
            let id = c.find(blk).expect("cached block found");
            assert_eq!(c.is_dirty(id), dirty);
            assert_eq!(c.buf(id), &blk.to_le_bytes());
        }
        for (list, dirty) in [(c.clean, false), (c.dirty, true)] {
            let (mut id, mut prev, mut n) = (list.head, NIL, 0);
            while id != NIL {
                let s = &c.slots[id as usize];
                assert_eq!(s.prev, prev);
                assert_eq!(s.dirty, dirty);
                assert_eq!(model.get(&s.blk), Some(&dirty));
                prev = id;
                id = s.next;
                n += 1;
            }
            assert_eq!(prev, list.tail);
            assert_eq!(n, list.len);
        }
    }

    #[test]
    fn random_operations_match_a_model() {
        let mut c = NodeCache::new();
        let mut model = BTreeMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A small block range so inserts, hits and removals collide.
            let blk = 16 + x % 700;
            match (x >> 32) % 5 {
                0 | 1 => {
                    if let Some(id) = c.find(blk) {
                        c.touch(id);
                    } else {
                        c.insert(blk, x & 1 == 0, node(blk)).unwrap();
                        model.insert(blk, x & 1 == 0);
                    }
                }
                2 => {
                    if let Some(id) = c.find(blk) {
                        c.set_dirty(id, node(blk));
                        model.insert(blk, true);
                    }
                }
                3 => {
                    if let Some(id) = c.find(blk) {
                        c.remove(id);
                        model.remove(&blk);
                    }
                }
                _ => {
                    let n = c.drop_oldest_clean(3);
                    assert!(n <= 3);
                    let before = model.len();
                    model.retain(|b, dirty| *dirty || c.find(*b).is_some());
                    assert_eq!(before - model.len(), n);
                }
            }
            if step % 997 == 0 {
                c.mark_all_clean();
                model.values_mut().for_each(|d| *d = false);
            }
            if step % 101 == 0 {
                check(&c, &model);
            }
        }
        check(&c, &model);
    }

    #[test]
    fn oldest_clean_go_first_and_dirty_never() {
        let mut c = NodeCache::new();
        for blk in 100..110 {
            c.insert(blk, blk % 3 == 0, node(blk)).unwrap();
        }
        // A use makes 101 the newest.
        let id = c.find(101).unwrap();
        c.touch(id);
        // Clean: 100 101 103 104 106 107 109; dirty: 102 105 108.
        assert_eq!(c.drop_oldest_clean(2), 2);
        assert!(c.find(100).is_none() && c.find(101).is_some() && c.find(103).is_none() && c.find(104).is_some());
        // Everything clean goes, the dirty nodes stay.
        assert_eq!(c.clean_len(), 5);
        assert_eq!(c.drop_oldest_clean(usize::MAX), 5);
        let left: Vec<u64> = (100..110).filter(|&b| c.find(b).is_some()).collect();
        assert_eq!(left, [102, 105, 108]);
        let mut ids = TryVec::new();
        c.dirty_slots(&mut ids).unwrap();
        let blks: Vec<u64> = ids.iter().map(|&id| c.blk(id)).collect();
        assert_eq!(blks, [102, 105, 108]);
        // Emptied, the cache gives its slab back and works on.
        c.mark_all_clean();
        assert_eq!(c.drop_oldest_clean(usize::MAX), 3);
        assert!(c.slots.is_empty() && c.index.is_empty());
        c.insert(7, false, node(7)).unwrap();
        assert_eq!(c.find(7).map(|id| c.buf(id)), Some(&7u64.to_le_bytes()[..]));
    }
}
