// SPDX-License-Identifier: GPL-2.0
//! Where a file's data lies and changing that without writing it:
//! llseek with SEEK_DATA/SEEK_HOLE, fallocate (allocate, keep size, punch
//! a hole, zero a range) and FIEMAP, over the core's extent calls.
//!
//! The core only knows data that has been written back, so each call first
//! writes the file's dirty pages back (and hands the VFS times over); the
//! page cache of a punched or zeroed range is dropped before the core
//! frees the blocks under it.

use super::bindings as b;
use super::file::push_times;
use super::inode::{Fields, INode};
use super::now;
use super::types::{from_result, File};
use crate::error::Error as CoreError;
use crate::fs::ExtentState;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::code::ENXIO;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::Opaque;

/// Extents fetched from the core per trip (copying them to the user's
/// array happens outside the core lock).
const FIEMAP_BATCH: usize = 64;

/// SEEK_DATA and SEEK_HOLE.
fn seek_whences() -> (c_int, c_int) {
    // SAFETY: reading immutable constants exported by the shim.
    unsafe { (b::FERROFS_SEEK_DATA, b::FERROFS_SEEK_HOLE) }
}

/// `->llseek` of regular files: SEEK_DATA and SEEK_HOLE from the core's
/// extents, every other whence through generic_file_llseek.
///
/// # Safety
/// Called by vfs_llseek with `file` an open ferrofs regular file (only
/// `FILE_OPS` has this) and no lock held: llseek does its own locking
/// (locking.rst), here the inode's i_rwsem around the search, taken with
/// no folio lock or core lock held.
pub(crate) unsafe extern "C" fn llseek(file: *mut b::file, offset: i64, whence: c_int) -> i64 {
    // SAFETY: the VFS passes an open ferrofs file, held open for the call.
    let file = unsafe { File::from_raw(file) };
    from_result(|| seek(file, offset, whence))
}

/// llseek's body; the caller holds no lock of this filesystem.
fn seek(file: &File, offset: i64, whence: c_int) -> Result<i64> {
    let (seek_data, seek_hole) = seek_whences();
    if whence != seek_data && whence != seek_hole {
        // The position or a negative errno, passed on as it is.
        return Ok(file.generic_llseek(offset, whence));
    }
    let inode = file.inode();
    let ino = inode.ino();
    let pos = {
        // The lock keeps writes and truncates out while the answer is
        // worked out.
        let inode = inode.lock();
        let size = inode.size();
        if offset < 0 || offset >= size {
            return Err(ENXIO);
        }
        inode.write_back_all()?;
        let found = inode.with_core(|fs, sv| {
            if whence == seek_data {
                fs.seek_data(sv, ino, offset as u64)
            } else {
                fs.seek_hole(sv, ino, offset as u64).map(Some)
            }
        })?;
        // The core's size can trail i_size by nothing after a write-back;
        // an answer past i_size would still be an implicit hole there.
        (found.ok_or(ENXIO)? as i64).min(size)
    };
    file.set_pos(pos)
}

/// The fallocate modes ferrofs carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Falloc {
    Allocate { keep_size: bool },
    PunchHole,
    ZeroRange { keep_size: bool },
}

impl Falloc {
    /// The mode for fallocate's flags, or None (EOPNOTSUPP) for one ferrofs
    /// does not do: collapse, insert, unshare, or a punch that may change
    /// the size.
    pub(crate) fn from_mode(mode: u32, keep: u32, punch: u32, zero: u32) -> Option<Self> {
        let keep_size = mode & keep != 0;
        match mode & !keep {
            0 => Some(Falloc::Allocate { keep_size }),
            m if m == punch && keep_size => Some(Falloc::PunchHole),
            m if m == zero => Some(Falloc::ZeroRange { keep_size }),
            _ => None,
        }
    }

    fn keeps_size(self) -> bool {
        match self {
            Falloc::Allocate { keep_size } | Falloc::ZeroRange { keep_size } => keep_size,
            Falloc::PunchHole => true,
        }
    }
}

/// FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE and FALLOC_FL_ZERO_RANGE.
fn falloc_flags() -> (u32, u32, u32) {
    // SAFETY: reads three immutable constants the shim exports.
    unsafe { (b::FERROFS_FALLOC_KEEP_SIZE as u32, b::FERROFS_FALLOC_PUNCH_HOLE as u32, b::FERROFS_FALLOC_ZERO_RANGE as u32) }
}

/// `->fallocate`: allocate (as zeros), punch a hole, or zero a range.
///
/// # Safety
/// Called by vfs_fallocate with `file` an open ferrofs regular file,
/// opened for writing, inside file_start_write and without the inode's
/// i_rwsem (taken here for the whole change, as by a write). vfs_fallocate
/// has checked that `offset >= 0`, `len > 0` and that `offset + len`
/// neither overflows nor passes s_maxbytes.
pub(crate) unsafe extern "C" fn fallocate(file: *mut b::file, mode: c_int, offset: i64, len: i64) -> isize {
    // SAFETY: the VFS passes an open ferrofs file, held open for the call.
    let file = unsafe { File::from_raw(file) };
    // vfs_fallocate has checked offset >= 0, len > 0 and the size limit.
    from_result(|| allocate(file.inode(), mode as u32, offset as u64, len as u64).map(|()| 0isize))
}

/// fallocate's body, for `len > 0` bytes at `offset`; the caller holds no
/// lock of this filesystem.
fn allocate(inode: &INode, mode: u32, offset: u64, len: u64) -> Result {
    let (keep, punch, zero) = falloc_flags();
    let how = Falloc::from_mode(mode, keep, punch, zero).ok_or(CoreError::NotSupported)?;
    // Before the page cache is cut: a read-only subvolume keeps its data.
    inode.subvol().check_writable()?;
    // Held across the whole change, like a write.
    let inode = inode.lock();
    let ino = inode.ino();
    let end = offset.saturating_add(len) as i64;
    if !how.keeps_size() && end > inode.size() {
        // A file grown by fallocate obeys RLIMIT_FSIZE as one grown by a
        // write does, before anything is allocated.
        inode.check_new_size(end)?;
    }
    inode.write_back_all()?;
    if how != (Falloc::Allocate { keep_size: true }) && how != (Falloc::Allocate { keep_size: false }) {
        // Punched or zeroed bytes must not come back from the cache.
        inode.truncate_pagecache_range(offset as i64, offset.saturating_add(len - 1) as i64);
    }
    push_times(&inode)?;
    let t = now();
    let attr = inode.with_core(|fs, sv| {
        match how {
            Falloc::Allocate { keep_size } => fs.fallocate(sv, ino, offset, len, keep_size, t)?,
            Falloc::PunchHole => fs.punch_hole(sv, ino, offset, len, t)?,
            Falloc::ZeroRange { keep_size } => fs.zero_range(sv, ino, offset, len, keep_size, t)?,
        }
        fs.getattr(sv, ino)
    })?;
    // The core set the times; the size grows here (the page cache may hold
    // a larger one still).
    inode.refresh_fields(&attr, Fields { size: false, times: true, atime: false });
    if !how.keeps_size() && end > inode.size() {
        inode.set_size(end);
    }
    Ok(())
}

/// A FIEMAP request in progress.
///
/// # Invariants
/// The fiemap_extent_info of an ioctl_fiemap call, live for the borrow;
/// its extent array is user memory, written only through
/// fiemap_fill_next_extent.
#[repr(transparent)]
struct FiemapInfo(Opaque<b::fiemap_extent_info>);

impl FiemapInfo {
    /// Borrows a request as a `FiemapInfo`.
    ///
    /// # Safety
    /// `ptr` is the live request of an ioctl_fiemap call in progress, live
    /// for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::fiemap_extent_info) -> &'a Self {
        // SAFETY: `FiemapInfo` is a transparent wrapper of the C struct.
        // INVARIANT: the caller guarantees a live request for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// fiemap_prep: checks the flags, writes back for FIEMAP_FLAG_SYNC and
    /// clamps `len` to the file size limit.
    fn prep(&self, inode: &INode, start: u64, len: &mut u64) -> Result {
        // SAFETY: a live request (type invariant) and a live inode.
        kernel::error::to_result(unsafe { b::ferrofs_fiemap_prep(inode.as_ptr(), self.0.get(), start, len) })
    }

    /// Copies one extent to the user's array (`state.shared`: another
    /// subvolume also uses it, FIEMAP_EXTENT_SHARED; `state.unwritten`:
    /// preallocated, FIEMAP_EXTENT_UNWRITTEN); `Ok(true)` once the array is
    /// full. Must be called with no ferrofs lock held (it may fault).
    fn fill(&self, logical: u64, physical: u64, len: u64, last: bool, state: ExtentState) -> Result<bool> {
        // SAFETY: a live request (type invariant); the shim writes the user
        // array through fiemap_fill_next_extent.
        match unsafe { b::ferrofs_fiemap_fill(self.0.get(), logical, physical, len, last, state.shared, state.unwritten) } {
            0 => Ok(false),
            1 => Ok(true),
            e => Err(Error::from_errno(e)),
        }
    }
}

/// `->fiemap` of regular files (FS_IOC_FIEMAP).
///
/// # Safety
/// Called by ioctl_fiemap with `inode` a live ferrofs regular file (only
/// `FILE_INODE_OPS` has this) held by the open file, without its i_rwsem
/// (locking.rst), and `fieinfo` the live request, whose extent array is
/// user memory written only by fiemap_fill_next_extent, with no ferrofs
/// lock held.
pub(crate) unsafe extern "C" fn fiemap(inode: *mut b::inode, fieinfo: *mut b::fiemap_extent_info, start: u64, len: u64) -> c_int {
    // SAFETY: ioctl_fiemap passes a ferrofs inode pinned by the open file
    // and its live request, both for the call.
    let (inode, fieinfo) = unsafe { (INode::from_raw(inode), FiemapInfo::from_raw(fieinfo)) };
    from_result(|| map_extents(inode, fieinfo, start, len))
}

/// fiemap's body; the caller holds no lock of this filesystem.
fn map_extents(inode: &INode, fieinfo: &FiemapInfo, start: u64, len: u64) -> Result {
    let mut len = len;
    fieinfo.prep(inode, start, &mut len)?;
    let ino = inode.ino();
    let end = start.saturating_add(len);
    let mut from = start;
    loop {
        // One extra extent tells whether the last one sent is the last.
        let mut batch: KVec<(u64, u64, u64, ExtentState)> = KVec::new();
        inode.with_core(|fs, sv| {
            fs.extents(sv, ino, from, &mut |logical, physical, elen, state| {
                if logical >= end || batch.len() > FIEMAP_BATCH {
                    return false;
                }
                batch.push((logical, physical, elen, state), GFP_KERNEL).is_ok()
            })
        })?;
        let more = batch.len() > FIEMAP_BATCH;
        let send = batch.len().min(FIEMAP_BATCH);
        for (i, &(logical, physical, elen, state)) in batch.iter().take(send).enumerate() {
            let last = !more && i + 1 == send;
            // With no ferrofs lock held: the copy may fault.
            if fieinfo.fill(logical, physical, elen, last, state)? {
                return Ok(());
            }
            // The core bounds extents below the maximum file size; an
            // overflow here would still be damage, never a wrap.
            from = logical.checked_add(elen).ok_or(CoreError::corrupt("extent end overflows"))?;
        }
        if !more {
            return Ok(());
        }
    }
}
