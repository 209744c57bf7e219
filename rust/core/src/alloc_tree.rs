// SPDX-License-Identifier: GPL-2.0
//! The allocation tree: durable reference counts of every used block, kept
//! as non-overlapping range records `(start, REFCOUNT, 0) -> (len, count)`
//! (the XFS refcount-btree idea, so a snapshot or reflink later shares any
//! sub-range of an extent and freeing part of an extent is exact).
//!
//! Blocks not covered by a record are free; the in-memory free set is
//! rebuilt from the records at mount. `apply_refs` drains the queue of
//! refcount changes (see `crate::space` for why changes are queued).

use crate::btree::{self, Cursor, Dir, TreeRoot};
use crate::deferred_frees::DEFERRED_FREES_MAX;
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::{get_u64, Key, REFCOUNT_KEY};
use crate::mem::TryVec;
use crate::space::{recount, RefOp, RefRecord};
use crate::store::Store;
use crate::superblock::first_usable_block;

/// Encoded size of a refcount record value.
pub const REFCOUNT_ITEM_SIZE: usize = 16;

/// Decodes a refcount record.
pub fn decode_record(key: &Key, data: &[u8]) -> Result<RefRecord> {
    if key.ty != REFCOUNT_KEY || key.offset != 0 || data.len() != REFCOUNT_ITEM_SIZE {
        return Err(Error::corrupt("malformed refcount record"));
    }
    let r = RefRecord { start: key.objectid, len: get_u64(data, 0)?, count: get_u64(data, 8)? };
    if r.len == 0 || r.count == 0 || r.start.checked_add(r.len).is_none() {
        return Err(Error::corrupt("refcount record with an empty range or count"));
    }
    Ok(r)
}

fn encode_record(r: &RefRecord) -> [u8; REFCOUNT_ITEM_SIZE] {
    let mut b = [0u8; REFCOUNT_ITEM_SIZE];
    b[..8].copy_from_slice(&r.len.to_le_bytes());
    b[8..].copy_from_slice(&r.count.to_le_bytes());
    b
}

fn rkey(start: u64) -> Key {
    Key::new(start, REFCOUNT_KEY, 0)
}

/// Records overlapping or touching `[start, end]`, in order.
fn gather<D: BlockDevice>(s: &mut Store<D>, root: &TreeRoot, start: u64, end: u64, out: &mut TryVec<RefRecord>) -> Result<()> {
    out.clear();
    let mut c = Cursor::new(rkey(start), Dir::Backward);
    if let Some((k, d)) = c.next(s, root)? {
        let r = decode_record(&k, d)?;
        if r.start + r.len >= start {
            out.try_push(r)?;
        }
    }
    let Some(from) = start.checked_add(1) else { return Ok(()) };
    let mut c = Cursor::new(rkey(from), Dir::Forward);
    while let Some((k, d)) = c.next(s, root)? {
        let r = decode_record(&k, d)?;
        if r.start > end {
            break;
        }
        out.try_push(r)?;
    }
    Ok(())
}

impl<D: BlockDevice> Store<D> {
    /// Applies every queued refcount change to the allocation tree, the
    /// data frees kept back included (`crate::deferred_frees`), and
    /// releases blocks whose count reaches zero.
    pub fn apply_refs(&mut self) -> Result<()> {
        self.space.queue_deferred()?;
        self.apply_queued_refs()
    }

    /// `apply_refs` at the end of a changing call: the data frees kept
    /// back stay so until the commit, unless they reached
    /// `DEFERRED_FREES_MAX` entries.
    pub fn apply_refs_after_change(&mut self) -> Result<()> {
        if self.space.deferred.len() >= DEFERRED_FREES_MAX {
            return self.apply_refs();
        }
        self.apply_queued_refs()
    }

    /// Applies the queued refcount changes (not those kept back).
    fn apply_queued_refs(&mut self) -> Result<()> {
        let mut rounds = 0u32;
        let mut old = TryVec::new();
        let mut new = TryVec::new();
        let mut freed = TryVec::new();
        loop {
            let batch = core::mem::take(&mut self.space.queue);
            if batch.is_empty() {
                return Ok(());
            }
            rounds += 1;
            if rounds > 10_000 {
                return Err(Error::corrupt("allocation tree updates do not converge"));
            }
            for op in batch.iter() {
                self.apply_one(op, &mut old, &mut new, &mut freed)?;
            }
        }
    }

    fn apply_one(
        &mut self,
        op: &RefOp,
        old: &mut TryVec<RefRecord>,
        new: &mut TryVec<RefRecord>,
        freed: &mut TryVec<(u64, u64)>,
    ) -> Result<()> {
        let end = op.start.checked_add(op.len).ok_or(Error::corrupt("refcount range overflows"))?;
        let mut root = self.alloc_tree;
        gather(self, &root, op.start, end, old)?;
        freed.clear();
        recount(old, op.start, op.len, op.delta, new, freed)?;
        // Records whose start survives are updated in place; the rest go.
        for r in old.iter() {
            if !new.iter().any(|n| n.start == r.start) {
                btree::delete(self, &mut root, &rkey(r.start))?;
            }
        }
        for n in new.iter() {
            match old.iter().find(|r| r.start == n.start) {
                Some(r) if r == n => {}
                Some(_) => btree::update(self, &mut root, &rkey(n.start), &encode_record(n))?,
                None => btree::insert(self, &mut root, &rkey(n.start), &encode_record(n))?,
            }
        }
        self.alloc_tree = root;
        let mut reusable = false;
        let r = freed.iter().try_for_each(|&(s, l)| {
            reusable |= self.space.release(s, l)?;
            Ok(())
        });
        if reusable || r.is_err() {
            // The blocks may be handed out again, as nodes of any tree.
            // Blocks the last commit has are only pinned: nothing can
            // take them before the next commit, which ends every finger.
            self.fingers.reshaped();
        }
        r
    }

    /// Rebuilds the free set from the allocation tree (at mount).
    pub fn load_free_space(&mut self) -> Result<()> {
        self.space = crate::space::Space::new();
        let first = first_usable_block(self.sb.block_size);
        let total = self.sb.total_blocks;
        let root = self.alloc_tree;
        let mut pos = first;
        let mut c = Cursor::new(Key::default(), Dir::Forward);
        let mut gaps: TryVec<(u64, u64)> = TryVec::new();
        while let Some((k, d)) = c.next(self, &root)? {
            let r = decode_record(&k, d)?;
            if r.start < pos || r.start + r.len > total {
                return Err(Error::corrupt("refcount records overlap or leave the filesystem"));
            }
            if r.start > pos {
                gaps.try_push((pos, r.start - pos))?;
            }
            pos = r.start + r.len;
        }
        if pos < total {
            gaps.try_push((pos, total - pos))?;
        }
        for &(s, l) in gaps.iter() {
            self.space.free.insert(s, l)?;
        }
        self.space.hint = first;
        Ok(())
    }

    /// The highest reference count of any block in `[start, start + len)`
    /// (0 if all are free).
    pub fn max_refcount(&mut self, start: u64, len: u64) -> Result<u64> {
        let end = start.checked_add(len).ok_or(Error::corrupt("refcount range overflows"))?;
        let root = self.alloc_tree;
        let mut recs = TryVec::new();
        gather(self, &root, start, end, &mut recs)?;
        Ok(recs.iter().filter(|r| r.start < end && r.start + r.len > start).map(|r| r.count).max().unwrap_or(0))
    }

    /// Reference count of one block in the allocation tree (0 if free), for
    /// callers that must know whether a block is shared.
    pub fn refcount(&mut self, blk: u64) -> Result<u64> {
        let root = self.alloc_tree;
        let mut c = Cursor::new(rkey(blk), Dir::Backward);
        Ok(match c.next(self, &root)? {
            Some((k, d)) => {
                let r = decode_record(&k, d)?;
                if blk < r.start + r.len {
                    r.count
                } else {
                    0
                }
            }
            None => 0,
        })
    }
}
