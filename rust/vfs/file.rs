// SPDX-License-Identifier: GPL-2.0
//! Regular files: the VFS's generic page-cache read, write, mmap and splice
//! over `aops`, and fsync as writeback plus a full commit.
//!
//! While a file is in memory its VFS inode is where size and times are
//! current: writes grow i_size and mtime in the page cache, and the core
//! learns the data at writeback and the times at write_inode or fsync.

use super::bindings as b;
use super::cell::{zeroed, Vtable};
use super::errno_of;
use super::fs_info::FsInfo;
use super::namei::parts;
use crate::error::Result as CoreResult;
use crate::format::Timespec;
use crate::fs::SetAttr;
use kernel::ffi::c_int;

pub(crate) static FILE_OPS: Vtable<b::file_operations> = Vtable(b::file_operations {
    llseek: Some(super::extents::llseek),
    fallocate: Some(super::extents::fallocate),
    read_iter: Some(b::generic_file_read_iter),
    write_iter: Some(b::generic_file_write_iter),
    mmap: Some(b::generic_file_mmap),
    fsync: Some(fsync),
    splice_read: Some(b::filemap_splice_read),
    splice_write: Some(b::iter_file_splice_write),
    unlocked_ioctl: Some(super::ioctl::ioctl),
    ..zeroed()
});

/// Hands the VFS inode's times to the core (they run ahead of it between
/// a write(2) and writeback).
///
/// # Safety
/// `inode` is a live ferrofs inode whose number is `ino`.
pub(crate) unsafe fn push_times(info: &FsInfo, inode: *mut b::inode, ino: u64) -> CoreResult<()> {
    let (mut sec, mut nsec) = ([0i64; 3], [0u32; 3]);
    // SAFETY: live inode (contract); the arrays have the three slots the
    // shim fills.
    unsafe { b::ferrofs_inode_times(inode, sec.as_mut_ptr(), nsec.as_mut_ptr()) };
    let t = |i: usize| Timespec { sec: sec[i], nsec: nsec[i] };
    let change = SetAttr { atime: Some(t(0)), mtime: Some(t(1)), ctime: Some(t(2)), ..SetAttr::default() };
    info.with_core(|fs| fs.setattr(ino, &change, t(2)).map(drop))
}

/// fsync and fdatasync, of files and directories: the range's dirty pages
/// written back, then a full transaction commit (the cheaper fsync tiers
/// come later), so the file's data and metadata are durable on return.
///
/// # Safety
/// Called by vfs_fsync_range with `file` an open ferrofs regular file or
/// directory (both tables have this), taking no lock around it: no
/// i_rwsem, folio lock or core lock is held, as writeback here locks the
/// file's folios and then the core lock is taken.
pub(crate) unsafe extern "C" fn fsync(file: *mut b::file, start: i64, end: i64, _datasync: c_int) -> c_int {
    // SAFETY: the VFS passes an open ferrofs file.
    let rc = unsafe { b::file_write_and_wait_range(file, start, end) };
    if rc != 0 {
        return rc;
    }
    // SAFETY: the VFS passes an open ferrofs file.
    let inode = unsafe { b::ferrofs_file_inode(file) };
    // SAFETY: as above.
    let (info, _, ino) = unsafe { parts(inode) };
    // SAFETY: live inode of an open file.
    let r = unsafe { push_times(info, inode, ino) }.and_then(|()| info.with_core(|fs| fs.commit()));
    match r {
        Ok(()) => 0,
        Err(e) => errno_of(e).to_errno(),
    }
}
