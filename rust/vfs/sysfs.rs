// SPDX-License-Identifier: GPL-2.0
//! /sys/fs/ferrofs/ and one directory per mounted device in it
//! (`/sys/fs/ferrofs/vdb/`, named by the device as ext4 does), holding
//! read-only statistics files whose text the core's codecs write
//! (`fsync_stats`; `read_calls`, from `tree_read::ReadCalls`). The kobject
//! plumbing is C (rust/shim/sysfs_shim.c).
//!
//! Lifetime: the directory is added at the end of fill_super and removed
//! first thing in put_super. Removal waits for every read in progress and
//! lets no new one start (kernfs drains its active references), so a read
//! never sees a freed FsInfo. A read of fsync_stats takes the core lock
//! (read_calls reads atomics); put_super removes
//! the directory without holding it, and nothing takes a sysfs file's
//! active reference under the core lock, so the two cannot deadlock.
//!
//! C header: [`include/linux/kobject.h`](srctree/include/linux/kobject.h).

use super::bindings as b;
use super::fs_info::FsInfo;
use crate::fsync_stats::FsyncReport;
use core::fmt::Write;
use kernel::error::to_result;
use kernel::prelude::*;

/// Keeps /sys/fs/ferrofs while the module is loaded.
pub(crate) struct SysfsRoot;

impl SysfsRoot {
    /// Makes /sys/fs/ferrofs; dropped at module exit to remove it.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: called once at module init, before any mount can add a
        // directory under it.
        to_result(unsafe { b::ferrofs_sysfs_init() })?;
        Ok(SysfsRoot)
    }
}

impl Drop for SysfsRoot {
    fn drop(&mut self) {
        // SAFETY: at module exit every ferrofs is unmounted (each mount holds
        // a module reference), so every per-device directory is gone.
        unsafe { b::ferrofs_sysfs_exit() };
    }
}

/// Adds `/sys/fs/ferrofs/<name>/` for `info`.
///
/// # Safety
/// `info` stays at its address and alive until `remove` has been called on
/// the returned directory.
pub(crate) unsafe fn add(name: &CStr, info: &FsInfo) -> Result<*mut b::ferrofs_sysfs> {
    let owner = core::ptr::from_ref(info).cast_mut().cast();
    // SAFETY: `name` is NUL-terminated; `show` has the callback's signature
    // and `owner` outlives the directory (contract).
    let dir = unsafe { b::ferrofs_sysfs_add(name.as_char_ptr(), owner, Some(show)) };
    // SAFETY: reads the error out of a pointer that may be an ERR_PTR.
    let err = unsafe { b::ferrofs_ptr_err(dir.cast()) };
    if err != 0 || dir.is_null() {
        return Err(if err != 0 { Error::from_errno(err as i32) } else { ENOMEM });
    }
    Ok(dir)
}

/// Removes a directory `add` made (NULL: nothing); on return no read of
/// its files runs or will start.
///
/// # Safety
/// `dir` is NULL or came from `add` and is not used again; the caller holds
/// no lock that a read takes (the core lock).
pub(crate) unsafe fn remove(dir: *mut b::ferrofs_sysfs) {
    // SAFETY: per the contract; the shim ignores NULL.
    unsafe { b::ferrofs_sysfs_remove(dir) };
}

/// A kobject attribute's `show`: writes file `file` of the mount `owner`
/// into `buf`.
///
/// # Safety
/// Called by the shim's sysfs_ops with `owner` the FsInfo given to `add`,
/// alive until the directory is removed (kernfs lets no read run past
/// that), and `buf` a page of `len` bytes that is ours for the call.
unsafe extern "C" fn show(owner: *mut kernel::ffi::c_void, file: kernel::ffi::c_uint, buf: *mut u8, len: usize) -> isize {
    // SAFETY: the FsInfo given to `add`, alive while its files can be read.
    let info = unsafe { &*owner.cast::<FsInfo>() };
    // SAFETY: the caller's page of `len` bytes, ours for the call.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    match render(info, file, out) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// The text of file `file` in `out`; its length.
fn render(info: &FsInfo, file: u32, out: &mut [u8]) -> Result<usize> {
    let mut w = SliceWriter { buf: out, len: 0 };
    // SAFETY: reading an immutable constant defined in sysfs_shim.c.
    if file == unsafe { b::FERROFS_SYSFS_READ_CALLS } {
        info.read_calls().format(&mut w).map_err(|_| EFBIG)?;
        return Ok(w.len);
    }
    // SAFETY: reading an immutable constant defined in sysfs_shim.c.
    if file != unsafe { b::FERROFS_SYSFS_FSYNC_STATS } {
        return Err(EINVAL);
    }
    let report = info.with_core(|fs| {
        let opts = fs.mount_options();
        let mut r = FsyncReport::new(fs.fast_commit_stats(), &fs.stats(), opts.fast_commit, opts.no_replay, info.commit_interval().into());
        // Fast commits' flushes are issued outside the core, which does
        // not count them.
        r.flushes += info.group_flushes();
        Ok(r)
    })?;
    report.format(&mut w).map_err(|_| EFBIG)?;
    Ok(w.len)
}

/// `fmt::Write` into a fixed buffer, failing when it is full.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).filter(|&e| e <= self.buf.len()).ok_or(core::fmt::Error)?;
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
