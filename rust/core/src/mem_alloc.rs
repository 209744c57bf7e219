// SPDX-License-Identifier: GPL-2.0
//! The userspace host's fallible vector, over `alloc::vec::Vec`.
//!
//! The core never touches `alloc` directly: it uses `crate::mem::TryVec`, whose
//! API the kernel host (`rust/vfs/mem.rs`) provides identically over `KVec`.
//! Every growing operation reports allocation failure instead of aborting.

use crate::error::{Error, Result};
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};

/// Largest allocation the kernel host makes without a warning: `kvmalloc`
/// WARNs above `INT_MAX` bytes (mm/util.c), and the VM suite fails on any
/// WARN. The userspace host panics there instead, so the userspace tests
/// catch a size taken from disk before it reaches an allocation.
const KERNEL_ALLOC_LIMIT: usize = i32::MAX as usize;

/// Panics where the kernel host would WARN: see `KERNEL_ALLOC_LIMIT`.
fn check_kernel_limit<T>(total_elems: usize) {
    let bytes = total_elems.saturating_mul(core::mem::size_of::<T>());
    assert!(bytes <= KERNEL_ALLOC_LIMIT, "allocation of {bytes} bytes: the kernel would WARN (kvmalloc above INT_MAX)");
}

/// A growable array whose every allocation can fail with `Error::NoMemory`.
#[derive(Debug, PartialEq, Eq)]
pub struct TryVec<T>(Vec<T>);

/// Empty, for any element type (as the kernel host's).
impl<T> Default for TryVec<T> {
    fn default() -> Self {
        TryVec(Vec::new())
    }
}

impl<T> TryVec<T> {
    /// An empty vector; allocates nothing.
    pub const fn new() -> Self {
        TryVec(Vec::new())
    }

    /// An empty vector with room for `n` elements.
    pub fn try_with_capacity(n: usize) -> Result<Self> {
        check_kernel_limit::<T>(n);
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| Error::NoMemory)?;
        Ok(TryVec(v))
    }

    /// Makes room for `n` more elements.
    pub fn try_reserve(&mut self, n: usize) -> Result<()> {
        check_kernel_limit::<T>(self.0.len().saturating_add(n));
        self.0.try_reserve(n).map_err(|_| Error::NoMemory)
    }

    /// Appends `value`.
    pub fn try_push(&mut self, value: T) -> Result<()> {
        self.try_reserve(1)?;
        self.0.push(value);
        Ok(())
    }

    /// Inserts `value` at `index`, shifting the tail right. Panics if
    /// `index > len`, like slice indexing: callers check bounds.
    pub fn try_insert(&mut self, index: usize, value: T) -> Result<()> {
        self.try_reserve(1)?;
        self.0.insert(index, value);
        Ok(())
    }

    /// Removes and returns the element at `index`, shifting the tail left.
    pub fn remove(&mut self, index: usize) -> T {
        self.0.remove(index)
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }

    /// Drops every element past `len`.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }

    /// Drops every element.
    pub fn clear(&mut self) {
        self.0.clear()
    }
}

// `Copy`, as in the kernel's `TryVec`, which copies these with memcpy.
impl<T: Copy> TryVec<T> {
    /// Appends a copy of every element of `other`.
    pub fn try_extend_from_slice(&mut self, other: &[T]) -> Result<()> {
        self.try_reserve(other.len())?;
        self.0.extend_from_slice(other);
        Ok(())
    }

    /// A vector of `n` copies of `value`.
    pub fn try_from_elem(value: T, n: usize) -> Result<Self> {
        let mut v = Self::try_with_capacity(n)?;
        v.0.resize(n, value);
        Ok(v)
    }

    /// Grows or shrinks to `n` elements, filling with `value`.
    pub fn try_resize(&mut self, n: usize, value: T) -> Result<()> {
        if n > self.0.len() {
            self.try_reserve(n - self.0.len())?;
        }
        self.0.resize(n, value);
        Ok(())
    }

    /// A copy of the vector.
    pub fn try_clone(&self) -> Result<Self> {
        let mut v = Self::try_with_capacity(self.0.len())?;
        v.0.extend_from_slice(&self.0);
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
