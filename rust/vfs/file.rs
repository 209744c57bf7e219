// SPDX-License-Identifier: GPL-2.0
//! Regular files: read and write straight through the core, fsync as a
//! full commit.
//!
//! This is the interim data path: no page cache, so no mmap yet. Data moves
//! between user memory and the core through a bounce buffer of at most
//! `CHUNK` bytes; the core lock is held only for the core call, never while
//! user memory is touched.

use super::bindings as b;
use super::cell::{zeroed, Vtable};
use super::inode::refresh;
use super::namei::parts;
use super::{errno_of, now};
use crate::error::Error as CoreError;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::ffi::c_int;
use kernel::prelude::*;

/// Bytes moved per trip into the core.
const CHUNK: usize = 64 * 1024;

pub(crate) static FILE_OPS: Vtable<b::file_operations> = Vtable(b::file_operations {
    llseek: Some(b::generic_file_llseek),
    read_iter: Some(read_iter),
    write_iter: Some(write_iter),
    fsync: Some(fsync),
    splice_read: Some(b::copy_splice_read),
    ..zeroed()
});

fn bounce(len: usize) -> Result<KVec<u8>> {
    KVec::from_elem(0u8, len.clamp(1, CHUNK), GFP_KERNEL).map_err(|_| ENOMEM)
}

unsafe extern "C" fn read_iter(iocb: *mut b::kiocb, to: *mut b::iov_iter) -> isize {
    // SAFETY: the VFS passes a live kiocb on an open ferrofs file and the
    // destination iterator.
    let (inode, mut pos, count) = unsafe { (b::ferrofs_kiocb_inode(iocb), b::ferrofs_kiocb_pos(iocb), b::ferrofs_iter_count(to)) };
    // SAFETY: the inode of an open file is live.
    let (info, _, ino) = unsafe { parts(inode) };
    if count == 0 || pos < 0 {
        return 0;
    }
    let mut buf = match bounce(count) {
        Ok(b) => b,
        Err(e) => return e.to_errno() as isize,
    };
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        let n = match info.with_core(|fs| fs.read(ino, pos as u64, &mut buf[..want])) {
            Ok(n) => n,
            Err(e) if done == 0 => return errno_of(e).to_errno() as isize,
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        // SAFETY: `buf` holds `n` initialised bytes; the iterator is live.
        let copied = unsafe { b::ferrofs_copy_to_iter(buf.as_ptr().cast(), n, to) };
        pos += copied as i64;
        done += copied;
        if copied < n {
            if done == 0 {
                return EFAULT.to_errno() as isize;
            }
            break;
        }
    }
    // SAFETY: live kiocb.
    unsafe { b::ferrofs_kiocb_set_pos(iocb, pos) };
    done as isize
}

unsafe extern "C" fn write_iter(iocb: *mut b::kiocb, from: *mut b::iov_iter) -> isize {
    // SAFETY: the VFS holds the inode lock for buffered writes and passes a
    // live kiocb and source iterator; generic_write_checks applies O_APPEND,
    // RLIMIT_FSIZE and s_maxbytes and may shorten the iterator.
    let count = unsafe { b::generic_write_checks(iocb, from) };
    if count <= 0 {
        return count;
    }
    // SAFETY: as above; clears setuid/setgid as a write must.
    let rc = unsafe { b::ferrofs_kiocb_remove_privs(iocb) };
    if rc != 0 {
        return rc as isize;
    }
    // SAFETY: live kiocb on an open ferrofs file.
    let (inode, mut pos) = unsafe { (b::ferrofs_kiocb_inode(iocb), b::ferrofs_kiocb_pos(iocb)) };
    // SAFETY: the inode of an open file is live.
    let (info, _, ino) = unsafe { parts(inode) };
    let count = count as usize;
    let mut buf = match bounce(count) {
        Ok(b) => b,
        Err(e) => return e.to_errno() as isize,
    };
    let mut done = 0usize;
    let mut failure = None;
    while done < count {
        let want = (count - done).min(buf.len());
        // SAFETY: `buf` has room for `want` bytes; the iterator is live.
        let copied = unsafe { b::ferrofs_copy_from_iter(buf.as_mut_ptr().cast(), want, from) };
        if copied == 0 {
            failure = Some(EFAULT.to_errno() as isize);
            break;
        }
        let t = now();
        match info.with_core(|fs| fs.write(ino, pos as u64, &buf[..copied], t)) {
            Ok(n) => {
                pos += n as i64;
                done += n;
                if n < copied {
                    failure = Some(errno_of(CoreError::NoSpace).to_errno() as isize);
                    break;
                }
            }
            Err(e) => {
                failure = Some(errno_of(e).to_errno() as isize);
                break;
            }
        }
    }
    if let Ok(attr) = info.with_core(|fs| fs.getattr(ino)) {
        // SAFETY: the inode is live and locked by the VFS for this write.
        unsafe { refresh(inode, &attr) };
    }
    // SAFETY: live kiocb.
    unsafe { b::ferrofs_kiocb_set_pos(iocb, pos) };
    if done == 0 {
        return failure.unwrap_or(0);
    }
    // SAFETY: live kiocb; for O_SYNC/O_DSYNC this calls our fsync.
    unsafe { b::ferrofs_write_sync(iocb, done as isize) }
}

/// fsync and fdatasync, of files and directories: a full transaction commit (the cheaper fsync tiers
/// come later), so the file's data and metadata are durable on return.
pub(crate) unsafe extern "C" fn fsync(file: *mut b::file, _start: i64, _end: i64, _datasync: c_int) -> c_int {
    // SAFETY: the VFS passes an open ferrofs file.
    let (info, _, _) = unsafe { parts(b::ferrofs_file_inode(file)) };
    match info.with_core(|fs| fs.commit()) {
        Ok(()) => 0,
        Err(e) => errno_of(e).to_errno(),
    }
}
