// SPDX-License-Identifier: GPL-2.0
//! Reading regular files: the block map of a file range (disk runs and
//! holes, what the kernel's reads submit I/O for outside the core lock)
//! and `read`, which follows that map through the core's own device.
//!
//! A map is only good while the blocks it names stay the file's: the
//! kernel keeps the folios being read locked (so truncation and writeback
//! of that range wait), and sets `io_in_flight` so that no block freed
//! meanwhile is handed out again (`crate::space`).

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::file::CHUNK_BLOCKS;
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::store::divisor;
use crate::subvol::SubvolId;

/// A run of consecutive file blocks: `blocks` of them, stored from disk
/// block `disk`, or a hole (reads as zeros) when `disk` is `None`, which
/// includes unwritten (preallocated) extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRun {
    /// Number of file blocks in the run.
    pub blocks: u64,
    /// First disk block, or `None` for a hole.
    pub disk: Option<u64>,
}

/// The block map of a file range (see `Filesystem::map_blocks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMap {
    /// The file's size in bytes when mapped.
    pub size: u64,
    /// Runs appended to the caller's list; they cover the blocks asked for
    /// that start before `size`, in order.
    pub runs: usize,
}

impl<D: BlockDevice> Filesystem<D> {
    /// Appends to `out` the runs covering file blocks `[fb, fb + nblocks)`
    /// of regular file `ino`, stopping at the block holding the end of the
    /// file, runs of at most `CHUNK_BLOCKS` blocks. Every disk run lies
    /// inside the filesystem. The caller reads the runs itself, e.g. with
    /// its own I/O outside the core lock (see the module doc).
    pub fn map_blocks(&mut self, sv: SubvolId, ino: u64, fb: u64, nblocks: u64, out: &mut TryVec<BlockRun>) -> Result<ReadMap> {
        self.enter(sv)?;
        self.s.stats.inode_reads += 1;
        self.sv_read().map_blocks(ino, fb, nblocks, out)
    }

    /// The disk runs of file blocks `[fb, fb + nblocks)` of regular file
    /// `ino` when a direct write may rewrite all of them in place, else
    /// `false` (and `out` as it was). Every block must lie before the block
    /// holding the end of file, in written (not unwritten) extents whose
    /// blocks the last commit already held: not allocated in the running
    /// transaction (whose fsync records vouch for their data by CRC), not
    /// being written, with no queued refcount change, and seen by no other
    /// subvolume (see `extent_shared`). Such blocks hold this file's
    /// committed data alone: rewriting them changes no tree, so a crash
    /// leaves each sector old or new, as an overwrite on ext4 does. The
    /// caller keeps the blocks from reuse while it writes (as a read's map,
    /// see the module doc) and makes the data durable with a flush of its
    /// own, as no record names it.
    pub fn map_overwrite(&mut self, sv: SubvolId, ino: u64, fb: u64, nblocks: u64, out: &mut TryVec<BlockRun>) -> Result<bool> {
        self.enter(sv)?;
        self.check_writable()?;
        let size = self.regular(ino)?.size;
        if self.sv.item.is_read_only() {
            return Ok(false);
        }
        let end = fb.checked_add(nblocks).ok_or(Error::FileTooBig)?;
        // Whole blocks only: the one holding EOF keeps zeros past it.
        if nblocks == 0 || end > size / divisor(self.s.bs as u64) {
            return Ok(false);
        }
        let first = out.len();
        let mut leaf = None;
        let mut at = fb;
        while at < end {
            let ok = match self.extent_at(ino, at)? {
                Some((start, e)) if !e.unwritten => {
                    let disk = e.disk_block + (at - start);
                    let blocks = (start + e.nblocks - at).min(end - at).min(CHUNK_BLOCKS);
                    self.s.check_range(disk, blocks)?;
                    let space = &self.s.space;
                    let settled = !space.txn_alloc.overlaps(disk, blocks)
                        && !space.writing.overlaps(disk, blocks)
                        && !space.queue.iter().any(|q| q.start < e.disk_block + e.nblocks && e.disk_block < q.start + q.len);
                    if settled && !self.extent_shared(ino, start, &e, &mut leaf)? {
                        let mine = out.len() > first;
                        match out.last_mut() {
                            Some(BlockRun { blocks: n, disk: Some(d) }) if mine && *d + *n == disk && *n + blocks <= CHUNK_BLOCKS => {
                                *n += blocks
                            }
                            _ => out.try_push(BlockRun { blocks, disk: Some(disk) })?,
                        }
                        at += blocks;
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            };
            if !ok {
                out.truncate(first);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads up to `buf.len()` bytes from `offset`; returns the count (0 at
    /// or past the end of file). Whole blocks are read straight into `buf`
    /// where they fall at a multiple of the block size from its start; a
    /// caller wanting that to reach the device directly passes a
    /// sector-aligned `buf` and a block-aligned `offset`.
    pub fn read(&mut self, sv: SubvolId, ino: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let bs = self.s.bs;
        let bs64 = bs as u64;
        let fb = offset / divisor(bs64);
        let last = offset.saturating_add(buf.len() as u64).saturating_sub(1) / divisor(bs64);
        let want = if buf.is_empty() { 0 } else { last - fb + 1 };
        let mut runs = TryVec::new();
        let size = self.map_blocks(sv, ino, fb, want, &mut runs)?.size;
        if offset >= size {
            return Ok(0);
        }
        let n = (size - offset).min(buf.len() as u64) as usize;
        let mut blk: TryVec<u8> = TryVec::new();
        // Bytes of `buf` done, and the file block `done` falls in.
        let mut done = 0usize;
        let mut at = fb;
        for run in runs.iter() {
            let run_end = (at + run.blocks).saturating_mul(bs64).min(offset + n as u64);
            let stop = (run_end - offset) as usize;
            match run.disk {
                None => buf.get_mut(done..stop).ok_or(Error::Bug("read map"))?.fill(0),
                Some(disk) => {
                    while done < stop {
                        let pos = offset + done as u64;
                        let inblk = (pos % divisor(bs64)) as usize;
                        let d = disk + (pos / divisor(bs64) - at);
                        // Straight into `buf` only at a multiple of the
                        // block size from its start: a device may need the
                        // memory it reads into sector-aligned (the kernel's
                        // does), which holds there when `buf` starts aligned.
                        if inblk == 0 && done as u64 % divisor(bs64) == 0 && stop - done >= bs {
                            let len = ((stop - done) as u64 / divisor(bs64) * bs64) as usize;
                            let dst = buf.get_mut(done..done + len).ok_or(Error::Bug("read map"))?;
                            self.s.read_blocks(d, dst)?;
                            done += len;
                        } else {
                            if blk.is_empty() {
                                blk = TryVec::try_from_elem(0u8, bs)?;
                            }
                            self.s.read_blocks(d, &mut blk)?;
                            let take = (bs - inblk).min(stop - done);
                            buf[done..done + take].copy_from_slice(&blk[inblk..inblk + take]);
                            done += take;
                        }
                    }
                }
            }
            done = stop;
            at += run.blocks;
        }
        Ok(n)
    }

    /// Tells the core whether reads outside its lock may be in flight (the
    /// kernel's count as it enters the core): while they may, no block
    /// freed becomes reusable; once none are, the blocks kept back are.
    pub fn set_io_in_flight(&mut self, active: bool) -> Result<()> {
        if self.s.space.io_in_flight == active && (active || !self.s.space.holds_any()) {
            return Ok(());
        }
        self.s.space.set_io_in_flight(active)
    }

    /// Tells the core that the kernel began a new hold generation: every
    /// read counted in the generation before the one that just ended is
    /// over (see `crate::space`), so what was freed before that one began
    /// is reusable. Reads are still in flight (`set_io_in_flight(true)`
    /// comes with it).
    pub fn next_hold_generation(&mut self) -> Result<()> {
        self.s.space.next_hold_generation()
    }
}
