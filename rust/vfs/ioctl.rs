// SPDX-License-Identifier: GPL-2.0
//! ioctls on ferrofs files and directories: FS_IOC_SHUTDOWN (the "godown"
//! of fstests). The inode-flag ioctls come through the VFS's fileattr
//! operations instead.

use super::bindings as b;
use super::fs_info::FsInfo;
use super::namei::parts;
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
    match cmd {
        // SAFETY: the VFS passes an open ferrofs file and the user argument.
        FS_IOC_SHUTDOWN => unsafe { shutdown(file, arg) },
        _ => ENOTTY.to_errno() as c_long,
    }
}

/// FS_IOC_SHUTDOWN: checks CAP_SYS_ADMIN, reads the flags word, optionally
/// syncs, then stops the filesystem.
///
/// # Safety
/// `file` is an open ferrofs file or directory and the caller holds no
/// lock of this filesystem (the sync takes s_umount, writeback takes folio
/// locks); `arg` is the ioctl's argument, a user pointer read only with
/// get_user.
unsafe fn shutdown(file: *mut b::file, arg: c_ulong) -> c_long {
    // SAFETY: plain capability check on the current task.
    if !unsafe { b::capable(b::CAP_SYS_ADMIN as i32) } {
        return EPERM.to_errno() as c_long;
    }
    let mut flags = 0u32;
    // SAFETY: copies a u32 from the user pointer `arg`, with fault handling.
    if unsafe { b::ferrofs_get_user_u32(arg as *const u32, &mut flags) } != 0 {
        return EFAULT.to_errno() as c_long;
    }
    let Some(mode) = Shutdown::from_flags(flags) else { return EINVAL.to_errno() as c_long };
    // SAFETY: the file is open, so its inode and super_block are live.
    let (info, sb, _) = unsafe { parts(b::ferrofs_file_inode(file)) };
    if mode == Shutdown::SyncAll {
        // SAFETY: live super_block; the shim takes s_umount for the sync.
        unsafe { b::ferrofs_sync_sb(sb) };
    }
    stop(info, mode);
    0
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
