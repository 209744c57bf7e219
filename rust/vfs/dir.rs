// SPDX-License-Identifier: GPL-2.0
//! Directory operations: lookup and readdir (the namespace changes are in
//! `namei`).
//!
//! readdir positions are the core's stable per-directory cookies (0 and 1
//! are "." and ".."), so telldir/seekdir stay valid while entries come and
//! go. Entries are fetched from the core in batches under its lock and then
//! copied to user memory with the lock dropped.

use super::bindings as b;
use super::cell::{zeroed, Vtable};
use super::{errno_of, inode, namei};
use crate::error::Error as CoreError;
use kernel::prelude::*;

/// How many entries one trip into the core fetches.
const READDIR_BATCH: usize = 64;

pub(crate) static DIR_INODE_OPS: b::inode_operations = b::inode_operations {
    tmpfile: Some(namei::tmpfile),
    lookup: Some(lookup),
    create: Some(namei::create),
    link: Some(namei::link),
    unlink: Some(namei::unlink),
    symlink: Some(namei::symlink),
    mkdir: Some(namei::mkdir),
    rmdir: Some(namei::rmdir),
    mknod: Some(namei::mknod),
    rename: Some(namei::rename),
    ..super::inode::ATTR_ACL_FLAG_OPS
};

pub(crate) static DIR_FILE_OPS: Vtable<b::file_operations> = Vtable(b::file_operations {
    llseek: Some(b::generic_file_llseek),
    read: Some(b::generic_read_dir),
    iterate_shared: Some(iterate_shared),
    fsync: Some(super::file::fsync),
    unlocked_ioctl: Some(super::ioctl::ioctl),
    ..zeroed()
});

/// `->lookup`: looks `dentry`'s name up in `dir` and splices in the inode,
/// or leaves the dentry negative.
///
/// # Safety
/// Called by the VFS with `dir` a live ferrofs directory whose i_rwsem it
/// holds (shared at least, locking.rst) and `dentry` a new negative dentry
/// for the name under it, whose name that lock keeps stable for the call.
/// `_flags` (LOOKUP_*) is not used.
unsafe extern "C" fn lookup(dir: *mut b::inode, dentry: *mut b::dentry, _flags: u32) -> *mut b::dentry {
    // SAFETY: the VFS passes a live dentry whose name is stable during lookup.
    let name = match unsafe { namei::name_of(dentry) } {
        Ok(n) => n,
        // SAFETY: ERR_PTR encoding of a negative errno.
        Err(e) => return unsafe { b::ferrofs_err_ptr(errno_of(e).to_errno() as _) }.cast(),
    };
    // SAFETY: `dir` is a live ferrofs directory inode.
    let (info, sb, dir_ino) = unsafe { namei::parts(dir) };
    let found = match info.lookup(dir_ino, name) {
        Ok(ino) => {
            // SAFETY: the super_block of a live inode is live and mounted.
            match unsafe { inode::iget(sb, ino, None) } {
                Ok(i) => kernel::types::ARef::into_raw(i).as_ptr().cast::<b::inode>(),
                // SAFETY: ERR_PTR encoding of a negative errno.
                Err(e) => return unsafe { b::ferrofs_err_ptr(errno_of(e).to_errno() as _) }.cast(),
            }
        }
        Err(CoreError::NotFound) => core::ptr::null_mut(),
        // SAFETY: ERR_PTR encoding of a negative errno.
        Err(e) => return unsafe { b::ferrofs_err_ptr(errno_of(e).to_errno() as _) }.cast(),
    };
    // SAFETY: d_splice_alias takes over the inode reference (or NULL for a
    // negative dentry) and handles the dentry.
    unsafe { b::ferrofs_d_splice_alias(found, dentry) }
}

/// `->iterate_shared`: readdir, in core cookie order.
///
/// # Safety
/// Called by iterate_dir with `file` an open ferrofs directory whose i_rwsem
/// is held shared (locking.rst) and `ctx` the live dir_context of the call,
/// `ctx->pos` loaded from f_pos (any value userspace may have set). The
/// entries are copied out with no ferrofs lock held.
unsafe extern "C" fn iterate_shared(file: *mut b::file, ctx: *mut b::dir_context) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes a live open directory and its dir_context.
    match unsafe { try_iterate(file, ctx) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// readdir's body, with a kernel `Result`.
///
/// # Safety
/// As for `iterate_shared`: `file` is an open ferrofs directory whose
/// i_rwsem is held shared and `ctx` its live dir_context.
unsafe fn try_iterate(file: *mut b::file, ctx: *mut b::dir_context) -> Result {
    // SAFETY: live file and context (caller).
    if !unsafe { b::ferrofs_dir_emit_dots(file, ctx) } {
        return Ok(());
    }
    // SAFETY: the inode of an open file is live.
    let (info, _, dir_ino) = unsafe { namei::parts(b::ferrofs_file_inode(file)) };
    loop {
        let mut batch = KVec::new();
        // SAFETY: live context (caller).
        let pos = unsafe { b::ferrofs_dir_pos(ctx) } as u64;
        info.readdir(dir_ino, pos, &mut batch, READDIR_BATCH).map_err(errno_of)?;
        if batch.is_empty() {
            return Ok(());
        }
        for e in batch.iter() {
            // SAFETY: live context; `name` is valid for its length. The core
            // lock is not held here, so faults while copying out are fine.
            // FileType's values are the DT_* constants.
            unsafe {
                if !b::ferrofs_dir_emit(ctx, e.name.as_ptr().cast(), e.name.len() as i32, e.ino, e.file_type as u32) {
                    return Ok(());
                }
                b::ferrofs_dir_set_pos(ctx, e.next_cookie as i64);
            }
        }
    }
}
