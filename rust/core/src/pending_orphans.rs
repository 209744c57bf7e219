// SPDX-License-Identifier: GPL-2.0
//! The orphan list's newest entries kept in memory until the next commit.
//!
//! An inode whose last name goes is put on the orphan list (an `ORPHAN`
//! item in its subvolume's tree), so that a mount after a crash frees it.
//! But most such inodes are freed by `evict` at once: an unlink of a file
//! nobody holds open. Its orphan item was then inserted and deleted again
//! in the same transaction, at the front of the tree, far from the leaves
//! the unlink changes, for two descents and two leaf edits that no commit
//! ever saw. So the item is first noted here, and goes into the tree only
//! if the inode is still unlinked and unfreed when a commit comes
//! (`Filesystem::store_pending_orphans`, run by every commit before it
//! stores anything, and before a subvolume is made read-only).
//!
//! Nothing durable depends on the in-memory entries: a commit writes them
//! first, and fsync records never carry orphan items (replay puts an
//! unlinked inode on the list itself). Each entry holds the node blocks its
//! later insert may take (`Space::write_reserved`), so a commit never runs
//! out of space for them; without room for that, or past
//! `PENDING_ORPHANS_MAX` entries, the item goes into the tree at once, as
//! before.

use crate::btree;
use crate::device::BlockDevice;
use crate::dir::orphan_key;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::subvol::SubvolId;

/// Most orphan items held in memory at once. An unlink followed by its
/// evict holds one; more than a few only while unlinked files stay open.
pub const PENDING_ORPHANS_MAX: usize = 8;

/// One orphan item not yet in its tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingOrphan {
    sv: SubvolId,
    ino: u64,
    /// Node blocks reserved for inserting the item.
    nodes: u64,
}

/// The orphan items of the running transaction not yet in their trees.
/// On the heap: the filesystem this lives in is copied on kernel stacks
/// at mount, where every byte counts.
#[derive(Debug, Default)]
pub struct PendingOrphans {
    entries: TryVec<PendingOrphan>,
}

impl PendingOrphans {
    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Holds `p` if there is room (`PENDING_ORPHANS_MAX`, and memory);
    /// whether it did.
    fn hold(&mut self, p: PendingOrphan) -> bool {
        self.entries.len() < PENDING_ORPHANS_MAX && self.entries.try_push(p).is_ok()
    }

    /// The entry holding `ino` of `sv`.
    fn position(&self, sv: SubvolId, ino: u64) -> Option<usize> {
        self.entries.iter().position(|p| p.sv == sv && p.ino == ino)
    }

    /// Takes the entry of `ino` in `sv`, returning the nodes it reserved.
    fn take(&mut self, sv: SubvolId, ino: u64) -> Option<u64> {
        let i = self.position(sv, ino)?;
        Some(self.entries.remove(i).nodes)
    }

    /// Takes any entry.
    fn take_any(&mut self) -> Option<PendingOrphan> {
        self.entries.pop()
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Puts `ino` (of the open subvolume, now at zero links) on the orphan
    /// list: in memory when there is a free entry and room to reserve its
    /// insert, else straight into the tree.
    pub(crate) fn add_orphan(&mut self, ino: u64) -> Result<()> {
        let nodes = self.node_blocks_for(1, false);
        // The removal that got here may use half the global reserve; the
        // reservation must leave it what it counted on.
        let room = self.s.space.reservable() >= nodes.saturating_add(self.global_reserve);
        let id = self.sv.id;
        if room && self.pending_orphans.hold(PendingOrphan { sv: id, ino, nodes }) {
            self.s.space.write_reserved = self.s.space.write_reserved.saturating_add(nodes);
            return Ok(());
        }
        btree::insert(&mut self.s, &mut self.sv.root, &orphan_key(ino), &[])
    }

    /// Takes `ino` (of the open subvolume) off the orphan list; whether
    /// it was on it.
    pub(crate) fn remove_orphan(&mut self, ino: u64) -> Result<bool> {
        if let Some(nodes) = self.pending_orphans.take(self.sv.id, ino) {
            self.s.space.write_reserved = self.s.space.write_reserved.saturating_sub(nodes);
            return Ok(true);
        }
        match btree::delete(&mut self.s, &mut self.sv.root, &orphan_key(ino)) {
            Ok(()) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `ino` (of the open subvolume) is on the orphan list.
    pub(crate) fn is_orphan(&mut self, ino: u64) -> Result<bool> {
        if self.pending_orphans.position(self.sv.id, ino).is_some() {
            return Ok(true);
        }
        Ok(btree::get_len(&mut self.s, &self.sv.root, &orphan_key(ino))?.is_some())
    }

    /// Inserts the orphan items held in memory into their subvolumes'
    /// trees, for the inodes still at zero links and not listed there
    /// already (neither should happen to an entry in a transaction that
    /// goes on; the two lookups per entry make sure). A subvolume being
    /// deleted takes its inodes with it. The open subvolume is the same
    /// on return.
    pub(crate) fn store_pending_orphans(&mut self) -> Result<()> {
        if self.pending_orphans.is_empty() {
            return Ok(());
        }
        let active = self.sv.id;
        while let Some(p) = self.pending_orphans.take_any() {
            self.s.space.write_reserved = self.s.space.write_reserved.saturating_sub(p.nodes);
            match self.enter(p.sv) {
                Err(Error::NotFound) => continue,
                r => r?,
            }
            let unlinked = match self.read_inode(p.ino) {
                Ok(it) => it.nlink == 0,
                Err(Error::NotFound) => false,
                Err(e) => return Err(e),
            };
            let k = orphan_key(p.ino);
            if unlinked && btree::get_len(&mut self.s, &self.sv.root, &k)?.is_none() {
                btree::insert(&mut self.s, &mut self.sv.root, &k, &[])?;
            }
        }
        match self.enter(active) {
            Err(Error::NotFound) => Ok(()),
            r => r,
        }
    }
}
