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
use super::inode::{refresh_fields, Fields};
use super::namei::parts;
use super::{errno_of, now};
use crate::error::{Error as CoreError, Result as CoreResult};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::ffi::c_int;
use kernel::prelude::*;

/// Extents fetched from the core per trip (copying them to the user's
/// array happens outside the core lock).
const FIEMAP_BATCH: usize = 64;

/// Writes back every dirty page of `inode` so the core sees all its data.
///
/// # Safety
/// `inode` is a live ferrofs regular file; no folio of it is locked by us.
unsafe fn settle(inode: *mut b::inode) -> CoreResult<()> {
    // SAFETY: per the contract.
    match unsafe { b::filemap_write_and_wait_range(b::ferrofs_inode_mapping(inode), 0, i64::MAX) } {
        0 => Ok(()),
        _ => Err(CoreError::Io),
    }
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
    // SAFETY: reading immutable constants exported by the shim.
    let (seek_data, seek_hole) = unsafe { (b::FERROFS_SEEK_DATA, b::FERROFS_SEEK_HOLE) };
    if whence != seek_data && whence != seek_hole {
        // SAFETY: the VFS's own llseek for the other whences.
        return unsafe { b::generic_file_llseek(file, offset, whence) };
    }
    // SAFETY: an open ferrofs regular file.
    let inode = unsafe { b::ferrofs_file_inode(file) };
    // SAFETY: as above.
    let (info, _, ino) = unsafe { parts(inode) };
    // SAFETY: live inode; the lock keeps writes and truncates out while
    // the answer is worked out.
    unsafe { b::ferrofs_inode_lock(inode) };
    // SAFETY: live inode.
    let size = unsafe { b::ferrofs_i_size_read(inode) };
    let r = if offset < 0 || offset >= size {
        Err(kernel::error::code::ENXIO)
    } else {
        // SAFETY: live inode, locked by us, no folio locked.
        let found =
            unsafe { settle(inode) }.and_then(|()| {
                info.with_core(|fs| {
                    if whence == seek_data {
                        fs.seek_data(ino, offset as u64)
                    } else {
                        fs.seek_hole(ino, offset as u64).map(Some)
                    }
                })
            });
        match found {
            // The core's size can trail i_size by nothing after a settle;
            // an answer past i_size would still be an implicit hole there.
            Ok(Some(pos)) => Ok((pos as i64).min(size)),
            Ok(None) => Err(kernel::error::code::ENXIO),
            Err(e) => Err(errno_of(e)),
        }
    };
    // SAFETY: locked above.
    unsafe { b::ferrofs_inode_unlock(inode) };
    match r {
        // SAFETY: an open file; vfs_setpos checks the limit and sets f_pos.
        Ok(pos) => unsafe { b::ferrofs_setpos(file, pos) },
        Err(e) => e.to_errno() as i64,
    }
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

/// `->fallocate`: allocate (as zeros), punch a hole, or zero a range.
///
/// # Safety
/// Called by vfs_fallocate with `file` an open ferrofs regular file,
/// opened for writing, inside file_start_write and without the inode's
/// i_rwsem (taken here for the whole change, as by a write). vfs_fallocate
/// has checked that `offset >= 0`, `len > 0` and that `offset + len`
/// neither overflows nor passes s_maxbytes.
pub(crate) unsafe extern "C" fn fallocate(file: *mut b::file, mode: c_int, offset: i64, len: i64) -> isize {
    // SAFETY: reading immutable constants exported by the shim.
    let (keep, punch, zero) =
        unsafe { (b::FERROFS_FALLOC_KEEP_SIZE as u32, b::FERROFS_FALLOC_PUNCH_HOLE as u32, b::FERROFS_FALLOC_ZERO_RANGE as u32) };
    let Some(how) = Falloc::from_mode(mode as u32, keep, punch, zero) else {
        return errno_of(CoreError::NotSupported).to_errno() as isize;
    };
    // vfs_fallocate has checked offset >= 0, len > 0 and the size limit.
    let (offset, len) = (offset as u64, len as u64);
    // SAFETY: an open ferrofs regular file, opened for writing.
    let inode = unsafe { b::ferrofs_file_inode(file) };
    // SAFETY: as above.
    let (info, _, ino) = unsafe { parts(inode) };
    // SAFETY: live inode; held across the whole change like a write.
    unsafe { b::ferrofs_inode_lock(inode) };
    // SAFETY: live, locked inode; no folio locked by us.
    let r = unsafe {
        settle(inode).and_then(|()| {
            if how != (Falloc::Allocate { keep_size: true }) && how != (Falloc::Allocate { keep_size: false }) {
                // Punched or zeroed bytes must not come back from the cache.
                b::truncate_pagecache_range(inode, offset as i64, offset.saturating_add(len - 1) as i64);
            }
            push_times(info, inode, ino)
        })
    }
    .and_then(|()| {
        let t = now();
        info.with_core(|fs| {
            match how {
                Falloc::Allocate { keep_size } => fs.fallocate(ino, offset, len, keep_size, t)?,
                Falloc::PunchHole => fs.punch_hole(ino, offset, len, t)?,
                Falloc::ZeroRange { keep_size } => fs.zero_range(ino, offset, len, keep_size, t)?,
            }
            fs.getattr(ino)
        })
    });
    let rc = match r {
        Ok(attr) => {
            // SAFETY: live, locked inode. The core set the times; the size
            // grows here (the page cache may hold a larger one still).
            unsafe {
                refresh_fields(inode, &attr, Fields { size: false, times: true, atime: false });
                let end = offset.saturating_add(len) as i64;
                if !how.keeps_size() && end > b::ferrofs_i_size_read(inode) {
                    b::ferrofs_i_size_write(inode, end);
                }
            }
            0
        }
        Err(e) => errno_of(e).to_errno(),
    };
    // SAFETY: locked above.
    unsafe { b::ferrofs_inode_unlock(inode) };
    rc as isize
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
    let mut len = len;
    // SAFETY: the VFS passes a live inode of ours and the request; prep
    // checks the flags and writes back for FIEMAP_FLAG_SYNC.
    let rc = unsafe { b::ferrofs_fiemap_prep(inode, fieinfo, start, &mut len) };
    if rc != 0 {
        return rc;
    }
    // SAFETY: live inode.
    let (info, _, ino) = unsafe { parts(inode) };
    let end = start.saturating_add(len);
    let mut from = start;
    loop {
        // One extra extent tells whether the last one sent is the last.
        let mut batch: KVec<(u64, u64, u64)> = KVec::new();
        let got = info.with_core(|fs| {
            fs.extents(ino, from, &mut |logical, physical, elen| {
                if logical >= end || batch.len() > FIEMAP_BATCH {
                    return false;
                }
                batch.push((logical, physical, elen), GFP_KERNEL).is_ok()
            })
        });
        if let Err(e) = got {
            return errno_of(e).to_errno();
        }
        let more = batch.len() > FIEMAP_BATCH;
        let send = batch.len().min(FIEMAP_BATCH);
        for (i, &(logical, physical, elen)) in batch.iter().take(send).enumerate() {
            let last = !more && i + 1 == send;
            // SAFETY: live request; copies one extent to the user's array
            // with no ferrofs lock held.
            match unsafe { b::ferrofs_fiemap_fill(fieinfo, logical, physical, elen, last) } {
                0 => {}
                1 => return 0,
                e => return e,
            }
            // The core bounds extents below the maximum file size; an
            // overflow here would still be damage, never a wrap.
            from = match logical.checked_add(elen) {
                Some(next) => next,
                None => return errno_of(CoreError::corrupt("extent end overflows")).to_errno(),
            };
        }
        if !more {
            return 0;
        }
    }
}
