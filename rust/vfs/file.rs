// SPDX-License-Identifier: GPL-2.0
//! Regular files: the VFS's generic page-cache read, write, mmap and splice
//! over `aops`, O_DIRECT reads and writes beside them (`direct_io`), and
//! fsync as writeback plus the core's cheapest durable tier (a fast-commit
//! record or a full commit).
//!
//! While a file is in memory its VFS inode is where size and times are
//! current: writes grow i_size and mtime in the page cache, and the core
//! learns the data at writeback and the times at write_inode or fsync.

use super::bindings as b;
use super::cell::{zeroed, Vtable};
use super::inode::INode;
use super::types::{from_result, File};
use crate::error::Result as CoreResult;
use crate::fs::SetAttr;
use kernel::ffi::c_int;
use kernel::prelude::*;

pub(crate) static FILE_OPS: Vtable<b::file_operations> = Vtable(b::file_operations {
    llseek: Some(super::extents::llseek),
    fallocate: Some(super::extents::fallocate),
    open: Some(b::ferrofs_file_open),
    read_iter: Some(super::direct_io::read_iter),
    write_iter: Some(super::direct_io::write_iter),
    mmap: Some(b::generic_file_mmap),
    fsync: Some(fsync),
    splice_read: Some(b::filemap_splice_read),
    splice_write: Some(b::iter_file_splice_write),
    unlocked_ioctl: Some(super::ioctl::ioctl),
    ..zeroed()
});

/// Hands the VFS inode's times to the core (they run ahead of it between
/// a write(2) and writeback).
pub(crate) fn push_times(inode: &INode) -> CoreResult<()> {
    let (change, ctime) = times_change(inode);
    inode.with_core(|fs, sv| fs.setattr(sv, inode.ino(), &change, ctime).map(drop))
}

/// The change that gives the core the VFS inode's times, and its ctime.
fn times_change(inode: &INode) -> (SetAttr, crate::format::Timespec) {
    let [atime, mtime, ctime] = inode.times();
    (SetAttr { atime: Some(atime), mtime: Some(mtime), ctime: Some(ctime), ..SetAttr::default() }, ctime)
}

/// fsync and fdatasync, of files and directories: the range's dirty pages
/// written back, then the core makes the inode durable by the cheapest
/// tier that can (`crate::fast_commit`: one record and one flush, or a
/// full commit), so its data, metadata and names are durable on return.
/// A record's flush is issued outside the core lock and shared by the
/// fsyncs waiting together (`FsInfo::fsync`, `crate::group_commit`).
/// fdatasync takes the same path: a record costs no more than its data.
///
/// # Safety
/// Called by vfs_fsync_range with `file` an open ferrofs regular file or
/// directory (both tables have this), taking no lock around it: no
/// i_rwsem, folio lock or core lock is held, as writeback here locks the
/// file's folios and then the core lock is taken.
pub(crate) unsafe extern "C" fn fsync(file: *mut b::file, start: i64, end: i64, _datasync: c_int) -> c_int {
    // SAFETY: the VFS passes an open ferrofs file, held open for the call.
    let file = unsafe { File::from_raw(file) };
    from_result(|| do_fsync(file, start, end))
}

/// fsync's body; the caller holds no lock of this filesystem.
fn do_fsync(file: &File, start: i64, end: i64) -> Result {
    file.write_and_wait_range(start, end)?;
    let inode = file.inode();
    if inode.super_block().is_read_only() {
        // Nothing can be dirty: writeback above had nothing to write.
        return Ok(());
    }
    if inode.subvol().is_deleted() {
        // Its subvolume is gone from the core: what it wrote before the
        // delete is committed with everything else.
        return Ok(inode.info().commit_or_fail()?);
    }
    // The times go to the core in the same hold of its lock as the fsync:
    // fsyncs running together take the lock once each, not twice.
    let (times, ctime) = times_change(inode);
    let ino = inode.ino();
    let push = |fs: &mut crate::fs::Filesystem<super::device::KernelDevice>, sv| fs.setattr(sv, ino, &times, ctime).map(drop);
    Ok(inode.info().fsync(inode.subvol(), ino, push)?)
}
