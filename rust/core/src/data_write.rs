// SPDX-License-Identifier: GPL-2.0
//! Writes of file data in three steps, so that the kernel can write the
//! data to the device without holding the core lock: `begin_data_write`
//! picks new blocks and reserves the tree changes that will map them;
//! the caller writes the data there; `finish_data_write` maps the blocks
//! (or `abandon_data_write` gives them back).
//!
//! # Why a commit in between is safe
//!
//! The new blocks are in `Space::writing`: out of the free set, but not in
//! the allocation tree and referenced by no extent. A commit between the
//! steps writes trees that do not know them, so it records them as free
//! and a crash loses nothing (the data was not yet the file's). The
//! extents may be inserted while the data write is still in flight (the
//! kernel's writeback does not wait for it): the commit that makes them
//! durable flushes the device first (its step 3), and a device whose
//! writes run on after the caller returns waits for them before any flush
//! (and before any read, so nothing reads such a block early). The blocks
//! are always new (never the in-place rewrite `write` does for blocks of
//! the running transaction), because a commit in between could make such
//! a block part of the committed state while it is being overwritten.
//! The reservation taken at the start (`Space::write_reserved`) keeps the
//! tree changes of the last step from running out of space, whatever
//! other operations do in between.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::file::CHUNK_BLOCKS;
use crate::format::MAX_FILE_SIZE;
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::store::{div_ceil, divisor};
use crate::subvol::SubvolId;

/// The largest write whose CRCs `DataWrite::note_written` takes: larger
/// ones are streaming writes, few of them are fsynced before the next
/// commit, and checksumming every byte of them would cost CPU on every
/// write (a record read-back costs only the fsyncs that come).
pub const NOTE_CRC_MAX_BLOCKS: u64 = 64;

/// New blocks for file blocks `file_block..file_block + blocks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRun {
    /// First file block.
    pub file_block: u64,
    /// First disk block.
    pub disk: u64,
    /// Number of blocks.
    pub blocks: u64,
}

/// A data write between `begin_data_write` and its finish or abandon.
#[derive(Debug)]
pub struct DataWrite {
    ino: u64,
    offset: u64,
    /// Bytes from `offset` the runs cover (at most what was asked).
    len: u64,
    /// The blocks to write, in file order, covering `len` bytes from
    /// `offset` (whole blocks; the caller writes zeros past `len`).
    pub runs: TryVec<WriteRun>,
    /// Node blocks reserved for the finish.
    reserved: u64,
    /// Block size, and the CRC32C of each run's data once the caller
    /// says what it wrote (`note_written`; empty until then).
    block_size: u64,
    data_crcs: TryVec<u32>,
}

impl DataWrite {
    /// Bytes from the start of the write that will be stored: less than
    /// asked only when space ran out.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Node blocks reserved for the finish, which no other operation may
    /// count on meanwhile.
    pub fn reserved_blocks(&self) -> u64 {
        self.reserved
    }

    /// Whether nothing will be stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The caller wrote `data` to the runs: the bytes from `offset` on,
    /// in whole blocks. Takes each run's CRC32C (outside any lock) so that
    /// the finish remembers it for fsync records (`crate::written_crc`),
    /// which then need not read the data back. Without it, or if `data`
    /// does not cover every run, nothing is remembered; nor for a write of
    /// more than `NOTE_CRC_MAX_BLOCKS`.
    pub fn note_written(&mut self, data: &[u8]) {
        self.data_crcs.clear();
        let blocks = self.runs.iter().fold(0u64, |n, r| n.saturating_add(r.blocks));
        if blocks > NOTE_CRC_MAX_BLOCKS || self.data_crcs.try_reserve(self.runs.len()).is_err() {
            return;
        }
        for r in self.runs.iter() {
            let piece = (|| {
                let from = r.file_block.checked_mul(self.block_size)?.checked_sub(self.offset)?;
                let to = from.checked_add(r.blocks.checked_mul(self.block_size)?)?;
                data.get(usize::try_from(from).ok()?..usize::try_from(to).ok()?)
            })();
            let Some(piece) = piece else {
                self.data_crcs.clear();
                return;
            };
            // Reserved above: cannot fail.
            let _ = self.data_crcs.try_push(!crate::crc32c::update(!0, piece));
        }
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Picks new blocks for `len` bytes of file `ino` from `offset`, a
    /// multiple of the block size, and reserves what mapping them needs;
    /// fewer bytes when space runs out part way (`NoSpace` when there is
    /// room for none). The caller writes the data to the runs (zeros past
    /// `len` in the last block), then calls `finish_data_write`, or
    /// `abandon_data_write` if it could not.
    pub fn begin_data_write(&mut self, sv: SubvolId, ino: u64, offset: u64, len: u64) -> Result<DataWrite> {
        self.enter(sv)?;
        self.check_writable()?;
        if self.sv.item.is_read_only() {
            return Err(Error::ReadOnly);
        }
        self.regular(ino)?;
        let bs = self.s.bs as u64;
        if offset % divisor(bs) != 0 {
            return Err(Error::Invalid("data write not at a block boundary"));
        }
        if offset >= MAX_FILE_SIZE {
            return Err(Error::FileTooBig);
        }
        let len = len.min(MAX_FILE_SIZE - offset);
        let first = offset / divisor(bs);
        let end = first + div_ceil(len, bs);
        let mut w = DataWrite { ino, offset, len: 0, runs: TryVec::new(), reserved: 0, block_size: bs, data_crcs: TryVec::new() };
        let mut fb = first;
        while fb < end {
            let want = (end - fb).min(CHUNK_BLOCKS);
            let r = self.reserve_run(&mut w, fb, want);
            match r {
                Ok(got) => fb += got,
                Err(Error::NoSpace) if !w.runs.is_empty() => break,
                Err(e) => {
                    self.abandon_data_write(w)?;
                    return Err(e);
                }
            }
        }
        w.len = len.min((fb - first) * bs);
        Ok(w)
    }

    /// One step of `begin_data_write`: up to `want` blocks for file block
    /// `fb` on, and the reservation to map them. Returns the blocks got.
    fn reserve_run(&mut self, w: &mut DataWrite, fb: u64, want: u64) -> Result<u64> {
        // As `write`: an insert, an inode update, and around the range an
        // item split and each old extent's removal; and the removal of an
        // extent after it that it joins (`map_extent_joining_next`).
        let items = 4 + 2 * self.count_extents(w.ino, fb, want)?;
        self.reserve(items, want)?;
        w.runs.try_reserve(1)?;
        let nodes = self.node_blocks_for(items, false);
        let (disk, got) = self.s.space.take_for_write(self.sv.id, w.ino, fb, want)?;
        self.s.space.write_reserved = self.s.space.write_reserved.saturating_add(nodes);
        w.reserved += nodes;
        w.runs.try_push(WriteRun { file_block: fb, disk, blocks: got })?;
        Ok(got)
    }

    /// Maps the runs of `w`, whose data the caller has written, into file
    /// `ino` (dropping what mapped that range before) and grows its size
    /// to cover the write; leaves the times alone, as `write_data` does.
    /// Returns the bytes stored. After an error the runs are given back
    /// (or the transaction is aborted, if trees had changed).
    pub fn finish_data_write(&mut self, sv: SubvolId, w: DataWrite) -> Result<u64> {
        self.s.space.write_reserved = self.s.space.write_reserved.saturating_sub(w.reserved);
        if let Err(e) = self.enter(sv) {
            self.give_back(&w.runs)?;
            return Err(e);
        }
        let (ino, end, bs) = (w.ino, w.offset + w.len, self.s.bs as u64);
        // Refusals that come before anything changes leave the runs to
        // give back.
        let ready = self.check_writable().and_then(|()| {
            if self.sv.item.is_read_only() {
                return Err(Error::ReadOnly);
            }
            self.regular(ino).map(drop)
        });
        if let Err(e) = ready {
            self.give_back(&w.runs)?;
            return Err(e);
        }
        let r = self.change(|fs| {
            fs.expressible(|fs| {
                let mut it = fs.regular(ino)?;
                for (i, r) in w.runs.iter().enumerate() {
                    fs.s.space.claim_written(r.disk, r.blocks)?;
                    fs.s.space.written.remember(r.disk, r.blocks, w.data_crcs.get(i).copied());
                    fs.s.stats.data_bytes_written += r.blocks * bs;
                    let removed = fs.punch(ino, r.file_block, r.blocks)?;
                    fs.map_extent_joining_next(ino, r.file_block, r.disk, r.blocks)?;
                    it.blocks = it.blocks.saturating_sub(removed).saturating_add(r.blocks);
                }
                it.size = it.size.max(end);
                fs.write_inode(ino, &mut it)?;
                Ok(w.len)
            })
        });
        if let Err(e) = r {
            // A claim may have queued references before the failure, with
            // no tree changed yet: that state must not be committed either.
            if self.s.aborted.is_none() {
                self.s.aborted = Some(e);
            }
        }
        r
    }

    /// Gives back the blocks and the reservation of a write that will not
    /// be finished (its data write failed).
    pub fn abandon_data_write(&mut self, w: DataWrite) -> Result<()> {
        self.s.space.write_reserved = self.s.space.write_reserved.saturating_sub(w.reserved);
        self.give_back(&w.runs)
    }

    fn give_back(&mut self, runs: &[WriteRun]) -> Result<()> {
        for r in runs.iter() {
            self.s.space.abandon_written(r.disk, r.blocks)?;
        }
        Ok(())
    }
}
