// SPDX-License-Identifier: GPL-2.0
//! ioctls on ferrofs files and directories: FS_IOC_SHUTDOWN (the "godown"
//! of fstests). The inode-flag ioctls come through the VFS's fileattr
//! operations instead.

use super::bindings as b;
use super::fs_info::FsInfo;
use super::types::{from_result, File};
use crate::error::Error as CoreError;
use kernel::ffi::{c_long, c_uint, c_ulong};
use kernel::prelude::*;

/// `_IOR('X', 125, __u32)`, as xfs and ext4 define it.
pub(crate) const FS_IOC_SHUTDOWN: c_uint = 0x8004_587d;

/// How a shutdown treats work not yet committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// Flags 0: write back and commit everything first.
    SyncAll,
    /// Flags 1 (LOGFLUSH): commit what the core holds; dirty pages are lost.
    CommitOnly,
    /// Flags 2 (NOLOGFLUSH): stop at once, as a power cut would.
    Immediate,
}

impl Shutdown {
    /// The mode for the ioctl's flag word, or None for an unknown one.
    pub(crate) fn from_flags(flags: u32) -> Option<Self> {
        match flags {
            0 => Some(Shutdown::SyncAll),
            1 => Some(Shutdown::CommitOnly),
            2 => Some(Shutdown::Immediate),
            _ => None,
        }
    }
}

/// `->unlocked_ioctl` of files and directories.
///
/// # Safety
/// Called by vfs_ioctl with `file` an open ferrofs file or directory, held
/// by the caller for the call, and no lock held; `arg` is the caller's
/// unchecked argument, which reaches memory only through the user-copy
/// helpers.
pub(crate) unsafe extern "C" fn ioctl(file: *mut b::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: the VFS passes an open ferrofs file, held open for the call.
    let file = unsafe { File::from_raw(file) };
    from_result(|| match cmd {
        FS_IOC_SHUTDOWN => shutdown(file, arg).map(|()| 0isize),
        _ => Err(ENOTTY),
    })
}

/// Whether the current task has CAP_SYS_ADMIN.
fn capable_sys_admin() -> bool {
    // SAFETY: a plain capability check on the current task.
    unsafe { b::capable(b::CAP_SYS_ADMIN as i32) }
}

/// Reads a u32 from the user address `uptr` (get_user).
fn get_user_u32(uptr: c_ulong) -> Result<u32> {
    let mut v = 0u32;
    // SAFETY: get_user checks the user address and handles faults, so any
    // value of `uptr` is allowed; `v` is a valid kernel destination.
    match unsafe { b::ferrofs_get_user_u32(uptr as *const u32, &mut v) } {
        0 => Ok(v),
        _ => Err(EFAULT),
    }
}

/// FS_IOC_SHUTDOWN: checks CAP_SYS_ADMIN, reads the flags word, optionally
/// syncs, then stops the filesystem. The caller holds no lock of this
/// filesystem (the sync takes s_umount, writeback takes folio locks).
fn shutdown(file: &File, arg: c_ulong) -> Result {
    if !capable_sys_admin() {
        return Err(EPERM);
    }
    let mode = Shutdown::from_flags(get_user_u32(arg)?).ok_or(EINVAL)?;
    let sb = file.inode().super_block();
    if mode == Shutdown::SyncAll {
        sb.sync();
    }
    stop(sb.info(), mode);
    Ok(())
}

/// Stops the filesystem: after this every change fails with EIO and
/// nothing more reaches the device.
fn stop(info: &FsInfo, mode: Shutdown) {
    info.mark_shut_down();
    let _ = info.with_core(|fs| {
        if mode != Shutdown::Immediate && fs.is_writable() {
            // A failed commit leaves the last committed state, which is
            // what a shutdown promises anyway.
            let _ = fs.commit();
        }
        fs.abort(CoreError::Io);
        Ok(())
    });
}
