// SPDX-License-Identifier: GPL-2.0
//! The lock around one mounted core: a reader-writer semaphore, held for
//! write by every call that may change the core (`&mut`) and for read by
//! the calls that only read its cached nodes (`&`, many tasks at once; see
//! `crate::tree_read`), with the try-lock memory reclaim needs: 6.12's
//! kernel crate has no rwsem wrapper, and a shrinker must never sleep on a
//! lock whose holder may be allocating (and so be reclaiming).
//!
//! Writers also hold a mutex of their own for as long as they hold the
//! rwsem for write, so that a commit can let readers in for its writes
//! (`CoreGuard::downgrade`) while still keeping every writer out, and take
//! the rwsem for write again after (`CoreDowngraded::regain`) with nothing
//! changed in between: an rwsem alone cannot go from read back to write.
//!
//! C headers: [`include/linux/rwsem.h`](srctree/include/linux/rwsem.h),
//! [`include/linux/mutex.h`](srctree/include/linux/mutex.h).

use super::bindings as b;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use kernel::prelude::*;
use kernel::types::Opaque;

/// A kernel rw_semaphore, with a writers' mutex, owning `T`.
///
/// # Invariants
/// `raw` is an initialised `struct ferrofs_core_lock` (by `new`), pinned
/// with the value; `data` is reached only through a `CoreGuard`, which
/// exists only while this task holds `raw` for write (its mutex and its
/// rwsem), a `CoreDowngraded`, which exists only while this task holds its
/// mutex and its rwsem for read, or a `CoreReadGuard`, which exists only
/// while this task holds its rwsem for read.
#[pin_data]
pub(crate) struct CoreLock<T> {
    #[pin]
    raw: Opaque<b::ferrofs_core_lock>,
    data: UnsafeCell<T>,
}

// SAFETY: the value moves with the lock between tasks, so `T: Send`.
unsafe impl<T: Send> Send for CoreLock<T> {}
// SAFETY: shared references only lock. The write side hands `&mut T` to
// one task at a time (`T: Send`); the read side hands `&T` to many tasks at
// once, so `T: Sync` too, as for `std::sync::RwLock`.
unsafe impl<T: Send + Sync> Sync for CoreLock<T> {}

impl<T> CoreLock<T> {
    /// A new unlocked lock holding `data`.
    pub(crate) fn new(data: T) -> impl PinInit<Self> {
        pin_init!(CoreLock {
            // SAFETY: `slot` is the pinned, writable place of the lock; the
            // shim initialises it there and it never moves after.
            raw <- Opaque::ffi_init(|slot| unsafe { b::ferrofs_core_lock_init(slot) }),
            data: UnsafeCell::new(data),
        })
    }

    /// Waits for the lock, for write.
    pub(crate) fn lock(&self) -> CoreGuard<'_, T> {
        // SAFETY: `raw` is an initialised, pinned lock (type invariant).
        unsafe { b::ferrofs_core_lock_write(self.raw.get()) };
        // INVARIANT: this task holds `raw` for write until the guard drops.
        CoreGuard { lock: self, _not_send: PhantomData }
    }

    /// The lock for write if it is free; never sleeps.
    pub(crate) fn try_lock(&self) -> Option<CoreGuard<'_, T>> {
        // SAFETY: `raw` is an initialised, pinned lock (type invariant).
        if unsafe { b::ferrofs_core_trylock_write(self.raw.get()) } {
            // INVARIANT: the try-lock succeeded; this task holds `raw` for
            // write.
            Some(CoreGuard { lock: self, _not_send: PhantomData })
        } else {
            None
        }
    }

    /// Waits for the lock, for read.
    pub(crate) fn read(&self) -> CoreReadGuard<'_, T> {
        // SAFETY: `raw` is an initialised, pinned lock (type invariant).
        unsafe { b::ferrofs_core_lock_read(self.raw.get()) };
        // INVARIANT: this task holds `raw` for read until the guard drops.
        CoreReadGuard { lock: self, _not_send: PhantomData }
    }

    /// The lock for read if no writer holds or waits for it; never sleeps.
    pub(crate) fn try_read(&self) -> Option<CoreReadGuard<'_, T>> {
        // SAFETY: `raw` is an initialised, pinned lock (type invariant).
        if unsafe { b::ferrofs_core_trylock_read(self.raw.get()) } {
            // INVARIANT: the try-lock succeeded; this task holds `raw` for
            // read.
            Some(CoreReadGuard { lock: self, _not_send: PhantomData })
        } else {
            None
        }
    }
}

/// The lock held for write; unlocks when dropped.
///
/// # Invariants
/// The current task holds `lock.raw` for write. The guard is `!Send`: an
/// rwsem is released by the task that took it.
pub(crate) struct CoreGuard<'a, T> {
    lock: &'a CoreLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for CoreGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held for write (type invariant), so no one
        // else reaches the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for CoreGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held for write (type invariant) and this
        // guard is the only one, borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<'a, T> CoreGuard<'a, T> {
    /// Lets readers in while still keeping every writer out: the rwsem
    /// goes to read, the writers' mutex stays held, until `regain` or the
    /// drop of what this returns.
    pub(crate) fn downgrade(self) -> CoreDowngraded<'a, T> {
        let lock = self.lock;
        // The downgraded guard releases the lock now, not this one.
        core::mem::forget(self);
        // SAFETY: this task holds the lock for write (the guard's
        // invariant), which the guard forgotten above no longer releases.
        unsafe { b::ferrofs_core_downgrade(lock.raw.get()) };
        // INVARIANT: this task holds the writers' mutex and the rwsem for
        // read until the new guard drops or regains.
        CoreDowngraded { lock, _not_send: PhantomData }
    }
}

impl<T> Drop for CoreGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task holds the lock for write (type invariant) and
        // releases it once, as the guard goes.
        unsafe { b::ferrofs_core_unlock_write(self.lock.raw.get()) };
    }
}

/// The lock downgraded by a writer: its rwsem held for read, beside any
/// number of readers, and its writers' mutex still held, so no writer
/// gets in; unlocks both when dropped.
///
/// # Invariants
/// The current task holds `lock.raw`'s writers' mutex and its rwsem for
/// read. `!Send`, as `CoreGuard`.
pub(crate) struct CoreDowngraded<'a, T> {
    lock: &'a CoreLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<'a, T> CoreDowngraded<'a, T> {
    /// The lock for write again, once the readers in it are out; no
    /// writer got in since the downgrade.
    pub(crate) fn regain(self) -> CoreGuard<'a, T> {
        let lock = self.lock;
        // The new guard releases the lock, not this one.
        core::mem::forget(self);
        // SAFETY: this task holds the writers' mutex and the rwsem for
        // read (type invariant); the forgotten guard no longer releases
        // them.
        unsafe { b::ferrofs_core_regain(lock.raw.get()) };
        // INVARIANT: this task holds the lock for write again.
        CoreGuard { lock, _not_send: PhantomData }
    }
}

impl<T> Deref for CoreDowngraded<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the rwsem is held for read (type invariant): no writer
        // reaches the data while the guard lives, and readers only get
        // `&T`, which `T: Sync` (the lock's `Sync` bound) allows.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for CoreDowngraded<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task holds the writers' mutex and the rwsem for
        // read (type invariant), and releases them once, as the guard goes.
        unsafe { b::ferrofs_core_unlock_downgraded(self.lock.raw.get()) };
    }
}

/// The lock held for read; unlocks when dropped.
///
/// # Invariants
/// The current task holds `lock.raw` for read. `!Send`, as `CoreGuard`.
pub(crate) struct CoreReadGuard<'a, T> {
    lock: &'a CoreLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for CoreReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held for read (type invariant): no writer
        // reaches the data while the guard lives, and other readers only
        // get `&T`, which `T: Sync` (the lock's `Sync` bound) allows.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for CoreReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task holds the rwsem for read (type invariant) and
        // releases it once, as the guard goes.
        unsafe { b::ferrofs_core_unlock_read(self.lock.raw.get()) };
    }
}
