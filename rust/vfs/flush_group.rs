// SPDX-License-Identifier: GPL-2.0
//! The shared device flush of fast-commit fsyncs: the core's
//! `GroupCommit` bookkeeping behind a mutex of its own, so the flush runs
//! outside the core lock and the fsyncs queued behind it find their
//! records covered.

use crate::error::Result;
use crate::group_commit::GroupCommit;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Which records of one mount are durable, and the lock around flushing.
#[pin_data]
pub(crate) struct FlushGroup {
    group: GroupCommit,
    /// Held around the device flush, never together with the core lock:
    /// one flush at a time.
    #[pin]
    gate: Mutex<()>,
}

impl FlushGroup {
    /// Nothing written yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(FlushGroup { group: GroupCommit::new(), gate <- kernel::new_mutex!((), "ferrofs::FlushGroup::gate") })
    }

    /// The bookkeeping, for the calls made under the core lock
    /// (`GroupCommit::written`, `GroupCommit::core_flushed`).
    pub(crate) fn group(&self) -> &GroupCommit {
        &self.group
    }

    /// Returns once the record of `ticket` is durable: at once when a
    /// flush that began after it was written has completed, otherwise
    /// after `flush_device`, which covers every record written by then.
    pub(crate) fn make_durable(&self, ticket: u64, flush_device: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.group.is_durable(ticket) {
            return Ok(());
        }
        let _gate = self.gate.lock();
        self.group.make_durable(ticket, flush_device).map(drop)
    }
}
