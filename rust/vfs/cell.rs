// SPDX-License-Identifier: GPL-2.0
//! Statics the kernel writes into or keeps pointers to: the file_system_type,
//! operation tables with an `owner` pointer, KUnit suites.

use core::cell::UnsafeCell;

/// A static the kernel may mutate through the pointer we give it.
#[repr(transparent)]
pub(crate) struct KernelStatic<T>(UnsafeCell<T>);

// SAFETY: Rust code only reaches the contents through `get()`, a raw pointer;
// every write through it happens at module init before the pointer is
// published, or is done by the kernel under its own locking (registration
// lists, KUnit's single-threaded runner).
unsafe impl<T> Sync for KernelStatic<T> {}

impl<T> KernelStatic<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        KernelStatic(UnsafeCell::new(value))
    }

    /// The address handed to the kernel.
    pub(crate) const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// A read-only operation table holding raw pointers (such as `owner`), which
/// makes it `!Sync` although nothing ever writes to it.
#[repr(transparent)]
pub(crate) struct Vtable<T>(pub(crate) T);

// SAFETY: the table is immutable after compile time; the raw pointers in it
// are only read, by the kernel.
unsafe impl<T> Sync for Vtable<T> {}

/// An all-zero value of a C struct made only of integers, raw pointers and
/// `Option<fn>`s, for which zero is valid ("unset").
pub(crate) const fn zeroed<T: PlainC>() -> T {
    // SAFETY: `PlainC` is only implemented for C structs whose every field
    // accepts the all-zero bit pattern (null pointers, `None` fn pointers,
    // zero integers).
    unsafe { core::mem::zeroed() }
}

/// Marker for C structs whose all-zero bit pattern is a valid value.
///
/// # Safety
/// Implement only for bindgen structs of integers, raw pointers, arrays of
/// those and `Option<extern fn>` fields.
pub(crate) unsafe trait PlainC {}

// SAFETY: each is a bindgen struct of pointers, integers, Option<fn> and
// lock_class_key (zero-sized or integers under lockdep).
unsafe impl PlainC for super::bindings::file_system_type {}
// SAFETY: fn pointers only.
unsafe impl PlainC for super::bindings::fs_context_operations {}
// SAFETY: fn pointers only.
unsafe impl PlainC for super::bindings::super_operations {}
// SAFETY: fn pointers and the module owner pointer.
unsafe impl PlainC for super::bindings::file_operations {}
// SAFETY: fn pointers only.
unsafe impl PlainC for super::bindings::inode_operations {}
// SAFETY: fn pointers, a name pointer, integer status and pointers.
unsafe impl PlainC for super::bindings::kunit_case {}
// SAFETY: a name array, fn pointers, pointers and integers.
unsafe impl PlainC for super::bindings::kunit_suite {}
// SAFETY: fn pointers only.
unsafe impl PlainC for super::bindings::address_space_operations {}
// SAFETY: a name/prefix pointer, flags and fn pointers.
unsafe impl PlainC for super::bindings::xattr_handler {}
