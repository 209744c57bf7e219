// SPDX-License-Identifier: GPL-2.0
//! The shared record write and device flush of fast-commit fsyncs: the
//! core's `GroupCommit` bookkeeping behind two gates of its own (sleeping
//! locks, `crate::vfs::gate`: each is held across device I/O), so the
//! write of the staged records and the flush run outside the core lock,
//! one batch and one flush at a time, and the fsyncs queued behind them
//! find their records covered. The write of the next batch runs while the
//! flush of the one before is in flight (a two-stage pipeline), which
//! gathers the records staged meanwhile into one batch.
//!
//! Lock order: the write lock, then the core lock (taken briefly to take
//! the staged batch); the flush lock is taken with neither held, and
//! nothing is taken under it.

use super::gate::{Gate, GateClass};
use crate::error::Result;
use crate::group_commit::{BatchWritten, GroupCommit};
use kernel::prelude::*;

/// Which records of one mount are durable, and the locks around writing
/// and flushing them.
#[pin_data]
pub(crate) struct FlushGroup {
    group: GroupCommit,
    /// Held around taking and writing a batch: one batch at a time, in
    /// the order taken. Taken before the core lock, never under it.
    #[pin]
    write_gate: Gate,
    /// Held around the device flush: one flush at a time. Nothing else is
    /// held with it.
    #[pin]
    flush_gate: Gate,
}

impl FlushGroup {
    /// Nothing written yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(FlushGroup {
            group: GroupCommit::new(),
            write_gate <- Gate::new(GateClass::Write),
            flush_gate <- Gate::new(GateClass::Flush),
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
    /// which covers every record written by then.
    pub(crate) fn make_durable(
        &self,
        ticket: u64,
        write: impl FnOnce() -> Result<BatchWritten>,
        flush_device: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if self.group.is_durable(ticket) {
            return Ok(());
        }
        {
            let _writing = self.write_gate.enter();
            self.group.write_for(ticket, write)?;
        }
        let _flushing = self.flush_gate.enter();
        self.group.flush_for(ticket, flush_device).map(drop)
    }
}
