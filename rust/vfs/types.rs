// SPDX-License-Identifier: GPL-2.0
//! Typed views of the VFS objects callbacks receive (super_block, dentry,
//! file, folio) and `from_result`, the one place where a callback's
//! `Result` becomes an errno or an ERR_PTR.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/dcache.h`](srctree/include/linux/dcache.h),
//! [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h).
//!
//! Each wrapper is `#[repr(transparent)]` over `Opaque<C struct>`, so a
//! `&File` is the kernel's `struct file *`. They are only borrowed from a
//! pointer the VFS passed to a callback (`from_raw`), for no longer than the
//! call; the `# Invariants` section of each says what such a borrow
//! guarantees, and the callback's `// SAFETY:` comment says why the kernel
//! gives that guarantee. The inode wrapper, `INode`, lives in `inode`.

use super::bindings as b;
use super::fs_info::FsInfo;
use super::inode::INode;
use kernel::error::Error;
use kernel::ffi::{c_char, c_int};
use kernel::types::Opaque;

/// A mounted ferrofs super_block.
///
/// # Invariants
/// The super_block is live for the borrow, and its `s_fs_info` is the
/// `FsInfo` fill_super set, which lives until kill_sb, after the last
/// inode and file of the super_block are gone.
#[repr(transparent)]
pub(crate) struct SuperBlock(Opaque<b::super_block>);

impl SuperBlock {
    /// Borrows a super_block as a `SuperBlock`.
    ///
    /// # Safety
    /// `ptr` is a live ferrofs super_block whose fill_super has set
    /// `s_fs_info`, and it stays live for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::super_block) -> &'a Self {
        // SAFETY: `SuperBlock` is a transparent wrapper of `super_block`.
        // INVARIANT: the caller guarantees a live, filled super_block for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::super_block {
        self.0.get()
    }

    /// The mount's state.
    pub(crate) fn info(&self) -> &FsInfo {
        // SAFETY: by the type invariant `s_fs_info` is the FsInfo set by
        // fill_super, which outlives the super_block and so this borrow.
        unsafe { FsInfo::from_sb_info(b::ferrofs_sb_fs_info(self.as_ptr())) }
    }

    /// Writes back and commits the whole filesystem (sync_filesystem, with
    /// s_umount taken by the shim). The caller must not hold s_umount or a
    /// folio lock of this filesystem, or it deadlocks.
    pub(crate) fn sync(&self) {
        // SAFETY: the super_block is live (type invariant); the shim takes
        // s_umount around sync_filesystem itself.
        unsafe { b::ferrofs_sync_sb(self.as_ptr()) }
    }
}

/// An open file of a ferrofs filesystem.
///
/// # Invariants
/// The file is open for the borrow; its inode (`f_inode`) is a live
/// ferrofs inode, pinned by the open file.
#[repr(transparent)]
pub(crate) struct File(Opaque<b::file>);

impl File {
    /// Borrows a file as a `File`.
    ///
    /// # Safety
    /// `ptr` is an open ferrofs file that stays open for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::file) -> &'a Self {
        // SAFETY: `File` is a transparent wrapper of `file`.
        // INVARIANT: the caller guarantees an open ferrofs file for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::file {
        self.0.get()
    }

    /// The file's inode.
    pub(crate) fn inode(&self) -> &INode {
        // SAFETY: an open file pins its inode for as long as it is open
        // (type invariant), which outlives this borrow; it is ours.
        unsafe { INode::from_raw(b::ferrofs_file_inode(self.as_ptr())) }
    }

    /// Writes the byte range's dirty pages back and waits for them
    /// (file_write_and_wait_range, which also reports earlier writeback
    /// errors of this file).
    pub(crate) fn write_and_wait_range(&self, start: i64, end: i64) -> kernel::error::Result {
        // SAFETY: the file is open (type invariant).
        kernel::error::to_result(unsafe { b::file_write_and_wait_range(self.as_ptr(), start, end) })
    }

    /// generic_file_llseek: SEEK_SET, SEEK_CUR and SEEK_END, as the VFS
    /// does them; returns the new position or a negative errno.
    pub(crate) fn generic_llseek(&self, offset: i64, whence: c_int) -> i64 {
        // SAFETY: the file is open (type invariant); the caller of llseek
        // holds f_pos_lock where the VFS needs it.
        unsafe { b::generic_file_llseek(self.as_ptr(), offset, whence) }
    }

    /// Moves the file position to `pos` (vfs_setpos, which checks it
    /// against the file's limit).
    pub(crate) fn set_pos(&self, pos: i64) -> kernel::error::Result<i64> {
        // SAFETY: the file is open (type invariant); called from llseek,
        // whose caller holds f_pos_lock where the VFS needs it.
        let r = unsafe { b::ferrofs_setpos(self.as_ptr(), pos) };
        if r < 0 {
            Err(Error::from_errno(r as c_int))
        } else {
            Ok(r)
        }
    }
}

/// What a callback's successful value becomes at the C boundary, and what
/// an error becomes there.
pub(crate) trait ToCallbackReturn {
    /// The C return type.
    type Ret;
    /// The value for success.
    fn into_ret(self) -> Self::Ret;
    /// The value for `e`: a negative errno, or an ERR_PTR.
    fn from_error(e: Error) -> Self::Ret;
}

/// `int` callbacks: 0 or a negative errno.
impl ToCallbackReturn for () {
    type Ret = c_int;
    fn into_ret(self) -> c_int {
        0
    }
    fn from_error(e: Error) -> c_int {
        e.to_errno()
    }
}

/// `loff_t` callbacks (llseek): the position or a negative errno.
impl ToCallbackReturn for i64 {
    type Ret = i64;
    fn into_ret(self) -> i64 {
        self
    }
    fn from_error(e: Error) -> i64 {
        e.to_errno() as i64
    }
}

/// `long` callbacks (ioctl, fallocate): the value or a negative errno.
impl ToCallbackReturn for isize {
    type Ret = isize;
    fn into_ret(self) -> isize {
        self
    }
    fn from_error(e: Error) -> isize {
        e.to_errno() as isize
    }
}

/// Encodes `e` as an ERR_PTR.
fn err_ptr(e: Error) -> *mut kernel::ffi::c_void {
    // SAFETY: ferrofs_err_ptr only encodes the (negative, in-range) errno in
    // a pointer value.
    unsafe { b::ferrofs_err_ptr(e.to_errno() as _) }
}

/// `struct dentry *` callbacks (lookup): the dentry (NULL allowed) or an
/// ERR_PTR.
impl ToCallbackReturn for *mut b::dentry {
    type Ret = *mut b::dentry;
    fn into_ret(self) -> *mut b::dentry {
        self
    }
    fn from_error(e: Error) -> *mut b::dentry {
        err_ptr(e).cast()
    }
}

/// `const char *` callbacks (get_link): the string or an ERR_PTR.
impl ToCallbackReturn for *const c_char {
    type Ret = *const c_char;
    fn into_ret(self) -> *const c_char {
        self
    }
    fn from_error(e: Error) -> *const c_char {
        err_ptr(e).cast_const().cast()
    }
}

/// Runs a callback's body and turns its result into what C expects.
pub(crate) fn from_result<T: ToCallbackReturn>(f: impl FnOnce() -> Result<T, Error>) -> T::Ret {
    match f() {
        Ok(v) => v.into_ret(),
        Err(e) => T::from_error(e),
    }
}
