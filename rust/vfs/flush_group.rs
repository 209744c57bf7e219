// SPDX-License-Identifier: GPL-2.0
//! The shared record write and device flush of fast-commit fsyncs: the
//! core's `GroupCommit` bookkeeping behind a mutex of its own, so the
//! write of the staged records and the flush run outside the core lock,
//! one batch at a time, and the fsyncs queued behind them find their
//! records covered. A flusher first waits, at most one tick, for the fsyncs
//! that were in the core with its own to stage their records
//! (`GroupCommit::waits_for`), so that one write and one flush cover them
//! too.
//!
//! Lock order: the flush lock (`gate`) before the core lock, which the
//! write takes briefly to take the staged batch; never the other way.

use crate::error::Result;
use crate::group_commit::{BatchWritten, GroupCommit};
use kernel::prelude::*;
use kernel::sync::{CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::Jiffies;

/// Which records of one mount are durable, and the lock around flushing.
#[pin_data]
pub(crate) struct FlushGroup {
    group: GroupCommit,
    /// Held around the batch's write and the device flush: one batch and
    /// one flush at a time. Taken before the core lock, never under it.
    #[pin]
    gate: Mutex<()>,
    /// Notified when an fsync leaves the core (`left_core`): a flusher
    /// waiting for it to hand out its ticket looks again.
    #[pin]
    left: CondVar,
}

impl FlushGroup {
    /// Nothing written yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(FlushGroup {
            group: GroupCommit::new(),
            gate <- kernel::new_mutex!((), "ferrofs::FlushGroup::gate"),
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
    /// after `write` (the staged records taken from the core and written)
    /// and `flush_device`, which cover every record staged by then; `mark`
    /// is what its fsync's `left_core` returned.
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
        let mut gate = self.gate.lock();
        // Batch: wait (the gate let go meanwhile) for the fsyncs now in the
        // core, for at most one tick all told; a signal ends the wait.
        let mut left: Jiffies = 1;
        while left > 0 && self.group.waits_for(mark) && !self.group.is_durable(ticket) {
            left = match self.left.wait_interruptible_timeout(&mut gate, left) {
                CondVarTimeoutResult::Woken { jiffies } => jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => 0,
            };
        }
        self.group.make_durable(ticket, write, flush_device).map(drop)
    }

    /// An fsync enters the core, where it may stage a record.
    pub(crate) fn enter_core(&self) {
        self.group.enter();
    }

    /// That fsync left the core, its record staged; the mark its flush
    /// waits for (`GroupCommit::leave`).
    pub(crate) fn left_core(&self) -> u64 {
        let mark = self.group.leave();
        self.left.notify_all();
        mark
    }
}
