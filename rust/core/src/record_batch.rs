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
//!   order. The caller writes batches one at a time (under its write lock)
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

use crate::error::{Error, Result};
use crate::mem::TryVec;

/// The records encoded since the last batch was taken: bytes for blocks
/// of the area from device offset `at`, through ticket `last_ticket`.
#[derive(Debug, Default)]
pub struct StagedRecords {
    buf: TryVec<u8>,
    at: u64,
    last_ticket: u64,
}

/// A batch taken for writing: `buf` goes to device offset `at` with one
/// write, after which every ticket up to `last_ticket` is written.
#[derive(Debug)]
pub struct RecordBatch {
    /// Device byte offset of the first block.
    pub at: u64,
    /// The encoded records, whole blocks.
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
    /// Appends the encoded `record` (whole blocks) for device offset `at`,
    /// which follows what is staged, under `ticket`.
    pub fn stage(&mut self, at: u64, record: &[u8], ticket: u64) -> Result<()> {
        if self.buf.is_empty() {
            self.at = at;
        } else if self.at.checked_add(self.buf.len() as u64) != Some(at) {
            return Err(Error::Bug("a staged record that does not follow the one before"));
        }
        self.buf.try_extend_from_slice(record)?;
        self.last_ticket = ticket;
        Ok(())
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes what is staged, leaving nothing.
    pub fn take(&mut self) -> Option<RecordBatch> {
        if self.buf.is_empty() {
            return None;
        }
        let buf = core::mem::take(&mut self.buf);
        Some(RecordBatch { at: self.at, buf, last_ticket: self.last_ticket })
    }

    /// A commit made the staged records needless (see the module doc).
    pub fn drop_all(&mut self) {
        self.buf.clear();
    }
}

impl<D: crate::device::BlockDevice> crate::fs::Filesystem<D> {
    /// Takes the records staged so far for the caller to write, outside
    /// the core lock, with one device write before its flush. Refused
    /// once the filesystem stopped (an earlier batch may be missing).
    pub fn take_record_batch(&mut self) -> Result<TakenRecords> {
        self.s.check_writable()?;
        Ok(TakenRecords { batch: self.s.fc.staged.take(), flushed_tickets: self.s.fc.flushed_tickets })
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

    #[test]
    fn staged_records_come_out_as_one_batch_at_the_first_ones_offset() {
        let mut s = StagedRecords::default();
        assert!(s.take().is_none());
        s.stage(8192, &[1; 4096], 1).unwrap();
        s.stage(12288, &[2; 8192], 2).unwrap();
        let b = s.take().unwrap();
        assert_eq!((b.at, b.buf.len(), b.last_ticket), (8192, 12288, 2));
        assert_eq!((b.buf[0], b.buf[4096], b.buf[12287]), (1, 2, 2));
        assert!(s.is_empty() && s.take().is_none());
        // The next batch starts where its own first record goes.
        s.stage(20480, &[3; 4096], 3).unwrap();
        s.drop_all();
        assert!(s.take().is_none());
        s.stage(4096, &[4; 4096], 4).unwrap();
        assert_eq!(s.take().map(|b| (b.at, b.last_ticket)), Some((4096, 4)));
    }
}
