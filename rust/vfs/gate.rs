// SPDX-License-Identifier: GPL-2.0
//! A sleeping lock for sections that wait on the device (the flush
//! group's gate around the write and the flush of a batch of fsync
//! records, `crate::flush_group`): a kernel semaphore of one, with a
//! lockdep map so lockdep checks it as a lock.
//!
//! Why not a mutex: a mutex's waiter spins while the holder runs, and a
//! gate's holder runs briefly between long sleeps on I/O (issuing a
//! write or a flush, waking to finish it). Four parallel appenders in the
//! TCG test VM spent 28% of their busy time spinning on the gates (then
//! two) and the core lock's writers' mutex; with the gates sleeping, the
//! CPU goes to the fsyncs that join the next batch instead: 0.50 flushes
//! per fsync against 0.58, and 16 to 34% more fsyncs per second in three
//! rounds alternating the two modules in one VM (`scripts/bench`'s
//! parappend measures the workload).
//!
//! C header: [`include/linux/semaphore.h`](srctree/include/linux/semaphore.h).

use super::bindings as b;
use core::marker::PhantomData;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A binary semaphore used as a lock (lockdep class `ferrofs_fsync_gate`).
///
/// # Invariants
/// `raw` is an initialised `struct ferrofs_gate` (by `new`), pinned.
#[pin_data]
pub(crate) struct Gate {
    #[pin]
    raw: Opaque<b::ferrofs_gate>,
}

// SAFETY: a semaphore may be taken and given back by any task; the gate
// holds no data.
unsafe impl Send for Gate {}
// SAFETY: as above; every operation on it is the kernel's, which
// serialises them.
unsafe impl Sync for Gate {}

impl Gate {
    /// A new open gate.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Gate {
            // SAFETY: `slot` is the pinned, writable place of the gate; the
            // shim initialises it there and it never moves after.
            raw <- Opaque::ffi_init(move |slot| unsafe { b::ferrofs_gate_init(slot) }),
        })
    }

    /// Waits, sleeping, until the gate is free, and holds it until the
    /// guard drops.
    pub(crate) fn enter(&self) -> GateGuard<'_> {
        // SAFETY: `raw` is an initialised, pinned gate (type invariant).
        unsafe { b::ferrofs_gate_enter(self.raw.get()) };
        // INVARIANT: this task holds the gate until the guard drops.
        GateGuard { gate: self, _not_send: PhantomData }
    }
}

/// A held gate, given back when dropped.
///
/// # Invariants
/// The current task holds `gate`. `!Send`: lockdep tracks the gate as
/// held by this task, so the same task gives it back.
pub(crate) struct GateGuard<'a> {
    gate: &'a Gate,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this task holds the gate (type invariant) and gives it
        // back once, as the guard goes.
        unsafe { b::ferrofs_gate_leave(self.gate.raw.get()) };
    }
}
