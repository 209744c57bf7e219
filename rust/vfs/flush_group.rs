// SPDX-License-Identifier: GPL-2.0
//! The shared record write and device flush of fast-commit fsyncs: the
//! core's `GroupCommit` bookkeeping behind two mutexes of its own, so the
//! write of the staged records and the flush run outside the core lock,
//! one batch and one flush at a time, and the fsyncs queued behind them
//! find their records covered. The write of the next batch runs while the
//! flush of the one before is in flight (a two-stage pipeline). A writer
//! first waits, at most one tick, for the fsyncs that were in the core
//! with its own to stage their records (`GroupCommit::waits_for`), so that
//! one write and one flush cover them too.
//!
//! Lock order: the write lock, then the core lock (taken briefly to take
//! the staged batch) or the entry lock (the wait for fsyncs in the core);
//! the flush lock is taken with neither of them held, and nothing is
//! taken under it.

use crate::error::Result;
use crate::group_commit::{BatchWritten, GroupCommit};
use kernel::prelude::*;
use kernel::sync::{CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::Jiffies;

/// Which records of one mount are durable, and the locks around writing
/// and flushing them.
#[pin_data]
pub(crate) struct FlushGroup {
    group: GroupCommit,
    /// Held around taking and writing a batch: one batch at a time, in
    /// the order taken. Taken before the core lock, never under it.
    #[pin]
    write_gate: Mutex<()>,
    /// Held around the device flush: one flush at a time. Nothing else is
    /// held with it.
    #[pin]
    flush_gate: Mutex<()>,
    /// Orders an fsync leaving the core (`left_core`) against a writer
    /// looking whether to wait for it, so that no wake-up is lost
    /// between the writer's look and its sleep.
    #[pin]
    entry: Mutex<()>,
    /// Notified when an fsync leaves the core: a writer waiting for it to
    /// stage its record looks again.
    #[pin]
    left: CondVar,
}

impl FlushGroup {
    /// Nothing written yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(FlushGroup {
            group: GroupCommit::new(),
            write_gate <- kernel::new_mutex!((), "ferrofs::FlushGroup::write_gate"),
            flush_gate <- kernel::new_mutex!((), "ferrofs::FlushGroup::flush_gate"),
            entry <- kernel::new_mutex!((), "ferrofs::FlushGroup::entry"),
            left <- kernel::new_condvar!("ferrofs::FlushGroup::left"),
        })
    }

    /// The bookkeeping, for the calls made under the core lock
    /// (`GroupCommit::core_flushed`).
    pub(crate) fn group(&self) -> &GroupCommit {
        &self.group
    }

    /// Returns once the record of `ticket` is durable: at once when a
    /// flush that began after it was written has completed, otherwise
    /// after `write` (the staged records taken from the core and written;
    /// skipped when an earlier writer wrote them) and `flush_device`,
    /// which covers every record written by then; `mark` is what its
    /// fsync's `left_core` returned.
    pub(crate) fn make_durable(
        &self,
        ticket: u64,
        mark: u64,
        write: impl FnOnce() -> Result<BatchWritten>,
        flush_device: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if self.group.is_durable(ticket) {
            return Ok(());
        }
        {
            let _writing = self.write_gate.lock();
            self.wait_for_fsyncs_in_core(ticket, mark);
            self.group.write_for(ticket, write)?;
        }
        let _flushing = self.flush_gate.lock();
        self.group.flush_for(ticket, flush_device).map(drop)
    }

    /// Batch: waits until the fsyncs that were in the core with the one
    /// of `ticket` (its `mark`) have staged their records, for at most one
    /// tick all told; a signal, or the record found written, ends it.
    fn wait_for_fsyncs_in_core(&self, ticket: u64, mark: u64) {
        let mut entry = self.entry.lock();
        let mut left: Jiffies = 1;
        while left > 0 && self.group.waits_for(mark) && !self.group.is_written(ticket) {
            left = match self.left.wait_interruptible_timeout(&mut entry, left) {
                CondVarTimeoutResult::Woken { jiffies } => jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => 0,
            };
        }
    }

    /// An fsync enters the core, where it may stage a record.
    pub(crate) fn enter_core(&self) {
        self.group.enter();
    }

    /// That fsync left the core, its record staged; the mark its flush
    /// waits for (`GroupCommit::leave`).
    pub(crate) fn left_core(&self) -> u64 {
        let _entry = self.entry.lock();
        let mark = self.group.leave();
        self.left.notify_all();
        mark
    }
}
