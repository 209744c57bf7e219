// SPDX-License-Identifier: GPL-2.0
//! The mutex around one mounted core, with the try-lock memory reclaim
//! needs: 6.12's `kernel::sync::Mutex` has none, and a shrinker must never
//! sleep on a lock whose holder may be allocating (and so be reclaiming).
//!
//! C headers: [`include/linux/mutex.h`](srctree/include/linux/mutex.h).

use super::bindings as b;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use kernel::prelude::*;
use kernel::types::Opaque;

/// A kernel mutex owning `T`.
///
/// # Invariants
/// `raw` is an initialised `struct mutex` (by `new`), pinned with the
/// value; `data` is reached only through a `CoreGuard`, which exists only
/// while this task holds `raw`.
#[pin_data]
pub(crate) struct CoreLock<T> {
    #[pin]
    raw: Opaque<b::mutex>,
    data: UnsafeCell<T>,
}

// SAFETY: the value moves with the lock between tasks, so `T: Send`.
unsafe impl<T: Send> Send for CoreLock<T> {}
// SAFETY: shared references only lock; the mutex hands `&mut T` to one task
// at a time, so `T: Send` is enough, as for `kernel::sync::Mutex`.
unsafe impl<T: Send> Sync for CoreLock<T> {}

impl<T> CoreLock<T> {
    /// A new unlocked mutex holding `data`.
    pub(crate) fn new(data: T) -> impl PinInit<Self> {
        pin_init!(CoreLock {
            // SAFETY: `slot` is the pinned, writable place of the mutex;
            // the shim initialises it there and it never moves after.
            raw <- Opaque::ffi_init(|slot| unsafe { b::ferrofs_core_mutex_init(slot) }),
            data: UnsafeCell::new(data),
        })
    }

    /// Waits for the lock.
    pub(crate) fn lock(&self) -> CoreGuard<'_, T> {
        // SAFETY: `raw` is an initialised, pinned mutex (type invariant).
        unsafe { b::ferrofs_mutex_lock(self.raw.get()) };
        // INVARIANT: this task holds `raw` from here until the guard drops.
        CoreGuard { lock: self, _not_send: PhantomData }
    }

    /// The lock if it is free; never sleeps.
    pub(crate) fn try_lock(&self) -> Option<CoreGuard<'_, T>> {
        // SAFETY: `raw` is an initialised, pinned mutex (type invariant).
        if unsafe { b::ferrofs_mutex_trylock(self.raw.get()) } {
            // INVARIANT: the try-lock succeeded; this task holds `raw`.
            Some(CoreGuard { lock: self, _not_send: PhantomData })
        } else {
            None
        }
    }
}

/// The held lock; unlocks when dropped.
///
/// # Invariants
/// The current task holds `lock.raw`. The guard is `!Send`: a mutex is
/// unlocked by the task that locked it.
pub(crate) struct CoreGuard<'a, T> {
    lock: &'a CoreLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for CoreGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held (type invariant), so no one else reaches
        // the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for CoreGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held (type invariant) and this guard is the
        // only one, borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for CoreGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task holds the mutex (type invariant) and releases it
        // once, as the guard goes.
        unsafe { b::ferrofs_mutex_unlock(self.lock.raw.get()) };
    }
}
