// SPDX-License-Identifier: GPL-2.0
//! The shared record write and device flush of fast-commit fsyncs: the
//! core's `GroupCommit` bookkeeping behind one gate of its own (a
//! sleeping lock, `crate::vfs::gate`, held across device I/O), so the
//! write of the staged records and the flush run outside the core lock,
//! one batch at a time, and the fsyncs queued behind them find their
//! records covered. The holder takes every record staged so far, writes
//! them and flushes; the records staged meanwhile go out together in the
//! next holder's batch, under its one flush.
//!
//! Why one gate around both steps, not a pipeline of two (the next batch
//! written while the flush before runs, as this was until it was
//! measured): a batch then gathers what was staged during a write *and*
//! a flush, not during one of them, so fewer writes and flushes serve the
//! same fsyncs. Four parallel appenders in the TCG test VM, eight rounds
//! alternating the two modules: 0.30 flushes and 1.60 write requests per
//! fsync against 0.51 and 2.15, and a median 1.27 times the fsyncs per
//! second (`scripts/bench`'s parappend measures the workload).
//!
//! Lock order: the gate, then the core lock (taken briefly to take the
//! staged batch); the flush runs under the gate alone.

use super::gate::Gate;
use crate::error::Result;
use crate::group_commit::{BatchWritten, GroupCommit};
use kernel::prelude::*;

/// Which records of one mount are durable, and the lock around writing
/// and flushing them.
#[pin_data]
pub(crate) struct FlushGroup {
    group: GroupCommit,
    /// Held around taking, writing and flushing a batch: one batch at a
    /// time, in the order taken. Taken before the core lock, never under
    /// it.
    #[pin]
    gate: Gate,
}

impl FlushGroup {
    /// Nothing written yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(FlushGroup { group: GroupCommit::new(), gate <- Gate::new() })
    }

    /// The bookkeeping, for the calls made under the core lock
    /// (`GroupCommit::core_flushed`).
    pub(crate) fn group(&self) -> &GroupCommit {
        &self.group
    }

    /// Returns once the record of `ticket` is durable: at once when a
    /// flush that began after it was written has completed, otherwise
    /// after `write` (the staged records taken from the core and written;
    /// skipped when an earlier holder wrote them) and `flush_device`,
    /// which covers every record written by then (skipped when an earlier
    /// holder's flush covered it).
    pub(crate) fn make_durable(
        &self,
        ticket: u64,
        write: impl FnOnce() -> Result<BatchWritten>,
        flush_device: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if self.group.is_durable(ticket) {
            return Ok(());
        }
        let _holding = self.gate.enter();
        self.group.make_durable(ticket, write, flush_device).map(drop)
    }
}
