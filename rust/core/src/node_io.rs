// SPDX-License-Identifier: GPL-2.0
//! Metadata reads done by the caller, outside its lock: a read-only call
//! runs with node reads *deferred*; when it needs a node the cache lacks it
//! stops and names the nodes it wants; the caller reads them without the
//! lock, hands them back (`Filesystem::insert_read_nodes`) and runs the call
//! again. So one task's cold lookup does not make every other call into the
//! core wait for its device round trip.
//!
//! # Why a node read outside the lock is still the node
//! A wanted node is named by a parent pointer of a tree as it stood under
//! the lock, and is not cached, so it is committed (the running
//! transaction's nodes are dirty and always cached): its block holds it on
//! the device. The caller counts its read as a read in flight
//! (`Filesystem::set_io_in_flight`) from before it leaves the lock until
//! the nodes are inserted, so a block freed meanwhile is held, never handed
//! out again. At the insert a block that is no longer in use (pinned or
//! held) is dropped, not cached: a freed block must not leave a stale node
//! in the cache for whoever is given the block later. Every node read is
//! validated as `Store::node` validates it (checksum, block number,
//! generation, level, filesystem UUID).

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::store::{Store, PREFETCH_NODES};

/// One node a deferred call wants: its block, and the generation and level
/// its parent pointer gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeWant {
    /// Block number.
    pub blk: u64,
    /// Generation the parent pointer names.
    pub gen: u64,
    /// Level the parent pointer implies.
    pub level: u8,
}

/// Most nodes one deferred call names: a leaf's read ahead plus the node
/// the call stopped at.
pub const MAX_WANTS: usize = PREFETCH_NODES + 1;

/// The store's deferral state: off outside `Filesystem::without_node_io`.
#[derive(Default)]
pub(crate) struct Deferral {
    /// Node reads are deferred.
    on: bool,
    /// A `Store::node` call missed (the call's result is void): read ahead
    /// alone does not set it.
    missed: bool,
    /// The nodes wanted, each once, at most `MAX_WANTS`.
    wants: TryVec<NodeWant>,
}

impl Deferral {
    /// Whether node reads are deferred now.
    pub(crate) fn is_on(&self) -> bool {
        self.on
    }

    /// Notes a wanted node (read ahead, not a miss).
    pub(crate) fn want(&mut self, w: NodeWant) {
        add_want(&mut self.wants, w, false);
    }

    /// A miss of `Store::node`: the error that unwinds the call.
    pub(crate) fn miss(&mut self, w: NodeWant) -> Error {
        self.missed = true;
        add_want(&mut self.wants, w, true);
        Error::WouldBlock
    }
}

/// Adds `w` to `wants` once: a node a walk stopped at (`missed`) first, so
/// it is read even when the list is full, a read-ahead leaf last. Past
/// `MAX_WANTS`, or short of memory, a node is left out: the call asks
/// again. Deferred calls (`Deferral`) and shared walks
/// (`crate::tree_read::CachedNodes`) both name their nodes here.
pub(crate) fn add_want(wants: &mut TryVec<NodeWant>, w: NodeWant, missed: bool) {
    if wants.iter().any(|x| x.blk == w.blk) {
        return;
    }
    if missed && wants.len() == MAX_WANTS {
        wants.pop();
    }
    if wants.len() < MAX_WANTS {
        let _ = if missed { wants.try_insert(0, w) } else { wants.try_push(w) };
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Runs the read-only call `f` with node reads deferred. `Ok(Some)` is
    /// its result; `Ok(None)` means it needed nodes the cache lacks, named
    /// in `wants` (cleared first): read them, hand them to
    /// `insert_read_nodes`, and run the call again. An empty `wants` with
    /// `None` (no memory to name them) means: run it with `f` reading under
    /// the lock instead.
    ///
    /// `f` must change nothing on a path that can read a node: it may be
    /// stopped at any node and run again. Whatever it returns after a miss
    /// is dropped, so a caller that turns errors into answers (a missing
    /// name, say) cannot make a miss look like one.
    pub fn without_node_io<T>(&mut self, wants: &mut TryVec<NodeWant>, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        wants.clear();
        let d = &mut self.s.deferral;
        d.on = true;
        d.missed = false;
        d.wants.clear();
        let r = f(self);
        let d = &mut self.s.deferral;
        d.on = false;
        if !d.missed {
            // Read ahead alone named nodes: hints, and the call is done.
            d.wants.clear();
            return r.map(Some);
        }
        d.missed = false;
        // The caller's (empty) list becomes the store's for the next call.
        core::mem::swap(wants, &mut d.wants);
        Ok(None)
    }

    /// Puts the nodes named by `wants`, read by the caller into `data` (one
    /// block each, in order), into the cache. A node already cached, no
    /// longer in use, or failing validation is left out (the call that
    /// wanted it reads it again, and reports a real fault then). Counts the
    /// reads in the store's statistics.
    pub fn insert_read_nodes(&mut self, wants: &[NodeWant], data: &[u8]) -> Result<()> {
        let bs = self.s.bs;
        if wants.len().checked_mul(bs) != Some(data.len()) {
            return Err(Error::Bug("node reads not one block per wanted node"));
        }
        self.s.stats.meta_reads += wants.len() as u64;
        self.s.stats.meta_batches += 1;
        for (k, w) in wants.iter().enumerate() {
            let Some(piece) = data.get(k * bs..(k + 1) * bs) else { break };
            if self.s.node_read_insertable(w.blk) {
                self.s.cache_read_node(w.blk, w.gen, w.level, piece)?;
            }
        }
        Ok(())
    }
}

impl<D: BlockDevice> Store<D> {
    /// Whether a node read outside the lock from `blk` may be cached: the
    /// block is in the filesystem, not cached, and still in use (not
    /// released in this transaction, held, or free).
    fn node_read_insertable(&self, blk: u64) -> bool {
        self.check_range(blk, 1).is_ok()
            && !self.is_cached(blk)
            && self.space.queue.is_empty()
            && !self.space.pinned.overlaps(blk, 1)
            && !self.space.held_overlaps(blk, 1)
            && !self.space.free.overlaps(blk, 1)
    }
}
