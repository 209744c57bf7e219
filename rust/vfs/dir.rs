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
use super::inode::INode;
use super::namei;
use super::types::{from_result, Dentry, File};
use crate::error::Error as CoreError;
use kernel::prelude::*;
use kernel::types::{ARef, Opaque};

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
/// `flags` are the LOOKUP_* flags of the path walk.
unsafe extern "C" fn lookup(dir: *mut b::inode, dentry: *mut b::dentry, flags: u32) -> *mut b::dentry {
    // SAFETY: the VFS passes a live directory, locked for the call, and a
    // dentry under it whose name that lock keeps stable.
    let (dir, dentry) = unsafe { (INode::from_raw(dir), Dentry::from_raw(dentry)) };
    // SAFETY: reading an immutable constant defined in shim.c.
    let creating = flags & unsafe { b::FERROFS_LOOKUP_CREATE } != 0;
    from_result(|| {
        let found = lookup_in(dir, dentry, creating)?;
        // SAFETY: `dentry` is the new negative dentry of this lookup.
        Ok(unsafe { dentry.splice_alias(found) })
    })
}

/// lookup's body: the inode `dentry`'s name leads to in `dir`, or None.
/// A lookup for a create (`creating`, LOOKUP_CREATE: open with O_CREAT,
/// mkdir, mknod, symlink, link, a rename's target) runs under the core
/// lock taken for write: the descent leaves its fingers
/// (`btree::Fingers`) in the writer's own slots, which readers do not
/// churn, for the create that follows at once to find its leaves by.
/// Other lookups take the shared read path.
fn lookup_in(dir: &INode, dentry: &Dentry, creating: bool) -> Result<Option<ARef<INode>>> {
    let name = namei::checked_name(dentry)?;
    // A name that is a subvolume leads to that subvolume's root directory.
    // The attributes come with the name, in one call into the core, unless
    // the name leads into another subvolume.
    let ino = dir.ino();
    let locked = |fs: &mut crate::fs::Filesystem<super::device::KernelDevice>, sv| fs.lookup_attr(sv, ino, name);
    let found = match creating {
        true => dir.with_core_read(locked),
        false => dir.with_core_shared(|fs, wants, sv| fs.lookup_attr_cached(wants, sv, ino, name), locked),
    };
    match found {
        Ok((sv, ino, attr)) => Ok(Some(dir.super_block().iget(sv, ino, attr.as_ref())?)),
        Err(CoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The position and output of a readdir.
///
/// # Invariants
/// The dir_context of an iterate_shared call in progress, live for the
/// borrow and used by this thread only.
#[repr(transparent)]
struct DirContext(Opaque<b::dir_context>);

impl DirContext {
    /// Borrows a dir_context as a `DirContext`.
    ///
    /// # Safety
    /// `ptr` is the dir_context of an iterate_shared call in progress, live
    /// for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::dir_context) -> &'a Self {
        // SAFETY: `DirContext` is a transparent wrapper of `dir_context`.
        // INVARIANT: the caller guarantees a live context for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Emits "." and ".." of `dir` if the position is before them; false
    /// once the caller's buffer is full.
    fn emit_dots(&self, dir: &File) -> bool {
        // SAFETY: a live context (type invariant) and an open directory.
        unsafe { b::ferrofs_dir_emit_dots(dir.as_ptr(), self.0.get()) }
    }

    /// The position: a core cookie (any value userspace may have set).
    fn pos(&self) -> u64 {
        // SAFETY: a live context (type invariant).
        unsafe { b::ferrofs_dir_pos(self.0.get()) as u64 }
    }

    /// Moves the position on.
    fn set_pos(&self, pos: i64) {
        // SAFETY: a live context (type invariant).
        unsafe { b::ferrofs_dir_set_pos(self.0.get(), pos) }
    }

    /// Copies one entry out (dir_emit); false once the buffer is full.
    /// Must be called with no ferrofs lock held (the copy may fault).
    fn emit(&self, name: &[u8], ino: u64, dtype: u32) -> bool {
        // SAFETY: a live context (type invariant); `name` is valid for its
        // length.
        unsafe { b::ferrofs_dir_emit(self.0.get(), name.as_ptr().cast(), name.len() as i32, ino, dtype) }
    }
}

/// `->iterate_shared`: readdir, in core cookie order.
///
/// # Safety
/// Called by iterate_dir with `file` an open ferrofs directory whose i_rwsem
/// is held shared (locking.rst) and `ctx` the live dir_context of the call,
/// `ctx->pos` loaded from f_pos (any value userspace may have set). The
/// entries are copied out with no ferrofs lock held.
unsafe extern "C" fn iterate_shared(file: *mut b::file, ctx: *mut b::dir_context) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes an open directory and the live dir_context of
    // this call, both for the call.
    let (file, ctx) = unsafe { (File::from_raw(file), DirContext::from_raw(ctx)) };
    from_result(|| iterate(file, ctx))
}

/// readdir's body; the caller holds no ferrofs lock.
fn iterate(file: &File, ctx: &DirContext) -> Result {
    if !ctx.emit_dots(file) {
        return Ok(());
    }
    let dir = file.inode();
    let (info, dir_ino) = (dir.info(), dir.ino());
    loop {
        let mut batch = KVec::new();
        info.readdir(dir.subvol(), dir_ino, ctx.pos(), &mut batch, READDIR_BATCH)?;
        if batch.is_empty() {
            return Ok(());
        }
        for e in batch.iter() {
            // The core lock is not held here, so faults while copying out
            // are fine. FileType's values are the DT_* constants.
            if !ctx.emit(&e.name, e.ino, e.file_type as u32) {
                return Ok(());
            }
            ctx.set_pos(e.next_cookie as i64);
        }
    }
}
