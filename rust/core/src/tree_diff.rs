// SPDX-License-Identifier: GPL-2.0
//! Comparing two trees item by item while skipping every subtree they
//! share: the change detector incremental send is built on.
//!
//! Two snapshots of one subvolume share every node that did not change
//! between them (copy-on-write never rewrites a node in place, and a
//! pointer names its child by block and generation). The diff walks both
//! trees together in key order, one position per tree. A position is a
//! leaf item or an interior pointer (standing for its whole subtree). At
//! each step the deeper-rooted side descends until both are at one level;
//! two pointers with the same key and the same child are skipped together
//! without being read, otherwise the side with the smaller key descends
//! (pointers) or is reported (items). The cost therefore follows the number
//! of changed nodes, not the size of the trees.
//!
//! Nothing recurses: each side keeps an explicit path of at most
//! `MAX_LEVEL` nodes, and every step moves one side forward, so a damaged
//! tree ends the walk (or fails a node check) instead of looping.
//!
//! Reading the differing nodes one at a time would make every one a device
//! round trip. So where both sides stand in interior nodes of one level,
//! each side has the store read together (`Store::prefetch_nodes`) the
//! children it is going to enter: those of its node, from its position on,
//! that the other side's node does not share (same key, same child), up to
//! where the other side's node ends, a batch at a time. The read is a hint
//! that changes nothing the walk decides: a node it could not bring in is
//! read, and checked, when the walk enters it.

use crate::btree::TreeRoot;
use crate::device::BlockDevice;
use crate::error::{CorruptAt, Error, Result};
use crate::format::Key;
use crate::mem::TryVec;
use crate::node::{self, MAX_LEVEL};
use crate::store::{Store, PREFETCH_NODES};

/// How a key differs between the left (older) and right (newer) tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only the right tree has the key.
    Added,
    /// Only the left tree has the key.
    Deleted,
    /// Both have it, with different values.
    Changed,
}

/// One tree's position: the path from its root to the current slot.
struct Side {
    root: TreeRoot,
    blk: [u64; MAX_LEVEL],
    gen: [u64; MAX_LEVEL],
    slot: [usize; MAX_LEVEL],
    nr: [usize; MAX_LEVEL],
    /// Level of the current position.
    level: usize,
    done: bool,
    /// Per level: the first slot of the node there whose child the
    /// read-ahead has not considered yet.
    ahead: [usize; MAX_LEVEL],
}

impl Side {
    fn new<D: BlockDevice>(s: &mut Store<D>, root: TreeRoot) -> Result<Self> {
        let top = root.level as usize;
        if top >= MAX_LEVEL {
            return Err(Error::corrupt("tree deeper than the format allows"));
        }
        let mut side = Side {
            root,
            blk: [0; MAX_LEVEL],
            gen: [0; MAX_LEVEL],
            slot: [0; MAX_LEVEL],
            nr: [0; MAX_LEVEL],
            level: top,
            done: false,
            ahead: [0; MAX_LEVEL],
        };
        side.blk[top] = root.block;
        side.gen[top] = root.generation;
        side.nr[top] = node::nritems(s.node(root.block, root.generation, root.level)?);
        side.done = side.nr[top] == 0;
        Ok(side)
    }

    fn node<'s, D: BlockDevice>(&self, s: &'s mut Store<D>) -> Result<&'s [u8]> {
        let l = self.level;
        s.node(self.blk[l], self.gen[l], l as u8)
    }

    /// Key at the current position (an item's, or a pointer's lower bound).
    fn key<D: BlockDevice>(&self, s: &mut Store<D>) -> Result<Key> {
        let b = self.node(s)?;
        let i = self.slot[self.level];
        Ok(if self.level == 0 { node::item_key(b, i) } else { node::ptr_key(b, i) })
    }

    /// The child a pointer position names: `(block, generation)`.
    fn child<D: BlockDevice>(&self, s: &mut Store<D>) -> Result<(u64, u64)> {
        let b = self.node(s)?;
        let i = self.slot[self.level];
        Ok((node::ptr_block(b, i), node::ptr_gen(b, i)))
    }

    /// Moves to the next position at this level, climbing past the end
    /// of a node to its parent's next pointer.
    fn next(&mut self) {
        self.slot[self.level] += 1;
        while self.slot[self.level] >= self.nr[self.level] {
            if self.level == self.root.level as usize {
                self.done = true;
                return;
            }
            self.level += 1;
            self.slot[self.level] += 1;
        }
    }

    /// Enters the subtree of a pointer position (at its first slot); an
    /// item position just moves on.
    fn descend<D: BlockDevice>(&mut self, s: &mut Store<D>) -> Result<()> {
        if self.level == 0 {
            self.next();
            return Ok(());
        }
        let (blk, gen) = self.child(s)?;
        let l = self.level - 1;
        let nr = node::nritems(s.node(blk, gen, l as u8)?);
        if nr == 0 {
            return Err(Error::corrupt("empty node below the root").at_block(blk));
        }
        self.level = l;
        self.blk[l] = blk;
        self.gen[l] = gen;
        self.slot[l] = 0;
        self.nr[l] = nr;
        self.ahead[l] = 0;
        Ok(())
    }

    /// The key where the subtree of this side's node at `level` ends: the
    /// key of the next pointer on its path above; None for the last node.
    fn end_of_node<D: BlockDevice>(&self, s: &mut Store<D>, level: usize) -> Result<Option<Key>> {
        for m in level + 1..=self.root.level as usize {
            let next = self.slot[m] + 1;
            if next < self.nr[m] {
                return Ok(Some(node::ptr_key(s.node(self.blk[m], self.gen[m], m as u8)?, next)));
            }
        }
        Ok(None)
    }

    /// Has the store read ahead the children this side will enter from its
    /// interior node, in one batch (see the module doc), once the walk has
    /// passed the last batch: those the other side's node at this level
    /// (`other`, none when the other side is done) does not share, up to
    /// where that node ends.
    fn read_ahead<D: BlockDevice>(&mut self, s: &mut Store<D>, other: Option<&Side>, want: &mut TryVec<(u64, u64)>) -> Result<()> {
        let l = self.level;
        if l == 0 || self.slot[l] < self.ahead[l] {
            return Ok(());
        }
        let end = match other {
            Some(o) => o.end_of_node(s, l)?,
            None => None,
        };
        want.clear();
        let mut i = self.slot[l];
        while i < self.nr[l] && want.len() < PREFETCH_NODES {
            let b = self.node(s)?;
            let (key, child) = (node::ptr_key(b, i), (node::ptr_block(b, i), node::ptr_gen(b, i)));
            if end.is_some_and(|e| key >= e) {
                break;
            }
            let shared = match other {
                Some(o) => {
                    let ob = s.node(o.blk[l], o.gen[l], l as u8)?;
                    let n = node::nritems(ob);
                    // Pointers are in key order: binary search for `key`.
                    let (mut lo, mut hi) = (0, n);
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2;
                        if node::ptr_key(ob, mid) < key {
                            lo = mid + 1;
                        } else {
                            hi = mid;
                        }
                    }
                    lo < n && node::ptr_key(ob, lo) == key && (node::ptr_block(ob, lo), node::ptr_gen(ob, lo)) == child
                }
                None => false,
            };
            if !shared && want.try_push(child).is_err() {
                // Short of memory: read ahead what there is.
                break;
            }
            i += 1;
        }
        // The next batch starts where this one stopped, once the walk gets
        // there (at once when the other side's node ended before the
        // current child: it is looked at again when that side moves on).
        self.ahead[l] = i;
        s.prefetch_nodes(l as u8 - 1, want);
        Ok(())
    }
}

/// A diff in progress: both trees' positions, so that a long diff can go
/// on in steps (`TreeDiff::step`) with other work between them. The trees
/// must not change meanwhile; snapshots being sent cannot.
pub struct TreeDiff {
    /// Both positions; empty when the trees are one (nothing differs) or
    /// the walk is over. On the heap (a vector of one, the fallible box):
    /// the diff then stays small wherever it is passed by value, as on
    /// the kernel's stack.
    sides: TryVec<(Side, Side)>,
    value: TryVec<u8>,
    /// The children a side reads ahead, `(block, generation)`.
    want: TryVec<(u64, u64)>,
}

impl TreeDiff {
    /// A diff of `left` (older) against `right` (newer), at its start.
    pub fn new<D: BlockDevice>(s: &mut Store<D>, left: &TreeRoot, right: &TreeRoot) -> Result<Self> {
        let mut sides = TryVec::new();
        if left.block != right.block || left.generation != right.generation {
            sides.try_push((Side::new(s, *left)?, Side::new(s, *right)?))?;
        }
        Ok(TreeDiff { sides, value: TryVec::new(), want: TryVec::new() })
    }

    /// Whether every difference has been reported.
    pub fn is_done(&self) -> bool {
        self.sides.is_empty()
    }

    /// Moves on by at most `positions` positions, reporting each differing
    /// key as `f(change, key)` in ascending key order; returns whether the
    /// diff is complete. An error leaves the diff where it failed.
    pub fn step<D: BlockDevice>(
        &mut self,
        s: &mut Store<D>,
        positions: usize,
        f: &mut dyn FnMut(Change, Key) -> Result<()>,
    ) -> Result<bool> {
        let Some((l, r)) = self.sides.last_mut() else { return Ok(true) };
        for _ in 0..positions {
            match (l.done, r.done) {
                (true, true) => {
                    self.sides.clear();
                    return Ok(true);
                }
                (true, false) => {
                    r.read_ahead(s, None, &mut self.want)?;
                    if r.level == 0 {
                        f(Change::Added, r.key(s)?)?;
                    }
                    r.descend(s)?;
                    continue;
                }
                (false, true) => {
                    l.read_ahead(s, None, &mut self.want)?;
                    if l.level == 0 {
                        f(Change::Deleted, l.key(s)?)?;
                    }
                    l.descend(s)?;
                    continue;
                }
                (false, false) => {}
            }
            if l.level > r.level {
                l.descend(s)?;
                continue;
            }
            if r.level > l.level {
                r.descend(s)?;
                continue;
            }
            if l.level > 0 {
                l.read_ahead(s, Some(&*r), &mut self.want)?;
                r.read_ahead(s, Some(&*l), &mut self.want)?;
            }
            let (lk, rk) = (l.key(s)?, r.key(s)?);
            if lk < rk {
                if l.level == 0 {
                    f(Change::Deleted, lk)?;
                }
                l.descend(s)?;
            } else if rk < lk {
                if r.level == 0 {
                    f(Change::Added, rk)?;
                }
                r.descend(s)?;
            } else if l.level == 0 {
                self.value.clear();
                self.value.try_extend_from_slice(node::item_data(l.node(s)?, l.slot[0]))?;
                if node::item_data(r.node(s)?, r.slot[0]) != &self.value[..] {
                    f(Change::Changed, lk)?;
                }
                l.next();
                r.next();
            } else if l.child(s)? == r.child(s)? {
                // The same subtree on both sides: nothing below differs.
                l.next();
                r.next();
            } else {
                l.descend(s)?;
                r.descend(s)?;
            }
        }
        if l.done && r.done {
            self.sides.clear();
        }
        Ok(self.sides.is_empty())
    }
}

/// Reports every key whose presence or value differs between `left` and
/// `right`, in ascending key order, as `f(change, key)`. Subtrees the two
/// share are skipped unread.
pub fn diff<D: BlockDevice>(
    s: &mut Store<D>,
    left: &TreeRoot,
    right: &TreeRoot,
    f: &mut dyn FnMut(Change, Key) -> Result<()>,
) -> Result<()> {
    let mut d = TreeDiff::new(s, left, right)?;
    while !d.step(s, usize::MAX, f)? {}
    Ok(())
}
