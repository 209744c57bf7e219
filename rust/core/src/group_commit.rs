// SPDX-License-Identifier: GPL-2.0
//! Group commit of fast-commit records: which device flush makes which
//! record durable, so that concurrent fsyncs share one flush and every
//! fsync is acknowledged in record order.
//!
//! **Tickets.** Every record written since mount gets a ticket, counted
//! from 1 and never reset (a commit starts a new epoch of records, not a
//! new count of tickets; `FastCommitState::tickets`). The core hands the
//! ticket to its fsync caller once the record's write has completed, under
//! the core lock, so tickets are handed out in write order: when the
//! record of ticket `t` is on the device, so is every record below `t`.
//!
//! **Durable up to.** A flush makes durable every write that completed
//! before it began. A flusher therefore reads `written` (the highest ticket
//! handed out so far, all of whose writes completed) *before* issuing the
//! flush, and raises `durable` to that value once the flush succeeded.
//! `durable` only grows, and covers a prefix of the tickets, so no record
//! is reported durable while an earlier one is not. An fsync whose ticket
//! is already covered returns without a flush; the others take the
//! caller's flush lock one at a time, look again (a flush that began after
//! their write may have covered them while they waited), and flush for
//! every ticket written so far, theirs and those of the fsyncs queued
//! behind them. Whether to flush is decided for each ticket against
//! `durable`, never by a flag saying "a flush is pending".
//!
//! The core's own flushes (commits) make every record written before them
//! durable too (`FastCommitState::flushed_tickets`); callers pass that on
//! with `core_flushed`, which spares a flush after a commit.
//!
//! **Batching.** A flush is worth delaying while other fsyncs are about to
//! hand out tickets: they entered the core (`enter`) and are waiting for
//! its lock or writing their records. The caller's flusher waits for those
//! that were in the core when its own fsync left it (`leave`,
//! `waits_for`), briefly and never past a bound of its own, so one flush
//! covers them all, as jbd2 waits for more handles before a synchronous
//! commit. fsyncs arriving later do not prolong the wait, and a lone fsync
//! never waits.
//!
//! The state is five atomics, so the caller checks a ticket without any
//! lock; the flush itself runs under a lock the caller owns (the kernel
//! adapter's flush mutex), outside the core lock.

use crate::error::Result;
use core::sync::atomic::{AtomicU64, Ordering};

/// Which records are written and which are durable, shared by the
/// fsyncs of one mount.
#[derive(Debug, Default)]
pub struct GroupCommit {
    /// Highest ticket handed out (its record's write completed).
    written: AtomicU64,
    /// Every ticket up to this one is durable.
    durable: AtomicU64,
    /// Flushes issued through `make_durable` (successful ones), for the
    /// flush counter of the fsync statistics.
    flushes: AtomicU64,
    /// fsyncs that called `enter`, since mount.
    entered: AtomicU64,
    /// fsyncs that called `leave`, since mount.
    left: AtomicU64,
}

impl GroupCommit {
    /// Nothing written, nothing durable.
    pub const fn new() -> Self {
        GroupCommit {
            written: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            entered: AtomicU64::new(0),
            left: AtomicU64::new(0),
        }
    }

    /// An fsync is entering the core, where it may write a record.
    pub fn enter(&self) {
        self.entered.fetch_add(1, Ordering::AcqRel);
    }

    /// That fsync has left the core: its ticket, if any, is published
    /// (`written`). One call for each `enter`. Returns the mark a flush
    /// for it waits for (`waits_for`): the fsyncs that had entered by
    /// now, the ones in the core with it.
    pub fn leave(&self) -> u64 {
        self.left.fetch_add(1, Ordering::AcqRel);
        self.entered.load(Ordering::Acquire)
    }

    /// Whether a flush for an fsync that left with `mark` should wait
    /// longer: fewer fsyncs have left than had entered by then. Those that
    /// entered later only shorten the wait, so newcomers never stretch it.
    pub fn waits_for(&self, mark: u64) -> bool {
        self.left.load(Ordering::Acquire) < mark
    }

    /// The record of `ticket` (and so every earlier one) has been written.
    /// Called by the task that got the ticket, before it waits for it.
    pub fn written(&self, ticket: u64) {
        self.written.fetch_max(ticket, Ordering::AcqRel);
    }

    /// A flush by the core covered every ticket up to `tickets`
    /// (`FastCommitState::flushed_tickets`).
    pub fn core_flushed(&self, tickets: u64) {
        self.durable.fetch_max(tickets, Ordering::AcqRel);
    }

    /// Whether the record of `ticket` is durable.
    pub fn is_durable(&self, ticket: u64) -> bool {
        self.durable.load(Ordering::Acquire) >= ticket
    }

    /// Makes the record of `ticket` durable: returns at once when a flush
    /// already covers it, otherwise calls `flush` (the device cache flush)
    /// once for every ticket written so far. Returns whether it flushed.
    ///
    /// The caller holds its flush lock around this call, so that flushes
    /// do not overlap and the tasks queued on the lock find their tickets
    /// covered by the one that went first. A failed flush makes nothing
    /// durable and is returned; the next caller flushes again.
    pub fn make_durable(&self, ticket: u64, flush: impl FnOnce() -> Result<()>) -> Result<bool> {
        if self.is_durable(ticket) {
            return Ok(false);
        }
        // Read before the flush begins: only what was written by then is
        // covered by it. At least `ticket`, which the caller published.
        let target = self.written.load(Ordering::Acquire).max(ticket);
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

    #[test]
    fn a_covered_ticket_needs_no_flush_and_one_flush_covers_every_written_ticket() {
        let g = GroupCommit::new();
        let flushes = core::cell::Cell::new(0);
        let flush = || {
            flushes.set(flushes.get() + 1);
            Ok(())
        };
        g.written(1);
        g.written(2);
        g.written(3);
        assert!(g.make_durable(1, flush).unwrap());
        // Tickets 2 and 3 were written before that flush began.
        assert!(!g.make_durable(2, flush).unwrap());
        assert!(!g.make_durable(3, flush).unwrap());
        assert_eq!((flushes.get(), g.flushes(), g.durable()), (1, 1, 3));
        // A ticket written after it needs a flush of its own.
        g.written(4);
        assert!(!g.is_durable(4));
        assert!(g.make_durable(4, flush).unwrap());
        assert_eq!((flushes.get(), g.flushes()), (2, 2));
    }

    #[test]
    fn a_flush_waits_for_the_fsyncs_in_the_core_with_it_and_no_later_ones() {
        let g = GroupCommit::new();
        g.enter();
        g.enter();
        g.enter();
        // The first to leave: two others are in the core.
        let mark = g.leave();
        assert!(g.waits_for(mark));
        g.leave();
        assert!(g.waits_for(mark));
        // A newcomer enters; the last of the three leaves: enough.
        g.enter();
        let last = g.leave();
        assert!(!g.waits_for(mark));
        assert!(g.waits_for(last), "the newcomer is in the core with the last one");
        g.leave();
        assert!(!g.waits_for(last));
        // A lone fsync never waits.
        g.enter();
        assert!(!g.waits_for(g.leave()));
    }

    #[test]
    fn a_failed_flush_makes_nothing_durable() {
        let g = GroupCommit::new();
        g.written(1);
        assert!(g.make_durable(1, || Err(crate::error::Error::Io)).is_err());
        assert!(!g.is_durable(1));
        assert_eq!(g.flushes(), 0);
        assert!(g.make_durable(1, || Ok(())).unwrap());
        assert!(g.is_durable(1));
    }

    #[test]
    fn a_write_during_a_flush_is_not_covered_by_it() {
        let g = GroupCommit::new();
        g.written(1);
        // Ticket 2's write completes while ticket 1's flush is in flight.
        let flush = || {
            g.written(2);
            Ok(())
        };
        assert!(g.make_durable(1, flush).unwrap());
        assert!(g.is_durable(1));
        assert!(!g.is_durable(2));
    }

    #[test]
    fn a_core_flush_covers_what_was_written_before_it() {
        let g = GroupCommit::new();
        g.written(5);
        g.core_flushed(5);
        assert!(!g.make_durable(5, || panic!("no flush needed")).unwrap());
        assert_eq!(g.flushes(), 0);
    }
}
