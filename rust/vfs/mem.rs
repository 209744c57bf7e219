// SPDX-License-Identifier: GPL-2.0
//! The kernel host's fallible vector for the core, over `KVVec`.
//!
//! Mounted as `crate::mem` in the module so the core's `crate::mem::TryVec`
//! resolves here; the API matches `rust/core/src/mem_alloc.rs` exactly.
//! `KVVec` (kvmalloc) lets large vectors fall back to vmalloc instead of
//! failing on fragmented memory.

use crate::error::{Error, Result};
use core::ops::{Deref, DerefMut};
use kernel::alloc::{flags::GFP_KERNEL, KVVec};

/// A growable array whose every allocation can fail with `Error::NoMemory`.
pub(crate) struct TryVec<T>(KVVec<T>);

impl<T> Default for TryVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for TryVec<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for TryVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0[..] == other.0[..]
    }
}

impl<T: Eq> Eq for TryVec<T> {}

fn nomem(_: kernel::alloc::AllocError) -> Error {
    Error::NoMemory
}

/// `kvmalloc` WARNs above `INT_MAX` bytes. The core bounds every size it
/// takes from disk long before that (the userspace host panics there so its
/// tests find any that slips through); here such a request fails quietly.
fn within_kvmalloc_limit<T>(total_elems: usize) -> Result<()> {
    match total_elems.checked_mul(core::mem::size_of::<T>()) {
        Some(bytes) if bytes <= i32::MAX as usize => Ok(()),
        _ => Err(Error::NoMemory),
    }
}

impl TryVec<u8> {
    /// Gives up the buffer to C code that frees it with `kvfree`: its
    /// pointer (null when nothing was allocated) and length in bytes.
    pub(crate) fn into_kvmalloc(self) -> (*mut u8, usize) {
        let (ptr, len, cap) = self.0.into_raw_parts();
        // KVVec allocates with kvmalloc, whose memory kvfree takes back;
        // with no capacity the pointer is dangling, and nothing to free.
        (if cap == 0 { core::ptr::null_mut() } else { ptr }, len)
    }
}

impl<T> TryVec<T> {
    /// An empty vector; allocates nothing.
    pub(crate) const fn new() -> Self {
        TryVec(KVVec::new())
    }

    /// An empty vector with room for `n` elements.
    pub(crate) fn try_with_capacity(n: usize) -> Result<Self> {
        within_kvmalloc_limit::<T>(n)?;
        KVVec::with_capacity(n, GFP_KERNEL).map(TryVec).map_err(nomem)
    }

    /// Makes room for `n` more elements.
    pub(crate) fn try_reserve(&mut self, n: usize) -> Result<()> {
        within_kvmalloc_limit::<T>(self.0.len().saturating_add(n))?;
        self.0.reserve(n, GFP_KERNEL).map_err(nomem)
    }

    /// Appends `value`.
    pub(crate) fn try_push(&mut self, value: T) -> Result<()> {
        self.0.push(value, GFP_KERNEL).map_err(nomem)
    }

    /// Inserts `value` at `index`, shifting the tail right.
    pub(crate) fn try_insert(&mut self, index: usize, value: T) -> Result<()> {
        if index > self.0.len() {
            return Err(Error::Bug("TryVec::try_insert index out of range"));
        }
        self.try_push(value)?;
        self.0[index..].rotate_right(1);
        Ok(())
    }

    /// Removes and returns the element at `index`, shifting the tail left.
    /// The caller guarantees `index < len`, as with slice indexing.
    pub(crate) fn remove(&mut self, index: usize) -> T {
        // Indexing is the bounds check, as for `Vec::remove`: callers keep
        // `index < len`.
        let _ = &self.0[index];
        self.0[index..].rotate_left(1);
        let last = self.0.len() - 1;
        // SAFETY: the rotation above succeeded, so `index < len` and `last`
        // is an initialised slot holding the removed element; shrinking the
        // length first hands ownership of it to the read below.
        unsafe {
            self.0.set_len(last);
            core::ptr::read(self.0.as_ptr().add(last))
        }
    }

    /// Removes and returns the last element.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let len = self.0.len();
        if len == 0 {
            return None;
        }
        // SAFETY: `len - 1 < len`, so the slot is initialised; shrinking the
        // length first means the vector no longer owns it, so reading it out
        // moves the value without a double drop.
        unsafe {
            self.0.set_len(len - 1);
            Some(core::ptr::read(self.0.as_ptr().add(len - 1)))
        }
    }

    /// Drops every element past `len`: the length is cut at once and the
    /// tail dropped in place, so clearing a buffer of plain bytes (a node,
    /// a commit's staging buffer) costs nothing per byte.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.0.len() {
            return;
        }
        let tail: *mut [T] = &mut self.0[len..];
        // SAFETY: `len` is below the length, so cutting the length there
        // keeps the first `len` elements initialised; the elements of
        // `tail` are initialised and, after the cut, owned by no one but
        // this drop, which runs once.
        unsafe {
            self.0.set_len(len);
            core::ptr::drop_in_place(tail);
        }
    }

    /// Drops every element.
    pub(crate) fn clear(&mut self) {
        self.truncate(0)
    }
}

// Copies here go by `copy_nonoverlapping` (memcpy) rather than through
// `KVVec::extend_from_slice` / `extend_with`, which clone element by
// element: at the kernel's -Os that is a byte loop over every node the core
// copies or zero-fills (4 KiB each). Every element type the core keeps in
// these vectors is `Copy`.
impl<T: Copy> TryVec<T> {
    /// Room for `n` more elements: the pointer to the first of the `n`
    /// unused slots past the current length.
    fn spare_for(&mut self, n: usize) -> Result<*mut T> {
        self.try_reserve(n)?;
        let spare = self.0.spare_capacity_mut();
        if spare.len() < n {
            return Err(Error::Bug("TryVec reserve left too little room"));
        }
        Ok(spare.as_mut_ptr().cast::<T>())
    }

    /// Appends a copy of every element of `other`.
    pub(crate) fn try_extend_from_slice(&mut self, other: &[T]) -> Result<()> {
        let n = other.len();
        let len = self.0.len();
        let dst = self.spare_for(n)?;
        // SAFETY: `dst` is the start of at least `n` unused slots of our
        // own allocation (`spare_for`), which `other`, a shared borrow
        // alive beside `&mut self`, cannot overlap; `MaybeUninit<T>` has
        // `T`'s layout and `T: Copy` needs no drop or clone.
        unsafe { core::ptr::copy_nonoverlapping(other.as_ptr(), dst, n) };
        // SAFETY: the `n` slots past `len` were written just above, within
        // the capacity `spare_for` reserved.
        unsafe { self.0.set_len(len + n) };
        Ok(())
    }

    /// Appends `n` copies of `value`: one written, then doubled by copies.
    fn extend_copies(&mut self, n: usize, value: T) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let len = self.0.len();
        let dst = self.spare_for(n)?;
        // SAFETY: `dst` starts at least `n` unused slots of our allocation
        // (`spare_for`). Each copy reads the `done` slots already written
        // and writes the next `take <= done` ones, which do not overlap
        // them, all below `n`.
        unsafe {
            dst.write(value);
            let mut done = 1;
            while done < n {
                let take = done.min(n - done);
                core::ptr::copy_nonoverlapping(dst, dst.add(done), take);
                done += take;
            }
        }
        // SAFETY: the `n` slots past `len` were written just above, within
        // the capacity `spare_for` reserved.
        unsafe { self.0.set_len(len + n) };
        Ok(())
    }

    /// A vector of `n` copies of `value`.
    pub(crate) fn try_from_elem(value: T, n: usize) -> Result<Self> {
        let mut v = Self::try_with_capacity(n)?;
        v.extend_copies(n, value)?;
        Ok(v)
    }

    /// Grows or shrinks to `n` elements, filling with `value`.
    pub(crate) fn try_resize(&mut self, n: usize, value: T) -> Result<()> {
        if n > self.0.len() {
            self.extend_copies(n - self.0.len(), value)
        } else {
            self.truncate(n);
            Ok(())
        }
    }

    /// A copy of the vector.
    pub(crate) fn try_clone(&self) -> Result<Self> {
        let mut v = Self::try_with_capacity(self.0.len())?;
        v.try_extend_from_slice(&self.0)?;
        Ok(v)
    }
}

impl<T> Deref for TryVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> DerefMut for TryVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}
