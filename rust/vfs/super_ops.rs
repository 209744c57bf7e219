// SPDX-License-Identifier: GPL-2.0
//! super_operations: statfs (and, as the adapter grows, inode lifetime,
//! sync and freeze).

use super::bindings as b;
use super::cell::zeroed;
use super::fs_info::FsInfo;

pub(crate) static SUPER_OPS: b::super_operations = b::super_operations { statfs: Some(statfs), ..zeroed() };

unsafe extern "C" fn statfs(dentry: *mut b::dentry, buf: *mut b::kstatfs) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes a live dentry of a mounted ferrofs and a buffer
    // to fill; s_fs_info was set by fill_super.
    let info = unsafe { FsInfo::from_sb_info(b::ferrofs_sb_fs_info((*dentry).d_sb)) };
    let s = info.statfs();
    let fsid = u64::from_le_bytes([s.uuid[0], s.uuid[1], s.uuid[2], s.uuid[3], s.uuid[4], s.uuid[5], s.uuid[6], s.uuid[7]])
        ^ u64::from_le_bytes([s.uuid[8], s.uuid[9], s.uuid[10], s.uuid[11], s.uuid[12], s.uuid[13], s.uuid[14], s.uuid[15]]);
    // SAFETY: `buf` is the kernel buffer the VFS handed us to fill.
    unsafe {
        b::ferrofs_fill_statfs(
            buf,
            crate::superblock::STATFS_MAGIC as _,
            s.block_size as _,
            s.blocks,
            s.free,
            s.free,
            s.files,
            s.free_files,
            255,
            fsid,
        )
    };
    0
}
