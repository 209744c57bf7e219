// SPDX-License-Identifier: GPL-2.0
//! Records staged for the device: fsyncs encode their fast-commit and
//! tree-log records here under the core lock, and whoever makes them
//! durable takes them all as one batch and writes the batch with one
//! device write outside the core lock, just before the flush
//! (`crate::group_commit`).
//!
//! Why: a record's write is then no longer done under the core lock, so
//! concurrent fsyncs do not take turns for the lock with an I/O inside it,
//! and the records of every fsync that arrived while a flush was in flight
//! go out together, in one write and under one flush, as jbd2 batches the
//! handles of a transaction.
//!
//! **Why this is safe.**
//! - Staged records are consecutive in the area, from `at` on, in ticket
//!   order. A batch starts on a block boundary and is padded with zeros to
//!   whole blocks, so no block is ever written twice in an epoch: a
//!   batch's write cannot tear a block an earlier, acknowledged batch
//!   holds. The caller writes batches one at a time (under its lock)
//!   and in the order it took them, so the area is written in record order
//!   and a ticket counts as written only once its batch's write completed.
//!   Replay keeps the longest valid prefix of the area, so a batch torn by
//!   a crash loses only records whose fsyncs were not yet acknowledged.
//! - A commit drops what is staged: the commit itself makes durable what
//!   those records say, and its flush covers their tickets
//!   (`FastCommitState::flushed_tickets`). The new epoch starts again at
//!   the area's first block. A batch of the old epoch taken before the
//!   commit and written after it can only land before any batch of the new
//!   epoch (batches are written one at a time), and replay ignores records
//!   of an older epoch, so it cannot hide a newer record.
//! - Nothing reads the area while mounted; replay reads it at mount only.
//!
//! **Packing** (`INCOMPAT_PACKED_RECORDS`, `AreaLayout`). Inside a batch,
//! each record follows the one before at the next 8-byte boundary, so the
//! records of fsyncs that share a flush share blocks too (a fast-commit
//! record of one run is 500 bytes). Without the feature bit (an image of
//! an older mkfs) every record starts on a block boundary, as before.
//! Replay looks for the record after one that ends at byte `e` at the
//! 8-byte boundary after `e`, and if none is there, at the block boundary
//! after it (`AreaLayout::after`): one rule for both layouts. The two
//! places cannot disagree: in an epoch each sequence number is written at
//! one place only, and replay takes a record only with the next one.

use crate::error::{Error, Result};
use crate::mem::TryVec;

/// Records start on multiples of this many bytes inside a batch when the
/// area is packed (`INCOMPAT_PACKED_RECORDS`).
pub const RECORD_ALIGN: u64 = 8;

/// The fast-commit area's geometry and its layout rule, from the
/// superblock.
#[derive(Debug, Clone, Copy)]
pub struct AreaLayout {
    /// First block of the area.
    pub start: u64,
    /// Blocks in the area.
    pub blocks: u64,
    /// Block size in bytes (at least 1).
    pub block_size: u64,
    /// Records of a batch share blocks (`INCOMPAT_PACKED_RECORDS`).
    pub packed: bool,
}

/// `n` rounded up to a multiple of `unit` (`None` on overflow).
fn round_up(n: u64, unit: u64) -> Option<u64> {
    let unit = unit.max(1);
    n.checked_add(unit - 1).map(|m| m - m % unit)
}

impl AreaLayout {
    /// The layout of `sb`'s area.
    pub fn of(sb: &crate::superblock::Superblock) -> Self {
        AreaLayout {
            start: sb.fast_commit_start,
            blocks: sb.fast_commit_blocks,
            block_size: u64::from(sb.block_size).max(1),
            packed: sb.incompat & crate::superblock::INCOMPAT_PACKED_RECORDS != 0,
        }
    }

    /// What an encoded record is padded to: the next record's alignment.
    pub fn pad_unit(&self) -> usize {
        (if self.packed { RECORD_ALIGN } else { self.block_size }) as usize
    }

    /// The area's length in bytes.
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size)
    }

    /// Where replay looks for the record after one that ends at area byte
    /// `end`: the next 8-byte boundary, then (when that is not one) the
    /// next block boundary. Either may be past the area.
    pub fn after(&self, end: u64) -> [Option<u64>; 2] {
        let packed = round_up(end, RECORD_ALIGN);
        let block = round_up(end, self.block_size);
        if packed == block {
            [packed, None]
        } else {
            [packed, block]
        }
    }
}

/// The records encoded since the last batch was taken: bytes for the area
/// from device offset `at`, through ticket `last_ticket`; and where in the
/// area the next record goes.
#[derive(Debug, Default)]
pub struct StagedRecords {
    buf: TryVec<u8>,
    at: u64,
    last_ticket: u64,
    /// Area byte where the next record goes: a block boundary whenever
    /// nothing is staged.
    next: u64,
}

/// A batch taken for writing: `buf` goes to device offset `at` with one
/// write, after which every ticket up to `last_ticket` is written.
#[derive(Debug)]
pub struct RecordBatch {
    /// Device byte offset of the first block.
    pub at: u64,
    /// The encoded records, padded with zeros to whole blocks.
    pub buf: TryVec<u8>,
    /// Ticket of the last record in it.
    pub last_ticket: u64,
}

/// What `Filesystem::take_record_batch` found.
#[derive(Debug)]
pub struct TakenRecords {
    /// The staged records, if any.
    pub batch: Option<RecordBatch>,
    /// Tickets up to this one are durable already, records or not (the
    /// core's last commit covered them; `FastCommitState::flushed_tickets`).
    pub flushed_tickets: u64,
}

impl StagedRecords {
    /// Whether `len` more bytes of records fit in the area after what is
    /// staged, the batch padded to whole blocks.
    pub fn fits(&self, area: &AreaLayout, len: usize) -> bool {
        let end = self.next.checked_add(len as u64).and_then(|e| round_up(e, area.block_size));
        end.is_some_and(|e| e <= area.bytes())
    }

    /// Appends `records` (encoded, each padded to `area.pad_unit()`) where
    /// the next record goes, under `ticket`; the caller checked `fits`.
    pub fn stage(&mut self, area: &AreaLayout, records: &[u8], ticket: u64) -> Result<()> {
        if !self.fits(area, records.len()) {
            return Err(Error::Bug("a staged record past the fast-commit area"));
        }
        if self.buf.is_empty() {
            if self.next % crate::store::divisor(area.block_size) != 0 {
                return Err(Error::Bug("a batch that does not start on a block boundary"));
            }
            self.at = area.start.checked_mul(area.block_size).and_then(|a| a.checked_add(self.next)).ok_or(Error::Io)?;
        }
        self.buf.try_extend_from_slice(records)?;
        self.next += records.len() as u64;
        self.last_ticket = ticket;
        Ok(())
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes what is staged, padded to whole blocks, leaving nothing; the
    /// next record then starts on the next block boundary.
    pub fn take(&mut self, area: &AreaLayout) -> Result<Option<RecordBatch>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let padded = round_up(self.buf.len() as u64, area.block_size).ok_or(Error::Io)?;
        self.buf.try_resize(padded as usize, 0)?;
        self.next = round_up(self.next, area.block_size).ok_or(Error::Io)?;
        let buf = core::mem::take(&mut self.buf);
        Ok(Some(RecordBatch { at: self.at, buf, last_ticket: self.last_ticket }))
    }

    /// A commit made the staged records needless (see the module doc):
    /// the new epoch starts again at the area's first block.
    pub fn restart(&mut self) {
        self.buf.clear();
        self.next = 0;
    }
}

impl<D: crate::device::BlockDevice> crate::fs::Filesystem<D> {
    /// Takes the records staged so far for the caller to write, outside
    /// the core lock, with one device write before its flush. Refused
    /// once the filesystem stopped (an earlier batch may be missing).
    pub fn take_record_batch(&mut self) -> Result<TakenRecords> {
        self.s.check_writable()?;
        let area = AreaLayout::of(&self.s.sb);
        Ok(TakenRecords { batch: self.s.fc.staged.take(&area)?, flushed_tickets: self.s.fc.flushed_tickets })
    }

    /// Writes the staged records with this filesystem's own device (the
    /// single-threaded callers: tools and tests); returns the last ticket
    /// written, if any. Not flushed.
    pub fn write_staged_records(&mut self) -> Result<Option<u64>> {
        let Some(b) = self.take_record_batch()?.batch else { return Ok(None) };
        self.s.dev.write(b.at, &b.buf, false)?;
        Ok(Some(b.last_ticket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: AreaLayout = AreaLayout { start: 2, blocks: 4, block_size: 4096, packed: true };

    #[test]
    fn staged_records_pack_inside_a_batch_and_the_next_batch_starts_on_a_block() {
        let mut s = StagedRecords::default();
        assert!(s.take(&AREA).unwrap().is_none());
        s.stage(&AREA, &[1; 504], 1).unwrap();
        s.stage(&AREA, &[2; 3800], 2).unwrap();
        let b = s.take(&AREA).unwrap().unwrap();
        // Two records, the second across the first block's end, padded to
        // whole blocks with zeros.
        assert_eq!((b.at, b.buf.len(), b.last_ticket), (8192, 8192, 2));
        assert_eq!((b.buf[503], b.buf[504], b.buf[4303], b.buf[4304], b.buf[8191]), (1, 2, 2, 0, 0));
        assert!(s.is_empty() && s.take(&AREA).unwrap().is_none());
        // The next batch starts on the block after.
        s.stage(&AREA, &[3; 504], 3).unwrap();
        assert!(s.fits(&AREA, 16384 - 8192 - 504) && !s.fits(&AREA, 16384 - 8192 - 504 + 1), "the batch must fit the area");
        s.restart();
        assert!(s.take(&AREA).unwrap().is_none());
        s.stage(&AREA, &[4; 504], 4).unwrap();
        assert_eq!(s.take(&AREA).unwrap().map(|b| (b.at, b.last_ticket)), Some((8192, 4)), "a commit starts the area over");
    }

    #[test]
    fn replay_looks_after_a_record_at_the_next_8_bytes_then_the_next_block() {
        assert_eq!(AREA.after(504), [Some(504), Some(4096)]);
        assert_eq!(AREA.after(505), [Some(512), Some(4096)]);
        assert_eq!(AREA.after(4096), [Some(4096), None]);
        assert_eq!(AREA.after(4090), [Some(4096), None]);
        assert_eq!(AREA.after(u64::MAX - 3), [None, None]);
        let blocks = AreaLayout { packed: false, ..AREA };
        assert_eq!((AREA.pad_unit(), blocks.pad_unit()), (8, 4096));
    }
}
