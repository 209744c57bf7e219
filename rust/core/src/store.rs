// SPDX-License-Identifier: GPL-2.0
//! The transaction store: the device, the block cache, copy-on-write of
//! nodes, block allocation, and the commit that makes a transaction durable.
//!
//! # Transactions
//!
//! There is always exactly one running transaction, numbered `gen`
//! (= the last committed generation + 1). Every node the transaction
//! changes is first copied to a newly allocated block stamped with `gen`;
//! those dirty nodes live only in the cache until commit and are never
//! evicted. Nodes of older generations are never written again. Commit:
//!
//! 1. the caller stores its fs-tree roots into the root tree;
//! 2. queued refcount changes are applied to the allocation tree
//!    (`apply_refs`, which converges because each node is copied once);
//! 3. every dirty node is sealed (crc32c) and written, in block order,
//!    each run of adjacent nodes as one device write; then the device
//!    cache is flushed;
//! 4. superblock copy 0 is written with FUA, pointing at the new root
//!    and allocation trees, then copy 1 without (the next flush makes it
//!    durable: copy 0 is already);
//! 5. blocks freed during the transaction (pinned) become free.
//!
//! A crash before step 4 completes leaves the previous superblock, whose
//! trees are intact because nothing they reference was overwritten; a crash
//! after the first copy is written leaves the new state. Data blocks are
//! written when the write happens, always to blocks the last commit does not
//! reference, so they need only the flush of step 3.
//!
//! Steps 3 and 4 only read the store (`Store::commit_write`), so the
//! adapter runs them while other tasks read the cached trees; nothing
//! changes the store until step 5 (`Store::commit_done` checks).
//!
//! If an operation fails after it started changing trees (out of space
//! despite the reservation, out of memory, an I/O error), the transaction
//! is aborted: the store refuses further changes (`Error::ReadOnly`) and
//! the device keeps the last committed state.

use crate::btree::TreeRoot;
use crate::device::BlockDevice;
use crate::error::{CorruptAt, Error, Result};
use crate::mem::TryVec;
use crate::node;
use crate::node_cache::NodeCache;
use crate::space::Space;
use crate::superblock::{self, first_usable_block, Superblock, TreePointer};

/// Counters for tests and sysfs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Metadata blocks read from the device.
    pub meta_reads: u64,
    /// Batches of metadata blocks read together (`Store::prefetch_nodes`;
    /// their blocks count in `meta_reads`).
    pub meta_batches: u64,
    /// Inode items looked up (a measure of tree work the node cache hides
    /// from `meta_reads`).
    pub inode_reads: u64,
    /// Metadata blocks written.
    pub meta_writes: u64,
    /// Data bytes written.
    pub data_bytes_written: u64,
    /// Cache flushes issued.
    pub flushes: u64,
    /// Commits done.
    pub commits: u64,
    /// Bytes written by all commits (nodes and superblocks).
    pub commit_bytes: u64,
    /// Device writes of nodes by all commits (runs of adjacent nodes go
    /// as one).
    pub commit_writes: u64,
    /// Tree lookups and changes that went straight to their leaf by a
    /// finger (`crate::btree::Fingers`) instead of down from the root.
    pub finger_hits: u64,
    /// Descents from a root that copy their path for a change (each one a
    /// tree change no finger could serve).
    pub write_descents: u64,
    /// Nodes copied on write (a committed node the transaction changes).
    pub node_copies: u64,
}

/// Free blocks kept for operations that give space back (half of it) and
/// for the commit: 1/64 of a filesystem of `total_blocks`, at least 24
/// and at most 4096 blocks (see `Filesystem::reserve`).
pub fn global_reserve(total_blocks: u64) -> u64 {
    (total_blocks / 64).clamp(24, 4096)
}

/// Most adjacent nodes a commit writes with one device write (256 KiB of
/// 4 KiB nodes).
const COMMIT_RUN_BLOCKS: usize = 64;

/// Most nodes `Store::prefetch_nodes` reads in one batch (128 KiB of 4 KiB
/// nodes): enough to keep a device busy, little memory.
pub(crate) const PREFETCH_NODES: usize = 32;

/// The device plus everything a transaction holds in memory.
/// A divisor that cannot be zero, so dividing by it has no panic path
/// (the kernel's objtool also cannot follow division-by-zero panics).
/// Block sizes and counts are validated long before they divide anything;
/// the fallback of 1 only keeps this total.
pub(crate) fn divisor(x: u64) -> core::num::NonZeroU64 {
    core::num::NonZeroU64::new(x).unwrap_or(core::num::NonZeroU64::MIN)
}

/// `a / b` rounded up, without a division-by-zero panic path (see `divisor`).
pub(crate) fn div_ceil(a: u64, b: u64) -> u64 {
    let d = divisor(b);
    a / d + u64::from(a % d != 0)
}

pub struct Store<D: BlockDevice> {
    /// The device.
    pub dev: D,
    /// The superblock as last committed (updated at commit).
    pub sb: Superblock,
    /// Block size in bytes.
    pub bs: usize,
    /// Generation of the running transaction.
    pub gen: u64,
    /// Root of the root tree.
    pub root_tree: TreeRoot,
    /// Root of the allocation tree.
    pub alloc_tree: TreeRoot,
    /// Free space and queued refcount changes.
    pub space: Space,
    /// Why the transaction was aborted, if it was.
    pub aborted: Option<Error>,
    /// Counters.
    pub stats: Stats,
    /// Most clean nodes kept in the cache.
    pub cache_limit: usize,
    cache: NodeCache,
    mod_seq: u64,
    /// The last commit's superblock copy 1 awaits a flush (see
    /// `superblock::write_superblock`).
    copy1_unflushed: bool,
    /// The fast-commit records of the running epoch (`crate::fast_commit`).
    pub fc: crate::fast_commit::FastCommitState,
    /// Leaves recent descents reached (`crate::btree::Fingers`); every
    /// block leaving a tree here ends them.
    pub(crate) fingers: crate::btree::Fingers,
    /// Node reads deferred to the caller (`crate::node_io`).
    pub(crate) deferral: crate::node_io::Deferral,
}

/// Refuses cached node `b` (at `blk`) unless it has the generation and
/// level its parent pointer gives.
fn matches_parent(b: &[u8], blk: u64, gen: u64, level: u8) -> Result<()> {
    if node::generation(b) != gen || node::level(b) != level {
        return Err(Error::corrupt("node generation or level differs from its parent pointer").at_block(blk));
    }
    Ok(())
}

fn ptr_of(r: &TreeRoot) -> TreePointer {
    TreePointer { block: r.block, generation: r.generation, level: r.level }
}

/// The blocks node `b` holds references to: each child of an interior
/// node, each data extent of an fs-tree leaf, as `(first block, count)`.
/// A node shared by several trees holds one reference for all of them.
pub fn children_of(b: &[u8], bounds: &crate::format::Bounds, out: &mut TryVec<(u64, u64)>) -> Result<()> {
    use crate::format::{ExtentItem, EXTENT_KEY};
    out.clear();
    if node::level(b) > 0 {
        for i in 0..node::nritems(b) {
            out.try_push((node::ptr_block(b, i), 1))?;
        }
        return Ok(());
    }
    if !crate::format::is_fs_tree(node::owner(b)) {
        return Ok(());
    }
    for i in 0..node::nritems(b) {
        let k = node::item_key(b, i);
        if k.ty == EXTENT_KEY {
            let e = ExtentItem::decode_bounded(node::item_data(b, i), k.offset, bounds).at_ino(k.objectid)?;
            out.try_push((e.disk_block, e.nblocks))?;
        }
    }
    Ok(())
}

impl<D: BlockDevice> Store<D> {
    /// A store over `dev` at the state `sb` describes; the caller loads
    /// free space (`crate::alloc_tree`) before changing anything.
    pub fn new(dev: D, sb: Superblock) -> Result<Self> {
        let gen = sb.generation.checked_add(1).ok_or(Error::corrupt("generation overflows"))?;
        Ok(Store {
            dev,
            bs: sb.block_size as usize,
            gen,
            root_tree: TreeRoot {
                id: crate::format::ROOT_TREE_ID,
                block: sb.root_tree.block,
                generation: sb.root_tree.generation,
                level: sb.root_tree.level,
                last_snapshot: 0,
            },
            alloc_tree: TreeRoot {
                id: crate::format::ALLOC_TREE_ID,
                block: sb.alloc_tree.block,
                generation: sb.alloc_tree.generation,
                level: sb.alloc_tree.level,
                last_snapshot: 0,
            },
            sb,
            space: Space::new(),
            aborted: None,
            stats: Stats::default(),
            cache_limit: 4096,
            cache: NodeCache::new(),
            mod_seq: 0,
            copy1_unflushed: false,
            fc: Default::default(),
            fingers: crate::btree::Fingers::with_room(),
            deferral: Default::default(),
        })
    }

    /// A counter bumped by every change to any tree; cursors use it to
    /// notice they must seek again.
    pub fn mod_seq(&self) -> u64 {
        self.mod_seq
    }

    /// Records that trees are about to change.
    pub fn touch(&mut self) {
        self.mod_seq += 1;
    }

    /// Number of dirty nodes held for the next commit.
    pub fn dirty_nodes(&self) -> usize {
        self.cache.dirty_len()
    }

    /// Number of clean nodes cached (what `shrink` can drop).
    pub fn clean_nodes(&self) -> usize {
        self.cache.clean_len()
    }

    /// Drops up to `n` clean cached nodes, least recently used first, for
    /// memory reclaim; returns how many went. Dirty nodes stay: they are
    /// the running transaction's only copy. Allocates nothing.
    pub fn shrink(&mut self, n: usize) -> usize {
        self.cache.drop_oldest_clean(n)
    }

    /// Whether the running transaction changed anything.
    pub fn is_dirty(&self) -> bool {
        self.cache.dirty_len() > 0
            || !self.space.queue.is_empty()
            || !self.space.deferred.is_empty()
            || self.space.txn_alloc.total() > 0
            || self.space.pinned.total() > 0
    }

    /// `Corrupt` unless blocks `[blk, blk + len)` lie in the filesystem's
    /// usable area.
    pub(crate) fn check_range(&self, blk: u64, len: u64) -> Result<()> {
        let end = blk.checked_add(len).ok_or(Error::corrupt("block number overflows"))?;
        if blk < first_usable_block(self.sb.block_size) || end > self.sb.total_blocks {
            return Err(Error::corrupt("block outside the filesystem"));
        }
        Ok(())
    }

    /// What the superblock says bounds every item (see `format::Bounds`).
    pub fn bounds(&self) -> crate::format::Bounds {
        crate::format::Bounds {
            total_blocks: self.sb.total_blocks,
            block_size: self.sb.block_size,
            unwritten: self.sb.incompat & crate::superblock::INCOMPAT_UNWRITTEN != 0,
        }
    }

    /// The node at `blk`, which its parent says has generation `gen` and
    /// level `level`; read and validated on a cache miss.
    pub fn node(&mut self, blk: u64, gen: u64, level: u8) -> Result<&[u8]> {
        let id = match self.cache.find(blk) {
            Some(id) => {
                self.cache.touch(id);
                matches_parent(self.cache.buf(id), blk, gen, level)?;
                id
            }
            None => {
                self.check_range(blk, 1).at_block(blk)?;
                if self.deferral.is_on() {
                    return Err(self.deferral.miss(crate::node_io::NodeWant { blk, gen, level }));
                }
                let mut buf = TryVec::try_from_elem(0u8, self.bs)?;
                self.dev.read(blk * self.bs as u64, &mut buf)?;
                self.stats.meta_reads += 1;
                let e = node::Expect { blocknr: blk, generation: gen, level, uuid: &self.sb.uuid, total_blocks: self.sb.total_blocks };
                node::validate(&buf, &e).at_block(blk)?;
                self.evict();
                self.cache.insert(blk, false, buf)?
            }
        };
        Ok(self.cache.buf(id))
    }

    /// Reads the nodes of level `level` that `want` names as `(block,
    /// generation)` and the cache lacks, with one batch of device reads
    /// (`BlockDevice::read_pieces`), into the cache, so that the `node`
    /// calls that follow find them there. At most `PREFETCH_NODES` and a
    /// quarter of the cache are read. A hint only: a node outside the
    /// filesystem, or one that fails its checks, is left out (its `node`
    /// call reads it again and reports the error), as is everything when
    /// the device does not batch, memory is short or the read fails.
    pub(crate) fn prefetch_nodes(&mut self, level: u8, want: &[(u64, u64)]) {
        let cap = PREFETCH_NODES.min(self.cache_limit / 4);
        let Ok(mut todo) = TryVec::<(u64, u64)>::try_with_capacity(want.len().min(cap)) else { return };
        for &(blk, gen) in want {
            if todo.len() == cap {
                break;
            }
            if self.cache.find(blk).is_none() && self.check_range(blk, 1).is_ok() && !todo.iter().any(|t| t.0 == blk) {
                // Within the capacity reserved above.
                let _ = todo.try_push((blk, gen));
            }
        }
        if self.deferral.is_on() {
            // The caller reads them, outside its lock, with the node the
            // call stops at.
            for &(blk, gen) in todo.iter() {
                self.deferral.want(crate::node_io::NodeWant { blk, gen, level });
            }
            return;
        }
        if todo.len() < 2 {
            // One node is read as well by the `node` call that needs it.
            return;
        }
        // In block order, so the device can merge neighbours.
        todo.sort_unstable();
        let bs = self.bs;
        let Ok(mut offsets) = TryVec::<u64>::try_with_capacity(todo.len()) else { return };
        for &(blk, _) in todo.iter() {
            let _ = offsets.try_push(blk * bs as u64);
        }
        let Ok(mut staging) = TryVec::try_from_elem(0u8, todo.len() * bs) else { return };
        if !matches!(self.dev.read_pieces(&offsets, bs, &mut staging), Ok(true)) {
            return;
        }
        self.stats.meta_reads += todo.len() as u64;
        self.stats.meta_batches += 1;
        // Pieces by index: `chunks_exact` would divide (see `divisor`).
        for (k, &(blk, gen)) in todo.iter().enumerate() {
            let Some(piece) = staging.get(k * bs..(k + 1) * bs) else { break };
            if self.cache_read_node(blk, gen, level, piece).is_err() {
                return;
            }
        }
    }

    /// Caches `piece`, read from `blk` (which the cache lacks) other than
    /// by `node`, as the clean node of generation `gen` and level `level`
    /// its parent names, once it passes the checks `node` makes of a read;
    /// one that fails them is left out (its `node` call reads it again and
    /// reports the fault). Errors only for want of memory.
    pub(crate) fn cache_read_node(&mut self, blk: u64, gen: u64, level: u8, piece: &[u8]) -> Result<()> {
        let e = node::Expect { blocknr: blk, generation: gen, level, uuid: &self.sb.uuid, total_blocks: self.sb.total_blocks };
        if node::validate(piece, &e).is_err() {
            return Ok(());
        }
        let mut buf = TryVec::try_with_capacity(self.bs)?;
        buf.try_extend_from_slice(piece)?;
        self.evict();
        self.cache.insert(blk, false, buf).map(drop)
    }

    /// `node` for a reader sharing the store with others: the node if it is
    /// cached (checked against its parent pointer as `node` checks it),
    /// neither read nor moved on the LRU list.
    pub(crate) fn cached_node(&self, blk: u64, gen: u64, level: u8) -> Result<Option<&[u8]>> {
        let Some(id) = self.cache.find(blk) else { return Ok(None) };
        let b = self.cache.buf(id);
        matches_parent(b, blk, gen, level)?;
        Ok(Some(b))
    }

    /// Whether node `blk` is in the cache (reading it costs no I/O).
    pub(crate) fn is_cached(&self, blk: u64) -> bool {
        self.cache.find(blk).is_some()
    }

    /// A node the running transaction owns (copied or created by it).
    pub fn dirty_node(&mut self, blk: u64) -> Result<&[u8]> {
        match self.cache.find(blk) {
            Some(id) if self.cache.is_dirty(id) => Ok(self.cache.buf(id)),
            _ => Err(Error::Bug("expected a node of the running transaction")),
        }
    }

    /// A node the running transaction owns, for changing.
    pub fn node_mut(&mut self, blk: u64) -> Result<&mut [u8]> {
        self.mod_seq += 1;
        match self.cache.find(blk) {
            Some(id) if self.cache.is_dirty(id) => Ok(self.cache.buf_mut(id)),
            _ => Err(Error::Bug("changing a node the transaction does not own")),
        }
    }

    /// Whether `blk` is a node the running transaction owns.
    pub fn is_dirty_node(&self, blk: u64) -> bool {
        matches!(self.cache.find(blk), Some(id) if self.cache.is_dirty(id))
    }

    fn insert_dirty(&mut self, blk: u64, buf: TryVec<u8>) -> Result<()> {
        match self.cache.find(blk) {
            Some(id) => self.cache.set_dirty(id, buf),
            None => {
                self.cache.insert(blk, true, buf)?;
            }
        }
        Ok(())
    }

    /// Drops the least recently used clean nodes past `cache_limit`.
    fn evict(&mut self) {
        let over = self.cache.clean_len().saturating_sub(self.cache_limit);
        self.cache.drop_oldest_clean(over);
    }

    /// Allocates one metadata block, next to the transaction's other nodes
    /// where it can (`Space::allocate_meta`).
    pub fn alloc_block(&mut self) -> Result<u64> {
        self.space.allocate_meta()
    }

    /// A new empty node owned by the running transaction.
    pub fn new_node(&mut self, owner: u64, level: u8) -> Result<u64> {
        let blk = self.alloc_block()?;
        let mut buf = TryVec::try_from_elem(0u8, self.bs)?;
        node::init(&mut buf, blk, self.gen, &self.sb.uuid, owner, level);
        self.insert_dirty(blk, buf)?;
        self.mod_seq += 1;
        Ok(blk)
    }

    /// Copy-on-write: the block to change instead of `blk`, a node of the
    /// tree `root`. Nodes the running transaction already owns are changed
    /// in place. The old node's reference is dropped (`release_copied`).
    pub fn cow(&mut self, blk: u64, gen: u64, level: u8, root: &TreeRoot) -> Result<u64> {
        if gen == self.gen && self.is_dirty_node(blk) {
            return Ok(blk);
        }
        let _ = self.node(blk, gen, level)?;
        let nb = self.alloc_block()?;
        self.stats.node_copies += 1;
        let mut buf = TryVec::try_with_capacity(self.bs)?;
        buf.try_extend_from_slice(self.node(blk, gen, level)?)?;
        node::set_identity(&mut buf, nb, self.gen, root.id);
        self.insert_dirty(nb, buf)?;
        // Only the copied node left the tree: the fingers on it go, and
        // the others stay true (see `crate::btree::Fingers`: its block is
        // not reused before the commit, which ends every finger).
        self.fingers.forget(blk);
        self.drop_copied(blk, gen, level, root)?;
        self.mod_seq += 1;
        Ok(nb)
    }

    /// Whether a node of generation `gen` in tree `root` may be shared with
    /// another tree: only nodes written before the tree's last snapshot
    /// can be, and those are asked of the allocation tree.
    pub fn is_shared(&mut self, blk: u64, gen: u64, root: &TreeRoot) -> Result<bool> {
        if gen > root.last_snapshot {
            return Ok(false);
        }
        // Queued changes first, so the count is this moment's.
        self.apply_refs()?;
        Ok(self.refcount(blk)? > 1)
    }

    /// Drops tree `root`'s reference to node `blk` whose contents now live
    /// on in a copy (copy-on-write, or a merge into a sibling). A node only
    /// this tree references goes, its children passing to the copy. A
    /// shared node stays for the other trees, so the copy first takes its
    /// own reference on every child, or for a leaf on every data extent.
    pub fn release_copied(&mut self, blk: u64, gen: u64, level: u8, root: &TreeRoot) -> Result<()> {
        self.fingers.reshaped();
        self.drop_copied(blk, gen, level, root)
    }

    /// `release_copied` without ending the fingers, for a copy-on-write:
    /// the node left the tree, but its block, committed, is held until the
    /// next commit and so cannot come back into any tree before the
    /// fingers all end there.
    fn drop_copied(&mut self, blk: u64, gen: u64, level: u8, root: &TreeRoot) -> Result<()> {
        if !self.is_shared(blk, gen, root)? {
            return self.drop_node(blk);
        }
        let mut refs: TryVec<(u64, u64)> = TryVec::new();
        let bounds = self.bounds();
        children_of(self.node(blk, gen, level)?, &bounds, &mut refs).at_block(blk)?;
        for &(start, len) in refs.iter() {
            self.space.queue(start, len, 1)?;
        }
        self.mod_seq += 1;
        self.space.queue(blk, 1, -1)
    }

    /// Drops a reference to a node; the block is released when the
    /// allocation tree sees its count reach zero.
    pub fn free_node(&mut self, blk: u64) -> Result<()> {
        self.fingers.reshaped();
        self.drop_node(blk)
    }

    /// `free_node` without ending the fingers (see `drop_copied`).
    fn drop_node(&mut self, blk: u64) -> Result<()> {
        if let Some(id) = self.cache.find(blk) {
            self.cache.remove(id);
        }
        self.mod_seq += 1;
        self.space.queue(blk, 1, -1)
    }

    /// Allocates up to `want` contiguous data blocks.
    pub fn alloc_data(&mut self, want: u64) -> Result<(u64, u64)> {
        self.space.allocate(want)
    }

    /// Drops a reference to a run of data blocks; applied to the
    /// allocation tree by the next `apply_refs`, or kept back until the
    /// end of the transaction (`crate::deferred_frees`).
    pub fn free_data(&mut self, start: u64, len: u64) -> Result<()> {
        self.check_range(start, len)?;
        // Applying the drop copies a path of the allocation tree.
        let nodes = self.alloc_tree.level as u64 + 2;
        self.space.drop_data_ref(start, len, nodes, global_reserve(self.sb.total_blocks))
    }

    /// Reads whole data blocks from `blk` into `buf`.
    pub fn read_blocks(&mut self, blk: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range(blk, buf.len() as u64 / divisor(self.bs as u64))?;
        self.dev.read(blk * self.bs as u64, buf)
    }

    /// Starts reading `nblocks` data blocks from `blk` ahead of need
    /// (`BlockDevice::read_ahead`; the caller keeps them from being written).
    pub fn read_ahead_blocks(&mut self, blk: u64, nblocks: u64) -> Result<()> {
        self.check_range(blk, nblocks)?;
        let bytes = nblocks.checked_mul(self.bs as u64).and_then(|b| usize::try_from(b).ok()).ok_or(Error::Bug("read ahead too long"))?;
        self.dev.read_ahead(blk * self.bs as u64, bytes)
    }

    /// Fills the start of `buf` from the read ahead started at data block
    /// `blk`; returns the bytes filled (0: none there).
    pub fn take_read_ahead(&mut self, blk: u64, buf: &mut [u8]) -> Result<usize> {
        self.check_range(blk, buf.len() as u64 / divisor(self.bs as u64))?;
        self.dev.read_ahead_take(blk * self.bs as u64, buf)
    }

    /// Drops the device's read ahead, if any.
    pub fn cancel_read_ahead(&mut self) {
        self.dev.read_ahead_cancel()
    }

    /// Writes whole data blocks from `blk`, and remembers their CRC for
    /// the fsync records that may name them (`crate::written_crc`; not
    /// for streaming writes, as `DataWrite::note_written`).
    pub fn write_blocks(&mut self, blk: u64, buf: &[u8]) -> Result<()> {
        let n = buf.len() as u64 / divisor(self.bs as u64);
        self.check_range(blk, n)?;
        self.stats.data_bytes_written += buf.len() as u64;
        // Forgotten first: after a failed write the blocks hold neither.
        self.space.written.forget(blk, n);
        self.dev.write(blk * self.bs as u64, buf, false)?;
        let crc = (n <= crate::data_write::NOTE_CRC_MAX_BLOCKS).then(|| !crate::crc32c::update(!0, buf));
        self.space.written.remember(blk, n, crc);
        Ok(())
    }

    /// Refuses changes after an abort.
    pub fn check_writable(&self) -> Result<()> {
        match self.aborted {
            Some(_) => Err(Error::ReadOnly),
            None => Ok(()),
        }
    }

    /// Steps 2-5 of a commit (see the module doc), with this store's own
    /// device. The caller has stored its tree roots in the root tree.
    pub fn commit(&mut self) -> Result<()> {
        let sealed = self.commit_seal()?;
        let written = self.commit_write_own(&sealed);
        self.commit_done(sealed, written)
    }

    /// `commit_write` with this store's own device.
    pub fn commit_write_own(&mut self, sealed: &SealedCommit) -> Result<u64> {
        write_commit(&self.cache, self.bs, sealed, &mut self.dev)
    }

    /// Steps 2-3 of a commit up to its writes: applies the queued refcount
    /// changes and seals every dirty node. The caller then writes them
    /// (`commit_write`), perhaps with only `&self` while other tasks read,
    /// and ends with `commit_done`; nothing may change the store in
    /// between (`commit_done` refuses a store that changed).
    pub fn commit_seal(&mut self) -> Result<SealedCommit> {
        self.check_writable()?;
        let r = self.seal_inner();
        if let Err(e) = r {
            self.aborted = Some(e);
        }
        r
    }

    // Not inlined, as the other steps: each keeps its locals in a frame
    // of its own, not all in the caller's (kernel stacks are 16 KiB).
    #[inline(never)]
    fn seal_inner(&mut self) -> Result<SealedCommit> {
        self.apply_refs()?;
        let mut sb = self.sb.clone();
        sb.generation = self.gen;
        sb.root_tree = ptr_of(&self.root_tree);
        sb.alloc_tree = ptr_of(&self.alloc_tree);
        sb.blocks_used =
            sb.total_blocks.checked_sub(self.space.unreferenced()).ok_or(Error::corrupt("more blocks unreferenced than exist"))?;
        // In block order, as the device lays them out.
        let mut dirty = TryVec::new();
        self.cache.dirty_slots(&mut dirty)?;
        for &id in dirty.iter() {
            node::seal(self.cache.buf_mut(id));
        }
        Ok(SealedCommit { sb, dirty, gen: self.gen, mod_seq: self.mod_seq, tickets: self.fc.tickets })
    }

    /// Step 3's writes and flush, then step 4's superblock writes, of a
    /// sealed commit, through `dev` (a handle on this store's device):
    /// only reads the store, so other tasks may read it meanwhile. Returns
    /// how many device writes the nodes took.
    pub fn commit_write(&self, sealed: &SealedCommit, dev: &mut dyn BlockDevice) -> Result<u64> {
        write_commit(&self.cache, self.bs, sealed, dev)
    }

    /// Step 5, once `commit_write` returned `written`: the sealed nodes
    /// are clean, the new superblock is the store's, and the blocks the
    /// transaction freed are free. A failed write, or a store changed since
    /// the seal, stops the store instead (the device keeps the last
    /// commit, or this one if its first superblock copy got out).
    pub fn commit_done(&mut self, sealed: SealedCommit, written: Result<u64>) -> Result<()> {
        let r = written.and_then(|writes| {
            self.check_writable()?;
            if sealed.gen != self.gen || sealed.mod_seq != self.mod_seq || sealed.tickets != self.fc.tickets {
                return Err(Error::Bug("the store changed between a commit's seal and its end"));
            }
            self.finish_commit(sealed, writes)
        });
        if let Err(e) = r {
            if self.aborted.is_none() {
                self.aborted = Some(e);
            }
        }
        r
    }

    #[inline(never)]
    fn finish_commit(&mut self, sealed: SealedCommit, writes: u64) -> Result<()> {
        let nodes = sealed.dirty.len() as u64;
        self.cache.mark_all_clean();
        self.stats.flushes += 1;
        // The commit makes durable whatever every record so far says,
        // written or only staged (`crate::record_batch`): its tickets are
        // covered once it is done, which is before the core lock is let go.
        self.fc.flushed_tickets = sealed.tickets;
        // Written after the flush, with no flush of its own.
        self.copy1_unflushed = true;
        self.stats.meta_writes += nodes;
        self.stats.commit_writes += writes;
        self.stats.commits += 1;
        self.stats.commit_bytes += nodes * self.bs as u64 + 2 * superblock::SUPERBLOCK_SIZE as u64;
        self.sb = sealed.sb;
        self.space.committed()?;
        // Pinned blocks are free now (see `crate::btree::Fingers`).
        self.fingers.reshaped();
        self.fc.committed();
        // Below superblock::GENERATION_LIMIT, checked at mount.
        self.gen = self.gen.saturating_add(1);
        self.mod_seq += 1;
        self.evict();
        Ok(())
    }

    /// Flushes the device cache, counted. Any flush also makes the last
    /// commit's lazily written superblock copy 1 durable.
    pub fn flush(&mut self) -> Result<()> {
        self.dev.flush()?;
        self.stats.flushes += 1;
        self.copy1_unflushed = false;
        Ok(())
    }

    /// Makes the last commit's lazily written superblock copy 1 durable,
    /// so both copies match on the device (at unmount), unless a flush
    /// since did.
    pub fn flush_superblock_copy(&mut self) -> Result<()> {
        if self.copy1_unflushed {
            self.flush()?;
        }
        Ok(())
    }
}

/// A commit between `Store::commit_seal` and `Store::commit_done`: the
/// superblock it writes, its sealed nodes (cache slots, in block order),
/// and what the store was at the seal, so the end can tell it is unchanged.
pub struct SealedCommit {
    sb: Superblock,
    dirty: TryVec<u32>,
    gen: u64,
    mod_seq: u64,
    tickets: u64,
}

/// Writes the sealed nodes of `sealed` from `cache` (in block order), each
/// run of adjacent blocks with one device write of up to
/// `COMMIT_RUN_BLOCKS` blocks, copied through a staging buffer (without
/// memory for it the nodes go one by one: a commit never fails for want of
/// it); flushes; then writes the new superblock. Returns the node writes.
#[inline(never)]
fn write_commit(cache: &NodeCache, bs: usize, sealed: &SealedCommit, dev: &mut dyn BlockDevice) -> Result<u64> {
    let (mut staging, run_max) = match TryVec::try_with_capacity(COMMIT_RUN_BLOCKS * bs) {
        Ok(v) => (v, COMMIT_RUN_BLOCKS),
        Err(_) => (TryVec::new(), 1),
    };
    let ids = &sealed.dirty;
    let mut writes = 0;
    let mut i = 0;
    while let Some(&id) = ids.get(i) {
        let first = cache.blk(id);
        let mut n = 1;
        while n < run_max && ids.get(i + n).is_some_and(|&next| cache.blk(next) == first + n as u64) {
            n += 1;
        }
        let at = first * bs as u64;
        if n == 1 {
            dev.write(at, cache.buf(id), false)?;
        } else {
            staging.clear();
            for &next in ids.get(i..i + n).unwrap_or(&[]) {
                // Within the capacity reserved above: no allocation.
                staging.try_extend_from_slice(cache.buf(next))?;
            }
            dev.write(at, &staging, false)?;
        }
        writes += 1;
        i += n;
    }
    dev.flush()?;
    superblock::write_superblock(dev, &sealed.sb)?;
    Ok(writes)
}
