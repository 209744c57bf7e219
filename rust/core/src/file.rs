// SPDX-License-Identifier: GPL-2.0
//! Regular file data: extents with holes, write, truncate, setattr,
//! fallocate, hole punching, SEEK_DATA/SEEK_HOLE and the extent map.
//!
//! A file is a set of non-overlapping extent items `(ino, EXTENT, first file
//! block) -> (disk block, block count)`; missing blocks are holes and read as
//! zeros. Writes are copy-on-write: new blocks are allocated, written, and
//! then replace the old ones in the tree, so the last committed state's data
//! is never overwritten. Blocks this transaction allocated are the exception:
//! nothing committed points at them, so they are rewritten in place.
//! Bytes past the end of file inside the last block are kept zero, so
//! growing a file never exposes old data. Whole blocks past the end of file
//! exist only through `fallocate` with `keep_size`, whose blocks read as
//! zeros, so the same holds for them. Files may grow to `MAX_FILE_SIZE`
//! (2^48 bytes). Reading and mapping for reads live in `file_read`.
//!
//! # Unwritten extents
//!
//! With `INCOMPAT_UNWRITTEN`, `fallocate` maps its new blocks as unwritten
//! extents and writes nothing to them. Every reader treats an unwritten
//! extent as a hole (zeros; SEEK_HOLE stops there, SEEK_DATA skips it),
//! except that its blocks are the file's: they count in `blocks`, and a
//! later fallocate leaves them alone. A write into one is an ordinary
//! copy-on-write: the written blocks get new disk blocks and replace that
//! part of the extent, the unwritten remainder is split off around them
//! (`punch` keeps the flag on what it cuts), and the preallocated blocks
//! of that part are freed. The data reaches the device before any tree
//! that maps it as written, so after a crash a block reads either zeros
//! or what was written, never what the device held before. The price is
//! that fallocate does not guarantee space for writes into its range;
//! it guarantees the range's size and that it reads zeros.

use crate::btree;
use crate::device::BlockDevice;
use crate::error::{CorruptAt, Error, Result};
use crate::format::*;
use crate::fs::{ExtentEmit, ExtentState, Filesystem, InodeAttr, SetAttr};
use crate::mem::TryVec;
use crate::store::{div_ceil, divisor};
use crate::subvol::{ObjectItems, SubvolId};

/// Most blocks one write step allocates.
pub(crate) const CHUNK_BLOCKS: u64 = 256;
/// Most bytes of zeros `fallocate` writes with one device call (the size of
/// the zero buffer it holds).
const ZERO_CHUNK_BYTES: u64 = 256 << 10;
/// Longest extent item made by merging.
const MAX_EXTENT_BLOCKS: u64 = 1 << 20;

pub(crate) fn ext_key(ino: u64, fb: u64) -> Key {
    Key::new(ino, EXTENT_KEY, fb)
}

/// The end of the byte range `[offset, offset + len)` of fallocate and hole
/// punching: EINVAL when empty, EFBIG past the largest file (as the VFS's
/// own check).
fn range_end(offset: u64, len: u64) -> Result<u64> {
    if len == 0 {
        return Err(Error::Invalid("empty range"));
    }
    offset.checked_add(len).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Error::FileTooBig)
}

/// A run of new blocks for a hole: (first file block, first disk block, count).
type Run = (u64, u64, u64);

impl<D: BlockDevice> Filesystem<D> {
    /// The extent covering file block `fb`, as (first file block, extent).
    pub(crate) fn extent_at(&mut self, ino: u64, fb: u64) -> Result<Option<(u64, ExtentItem)>> {
        self.sv_read().extent_at(ino, fb)
    }

    /// The first extent starting at or after file block `fb`.
    pub(crate) fn extent_from(&mut self, ino: u64, fb: u64) -> Result<Option<(u64, ExtentItem)>> {
        self.sv_read().extent_from(ino, fb)
    }

    /// The extent covering file block `fb` if it holds data (is not
    /// unwritten): what readers of file content use.
    pub(crate) fn data_extent_at(&mut self, ino: u64, fb: u64) -> Result<Option<(u64, ExtentItem)>> {
        Ok(self.extent_at(ino, fb)?.filter(|(_, e)| !e.unwritten))
    }

    /// The first block at or after `fb` in an extent that holds data,
    /// skipping unwritten extents.
    pub(crate) fn data_from(&mut self, ino: u64, fb: u64) -> Result<Option<u64>> {
        if self.data_extent_at(ino, fb)?.is_some() {
            return Ok(Some(fb));
        }
        let bounds = self.s.bounds();
        let mut items = ObjectItems::new(ino, EXTENT_KEY, fb);
        while let Some((off, d)) = items.next(&mut self.s, &self.sv)? {
            if !ExtentItem::decode_bounded(d, off, &bounds).at_ino(ino)?.unwritten {
                return Ok(Some(off));
            }
        }
        Ok(None)
    }

    pub(crate) fn regular(&mut self, ino: u64) -> Result<InodeItem> {
        self.s.stats.inode_reads += 1;
        self.sv_read().regular(ino)
    }

    /// Current content of file block `fb` into `out` (zeros for a hole or
    /// an unwritten extent).
    fn old_block(&mut self, ino: u64, fb: u64, out: &mut [u8]) -> Result<()> {
        match self.data_extent_at(ino, fb)? {
            Some((start, e)) => self.s.read_blocks(e.disk_block + (fb - start), out),
            None => {
                out.fill(0);
                Ok(())
            }
        }
    }

    /// Writes `data` at byte `pos` into file blocks starting at `fb`, which
    /// live at disk blocks from `disk` (`nblocks` of them). Partial blocks
    /// are merged with the file's current content. Returns bytes consumed.
    fn fill_blocks(&mut self, ino: u64, fb: u64, disk: u64, nblocks: u64, pos: u64, data: &[u8]) -> Result<usize> {
        let bs = self.s.bs;
        let bs64 = bs as u64;
        let mut used = 0usize;
        let mut j = 0u64;
        let mut tmp: TryVec<u8> = TryVec::new();
        while j < nblocks && used < data.len() {
            let bstart = (fb + j) * bs64;
            let p = pos + used as u64;
            let inblk = (p - bstart) as usize;
            let left = data.len() - used;
            if inblk == 0 && left >= bs {
                // A run of whole blocks straight from the caller's buffer.
                let whole = (left as u64 / divisor(bs as u64)).min(nblocks - j);
                let len = whole as usize * bs;
                self.s.write_blocks(disk + j, &data[used..used + len])?;
                used += len;
                j += whole;
                continue;
            }
            if tmp.is_empty() {
                tmp = TryVec::try_from_elem(0u8, bs)?;
            }
            self.old_block(ino, fb + j, &mut tmp)?;
            let take = (bs - inblk).min(left);
            tmp[inblk..inblk + take].copy_from_slice(&data[used..used + take]);
            self.s.write_blocks(disk + j, &tmp)?;
            used += take;
            j += 1;
        }
        Ok(used)
    }

    /// Number of extents overlapping file blocks `[fb, fb+n)`.
    pub(crate) fn count_extents(&mut self, ino: u64, fb: u64, n: u64) -> Result<u64> {
        let mut count = u64::from(self.extent_at(ino, fb)?.is_some_and(|(s, _)| s < fb));
        let mut items = ObjectItems::new(ino, EXTENT_KEY, fb);
        while let Some((off, _)) = items.next(&mut self.s, &self.sv)? {
            if off >= fb + n {
                break;
            }
            count += 1;
        }
        Ok(count)
    }

    /// Removes file blocks `[fb, fb+n)` from the extent map, dropping their
    /// disk references. Returns how many blocks were mapped.
    pub(crate) fn punch(&mut self, ino: u64, fb: u64, n: u64) -> Result<u64> {
        let end = fb.saturating_add(n);
        let mut removed = 0;
        if let Some((s0, e)) = self.extent_at(ino, fb)? {
            if s0 < fb {
                let eend = s0 + e.nblocks;
                let cut_end = eend.min(end);
                let head = ExtentItem { nblocks: fb - s0, ..e };
                btree::update(&mut self.s, &mut self.sv.root, &ext_key(ino, s0), &head.encode())?;
                self.s.free_data(e.disk_block + (fb - s0), cut_end - fb)?;
                removed += cut_end - fb;
                if eend > end {
                    let tail = ExtentItem { disk_block: e.disk_block + (end - s0), nblocks: eend - end, ..e };
                    btree::insert(&mut self.s, &mut self.sv.root, &ext_key(ino, end), &tail.encode())?;
                }
            }
        }
        while let Some((s1, e)) = self.extent_from(ino, fb)? {
            if s1 >= end {
                break;
            }
            btree::delete(&mut self.s, &mut self.sv.root, &ext_key(ino, s1))?;
            let eend = s1.checked_add(e.nblocks).ok_or(Error::corrupt("extent end overflows"))?;
            let cut_end = eend.min(end);
            self.s.free_data(e.disk_block, cut_end - s1)?;
            removed += cut_end - s1;
            if eend > end {
                let tail = ExtentItem { disk_block: e.disk_block + (end - s1), nblocks: eend - end, ..e };
                btree::insert(&mut self.s, &mut self.sv.root, &ext_key(ino, end), &tail.encode())?;
            }
        }
        Ok(removed)
    }

    /// Maps file blocks `[fb, fb+n)` of `ino` to the `n` free blocks at
    /// `disk`, which it claims, dropping whatever mapped the range before
    /// (fast-commit replay). Returns the blocks dropped.
    pub(crate) fn replace_range(&mut self, ino: u64, fb: u64, disk: u64, n: u64) -> Result<u64> {
        let removed = self.punch(ino, fb, n)?;
        self.s.space.claim(disk, n)?;
        self.map_extent(ino, fb, disk, n)?;
        Ok(removed)
    }

    /// Maps file blocks `[fb, fb+n)` to written disk blocks from `disk`
    /// (see `map_extent_as`).
    pub(crate) fn map_extent(&mut self, ino: u64, fb: u64, disk: u64, n: u64) -> Result<()> {
        self.map_extent_as(ino, fb, disk, n, false)
    }

    /// Maps file blocks `[fb, fb+n)` to disk blocks from `disk`, written or
    /// not, extending the previous extent when it ends right there on disk
    /// too and is of the same kind.
    pub(crate) fn map_extent_as(&mut self, ino: u64, fb: u64, disk: u64, n: u64, unwritten: bool) -> Result<()> {
        // The only place extents of new blocks come from: the next record
        // of the file looks for them there (`crate::new_data`).
        self.s.fc.new_data.note(self.sv.id, ino, fb, n);
        if fb > 0 {
            if let Some((s0, e)) = self.extent_at(ino, fb - 1)? {
                if s0 + e.nblocks == fb
                    && e.disk_block + e.nblocks == disk
                    && e.unwritten == unwritten
                    && e.nblocks.saturating_add(n) <= MAX_EXTENT_BLOCKS
                {
                    let merged = ExtentItem { nblocks: e.nblocks + n, generation: self.s.gen, ..e };
                    return btree::update(&mut self.s, &mut self.sv.root, &ext_key(ino, s0), &merged.encode());
                }
            }
        }
        let e = ExtentItem { disk_block: disk, nblocks: n, generation: self.s.gen, unwritten };
        btree::insert(&mut self.s, &mut self.sv.root, &ext_key(ino, fb), &e.encode())
    }

    /// `map_extent`, then the extent right after, if it continues this one
    /// on disk too (a writeback of the file's later blocks that ran ahead
    /// of this one, `crate::write_streams`), merged into it: one extent,
    /// as one writeback in order would have made. The caller reserved for
    /// one more item change than `map_extent` needs.
    pub(crate) fn map_extent_joining_next(&mut self, ino: u64, fb: u64, disk: u64, n: u64) -> Result<()> {
        self.map_extent(ino, fb, disk, n)?;
        let (Some(end), Some(disk_end)) = (fb.checked_add(n), disk.checked_add(n)) else { return Ok(()) };
        let Some((s1, next)) = self.extent_at(ino, end)? else { return Ok(()) };
        if s1 != end || next.unwritten || next.disk_block != disk_end {
            return Ok(());
        }
        // The extent now holding `fb`: this run, merged with the one
        // before it, perhaps.
        let Some((s0, cur)) = self.extent_at(ino, fb)? else { return Err(Error::Bug("extent just mapped not found")) };
        if s0.checked_add(cur.nblocks) != Some(end) || cur.nblocks.saturating_add(next.nblocks) > MAX_EXTENT_BLOCKS {
            return Ok(());
        }
        let merged = ExtentItem { nblocks: cur.nblocks + next.nblocks, generation: self.s.gen, ..cur };
        btree::delete(&mut self.s, &mut self.sv.root, &ext_key(ino, end))?;
        btree::update(&mut self.s, &mut self.sv.root, &ext_key(ino, s0), &merged.encode())
    }

    /// Writes `data` at `offset`; returns the bytes written, which is less
    /// than asked only when space ran out part way.
    pub fn write(&mut self, sv: SubvolId, ino: u64, offset: u64, data: &[u8], now: Timespec) -> Result<usize> {
        self.enter(sv)?;
        self.change(|fs| fs.expressible(|fs| fs.write_inner(ino, offset, data, Some(now))))
    }

    /// Like [`Self::write`] but leaves the inode's times alone: the page
    /// cache writes back data long after the write(2) that set mtime, and
    /// the kernel hands over the times itself with `setattr`.
    pub fn write_data(&mut self, sv: SubvolId, ino: u64, offset: u64, data: &[u8]) -> Result<usize> {
        self.enter(sv)?;
        self.change(|fs| fs.expressible(|fs| fs.write_inner(ino, offset, data, None)))
    }

    fn write_inner(&mut self, ino: u64, offset: u64, data: &[u8], now: Option<Timespec>) -> Result<usize> {
        let mut it = self.regular(ino)?;
        if offset >= MAX_FILE_SIZE {
            return Err(Error::FileTooBig);
        }
        let len = (data.len() as u64).min(MAX_FILE_SIZE - offset) as usize;
        if len == 0 {
            return Ok(0);
        }
        let data = &data[..len];
        let bs64 = self.s.bs as u64;
        let last_fb = (offset + len as u64 - 1) / divisor(bs64);
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let fb = pos / divisor(bs64);
            let want = (last_fb - fb + 1).min(CHUNK_BLOCKS);
            if let Some((start, e)) = self.data_extent_at(ino, fb)? {
                // Blocks only this transaction has seen are rewritten in
                // place; unwritten ones never (the extent would still say
                // unwritten), a write replaces them like committed ones.
                let disk = e.disk_block + (fb - start);
                let run = (start + e.nblocks - fb).min(want);
                if self.s.space.txn_alloc.contains(disk, run) {
                    self.s.touch();
                    done += self.fill_blocks(ino, fb, disk, run, pos, &data[done..])?;
                    it.size = it.size.max(offset + done as u64);
                    continue;
                }
            }
            let k = self.count_extents(ino, fb, want)?;
            match self.reserve(3 + 2 * k, want) {
                Ok(()) => {}
                Err(Error::NoSpace) if done > 0 => break,
                Err(e) => return Err(e),
            }
            let (disk, got) = self.s.alloc_data(want)?;
            let used = self.fill_blocks(ino, fb, disk, got, pos, &data[done..])?;
            let removed = self.punch(ino, fb, got)?;
            self.map_extent(ino, fb, disk, got)?;
            done += used;
            it.blocks = it.blocks.saturating_sub(removed).saturating_add(got);
            it.size = it.size.max(offset + done as u64);
            if let Some(t) = now {
                (it.mtime, it.ctime) = (t, t);
            }
            self.write_inode(ino, &mut it)?;
            self.s.apply_refs()?;
        }
        if let Some(t) = now {
            (it.mtime, it.ctime) = (t, t);
        }
        self.write_inode(ino, &mut it)?;
        Ok(done)
    }

    /// Drops every block from file block `keep` on, last extent first, with
    /// the inode consistent after each step (so a commit forced by space
    /// pressure in between is safe). Returns the updated inode.
    pub(crate) fn shrink_blocks(&mut self, ino: u64, keep: u64) -> Result<InodeItem> {
        let bs64 = self.s.bs as u64;
        loop {
            let mut it = self.read_inode(ino)?;
            let mut buf = TryVec::new();
            let root = self.sv.root;
            let Some(k) = btree::last_in(&mut self.s, &root, ext_key(ino, u64::MAX), &mut buf)? else { return Ok(it) };
            let e = ExtentItem::decode_bounded(&buf, k.offset, &self.s.bounds()).at_ino(ino)?;
            let eend = k.offset.checked_add(e.nblocks).ok_or(Error::corrupt("extent end overflows"))?;
            if eend <= keep {
                return Ok(it);
            }
            self.reserve_delete(2)?;
            let from = k.offset.max(keep);
            if from > k.offset {
                let head = ExtentItem { nblocks: from - k.offset, ..e };
                btree::update(&mut self.s, &mut self.sv.root, &k, &head.encode())?;
            } else {
                btree::delete(&mut self.s, &mut self.sv.root, &k)?;
            }
            self.s.free_data(e.disk_block + (from - k.offset), eend - from)?;
            it.blocks = it.blocks.saturating_sub(eend - from);
            it.size = it.size.min(from.saturating_mul(bs64)).max(keep.saturating_mul(bs64).min(it.size));
            self.write_inode(ino, &mut it)?;
            self.s.apply_refs()?;
        }
    }

    /// Sets the size of a regular file.
    fn set_size(&mut self, ino: u64, size: u64) -> Result<InodeItem> {
        if size > MAX_FILE_SIZE {
            return Err(Error::FileTooBig);
        }
        let it = self.regular(ino)?;
        if size >= it.size {
            return Ok(InodeItem { size, ..it });
        }
        let bs64 = self.s.bs as u64;
        let mut it = self.shrink_blocks(ino, crate::store::div_ceil(size, bs64))?;
        let tail = (size % divisor(bs64)) as usize;
        if tail != 0 {
            // Zero what lies past the new end in the last block.
            self.zero_in_block(ino, size / divisor(bs64), tail, self.s.bs, &mut it)?;
        }
        it.size = size;
        Ok(it)
    }

    /// Zeroes bytes `[from, to)` of file block `fb` if it is mapped: in
    /// place when this transaction allocated the block, else in a new copy
    /// (reserving 6 items and a block for that) like a write.
    /// An unwritten block already reads as zeros.
    fn zero_in_block(&mut self, ino: u64, fb: u64, from: usize, to: usize, it: &mut InodeItem) -> Result<()> {
        let Some((start, e)) = self.data_extent_at(ino, fb)? else { return Ok(()) };
        let mut blk = TryVec::try_from_elem(0u8, self.s.bs)?;
        let disk = e.disk_block + (fb - start);
        self.s.read_blocks(disk, &mut blk)?;
        blk.get_mut(from..to).ok_or(Error::Bug("byte range outside the block"))?.fill(0);
        if self.s.space.txn_alloc.contains(disk, 1) {
            self.s.touch();
            return self.s.write_blocks(disk, &blk);
        }
        self.reserve(6, 1)?;
        let (nd, _) = self.s.alloc_data(1)?;
        self.s.write_blocks(nd, &blk)?;
        let removed = self.punch(ino, fb, 1)?;
        self.map_extent(ino, fb, nd, 1)?;
        it.blocks = it.blocks.saturating_sub(removed).saturating_add(1);
        Ok(())
    }

    /// Changes attributes; a size change truncates or extends.
    pub fn setattr(&mut self, sv: SubvolId, ino: u64, a: &SetAttr, now: Timespec) -> Result<InodeAttr> {
        self.enter(sv)?;
        self.change(|fs| {
            let mut it = fs.read_inode(ino)?;
            let before = it;
            fs.reserve(2, 0)?;
            // A shrinking size frees blocks, which a fast-commit record
            // cannot say; the rest it carries in the inode item.
            let shrinks = a.size.is_some_and(|size| size < it.size);
            if let Some(size) = a.size {
                it = fs.set_size(ino, size)?;
            }
            if let Some(m) = a.mode {
                it.mode = (it.mode & S_IFMT) | (m & 0o7777);
            }
            if let Some(u) = a.uid {
                it.uid = u;
            }
            if let Some(g) = a.gid {
                it.gid = g;
            }
            if let Some(t) = a.atime {
                it.atime = t;
            }
            if let Some(t) = a.mtime {
                it.mtime = t;
            }
            if let Some(f) = a.flags {
                it.flags = f;
            }
            it.ctime = a.ctime.unwrap_or(now);
            if a.size.is_none() && it == before {
                // Nothing changes (the kernel hands its times over again
                // at every fsync): the transaction stays clean, so an fsync
                // after a commit has nothing to write.
                return Ok(fs.attr_of(ino, &it));
            }
            if shrinks {
                fs.write_inode(ino, &mut it)?;
            } else {
                fs.expressible(|fs| fs.write_inode(ino, &mut it))?;
            }
            Ok(fs.attr_of(ino, &it))
        })
    }

    /// Truncates or extends a regular file, updating mtime and ctime.
    pub fn truncate(&mut self, sv: SubvolId, ino: u64, size: u64, now: Timespec) -> Result<()> {
        self.enter(sv)?;
        let a = SetAttr { size: Some(size), mtime: Some(now), ctime: Some(now), ..Default::default() };
        self.setattr(sv, ino, &a, now).map(|_| ())
    }

    /// SEEK_DATA: the first byte at or after `offset` that lies in a block
    /// with data and below the size, `None` when there is none (also when
    /// `offset >= size`). Block granularity: a written block is data even
    /// where it holds zeros; an unwritten one is a hole.
    pub fn seek_data(&mut self, sv: SubvolId, ino: u64, offset: u64) -> Result<Option<u64>> {
        self.enter(sv)?;
        let it = self.regular(ino)?;
        if offset >= it.size {
            return Ok(None);
        }
        let bs64 = self.s.bs as u64;
        let fb = offset / divisor(bs64);
        match self.data_from(ino, fb)? {
            Some(start) if start == fb => Ok(Some(offset)),
            // Nothing covers `fb`, so the next extent starts past it.
            Some(start) if start < fb => Err(Error::corrupt("extent index is inconsistent")),
            Some(start) => {
                let pos = start.saturating_mul(bs64);
                Ok((pos < it.size).then_some(pos))
            }
            None => Ok(None),
        }
    }

    /// SEEK_HOLE: the first byte at or after `offset` in no block with data
    /// (a hole or an unwritten extent), or the size when the file has data
    /// from there to its end (the implicit hole at EOF); `offset` itself
    /// when `offset >= size`.
    pub fn seek_hole(&mut self, sv: SubvolId, ino: u64, offset: u64) -> Result<u64> {
        self.enter(sv)?;
        let it = self.regular(ino)?;
        if offset >= it.size {
            return Ok(offset);
        }
        let bs64 = self.s.bs as u64;
        let mut fb = offset / divisor(bs64);
        let mut pos = offset;
        // `extent_at` only returns an extent ending past `fb`, so each step
        // moves forward.
        while let Some((start, e)) = self.data_extent_at(ino, fb)? {
            fb = start.checked_add(e.nblocks).ok_or(Error::corrupt("extent end overflows"))?;
            pos = fb.saturating_mul(bs64);
            if pos >= it.size {
                return Ok(it.size);
            }
        }
        Ok(pos)
    }

    /// The extent map from byte `from` on (FIEMAP): `emit(logical, physical,
    /// length)`, all in bytes (physical from the start of the device), once
    /// per extent item in file order, starting with the one that covers
    /// `from` (whole, so its logical start may lie before `from`); stops
    /// when `emit` returns false. Items are reported as stored: two adjacent
    /// ones may continue each other on disk. Extents past the end of file
    /// (from `fallocate` with `keep_size`) are included, unwritten ones
    /// too (flagged); inodes other than regular files have none.
    pub fn extents(&mut self, sv: SubvolId, ino: u64, from: u64, emit: &mut ExtentEmit<'_>) -> Result<()> {
        self.enter(sv)?;
        if self.read_inode(ino)?.file_type() != FileType::Regular {
            return Ok(());
        }
        let bs64 = self.s.bs as u64;
        let fb = from / divisor(bs64);
        let first = match self.extent_at(ino, fb)? {
            Some((start, _)) => start,
            None => fb,
        };
        let bounds = self.s.bounds();
        let mut items = ObjectItems::new(ino, EXTENT_KEY, first);
        let mut found: TryVec<(u64, ExtentItem)> = TryVec::new();
        let mut leaf_shared: Option<(u64, bool)> = None;
        loop {
            // In batches: sharing is asked of the trees between items.
            found.clear();
            while found.len() < 64 {
                let Some((off, d)) = items.next(&mut self.s, &self.sv)? else { break };
                found.try_push((off, ExtentItem::decode_bounded(d, off, &bounds).at_ino(ino)?))?;
            }
            if found.is_empty() {
                return Ok(());
            }
            for &(off, e) in found.iter() {
                let shared = self.extent_shared(ino, off, &e, &mut leaf_shared)?;
                // Bounded at decode: these products stay below 2^64.
                let state = ExtentState { shared, unwritten: e.unwritten };
                if !emit(off * bs64, e.disk_block * bs64, e.nblocks * bs64, state) {
                    return Ok(());
                }
            }
            if found.len() < 64 {
                return Ok(());
            }
        }
    }

    /// Whether another subvolume sees extent `e` of `ino` at file block
    /// `off`: its data blocks have more than one referrer, or the leaf
    /// holding it is reached through a node more than one tree references.
    /// `leaf` caches the answer for the last leaf asked about.
    pub(crate) fn extent_shared(&mut self, ino: u64, off: u64, e: &ExtentItem, leaf: &mut Option<(u64, bool)>) -> Result<bool> {
        if self.s.max_refcount(e.disk_block, e.nblocks)? > 1 {
            return Ok(true);
        }
        let root = self.sv.root;
        let mut path = [(0u64, 0u64); crate::node::MAX_LEVEL];
        let n = btree::path_to(&mut self.s, &root, &ext_key(ino, off), &mut path)?;
        let leaf_blk = path[n - 1].0;
        if let Some((b, shared)) = *leaf {
            if b == leaf_blk {
                return Ok(shared);
            }
        }
        let mut shared = false;
        for &(blk, gen) in &path[..n] {
            if gen <= root.last_snapshot && self.s.refcount(blk)? > 1 {
                shared = true;
                break;
            }
        }
        *leaf = Some((leaf_blk, shared));
        Ok(shared)
    }

    /// The holes among file blocks `[first, last)`, as (first block, count).
    fn holes_in(&mut self, ino: u64, first: u64, last: u64) -> Result<TryVec<(u64, u64)>> {
        let mut holes = TryVec::new();
        let mut pos = first;
        if let Some((start, e)) = self.extent_at(ino, first)? {
            pos = start.checked_add(e.nblocks).ok_or(Error::corrupt("extent end overflows"))?;
        }
        while pos < last {
            match self.extent_from(ino, pos)? {
                Some((start, e)) if start < last => {
                    if start < pos {
                        return Err(Error::corrupt("extents overlap"));
                    }
                    if start > pos {
                        holes.try_push((pos, start - pos))?;
                    }
                    // Past `start >= pos` since extents are never empty.
                    pos = start.checked_add(e.nblocks).ok_or(Error::corrupt("extent end overflows"))?;
                }
                _ => {
                    holes.try_push((pos, last - pos))?;
                    break;
                }
            }
        }
        Ok(holes)
    }

    /// Takes disk blocks for every hole, and unless they are to be mapped
    /// unwritten fills them with zeros, without changing any tree. Unless
    /// the data blocks, plus one item per run and one for the inode, can
    /// all be had (and written), everything taken is given back and the
    /// error returned, so the caller has changed nothing.
    fn take_blocks_for(&mut self, holes: &[(u64, u64)], unwritten: bool) -> Result<TryVec<Run>> {
        let mark = self.s.space.mark();
        let mut runs: TryVec<Run> = TryVec::new();
        let r = self.take_runs(holes, &mut runs).and_then(|()| {
            if !self.fits(1 + runs.len() as u64, 0, false) {
                Err(Error::NoSpace)
            } else if unwritten {
                Ok(())
            } else {
                self.write_zeros(&runs)
            }
        });
        match r {
            Ok(()) => Ok(runs),
            Err(e) => {
                self.s.space.undo_allocations(&mark, runs.iter().map(|&(_, disk, n)| (disk, n)))?;
                Err(e)
            }
        }
    }

    fn take_runs(&mut self, holes: &[(u64, u64)], runs: &mut TryVec<Run>) -> Result<()> {
        for &(fb, n) in holes {
            let mut done = 0;
            while done < n {
                let (disk, got) = self.s.alloc_data((n - done).min(MAX_EXTENT_BLOCKS))?;
                runs.try_push((fb + done, disk, got))?;
                done += got;
            }
        }
        Ok(())
    }

    fn write_zeros(&mut self, runs: &[Run]) -> Result<()> {
        let bs64 = self.s.bs as u64;
        let per = (ZERO_CHUNK_BYTES / divisor(bs64)).max(1);
        let most = runs.iter().map(|r| r.2).max().unwrap_or(0).min(per);
        let zeros: TryVec<u8> = TryVec::try_from_elem(0u8, (most * bs64) as usize)?;
        for &(_, disk, n) in runs {
            let mut done = 0;
            while done < n {
                let k = (n - done).min(most);
                let buf = zeros.get(..(k * bs64) as usize).ok_or(Error::Bug("zero buffer"))?;
                self.s.write_blocks(disk + done, buf)?;
                done += k;
            }
        }
        Ok(())
    }

    /// fallocate mode 0 (`keep_size` false) and `FALLOC_FL_KEEP_SIZE`:
    /// every hole among the blocks `[offset, offset + len)` touches gets
    /// new blocks, mapped as unwritten extents when the filesystem has
    /// `INCOMPAT_UNWRITTEN` (nothing is written), else written with zeros.
    /// Blocks already mapped, written or not, stay. Without `keep_size` the size
    /// grows to `offset + len` if that is larger. ctime is set; mtime only
    /// when the size changed. All or nothing: the space is taken before any
    /// tree changes, and `NoSpace` changes nothing. `Invalid` for `len`
    /// 0, `FileTooBig` past `MAX_FILE_SIZE`.
    pub fn fallocate(&mut self, sv: SubvolId, ino: u64, offset: u64, len: u64, keep_size: bool, now: Timespec) -> Result<()> {
        self.enter(sv)?;
        self.change(|fs| fs.fallocate_inner(ino, offset, len, keep_size, false, now))
    }

    fn fallocate_inner(&mut self, ino: u64, offset: u64, len: u64, keep_size: bool, set_mtime: bool, now: Timespec) -> Result<()> {
        let mut it = self.regular(ino)?;
        let end = range_end(offset, len)?;
        let bs64 = self.s.bs as u64;
        let (first, last) = (offset / divisor(bs64), div_ceil(end, bs64));
        let holes = self.holes_in(ino, first, last)?;
        let want = holes.iter().map(|h| h.1).sum::<u64>();
        self.reserve(1 + holes.len() as u64, want)?;
        let unwritten = self.s.sb.incompat & crate::superblock::INCOMPAT_UNWRITTEN != 0;
        let runs = if want > 0 { self.take_blocks_for(&holes, unwritten)? } else { TryVec::new() };
        for &(fb, disk, n) in runs.iter() {
            self.map_extent_as(ino, fb, disk, n, unwritten)?;
        }
        it.blocks = it.blocks.saturating_add(want);
        if !keep_size && end > it.size {
            it.size = end;
            it.mtime = now;
        }
        if set_mtime {
            it.mtime = now;
        }
        it.ctime = now;
        self.write_inode(ino, &mut it)
    }

    /// `FALLOC_FL_PUNCH_HOLE`: frees every block all of whose bytes below
    /// the size lie in `[offset, offset + len)` and zeroes the range's
    /// bytes in the partial blocks at its edges (copy-on-write, like a
    /// write; a hole there stays a hole). The size never changes; the part
    /// of the range at or past the size is left alone (blocks `fallocate`
    /// kept there too), and a range wholly past it changes nothing, times
    /// included. Otherwise mtime and ctime are set. The edges are reserved
    /// up front; each extent freed is a step of its own (a removal, or 3
    /// items when it splits an extent), so on a nearly full filesystem a
    /// `NoSpace` part way leaves a consistent, partly punched file.
    /// `Invalid` for `len` 0, `FileTooBig` past `MAX_FILE_SIZE`.
    pub fn punch_hole(&mut self, sv: SubvolId, ino: u64, offset: u64, len: u64, now: Timespec) -> Result<()> {
        self.enter(sv)?;
        self.change(|fs| fs.punch_hole_inner(ino, offset, len, now))
    }

    fn punch_hole_inner(&mut self, ino: u64, offset: u64, len: u64, now: Timespec) -> Result<()> {
        let mut it = self.regular(ino)?;
        let end = range_end(offset, len)?.min(it.size);
        if offset >= end {
            return Ok(());
        }
        let bs = self.s.bs;
        let bs64 = bs as u64;
        let first_whole = div_ceil(offset, bs64);
        // Past the size a block holds only zeros, so the last block goes
        // whole when the range reaches the end of file.
        let end_whole = if end == it.size { div_ceil(end, bs64) } else { end / divisor(bs64) };
        let head_fb = offset / divisor(bs64);
        let head_in = (offset % divisor(bs64)) as usize;
        let head = (head_in != 0).then(|| (head_fb, head_in, (end - head_fb * bs64).min(bs64) as usize));
        let tail_fb = end / divisor(bs64);
        let tail_in = (end % divisor(bs64)) as usize;
        let tail = (end_whole.saturating_mul(bs64) < end && head.map_or(true, |h| h.0 != tail_fb)).then_some((tail_fb, 0, tail_in));
        let edges = u64::from(head.is_some()) + u64::from(tail.is_some());
        self.reserve(1 + 6 * edges, edges)?;
        for (fb, from, to) in head.into_iter().chain(tail) {
            self.zero_in_block(ino, fb, from, to, &mut it)?;
        }
        (it.mtime, it.ctime) = (now, now);
        self.write_inode(ino, &mut it)?;
        let mut pos = first_whole;
        while pos < end_whole {
            let (start, e) = match self.extent_at(ino, pos)? {
                Some(x) => x,
                None => match self.extent_from(ino, pos)? {
                    Some((start, _)) if start <= pos => return Err(Error::corrupt("extent index is inconsistent")),
                    Some(x) if x.0 < end_whole => x,
                    _ => break,
                },
            };
            let eend = start.checked_add(e.nblocks).ok_or(Error::corrupt("extent end overflows"))?;
            let (from, to) = (start.max(pos), eend.min(end_whole));
            // Cutting an extent short of its end inserts its tail.
            if eend > to {
                self.reserve(3, 0)?;
            } else {
                self.reserve_delete(2)?;
            }
            let removed = self.punch(ino, from, to - from)?;
            it.blocks = it.blocks.saturating_sub(removed);
            self.write_inode(ino, &mut it)?;
            self.s.apply_refs()?;
            pos = to;
        }
        Ok(())
    }

    /// `FALLOC_FL_ZERO_RANGE`: `punch_hole` over the range, then
    /// `fallocate` of it, so the range reads as zeros and every block it
    /// touches is allocated (freshly: unwritten, or written with zeros on
    /// a filesystem without unwritten extents). Without
    /// `keep_size` the size grows to `offset + len` if that is larger.
    /// mtime and ctime are set. The blocks of the whole range are reserved
    /// first, since those the punch frees are reusable only after a commit.
    pub fn zero_range(&mut self, sv: SubvolId, ino: u64, offset: u64, len: u64, keep_size: bool, now: Timespec) -> Result<()> {
        self.enter(sv)?;
        self.change(|fs| {
            fs.regular(ino)?;
            let end = range_end(offset, len)?;
            let bs64 = fs.s.bs as u64;
            let (first, last) = (offset / divisor(bs64), div_ceil(end, bs64));
            let k = fs.count_extents(ino, first, last - first)?;
            fs.reserve(16 + 4 * k, last - first)?;
            fs.punch_hole_inner(ino, offset, len, now)?;
            fs.fallocate_inner(ino, offset, len, keep_size, true, now)
        })
    }
}
