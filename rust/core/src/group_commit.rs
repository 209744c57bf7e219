// SPDX-License-Identifier: GPL-2.0
//! Group commit of fast-commit records: which device flush makes which
//! record durable, so that concurrent fsyncs share one write and one flush
//! and every fsync is acknowledged in record order.
//!
//! **Tickets.** Every record staged since mount gets a ticket, counted
//! from 1 and never reset (a commit starts a new epoch of records, not a
//! new count of tickets; `FastCommitState::tickets`). The core stages the
//! records under its lock, in ticket order (`crate::record_batch`), and
//! hands each fsync its ticket.
//!
//! **Written, then durable.** An fsync that needs its record made durable
//! takes two steps under a lock of the caller's, one holder at a time
//! (`make_durable`). First (`write_for`), unless its record is written
//! already, it takes every record staged so far as one batch, writes it
//! with one device write and raises `written` to the batch's last ticket.
//! Then (`flush_for`), unless its record is durable already, it flushes:
//! a flush makes durable every write that completed before it began, so
//! `durable` rises to `written` as read before the flush. Batches are
//! written only under the lock, one after the other, so `written` and
//! `durable` each cover a prefix of the tickets, and no record is
//! reported durable while an earlier one is not. An fsync whose ticket is
//! covered by the time it holds the lock (a holder before it wrote, or
//! flushed, its record) skips that step. Whether to flush is decided for
//! each ticket against `durable`, never by a flag saying "a flush is
//! pending". The two steps are separate calls so that a caller may hold
//! a lock of its own around each (a pipeline: the next batch written
//! while a flush runs); the kernel holds one around both, which batches
//! more (`crate::vfs::flush_group` says why).
//!
//! The core's commits make durable what every record before them says,
//! written or not (`FastCommitState::flushed_tickets`); taking a batch
//! passes that on (`BatchWritten::flushed_tickets`), which spares a write
//! and a flush after a commit.
//!
//! **Batching.** Records staged while a batch is being written and
//! flushed go out together in the next one: the lock batches by itself.
//! A writer does not
//! wait for fsyncs about to stage (as jbd2 waits for more handles): such
//! a wait, bounded by one tick, made four parallel appenders in the test
//! VM five times slower without saving a flush, since an fsync still in
//! the core may not get a CPU before the tick ends.
//!
//! The state is three atomics, so the caller checks a ticket without any
//! lock; the write and the flush run under locks the caller owns (the
//! kernel adapter's write and flush gates), outside the core lock.

use crate::error::{Error, Result};
use core::sync::atomic::{AtomicU64, Ordering};

/// What `GroupCommit::make_durable`'s write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchWritten {
    /// The last ticket of the batch it wrote, if there was one.
    pub last_ticket: Option<u64>,
    /// Tickets up to this one are durable already: a commit covered them
    /// (`crate::record_batch::TakenRecords::flushed_tickets`).
    pub flushed_tickets: u64,
}

/// Which records are written and which are durable, shared by the
/// fsyncs of one mount.
#[derive(Debug, Default)]
pub struct GroupCommit {
    /// Highest ticket whose record's write completed.
    written: AtomicU64,
    /// Every ticket up to this one is durable.
    durable: AtomicU64,
    /// Flushes issued through `make_durable` (successful ones), for the
    /// flush counter of the fsync statistics.
    flushes: AtomicU64,
}

impl GroupCommit {
    /// Nothing written, nothing durable.
    pub const fn new() -> Self {
        GroupCommit { written: AtomicU64::new(0), durable: AtomicU64::new(0), flushes: AtomicU64::new(0) }
    }

    /// Every record up to `ticket` has been written (its batch's write
    /// completed). Called under the caller's lock.
    pub fn written(&self, ticket: u64) {
        self.written.fetch_max(ticket, Ordering::AcqRel);
    }

    /// A commit by the core covered every ticket up to `tickets`
    /// (`FastCommitState::flushed_tickets`).
    pub fn core_flushed(&self, tickets: u64) {
        self.durable.fetch_max(tickets, Ordering::AcqRel);
    }

    /// Whether the record of `ticket` is durable.
    pub fn is_durable(&self, ticket: u64) -> bool {
        self.durable.load(Ordering::Acquire) >= ticket
    }

    /// Makes the record of `ticket` durable, the caller holding its lock
    /// around both steps: `write_for` and then `flush_for`. Returns
    /// whether it flushed.
    pub fn make_durable(
        &self,
        ticket: u64,
        write: impl FnOnce() -> Result<BatchWritten>,
        flush: impl FnOnce() -> Result<()>,
    ) -> Result<bool> {
        self.write_for(ticket, write)?;
        self.flush_for(ticket, flush)
    }

    /// Whether the record of `ticket` is written (or durable already), so
    /// only a flush may be left to do for it.
    pub fn is_written(&self, ticket: u64) -> bool {
        self.is_durable(ticket) || self.written.load(Ordering::Acquire) >= ticket
    }

    /// First step of making `ticket` durable: unless its record is written
    /// or durable already, calls `write`, which takes the records staged
    /// so far and writes them (`crate::record_batch`); they include
    /// `ticket`'s, staged before its fsync came here.
    ///
    /// The caller holds a lock around this call, so batches are written
    /// one at a time and in the order they were taken. A failed
    /// write makes nothing written and is returned; the caller stops the
    /// filesystem, since a record it took may be missing. So is a ticket
    /// whose batch an earlier holder took and failed to write.
    pub fn write_for(&self, ticket: u64, write: impl FnOnce() -> Result<BatchWritten>) -> Result<()> {
        if self.is_written(ticket) {
            return Ok(());
        }
        let w = write()?;
        self.core_flushed(w.flushed_tickets);
        if let Some(last) = w.last_ticket {
            self.written(last);
        }
        if self.is_written(ticket) {
            Ok(())
        } else {
            // Taken by a holder whose write failed: it is not on the disk.
            Err(Error::Io)
        }
    }

    /// Second step: unless a flush or a commit covers `ticket` by now,
    /// calls `flush` (the device cache flush), which covers every ticket
    /// written when it begins. Returns whether it flushed.
    ///
    /// The caller holds a lock around this call, so flushes do not
    /// overlap and the tasks queued on the lock find their tickets covered
    /// by the one that went first. It may be the lock of `write_for` (the
    /// kernel's) or one of its own, letting the next batch be written
    /// while this flush runs. Only what was written when the flush began
    /// counts as covered by it, so a batch whose write ends during the
    /// flush waits for the next one. A failed flush makes nothing durable
    /// and is returned.
    pub fn flush_for(&self, ticket: u64, flush: impl FnOnce() -> Result<()>) -> Result<bool> {
        if self.is_durable(ticket) {
            return Ok(false);
        }
        // Read before the flush begins: only what was written by then is
        // covered by it.
        let target = self.written.load(Ordering::Acquire);
        if target < ticket {
            // `write_for` did not succeed for this ticket.
            return Err(Error::Io);
        }
        flush()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(true)
    }

    /// Flushes `make_durable` issued since mount.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Every ticket up to this one is durable.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that wrote a batch ending at `last`.
    fn wrote(last: u64) -> impl FnOnce() -> Result<BatchWritten> {
        move || Ok(BatchWritten { last_ticket: Some(last), flushed_tickets: 0 })
    }

    #[test]
    fn a_covered_ticket_needs_no_write_or_flush_and_one_flush_covers_the_whole_batch() {
        let g = GroupCommit::new();
        let flushes = core::cell::Cell::new(0);
        let flush = || {
            flushes.set(flushes.get() + 1);
            Ok(())
        };
        // Tickets 1 to 3 were staged; the first holder writes them all.
        assert!(g.make_durable(1, wrote(3), flush).unwrap());
        assert!(!g.make_durable(2, || panic!("no write needed"), flush).unwrap());
        assert!(!g.make_durable(3, || panic!("no write needed"), flush).unwrap());
        assert_eq!((flushes.get(), g.flushes(), g.durable()), (1, 1, 3));
        // A ticket staged after it needs a write and a flush of its own.
        assert!(!g.is_durable(4));
        assert!(g.make_durable(4, wrote(4), flush).unwrap());
        assert_eq!((flushes.get(), g.flushes()), (2, 2));
    }

    #[test]
    fn a_failed_write_or_flush_makes_nothing_durable() {
        let g = GroupCommit::new();
        assert!(g.make_durable(1, || Err(Error::Io), || panic!("nothing to flush")).is_err());
        assert!(g.make_durable(1, wrote(1), || Err(Error::Io)).is_err());
        assert!(!g.is_durable(1));
        assert_eq!(g.flushes(), 0);
        // Written but not flushed: the next holder flushes it.
        let nothing = || Ok(BatchWritten::default());
        assert!(g.make_durable(1, nothing, || Ok(())).unwrap());
        assert!(g.is_durable(1));
    }

    #[test]
    fn a_ticket_whose_batch_was_lost_is_an_error_not_durable() {
        let g = GroupCommit::new();
        // Ticket 2's batch was taken by a holder whose write failed.
        g.written(1);
        let nothing = || Ok(BatchWritten::default());
        assert!(g.make_durable(2, nothing, || panic!("must not flush")).is_err());
        assert!(!g.is_durable(2));
    }

    #[test]
    fn a_write_during_a_flush_is_not_covered_by_it() {
        let g = GroupCommit::new();
        // Ticket 2's write completes while ticket 1's flush is in flight.
        let flush = || {
            g.written(2);
            Ok(())
        };
        assert!(g.make_durable(1, wrote(1), flush).unwrap());
        assert!(g.is_durable(1));
        assert!(!g.is_durable(2));
    }

    #[test]
    fn a_batch_written_during_a_flush_takes_the_next_flush_and_a_written_ticket_no_write() {
        let g = GroupCommit::new();
        // Ticket 1 written; ticket 2's batch is written before 1's flush
        // begins (the write lock is free while a flush runs).
        g.write_for(1, wrote(1)).unwrap();
        g.write_for(2, wrote(2)).unwrap();
        assert!(g.is_written(2) && !g.is_durable(1));
        // Ticket 3's batch ends while 1's flush is in flight: 1's flush
        // read `written` (2) before it began, so it covers 1 and 2 only.
        let flush = || {
            g.write_for(3, wrote(3)).unwrap();
            Ok(())
        };
        assert!(g.flush_for(1, flush).unwrap());
        assert!(g.is_durable(2) && !g.is_durable(3));
        // Ticket 2 needs neither a write nor a flush; 3 needs no write but
        // a flush of its own.
        g.write_for(2, || panic!("written")).unwrap();
        assert!(!g.flush_for(2, || panic!("durable")).unwrap());
        g.write_for(3, || panic!("written")).unwrap();
        assert!(g.flush_for(3, || Ok(())).unwrap());
        assert_eq!((g.durable(), g.flushes()), (3, 2));
    }

    #[test]
    fn a_flush_for_a_ticket_never_written_is_an_error() {
        let g = GroupCommit::new();
        g.write_for(1, wrote(1)).unwrap();
        assert!(g.flush_for(2, || panic!("must not flush")).is_err());
        assert!(!g.is_durable(2) && g.flushes() == 0);
    }

    #[test]
    fn a_commit_covers_staged_tickets_without_a_write_or_flush() {
        let g = GroupCommit::new();
        g.core_flushed(5);
        assert!(!g.make_durable(5, || panic!("no write needed"), || panic!("no flush needed")).unwrap());
        // Or learnt when taking the batch: the commit dropped it.
        let committed = || Ok(BatchWritten { last_ticket: None, flushed_tickets: 7 });
        assert!(!g.make_durable(7, committed, || panic!("no flush needed")).unwrap());
        assert_eq!(g.flushes(), 0);
    }
}
