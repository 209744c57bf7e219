// SPDX-License-Identifier: GPL-2.0
//! The request of a `read_iter` or `write_iter` call (`struct kiocb`) and
//! its caller's buffer (`struct iov_iter`), as safe borrows for the direct
//! I/O path (`direct_io`).
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/uio.h`](srctree/include/linux/uio.h).

use super::bindings as b;
use super::inode::{INode, Locked};
use super::types::File;
use kernel::error::{to_result, Error, Result};
use kernel::types::Opaque;

/// The request of a read_iter or write_iter call on a regular file.
///
/// # Invariants
/// The kiocb is live for the borrow, its file (`ki_filp`) is an open
/// ferrofs regular file, and the call it belongs to runs on this thread,
/// which alone reads and moves its position meanwhile.
#[repr(transparent)]
pub(crate) struct Kiocb(Opaque<b::kiocb>);

impl Kiocb {
    /// Borrows the kiocb of a read_iter or write_iter call.
    ///
    /// # Safety
    /// `ptr` is the kiocb the VFS passed to read_iter or write_iter of a
    /// ferrofs regular file, and `'a` does not outlast that call.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::kiocb) -> &'a Self {
        // SAFETY: `Kiocb` is a transparent wrapper of `kiocb`.
        // INVARIANT: the caller guarantees a live kiocb of this call.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw kiocb, for the shim that completes an asynchronous direct
    /// read (`direct_io`).
    pub(crate) fn as_ptr(&self) -> *mut b::kiocb {
        self.0.get()
    }

    /// The open file of the request.
    pub(crate) fn file(&self) -> &File {
        // SAFETY: the kiocb is live and its file open for the call (type
        // invariant), which outlasts the borrow of `self`.
        unsafe { File::from_raw(b::ferrofs_kiocb_file(self.as_ptr())) }
    }

    /// The file's inode.
    pub(crate) fn inode(&self) -> &INode {
        self.file().inode()
    }

    /// The file offset the transfer starts at (`ki_pos`).
    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: the kiocb is live (type invariant).
        unsafe { b::ferrofs_kiocb_pos(self.as_ptr()) }
    }

    /// Moves `ki_pos` past what was transferred, as the caller expects.
    pub(crate) fn set_pos(&self, pos: i64) {
        // SAFETY: the kiocb is live and only this thread uses its position
        // during the call (type invariant).
        unsafe { b::ferrofs_kiocb_set_pos(self.as_ptr(), pos) }
    }

    /// Whether the request bypasses the page cache (IOCB_DIRECT: the file
    /// has O_DIRECT, from open or fcntl).
    pub(crate) fn is_direct(&self) -> bool {
        // SAFETY: the kiocb is live (type invariant).
        unsafe { b::ferrofs_kiocb_direct(self.as_ptr()) }
    }

    /// Whether the caller refuses to block (IOCB_NOWAIT).
    pub(crate) fn nowait(&self) -> bool {
        // SAFETY: the kiocb is live (type invariant).
        unsafe { b::ferrofs_kiocb_nowait(self.as_ptr()) }
    }

    /// Whether the request may end after read_iter returns (EIOCBQUEUED,
    /// then ki_complete): an io_uring or Linux AIO request without O_SYNC,
    /// O_DSYNC or RWF_*SYNC.
    pub(crate) fn may_complete_later(&self) -> bool {
        // SAFETY: the kiocb is live (type invariant).
        unsafe { b::ferrofs_kiocb_may_complete_later(self.as_ptr()) }
    }

    /// Whether a direct transfer of `iter` from `pos` breaks the alignment
    /// rule: offset, length, and each segment's address and length must be
    /// multiples of the device's logical block size.
    pub(crate) fn dio_misaligned(&self, iter: &IovIter) -> bool {
        // SAFETY: the kiocb and the iter are live for the call (type
        // invariants); the shim only reads them and the device's limits.
        unsafe { b::ferrofs_dio_misaligned(self.as_ptr(), iter.as_ptr()) }
    }

    /// generic_write_checks: EFBIG (and SIGXFSZ) past RLIMIT_FSIZE or the
    /// largest file, ki_pos moved to EOF for O_APPEND, `iter` truncated to
    /// what may be written; returns its length.
    pub(crate) fn write_checks(&self, _locked: Locked<'_>, iter: &IovIter) -> Result<usize> {
        // SAFETY: kiocb and iter live for the call (type invariants); the
        // i_rwsem of the file's inode is held, as the function requires.
        let n = unsafe { b::ferrofs_write_checks(self.as_ptr(), iter.as_ptr()) };
        usize::try_from(n).map_err(|_| Error::from_errno(n as i32))
    }

    /// kiocb_modified: setuid/setgid and capabilities dropped, mtime and
    /// ctime updated, as any write does; with IOCB_NOWAIT, EAGAIN only
    /// when privileges must be dropped (the times' update never sleeps).
    pub(crate) fn modified(&self, _locked: Locked<'_>) -> Result {
        // SAFETY: kiocb live for the call (type invariant); the i_rwsem of
        // the file's inode is held, as file_remove_privs requires.
        to_result(unsafe { b::ferrofs_kiocb_modified(self.as_ptr()) })
    }

    /// generic_write_sync after `count` bytes were written ending at
    /// `ki_pos`: for O_SYNC, O_DSYNC and RWF_*SYNC, fsyncs the range.
    /// Returns `count`, or a negative errno if the sync failed. The
    /// caller must not hold the inode's i_rwsem.
    pub(crate) fn write_sync(&self, count: isize) -> isize {
        // SAFETY: kiocb live for the call (type invariant); no lock is held
        // that fsync takes.
        unsafe { b::ferrofs_write_sync(self.as_ptr(), count) }
    }

    /// file_accessed: atime after a read, as the mount asks.
    pub(crate) fn accessed(&self) {
        // SAFETY: kiocb and its file live for the call (type invariant).
        unsafe { b::ferrofs_kiocb_accessed(self.as_ptr()) }
    }
}

/// The caller's buffer of a read_iter or write_iter call.
///
/// # Invariants
/// The iov_iter is live for the borrow and belongs to the call this
/// thread runs; it is used by this thread alone. Its segments are the
/// caller's memory, which copy_to_iter and copy_from_iter check and
/// fault in themselves (a bad address gives a short copy).
#[repr(transparent)]
pub(crate) struct IovIter(Opaque<b::iov_iter>);

impl IovIter {
    /// Borrows the iov_iter of a read_iter or write_iter call.
    ///
    /// # Safety
    /// `ptr` is the iov_iter the VFS passed to the call, and `'a` does not
    /// outlast it.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::iov_iter) -> &'a Self {
        // SAFETY: `IovIter` is a transparent wrapper of `iov_iter`.
        // INVARIANT: the caller guarantees a live iter of this call.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw iter, for the shim that pins its pages for an asynchronous
    /// direct read (`direct_io`).
    pub(crate) fn as_ptr(&self) -> *mut b::iov_iter {
        self.0.get()
    }

    /// Bytes left to transfer.
    pub(crate) fn count(&self) -> usize {
        // SAFETY: the iter is live (type invariant).
        unsafe { b::ferrofs_iter_count(self.as_ptr()) }
    }

    /// Copies `src` to the caller's buffer and advances; returns the bytes
    /// copied (fewer on a fault).
    pub(crate) fn copy_to(&self, src: &[u8]) -> usize {
        // SAFETY: the iter is live and ours (type invariant); `src` is
        // valid for `src.len()` bytes.
        unsafe { b::ferrofs_copy_to_iter(src.as_ptr().cast(), src.len(), self.as_ptr()) }
    }

    /// Fills `dst` from the caller's buffer and advances; returns the
    /// bytes copied (fewer on a fault).
    pub(crate) fn copy_from(&self, dst: &mut [u8]) -> usize {
        // SAFETY: the iter is live and ours (type invariant); `dst` is
        // valid for writes of `dst.len()` bytes.
        unsafe { b::ferrofs_copy_from_iter(dst.as_mut_ptr().cast(), dst.len(), self.as_ptr()) }
    }
}
