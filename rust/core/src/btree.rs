// SPDX-License-Identifier: GPL-2.0
//! The copy-on-write B+tree: lookup, insert, update, delete, and cursors for
//! forward and backward range iteration.
//!
//! Nothing recurses: modifications walk down once with an explicit path
//! (at most `MAX_LEVEL` levels), copying every node on the way that the
//! running transaction has not copied yet (`Store::cow`) and splitting full
//! nodes *before* descending into them, so a split never has to climb back
//! up. Deletions then walk the recorded path bottom-up to merge under-full
//! nodes into a sibling and to collapse a root left with one child.
//!
//! Invariants (checked by `crate::check`): keys strictly increase inside a
//! node; every key below interior pointer `i` is at least the pointer's key
//! and below pointer `i+1`'s key; a child's level is its parent's minus one;
//! a pointer records the generation its child was written in, which is never
//! newer than the parent's.
//!
//! Every descent also checks the ones a damaged image could break on the way
//! (`Store::node` the level and generation, `Range` the keys), so that keys
//! seen along any path, and by a cursor across leaves, always increase: a
//! corrupted interior key becomes `Error::Corrupt` instead of a lookup in the
//! wrong leaf or a cursor going round in circles. Only the first and last key
//! of each node entered are compared, two comparisons per level.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::Key;
use crate::mem::TryVec;
use crate::node::{self, MAX_LEVEL};
use crate::store::Store;

/// Where a tree's root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeRoot {
    /// Tree id (owner stamped into new nodes).
    pub id: u64,
    /// Root node block.
    pub block: u64,
    /// Generation of the root node.
    pub generation: u64,
    /// Level of the root node.
    pub level: u8,
    /// Nodes of this generation or older may be shared with another tree
    /// (the last snapshot taken of or as this tree; 0 if none): copying one
    /// asks the allocation tree whether it is (`Store::cow`).
    pub last_snapshot: u64,
}

/// The keys a node may hold, `[lo, hi)`, as its parent's pointers give it.
/// The root's range is unbounded: `Key::default()` is the smallest key and
/// `hi: None` means no upper bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub(crate) lo: Key,
    pub(crate) hi: Option<Key>,
}

impl Range {
    /// The range of child `slot` of the interior node `b`, whose own range
    /// is `self`: from that pointer's key to the next one's (the last child
    /// inherits the parent's upper bound).
    fn child(&self, b: &[u8], slot: usize) -> Range {
        let hi = if slot + 1 < node::nritems(b) { Some(node::ptr_key(b, slot + 1)) } else { self.hi };
        Range { lo: node::ptr_key(b, slot), hi }
    }

    /// Whether `key` lies in the range.
    pub(crate) fn contains(&self, key: &Key) -> bool {
        *key >= self.lo && self.hi.map_or(true, |h| *key < h)
    }

    /// Refuses a node whose keys leave the range.
    fn check(&self, b: &[u8]) -> Result<()> {
        if node::keys_within(b, &self.lo, self.hi.as_ref()) {
            Ok(())
        } else {
            Err(Error::corrupt("node keys outside the range its parent gives"))
        }
    }
}

#[derive(Default)]
struct Path {
    blk: [u64; MAX_LEVEL],
    slot: [usize; MAX_LEVEL],
    range: [Range; MAX_LEVEL],
}

/// Most leaves `Fingers` remembers.
const FINGERS: usize = 8;

/// A leaf a descent reached, and the keys it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Finger {
    /// The root block the descent started from.
    pub(crate) root: u64,
    /// `Fingers::epoch` when the leaf was reached.
    pub(crate) epoch: u64,
    /// `Fingers::clock` when the finger was last found or made.
    pub(crate) used: u64,
    pub(crate) blk: u64,
    pub(crate) gen: u64,
    pub(crate) range: Range,
}

impl Finger {
    /// Whether it serves `key` in the tree rooted at block `root` at
    /// fingers' epoch `epoch`.
    pub(crate) fn serves(&self, epoch: u64, root: u64, key: &Key) -> bool {
        self.epoch == epoch && self.root == root && self.range.contains(key)
    }
}

/// The leaves recent descents reached, so that the next lookup, insert,
/// update or delete of a key in one of them goes straight to the leaf
/// instead of down from the root: one create or unlink works several
/// times each on a handful of leaves (the directory's inode item, its two
/// indexes, the inode's items).
///
/// A finger is true while the leaf holds every key of its range in the
/// tree whose root is its root block. The pointers above a leaf change
/// only by copy-on-write (a node gets a new block and its old one leaves
/// the tree), by a split (the split node's range narrows), by a merge (a
/// node leaves the tree) and by lowering a leftmost key (a range widens,
/// which leaves every finger true). A copy-on-write ends the fingers on
/// the copied node (`forget`): the others stay true, as the copied node
/// was committed and its block is pinned until the next commit, which
/// ends every finger, so no tree can get it back before. Every other
/// block leaving a tree (a merge, a collapsing root, a node of the
/// running transaction freed) ends all fingers (`reshaped`: its block
/// may come back at once, roots included), and a split ends those on the
/// split node (`forget`). A finger of the current epoch whose root is the
/// tree's root then names the leaf a descent from that root would reach
/// for any key in its range.
///
/// The fingers live on the heap, allocated with the store: the store is
/// part of every mounted filesystem's frame while it is set up, and the
/// kernel's stacks are small, too small also for an allocation at the
/// bottom of a descent. Without the memory there are no fingers, and
/// every operation descends.
#[derive(Debug)]
pub struct Fingers {
    /// Allocated for `FINGERS` up front, or empty for good.
    slots: TryVec<Finger>,
    /// `slots` has its room: pushing never allocates.
    room: bool,
    /// Counts finds and notes, to keep the most recently used fingers.
    clock: u64,
    epoch: u64,
    /// The fingers that walks on the shared read path note.
    shared: crate::shared_fingers::SharedFingers,
}

impl Default for Fingers {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingers {
    /// No fingers, ever; allocates nothing.
    pub const fn new() -> Self {
        Fingers { slots: TryVec::new(), room: false, clock: 0, epoch: 1, shared: crate::shared_fingers::SharedFingers::new() }
    }

    /// Room for `FINGERS`, or none if that memory is not there. Kept out
    /// of line: its callers' frames are the deepest of a mount.
    #[inline(never)]
    pub fn with_room() -> Self {
        match TryVec::try_with_capacity(FINGERS) {
            Ok(slots) => Fingers { slots, room: true, clock: 0, epoch: 1, shared: crate::shared_fingers::SharedFingers::with_room() },
            Err(_) => Self::new(),
        }
    }

    /// A block left a tree: no finger can be trusted any more.
    pub fn reshaped(&mut self) {
        self.epoch = self.epoch.wrapping_add(1).max(1);
    }

    /// Node `blk` was split (its range narrowed) or copied (it left the
    /// tree, its block pinned until the commit).
    pub fn forget(&mut self, blk: u64) {
        for f in self.slots.iter_mut().filter(|f| f.blk == blk) {
            f.epoch = 0;
        }
        self.shared.forget(blk);
    }

    /// The finger of the tree rooted at `root` whose range holds `key`:
    /// one of these fingers, or else one a shared walk noted.
    fn find(&mut self, root: &TreeRoot, key: &Key) -> Option<Finger> {
        let (epoch, clock) = (self.epoch, self.clock + 1);
        let Some(f) = self.slots.iter_mut().find(|f| f.serves(epoch, root.block, key)) else {
            return self.shared.find(epoch, root.block, key);
        };
        f.used = clock;
        self.clock = clock;
        Some(*f)
    }

    /// `find` for a reader sharing the fingers with others: the finger is
    /// not marked used.
    pub(crate) fn peek(&self, root: &TreeRoot, key: &Key) -> Option<Finger> {
        let epoch = self.epoch;
        match self.slots.iter().find(|f| f.serves(epoch, root.block, key)) {
            Some(f) => Some(*f),
            None => self.shared.find(epoch, root.block, key),
        }
    }

    /// `note` for a reader sharing the fingers with others (see
    /// `crate::shared_fingers`).
    pub(crate) fn note_shared(&self, root: u64, blk: u64, gen: u64, range: Range) {
        self.shared.note(&Finger { root, epoch: self.epoch, used: 0, blk, gen, range });
    }

    /// Remembers that leaf `blk` (generation `gen`) holds `range` of the
    /// tree rooted at `root`, in place of a finger of an older epoch or
    /// else of the least recently used.
    fn note(&mut self, root: u64, blk: u64, gen: u64, range: Range) {
        self.clock += 1;
        let (epoch, clock) = (self.epoch, self.clock);
        let f = Finger { root, epoch, used: clock, blk, gen, range };
        if let Some(same) = self.slots.iter_mut().find(|s| s.epoch == epoch && s.root == root && s.blk == blk) {
            *same = f;
            return;
        }
        if self.slots.len() < FINGERS {
            if self.room {
                // Within the room `with_room` reserved: no allocation.
                let _ = self.slots.try_push(f);
            }
            return;
        }
        let oldest = self.slots.iter().enumerate().min_by_key(|(_, s)| if s.epoch == epoch { s.used } else { 0 }).map_or(0, |(i, _)| i);
        if let Some(slot) = self.slots.get_mut(oldest) {
            *slot = f;
        }
    }
}

/// Where a walk down a tree gets its nodes. The store itself reads a node
/// its cache lacks, and keeps fingers, read ahead and counters; a view of
/// its cache shared by many readers at once (`crate::tree_read`) reads
/// nothing and changes nothing but the fingers readers share
/// (`crate::shared_fingers`), and fails with `Error::WouldBlock` where the
/// store would read. Every read-only walk (lookups, cursors) runs over
/// either.
pub trait NodeSource {
    /// The node at `blk`, which its parent says has generation `gen` and
    /// level `level`.
    fn node(&mut self, blk: u64, gen: u64, level: u8) -> Result<&[u8]>;
    /// The finger of the tree rooted at `root` whose range holds `key`.
    fn finger(&mut self, root: &TreeRoot, key: &Key) -> Option<Finger>;
    /// A descent from `root` reached leaf `blk` (generation `gen`), which
    /// holds `range`.
    fn note(&mut self, root: u64, blk: u64, gen: u64, range: Range);
    /// A walk is about to enter the first of the leaves `ahead` names, as
    /// `(block, generation)`, and likely the others after it.
    fn read_ahead(&mut self, ahead: &[(u64, u64)]);
    /// Whether node `blk` is in the cache: a walk names the leaves to read
    /// ahead only when the first is not.
    fn is_cached(&self, blk: u64) -> bool;
    /// The store's modification sequence (`Store::mod_seq`).
    fn mod_seq(&self) -> u64;
}

impl<D: BlockDevice> NodeSource for Store<D> {
    fn node(&mut self, blk: u64, gen: u64, level: u8) -> Result<&[u8]> {
        Store::node(self, blk, gen, level)
    }

    /// Counted as a hit.
    fn finger(&mut self, root: &TreeRoot, key: &Key) -> Option<Finger> {
        let f = self.fingers.find(root, key)?;
        self.stats.finger_hits += 1;
        Some(f)
    }

    fn note(&mut self, root: u64, blk: u64, gen: u64, range: Range) {
        self.fingers.note(root, blk, gen, range);
    }

    /// Reads the leaves in one batch when the first is not cached: keys
    /// are often visited in order (du's stat of every entry, a large
    /// readdir, the inodes of one directory), so its neighbours are read
    /// next, and one batch costs about what one read does. A hint: the
    /// walk's own read checks and reports.
    fn read_ahead(&mut self, ahead: &[(u64, u64)]) {
        if let Some(&(first, _)) = ahead.first() {
            if !Store::is_cached(self, first) {
                self.prefetch_nodes(0, ahead);
            }
        }
    }

    fn is_cached(&self, blk: u64) -> bool {
        Store::is_cached(self, blk)
    }

    fn mod_seq(&self) -> u64 {
        Store::mod_seq(self)
    }
}

/// The leaf of `root` that a finger names for `key`, if the running
/// transaction owns it (and so every node above it): a change there needs
/// no descent.
fn dirty_finger<D: BlockDevice>(s: &mut Store<D>, root: &TreeRoot, key: &Key) -> Option<Finger> {
    let f = s.fingers.find(root, key)?;
    (root.generation == s.gen && f.gen == s.gen && s.is_dirty_node(f.blk)).then_some(f)
}

/// Whether deleting item `slot` of leaf `b` in the tree rooted at `root`
/// leaves the leaf full enough for `rebalance` to stop at once (or it is
/// the root), so the delete needs no path.
fn deletes_in_place(root: &TreeRoot, b: &[u8], slot: usize) -> bool {
    let left = fill(b).saturating_sub(node::item_size(b, slot));
    root.level == 0 || (node::nritems(b) > 1 && left >= capacity(b) / 4)
}

/// Leaves read together when a walk down must read a leaf from the device:
/// that leaf and the ones after it under the same parent.
const READ_AHEAD_LEAVES: usize = 8;

/// Read-ahead (`NodeSource::read_ahead`) of the leaves from child `slot`
/// of the level-1 node `parent` (block, generation) on, whose first is
/// `first`. Most walks find that leaf cached, and then build no list.
fn read_ahead_under<S: NodeSource + ?Sized>(s: &mut S, first: u64, parent: (u64, u64), slot: usize) -> Result<()> {
    if s.is_cached(first) {
        return Ok(());
    }
    let (ahead, n) = leaves_from(s.node(parent.0, parent.1, 1)?, slot);
    s.read_ahead(&ahead[..n]);
    Ok(())
}

/// The leaves a walk reading child `slot` of the level-1 node `b` reads
/// ahead with it: that child and the next ones, as `(block, generation)`,
/// and how many.
fn leaves_from(b: &[u8], slot: usize) -> ([(u64, u64); READ_AHEAD_LEAVES], usize) {
    let mut out = [(0, 0); READ_AHEAD_LEAVES];
    let end = node::nritems(b).min(slot.saturating_add(READ_AHEAD_LEAVES));
    let mut n = 0;
    for (i, o) in (slot..end).zip(out.iter_mut()) {
        *o = (node::ptr_block(b, i), node::ptr_gen(b, i));
        n += 1;
    }
    (out, n)
}

fn needs_split(b: &[u8], need: usize) -> bool {
    if node::level(b) == 0 {
        node::leaf_free(b) < need
    } else {
        node::nritems(b) >= node::ptr_capacity(b.len())
    }
}

/// Bytes (leaf) or pointers (interior) in use, for merge decisions.
fn fill(b: &[u8]) -> usize {
    if node::level(b) == 0 {
        node::leaf_used(b)
    } else {
        node::nritems(b)
    }
}

fn capacity(b: &[u8]) -> usize {
    if node::level(b) == 0 {
        b.len() - node::HEADER_SIZE
    } else {
        node::ptr_capacity(b.len())
    }
}

fn copy_node<D: BlockDevice>(s: &mut Store<D>, blk: u64) -> Result<TryVec<u8>> {
    let mut v = TryVec::try_with_capacity(s.bs)?;
    v.try_extend_from_slice(s.dirty_node(blk)?)?;
    Ok(v)
}

/// Appends every entry of `src` to the dirty node `dst` (same level, all
/// keys of `src` above those of `dst`).
fn append_all<D: BlockDevice>(s: &mut Store<D>, dst: u64, src: &[u8]) -> Result<()> {
    let d = s.node_mut(dst)?;
    let base = node::nritems(d);
    for i in 0..node::nritems(src) {
        if node::level(src) == 0 {
            node::leaf_insert(d, base + i, &node::item_key(src, i), node::item_data(src, i))?;
        } else {
            node::ptr_insert(d, base + i, &node::ptr_key(src, i), node::ptr_block(src, i), node::ptr_gen(src, i))?;
        }
    }
    Ok(())
}

/// Cuts a dirty node to its first `k` entries, zeroing what moved away so
/// images stay deterministic.
fn truncate<D: BlockDevice>(s: &mut Store<D>, blk: u64, k: usize) -> Result<()> {
    let b = s.node_mut(blk)?;
    let n = node::nritems(b);
    if node::level(b) == 0 {
        for _ in k..n {
            let last = node::nritems(b) - 1;
            node::leaf_delete(b, last)?;
        }
        let lo = node::HEADER_SIZE + k * node::ITEM_SIZE;
        let hi = lo + node::leaf_free(b);
        if let Some(r) = b.get_mut(lo..hi) {
            r.fill(0);
        }
    } else {
        node::set_nritems(b, k);
        let lo = node::HEADER_SIZE + k * node::PTR_SIZE;
        let hi = node::HEADER_SIZE + n * node::PTR_SIZE;
        if let Some(r) = b.get_mut(lo..hi) {
            r.fill(0);
        }
    }
    Ok(())
}

/// Splits the dirty node `blk`, moving its upper half to a new node.
/// Returns the new node and its first key.
fn split<D: BlockDevice>(s: &mut Store<D>, blk: u64, owner: u64) -> Result<(u64, Key)> {
    s.fingers.forget(blk);
    let tmp = copy_node(s, blk)?;
    let n = node::nritems(&tmp);
    let lvl = node::level(&tmp);
    if n < 2 {
        return Err(Error::corrupt("splitting a node with fewer than two entries"));
    }
    let k = if lvl == 0 {
        let half = node::leaf_used(&tmp) / 2;
        let mut acc = 0;
        let mut k = n;
        for i in 0..n {
            acc += node::item_size(&tmp, i);
            if acc >= half {
                k = i + 1;
                break;
            }
        }
        k.clamp(1, n - 1)
    } else {
        n / 2
    };
    let sib = s.new_node(owner, lvl)?;
    {
        let d = s.node_mut(sib)?;
        for i in k..n {
            if lvl == 0 {
                node::leaf_insert(d, i - k, &node::item_key(&tmp, i), node::item_data(&tmp, i))?;
            } else {
                node::ptr_insert(d, i - k, &node::ptr_key(&tmp, i), node::ptr_block(&tmp, i), node::ptr_gen(&tmp, i))?;
            }
        }
    }
    truncate(s, blk, k)?;
    let sk = if lvl == 0 { node::item_key(&tmp, k) } else { node::ptr_key(&tmp, k) };
    Ok((sib, sk))
}

/// Walks from the root to the leaf for `key`, copying every node on the
/// way. With `need`, nodes too full to take `need` more leaf bytes (or one
/// more pointer) are split first.
fn descend_for_write<D: BlockDevice>(s: &mut Store<D>, root: &mut TreeRoot, key: &Key, need: Option<usize>) -> Result<Path> {
    s.touch();
    s.stats.write_descents += 1;
    let r = *root;
    root.block = s.cow(r.block, r.generation, r.level, &r)?;
    root.generation = s.gen;
    if let Some(need) = need {
        let full = needs_split(s.dirty_node(root.block)?, need);
        if full {
            if root.level as usize + 1 >= MAX_LEVEL {
                return Err(Error::corrupt("tree too deep"));
            }
            let first = node::first_key(s.dirty_node(root.block)?);
            let nr = s.new_node(root.id, root.level + 1)?;
            let gen = s.gen;
            node::ptr_insert(s.node_mut(nr)?, 0, &first, root.block, gen)?;
            root.block = nr;
            root.level += 1;
        }
    }
    let mut p = Path::default();
    let mut blk = root.block;
    let mut level = root.level as usize;
    let mut range = Range::default();
    while level > 0 {
        p.blk[level] = blk;
        p.range[level] = range;
        let b = s.dirty_node(blk)?;
        let mut slot = node::child_slot(b, key);
        let mut child_range = range.child(b, slot);
        let (ck, cblk, cgen) = (node::ptr_key(b, slot), node::ptr_block(b, slot), node::ptr_gen(b, slot));
        child_range.check(s.node(cblk, cgen, (level - 1) as u8)?)?;
        let nc = s.cow(cblk, cgen, (level - 1) as u8, root)?;
        // An insert below the leftmost key lowers the bound on the way down.
        let nk = if need.is_some() && slot == 0 && *key < ck { *key } else { ck };
        child_range.lo = nk;
        let gen = s.gen;
        node::set_ptr(s.node_mut(blk)?, slot, &nk, nc, gen);
        let mut child = nc;
        if let Some(need) = need {
            if needs_split(s.dirty_node(nc)?, need) {
                let (sib, sk) = split(s, nc, root.id)?;
                node::ptr_insert(s.node_mut(blk)?, slot + 1, &sk, sib, gen)?;
                if *key >= sk {
                    child = sib;
                    slot += 1;
                    child_range.lo = sk;
                } else {
                    child_range.hi = Some(sk);
                }
            }
        }
        p.slot[level] = slot;
        blk = child;
        range = child_range;
        level -= 1;
    }
    p.blk[0] = blk;
    p.range[0] = range;
    let gen = s.gen;
    s.note(root.block, blk, gen, range);
    Ok(p)
}

fn check_item(s_bs: usize, data: &[u8]) -> Result<usize> {
    if data.len() > node::max_item_data(s_bs) {
        return Err(Error::Invalid("item too large for a leaf"));
    }
    Ok(node::ITEM_SIZE + data.len())
}

/// Inserts a new item; `Err(Exists)` if the key is present.
pub fn insert<D: BlockDevice>(s: &mut Store<D>, root: &mut TreeRoot, key: &Key, data: &[u8]) -> Result<()> {
    let need = check_item(s.bs, data)?;
    let blk = match dirty_finger(s, root, key).map(|f| f.blk) {
        Some(blk) if !needs_split(s.dirty_node(blk)?, need) => {
            s.touch();
            s.stats.finger_hits += 1;
            blk
        }
        _ => descend_for_write(s, root, key, Some(need))?.blk[0],
    };
    let leaf = s.node_mut(blk)?;
    match node::leaf_search(leaf, key) {
        Ok(_) => Err(Error::Exists),
        Err(slot) => node::leaf_insert(leaf, slot, key, data),
    }
}

/// Replaces the value of an existing item; `Err(NotFound)` if absent.
pub fn update<D: BlockDevice>(s: &mut Store<D>, root: &mut TreeRoot, key: &Key, data: &[u8]) -> Result<()> {
    let need = check_item(s.bs, data)?;
    if let Some(blk) = dirty_finger(s, root, key).map(|f| f.blk) {
        // The same size in place (inode items, most of all); anything
        // else may need room or a merge, so takes the path below.
        if let Ok(slot) = node::leaf_search(s.dirty_node(blk)?, key) {
            if node::item_data(s.dirty_node(blk)?, slot).len() == data.len() {
                s.touch();
                s.stats.finger_hits += 1;
                node::item_data_mut(s.node_mut(blk)?, slot).copy_from_slice(data);
                return Ok(());
            }
        }
    }
    let p = descend_for_write(s, root, key, None)?;
    let leaf = s.node_mut(p.blk[0])?;
    let slot = node::leaf_search(leaf, key).map_err(|_| Error::NotFound)?;
    let old = node::item_data(leaf, slot).len();
    if old == data.len() {
        node::item_data_mut(leaf, slot).copy_from_slice(data);
        return Ok(());
    }
    node::leaf_delete(leaf, slot)?;
    if node::leaf_free(leaf) >= need {
        return node::leaf_insert(leaf, slot, key, data);
    }
    rebalance(s, root, &p)?;
    insert(s, root, key, data)
}

/// `f` of the value of `key`, changed in place, when a finger names a
/// leaf of the running transaction holding it (the common case for an
/// item read and written again in one operation): one search where a
/// lookup and an update make two. `None`: no such leaf; nothing was done.
pub fn update_in_place<D: BlockDevice, T>(
    s: &mut Store<D>,
    root: &TreeRoot,
    key: &Key,
    f: impl FnOnce(&mut [u8]) -> Result<T>,
) -> Result<Option<T>> {
    let Some(blk) = dirty_finger(s, root, key).map(|f| f.blk) else { return Ok(None) };
    let Ok(slot) = node::leaf_search(s.dirty_node(blk)?, key) else { return Ok(None) };
    s.touch();
    s.stats.finger_hits += 1;
    f(node::item_data_mut(s.node_mut(blk)?, slot)).map(Some)
}

/// Deletes the first item of `first..=last` whose value `pred` accepts,
/// when a finger names a leaf of the running transaction holding `first`
/// that also ends the search (it holds an item past `last`, or no leaf
/// after it can hold one up to `last`), and the delete leaves it full
/// enough to need no rebalance: one search where a cursor walk and a
/// delete make two. `Some(found)`: done; `None`: nothing was done.
pub fn delete_first_in_place<D: BlockDevice>(
    s: &mut Store<D>,
    root: &TreeRoot,
    first: &Key,
    last: &Key,
    mut pred: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<Option<bool>> {
    let Some(f) = dirty_finger(s, root, first) else { return Ok(None) };
    let b = s.dirty_node(f.blk)?;
    let n = node::nritems(b);
    let mut slot = node::leaf_search(b, first).unwrap_or_else(|at| at);
    let found = loop {
        if slot >= n {
            if f.range.hi.is_some_and(|h| h <= *last) {
                // The keys may go on in the next leaf.
                return Ok(None);
            }
            break None;
        }
        if node::item_key(b, slot) > *last {
            break None;
        }
        if pred(node::item_data(b, slot))? {
            break Some(slot);
        }
        slot += 1;
    };
    let Some(slot) = found else { return Ok(Some(false)) };
    if !deletes_in_place(root, b, slot) {
        return Ok(None);
    }
    s.touch();
    s.stats.finger_hits += 1;
    node::leaf_delete(s.node_mut(f.blk)?, slot)?;
    Ok(Some(true))
}

/// Inserts or replaces.
pub fn upsert<D: BlockDevice>(s: &mut Store<D>, root: &mut TreeRoot, key: &Key, data: &[u8]) -> Result<()> {
    if get_len(s, root, key)?.is_some() {
        update(s, root, key, data)
    } else {
        insert(s, root, key, data)
    }
}

/// Deletes an item; `Err(NotFound)` if absent.
pub fn delete<D: BlockDevice>(s: &mut Store<D>, root: &mut TreeRoot, key: &Key) -> Result<()> {
    if let Some(blk) = dirty_finger(s, root, key).map(|f| f.blk) {
        let b = s.dirty_node(blk)?;
        if let Ok(slot) = node::leaf_search(b, key) {
            if deletes_in_place(root, b, slot) {
                s.touch();
                s.stats.finger_hits += 1;
                return node::leaf_delete(s.node_mut(blk)?, slot);
            }
        }
    }
    let p = descend_for_write(s, root, key, None)?;
    let leaf = s.node_mut(p.blk[0])?;
    let slot = node::leaf_search(leaf, key).map_err(|_| Error::NotFound)?;
    node::leaf_delete(leaf, slot)?;
    rebalance(s, root, &p)
}

/// Merges under-full nodes along `p` bottom-up, then collapses the root.
fn rebalance<D: BlockDevice>(s: &mut Store<D>, root: &mut TreeRoot, p: &Path) -> Result<()> {
    for level in 0..root.level as usize {
        let blk = p.blk[level];
        let (n, used, cap) = {
            let b = s.dirty_node(blk)?;
            (node::nritems(b), fill(b), capacity(b))
        };
        if n > 0 && used >= cap / 4 {
            break;
        }
        let parent = p.blk[level + 1];
        let pslot = p.slot[level + 1];
        let pn = node::nritems(s.dirty_node(parent)?);
        if n == 0 {
            node::ptr_delete(s.node_mut(parent)?, pslot)?;
            s.free_node(blk)?;
            continue;
        }
        if pslot > 0 {
            let pb = s.dirty_node(parent)?;
            let (lk, lblk, lgen) = (node::ptr_key(pb, pslot - 1), node::ptr_block(pb, pslot - 1), node::ptr_gen(pb, pslot - 1));
            let left_range = p.range[level + 1].child(pb, pslot - 1);
            let lb = s.node(lblk, lgen, level as u8)?;
            left_range.check(lb)?;
            let lused = fill(lb);
            if lused + used <= cap * 3 / 4 {
                let nl = s.cow(lblk, lgen, level as u8, root)?;
                let gen = s.gen;
                node::set_ptr(s.node_mut(parent)?, pslot - 1, &lk, nl, gen);
                let tmp = copy_node(s, blk)?;
                append_all(s, nl, &tmp)?;
                node::ptr_delete(s.node_mut(parent)?, pslot)?;
                s.free_node(blk)?;
                continue;
            }
        }
        if pslot + 1 < pn {
            let pb = s.dirty_node(parent)?;
            let (rblk, rgen) = (node::ptr_block(pb, pslot + 1), node::ptr_gen(pb, pslot + 1));
            let right_range = p.range[level + 1].child(pb, pslot + 1);
            let rb = s.node(rblk, rgen, level as u8)?;
            right_range.check(rb)?;
            if fill(rb) + used <= cap * 3 / 4 {
                let mut tmp = TryVec::try_with_capacity(rb.len())?;
                tmp.try_extend_from_slice(rb)?;
                append_all(s, blk, &tmp)?;
                node::ptr_delete(s.node_mut(parent)?, pslot + 1)?;
                s.release_copied(rblk, rgen, level as u8, root)?;
                continue;
            }
        }
        break;
    }
    while root.level > 0 {
        let b = s.node(root.block, root.generation, root.level)?;
        if node::nritems(b) != 1 {
            break;
        }
        let (c, cg) = (node::ptr_block(b, 0), node::ptr_gen(b, 0));
        s.free_node(root.block)?;
        root.block = c;
        root.generation = cg;
        root.level -= 1;
    }
    Ok(())
}

/// Finds the leaf and slot holding `key`, without copying anything.
fn find<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, key: &Key) -> Result<Option<(u64, u64, usize)>> {
    if let Some(f) = s.finger(root, key) {
        let b = s.node(f.blk, f.gen, 0)?;
        f.range.check(b)?;
        return Ok(node::leaf_search(b, key).ok().map(|slot| (f.blk, f.gen, slot)));
    }
    let (mut blk, mut gen, mut level) = (root.block, root.generation, root.level);
    let mut range = Range::default();
    loop {
        let b = s.node(blk, gen, level)?;
        range.check(b)?;
        if level == 0 {
            let found = node::leaf_search(b, key).ok();
            s.note(root.block, blk, gen, range);
            return Ok(found.map(|slot| (blk, gen, slot)));
        }
        let slot = node::child_slot(b, key);
        range = range.child(b, slot);
        let parent = (blk, gen);
        blk = node::ptr_block(b, slot);
        gen = node::ptr_gen(b, slot);
        if level == 1 {
            read_ahead_under(s, blk, parent, slot)?;
        }
        level -= 1;
    }
}

/// The nodes from the root down to the leaf that holds or would hold
/// `key`, as `(block, generation)`, root first; returns how many.
pub fn path_to<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, key: &Key, out: &mut [(u64, u64); MAX_LEVEL]) -> Result<usize> {
    let (mut blk, mut gen, mut level) = (root.block, root.generation, root.level);
    let mut range = Range::default();
    let mut n = 0;
    loop {
        let b = s.node(blk, gen, level)?;
        range.check(b)?;
        *out.get_mut(n).ok_or(Error::corrupt("tree too deep"))? = (blk, gen);
        n += 1;
        if level == 0 {
            return Ok(n);
        }
        let slot = node::child_slot(b, key);
        range = range.child(b, slot);
        blk = node::ptr_block(b, slot);
        gen = node::ptr_gen(b, slot);
        level -= 1;
    }
}

/// Copies the value of `key` into `out`; false if absent.
pub fn get_into<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, key: &Key, out: &mut TryVec<u8>) -> Result<bool> {
    let Some((blk, gen, slot)) = find(s, root, key)? else { return Ok(false) };
    out.clear();
    out.try_extend_from_slice(node::item_data(s.node(blk, gen, 0)?, slot))?;
    Ok(true)
}

/// `f` of the value of `key`, read in place in the node (no copy), if
/// present.
pub fn get_with<S: NodeSource + ?Sized, T>(s: &mut S, root: &TreeRoot, key: &Key, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<Option<T>> {
    let Some((blk, gen, slot)) = find(s, root, key)? else { return Ok(None) };
    f(node::item_data(s.node(blk, gen, 0)?, slot)).map(Some)
}

/// The value of `key`, if present.
pub fn get<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, key: &Key) -> Result<Option<TryVec<u8>>> {
    let mut v = TryVec::new();
    Ok(if get_into(s, root, key, &mut v)? { Some(v) } else { None })
}

/// The length of the value of `key`, if present.
pub fn get_len<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, key: &Key) -> Result<Option<usize>> {
    let Some((blk, gen, slot)) = find(s, root, key)? else { return Ok(None) };
    Ok(Some(node::item_data(s.node(blk, gen, 0)?, slot).len()))
}

/// Iteration direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Ascending keys, starting at the first key at or after the start.
    Forward,
    /// Descending keys, starting at the last key at or before the start.
    Backward,
}

/// A position in a tree. It survives modifications of the tree: when the
/// store changed since the last step, it seeks again from the last key it
/// returned.
pub struct Cursor {
    blk: [u64; MAX_LEVEL],
    gen: [u64; MAX_LEVEL],
    slot: [usize; MAX_LEVEL],
    range: [Range; MAX_LEVEL],
    top: usize,
    seq: u64,
    start: Key,
    last: Option<Key>,
    dir: Dir,
    positioned: bool,
    /// Only the leaf of the path is known (the seek went by a finger):
    /// moving to another leaf seeks from the root first.
    leaf_only: bool,
    done: bool,
}

impl Cursor {
    /// A cursor that will return keys from `start` on, in direction `dir`.
    pub fn new(start: Key, dir: Dir) -> Self {
        Cursor {
            blk: [0; MAX_LEVEL],
            gen: [0; MAX_LEVEL],
            slot: [0; MAX_LEVEL],
            range: [Range::default(); MAX_LEVEL],
            top: 0,
            seq: 0,
            start,
            last: None,
            dir,
            positioned: false,
            leaf_only: false,
            done: false,
        }
    }

    /// Positions the cursor at `key`: straight in the leaf a finger names
    /// for it, or else down from the root.
    fn seek<S: NodeSource + ?Sized>(&mut self, s: &mut S, root: &TreeRoot, key: &Key) -> Result<()> {
        let Some(f) = s.finger(root, key) else { return self.seek_from_root(s, root, key) };
        let b = s.node(f.blk, f.gen, 0)?;
        f.range.check(b)?;
        self.slot[0] = self.leaf_slot(b, key);
        self.blk[0] = f.blk;
        self.gen[0] = f.gen;
        self.range[0] = f.range;
        self.top = root.level as usize;
        self.leaf_only = true;
        self.seq = s.mod_seq();
        self.positioned = true;
        Ok(())
    }

    /// Where in leaf `b` the cursor starts for `key`.
    fn leaf_slot(&self, b: &[u8], key: &Key) -> usize {
        match (node::leaf_search(b, key), self.dir) {
            (Ok(i), Dir::Forward) | (Err(i), _) => i,
            (Ok(i), Dir::Backward) => i + 1,
        }
    }

    /// The key to seek again from: past the last one returned.
    fn resume_key(&self) -> Option<Key> {
        match (self.last, self.dir) {
            (None, _) => Some(self.start),
            (Some(k), Dir::Forward) => k.succ(),
            (Some(k), Dir::Backward) => k.pred(),
        }
    }

    fn seek_from_root<S: NodeSource + ?Sized>(&mut self, s: &mut S, root: &TreeRoot, key: &Key) -> Result<()> {
        self.top = root.level as usize;
        self.leaf_only = false;
        let (mut blk, mut gen) = (root.block, root.generation);
        let mut range = Range::default();
        for level in (0..=self.top).rev() {
            let b = s.node(blk, gen, level as u8)?;
            range.check(b)?;
            self.blk[level] = blk;
            self.gen[level] = gen;
            self.range[level] = range;
            if level == 0 {
                self.slot[0] = self.leaf_slot(b, key);
                s.note(root.block, blk, gen, range);
            } else {
                let sl = node::child_slot(b, key);
                self.slot[level] = sl;
                range = range.child(b, sl);
                blk = node::ptr_block(b, sl);
                gen = node::ptr_gen(b, sl);
                if level == 1 {
                    read_ahead_under(s, blk, (self.blk[1], self.gen[1]), sl)?;
                }
            }
        }
        self.seq = s.mod_seq();
        self.positioned = true;
        Ok(())
    }

    /// The next item, borrowed from the store until the next store call.
    pub fn next<'s, S: NodeSource + ?Sized>(&mut self, s: &'s mut S, root: &TreeRoot) -> Result<Option<(Key, &'s [u8])>> {
        if self.done {
            return Ok(None);
        }
        if !self.positioned || self.seq != s.mod_seq() {
            let Some(from) = self.resume_key() else {
                self.done = true;
                return Ok(None);
            };
            self.seek(s, root, &from)?;
        }
        let idx = loop {
            let n = node::nritems(s.node(self.blk[0], self.gen[0], 0)?);
            match self.dir {
                Dir::Forward if self.slot[0] < n => {
                    self.slot[0] += 1;
                    break self.slot[0] - 1;
                }
                Dir::Backward if self.slot[0] > 0 && self.slot[0] <= n => {
                    self.slot[0] -= 1;
                    break self.slot[0];
                }
                _ => {}
            }
            if self.leaf_only {
                // Past the leaf a finger gave: the path above it is needed.
                let Some(from) = self.resume_key() else {
                    self.done = true;
                    return Ok(None);
                };
                self.seek_from_root(s, root, &from)?;
                continue;
            }
            let mut l = 1;
            loop {
                if l > self.top {
                    self.done = true;
                    return Ok(None);
                }
                let n = node::nritems(s.node(self.blk[l], self.gen[l], l as u8)?);
                match self.dir {
                    Dir::Forward if self.slot[l] + 1 < n => {
                        self.slot[l] += 1;
                        break;
                    }
                    Dir::Backward if self.slot[l] > 0 => {
                        self.slot[l] -= 1;
                        break;
                    }
                    _ => l += 1,
                }
            }
            while l > 0 {
                let b = s.node(self.blk[l], self.gen[l], l as u8)?;
                let (c, cg) = (node::ptr_block(b, self.slot[l]), node::ptr_gen(b, self.slot[l]));
                let range = self.range[l].child(b, self.slot[l]);
                if l == 1 && self.dir == Dir::Forward {
                    read_ahead_under(s, c, (self.blk[1], self.gen[1]), self.slot[1])?;
                }
                l -= 1;
                self.blk[l] = c;
                self.gen[l] = cg;
                self.range[l] = range;
                let cb = s.node(c, cg, l as u8)?;
                range.check(cb)?;
                let cn = node::nritems(cb);
                self.slot[l] = match self.dir {
                    Dir::Forward => 0,
                    Dir::Backward if l == 0 => cn,
                    Dir::Backward => cn.saturating_sub(1),
                };
                if l == 0 {
                    s.note(root.block, c, cg, range);
                }
            }
        };
        let b = s.node(self.blk[0], self.gen[0], 0)?;
        let key = node::item_key(b, idx);
        self.last = Some(key);
        Ok(Some((key, node::item_data(b, idx))))
    }
}

/// The first item at or after `from` whose key has the same objectid and
/// type, as `(key, value)`.
pub fn first_in<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, from: Key, out: &mut TryVec<u8>) -> Result<Option<Key>> {
    nearest_in(s, root, from, Dir::Forward, out)
}

/// The last item at or before `from` whose key has the same objectid and type.
pub fn last_in<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, from: Key, out: &mut TryVec<u8>) -> Result<Option<Key>> {
    nearest_in(s, root, from, Dir::Backward, out)
}

/// The nearest item from `from` in direction `dir` that shares its
/// objectid and type; its value is copied into `out`.
fn nearest_in<S: NodeSource + ?Sized>(s: &mut S, root: &TreeRoot, from: Key, dir: Dir, out: &mut TryVec<u8>) -> Result<Option<Key>> {
    let mut c = Cursor::new(from, dir);
    match c.next(s, root)? {
        Some((k, d)) if k.objectid == from.objectid && k.ty == from.ty => {
            out.clear();
            out.try_extend_from_slice(d)?;
            Ok(Some(k))
        }
        _ => Ok(None),
    }
}
