// SPDX-License-Identifier: GPL-2.0
//! Visiting every node of a tree in key order, as stored on the device,
//! for `check` and `dump`: depth first with an explicit stack, each node
//! read fresh (checksum included) unless the running transaction holds a
//! newer copy, and each parent-to-child relation (level, generation, key
//! range) verified before the child is visited.

use crate::btree::TreeRoot;
use crate::device::BlockDevice;
use crate::error::{CorruptAt, Error, Result};
use crate::format::Key;
use crate::mem::TryVec;
use crate::node;
use crate::store::Store;

/// What the walker found at one place in the tree.
pub enum Visit<'a> {
    /// A node that passed every check; `depth` 0 is the root.
    Node {
        /// Block number.
        block: u64,
        /// The node bytes.
        buf: &'a [u8],
        /// Distance from the root.
        depth: usize,
    },
    /// A node that could not be read or failed a check; not descended into.
    Bad {
        /// Block number.
        block: u64,
        /// What was wrong.
        error: Error,
    },
}

#[derive(Clone, Copy)]
struct Todo {
    block: u64,
    gen: u64,
    level: u8,
    depth: usize,
    lo: Key,
    hi: Option<Key>,
}

impl<D: BlockDevice> Store<D> {
    /// The current bytes of a node: the transaction's copy if it has one,
    /// the device's otherwise (validated against what the parent expects).
    fn read_for_walk(&mut self, t: &Todo, buf: &mut TryVec<u8>) -> Result<()> {
        buf.clear();
        if self.is_dirty_node(t.block) {
            buf.try_extend_from_slice(self.dirty_node(t.block)?)?;
            node::validate_structure(buf, self.sb.total_blocks)?;
            if node::generation(buf) != t.gen || node::level(buf) != t.level {
                return Err(Error::corrupt("node generation or level differs from its parent pointer"));
            }
            return Ok(());
        }
        if t.block < crate::superblock::first_usable_block(self.sb.block_size) || t.block >= self.sb.total_blocks {
            return Err(Error::corrupt("block outside the filesystem"));
        }
        buf.try_resize(self.bs, 0)?;
        self.dev.read(t.block * self.bs as u64, buf)?;
        let e =
            node::Expect { blocknr: t.block, generation: t.gen, level: t.level, uuid: &self.sb.uuid, total_blocks: self.sb.total_blocks };
        node::validate(buf, &e).at_block(t.block)
    }

    /// Calls `f` for every node of the tree at `root`, leaves in key order.
    pub fn walk(&mut self, root: &TreeRoot, f: &mut dyn FnMut(&mut Self, Visit<'_>) -> Result<()>) -> Result<()> {
        self.walk_from(root, Key::default(), f)
    }

    /// `walk` leaving out every subtree whose keys all lie below `from`
    /// (for a tree being dropped: those nodes are freed already).
    pub fn walk_from(&mut self, root: &TreeRoot, from: Key, f: &mut dyn FnMut(&mut Self, Visit<'_>) -> Result<()>) -> Result<()> {
        let mut stack: TryVec<Todo> = TryVec::new();
        stack.try_push(Todo { block: root.block, gen: root.generation, level: root.level, depth: 0, lo: Key::default(), hi: None })?;
        let mut buf = TryVec::new();
        while let Some(t) = stack.pop() {
            if let Err(error) = self.read_for_walk(&t, &mut buf) {
                f(self, Visit::Bad { block: t.block, error })?;
                continue;
            }
            let n = node::nritems(&buf);
            if !node::keys_within(&buf, &t.lo, t.hi.as_ref()) {
                f(self, Visit::Bad { block: t.block, error: Error::corrupt("node keys outside the range its parent gives") })?;
                continue;
            }
            if t.depth >= node::MAX_LEVEL {
                f(self, Visit::Bad { block: t.block, error: Error::corrupt("tree deeper than the maximum") })?;
                continue;
            }
            if t.level > 0 {
                for i in (0..n).rev() {
                    let hi = if i + 1 < n { Some(node::ptr_key(&buf, i + 1)) } else { t.hi };
                    if hi.is_some_and(|h| h <= from) {
                        continue;
                    }
                    stack.try_push(Todo {
                        block: node::ptr_block(&buf, i),
                        gen: node::ptr_gen(&buf, i),
                        level: t.level - 1,
                        depth: t.depth + 1,
                        lo: node::ptr_key(&buf, i),
                        hi,
                    })?;
                }
            }
            f(self, Visit::Node { block: t.block, buf: &buf, depth: t.depth })?;
        }
        Ok(())
    }
}
