// SPDX-License-Identifier: GPL-2.0
//! super_operations: statfs, put_super, evict_inode, write_inode, sync_fs
//! and freeze.

use super::bindings as b;
use super::cell::zeroed;
use super::fs_info::FsInfo;

pub(crate) static SUPER_OPS: b::super_operations = b::super_operations {
    statfs: Some(statfs),
    put_super: Some(put_super),
    evict_inode: Some(evict_inode),
    sync_fs: Some(sync_fs),
    write_inode: Some(write_inode),
    freeze_fs: Some(freeze_fs),
    show_options: Some(show_options),
    ..zeroed()
};

/// The background commit: whatever the core holds uncommitted (written
/// back data, namespace changes) becomes durable every `commit=` seconds.
///
/// # Safety
/// Called only by the FsInfo's ticker (see `FsInfo::start_commits`), from
/// a workqueue with no lock held, with `sb` the ferrofs super_block the
/// ticker was made for. The ticker runs from the end of fill_super until
/// `put_super` stops it (`stop_commits` waits for a running tick), so `sb`
/// is live and its FsInfo set for the whole call.
pub(crate) unsafe extern "C" fn periodic_commit(sb: *mut b::super_block) {
    // SAFETY: the ticker runs only between fill_super and put_super, on a
    // live super_block whose FsInfo is set.
    let info = unsafe { info_of(sb) };
    // A frozen or read-only filesystem has nothing to commit; an error
    // here is reported by with_core and stops the filesystem.
    let _ = info.with_core(|fs| if fs.is_writable() { fs.commit() } else { Ok(()) });
}

/// `->show_options`: the ferrofs options /proc/mounts shows after the VFS's.
///
/// # Safety
/// Called by show_vfsmnt/show_mountinfo with `m` the live seq_file and
/// `root` the root dentry of a ferrofs mount (any directory, for a bind
/// mount), held by the mount under namespace_sem (s_umount is not held,
/// locking.rst), so its super_block is past fill_super and its FsInfo set.
unsafe extern "C" fn show_options(m: *mut b::seq_file, root: *mut b::dentry) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes the root dentry of a mounted ferrofs.
    let info = unsafe { info_of((*root).d_sb) };
    let mut buf = [0u8; 24];
    if let Some(text) = super::options::show_commit(info.commit_interval(), &mut buf) {
        // SAFETY: `text` is NUL-terminated; `m` is the live seq_file.
        unsafe { b::ferrofs_seq_puts(m, text.as_ptr().cast()) };
    }
    0
}

/// Writeback of a dirty inode: the times a write(2) or mmap set reach the
/// core (data goes through `aops`, sizes at data writeback).
///
/// # Safety
/// Called by the writeback code (__writeback_single_inode) with `inode` a
/// ferrofs inode of any type, never a bad one, kept live by the caller for
/// the call (I_SYNC set), on a super_block whose FsInfo is set; no i_rwsem
/// or s_umount is held (locking.rst).
unsafe extern "C" fn write_inode(inode: *mut b::inode, _wbc: *mut b::writeback_control) -> kernel::ffi::c_int {
    // SAFETY: the writeback code passes a live ferrofs inode, kept live for
    // the call, of a super_block whose FsInfo is set.
    let inode = unsafe { super::inode::INode::from_raw(inode) };
    super::types::from_result(|| write_times(inode))
}

/// write_inode's body: a read-only mount or an inode already gone from the
/// core has nothing to write.
fn write_times(inode: &super::inode::INode) -> kernel::error::Result {
    match super::file::push_times(inode) {
        Ok(()) | Err(crate::error::Error::ReadOnly) | Err(crate::error::Error::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// FIFREEZE: everything is committed by now; a last commit covers
/// anything that raced in.
///
/// # Safety
/// Called by freeze_super with `sb` a mounted ferrofs super_block (FsInfo
/// set) whose s_umount it holds exclusively (locking.rst), after it has
/// stopped writers and page faults and synced the filesystem (sync_fs with
/// wait), and stopped internal writers.
unsafe extern "C" fn freeze_fs(sb: *mut b::super_block) -> kernel::ffi::c_int {
    // SAFETY: the VFS freezes a live, mounted super_block.
    unsafe { sync_fs(sb, 1) }
}

/// `->evict_inode`: drops the page cache, and frees an unlinked inode's
/// items and space in the core.
///
/// # Safety
/// Called by evict() once per inode, with `inode` a ferrofs inode that has
/// no references left and is I_FREEING, so nothing else uses it, and no
/// writeback of it running; its super_block's FsInfo is set (evict_inodes
/// runs before `put_super`, and kill_sb frees the FsInfo only after both).
/// It may be a bad inode (iget_failed), which is left alone. After
/// clear_inode only its link count, number and super_block are read.
unsafe extern "C" fn evict_inode(inode: *mut b::inode) {
    // SAFETY: the VFS evicts a live inode of ours exactly once; after
    // clear_inode only its number and link count are read.
    unsafe {
        b::ferrofs_evict_prepare(inode);
        if b::ferrofs_inode_nlink(inode) != 0 || b::is_bad_inode(inode) {
            return;
        }
        let (info, sb, ino) = super::namei::parts(inode);
        // An unlinked inode leaves the orphan list and gives its space back.
        if let Err(e) = info.with_core(|fs| fs.evict(ino)) {
            if e != crate::error::Error::ReadOnly {
                let dev = kernel::str::CStr::from_char_ptr(b::ferrofs_sb_id(sb));
                kernel::pr_err!("ferrofs: {}: freeing inode {} failed: {}\n", dev, ino, e);
            }
        }
    }
}

/// `->sync_fs`: with `wait`, commits.
///
/// # Safety
/// Called by sync_filesystem (sync(2), syncfs(2), freeze, remount, unmount)
/// with `sb` a ferrofs super_block whose FsInfo is set (it has `s_root`, so
/// fill_super got past that) and s_umount held, at least shared
/// (locking.rst).
unsafe extern "C" fn sync_fs(sb: *mut b::super_block, wait: kernel::ffi::c_int) -> kernel::ffi::c_int {
    if wait == 0 {
        return 0;
    }
    // SAFETY: the VFS syncs a live, mounted super_block.
    let info = unsafe { info_of(sb) };
    match info.with_core(|fs| if fs.superblock().needs_read_only() { Ok(()) } else { fs.commit() }) {
        Ok(()) | Err(crate::error::Error::ReadOnly) => 0,
        Err(e) => super::errno_of(e).to_errno(),
    }
}

/// The FsInfo of a mounted super_block.
///
/// # Safety
/// `sb` is a live ferrofs super_block past fill_super.
unsafe fn info_of<'a>(sb: *mut b::super_block) -> &'a FsInfo {
    // SAFETY: per the contract, s_fs_info was set by fill_super.
    unsafe { FsInfo::from_sb_info(b::ferrofs_sb_fs_info(sb)) }
}

/// `->put_super`: stops the background commits and unmounts the core with
/// a final commit.
///
/// # Safety
/// Called once by generic_shutdown_super (from `kill_sb`), with s_umount
/// held exclusively (locking.rst), for a super_block on which fill_super set
/// the FsInfo and `s_root`, after every inode has been evicted and while
/// its block device is still open, so the final commit can reach it.
unsafe extern "C" fn put_super(sb: *mut b::super_block) {
    // SAFETY: the VFS calls put_super on a live, mounted super_block while
    // its block device is still open, so the final commit can reach it.
    let info = unsafe { info_of(sb) };
    info.stop_commits();
    if let Err(e) = info.unmount() {
        // SAFETY: s_id is a NUL-terminated array in the live super_block.
        let dev = unsafe { kernel::str::CStr::from_char_ptr(b::ferrofs_sb_id(sb)) };
        kernel::pr_err!("ferrofs: {}: final commit at unmount failed: {}\n", dev, e);
    }
}

/// `->statfs`.
///
/// # Safety
/// Called by statfs_by_dentry with `dentry` a dentry of a mounted ferrofs,
/// pinned by the caller (by its path, or with s_umount held shared for
/// ustat(2), locking.rst), so its super_block's FsInfo is set, and `buf` the
/// caller's kstatfs to fill.
unsafe extern "C" fn statfs(dentry: *mut b::dentry, buf: *mut b::kstatfs) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes a live dentry of a mounted ferrofs.
    let info = unsafe { info_of((*dentry).d_sb) };
    let s = match info.statfs() {
        Ok(s) => s,
        Err(e) => return super::errno_of(e).to_errno(),
    };
    let uuid = info.uuid();
    let fsid = u64::from_le_bytes([uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7]])
        ^ u64::from_le_bytes([uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]]);
    // SAFETY: `buf` is the kernel buffer the VFS handed us to fill.
    unsafe {
        b::ferrofs_fill_statfs(
            buf,
            crate::superblock::STATFS_MAGIC as _,
            s.block_size as _,
            s.total_blocks,
            s.free_blocks,
            s.avail_blocks,
            s.files,
            s.free_files,
            s.name_max as _,
            fsid,
        )
    };
    0
}
