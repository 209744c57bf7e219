// SPDX-License-Identifier: GPL-2.0
//! super_operations: statfs, put_super, drop_inode, evict_inode,
//! write_inode, sync_fs, freeze and thaw, /proc/mounts options; and the
//! background work (periodic commit, drop of deleted subvolumes).

use super::bindings as b;
use super::cell::zeroed;
use super::inode::INode;
use super::types::{from_result, SuperBlock};
use crate::error::Error as CoreError;
use crate::subvol::{SubvolId, DROP_STEP_NODES};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::str::{CStr, CString};
use kernel::types::Opaque;
use kernel::{c_str, fmt};

pub(crate) static SUPER_OPS: b::super_operations = b::super_operations {
    statfs: Some(statfs),
    put_super: Some(put_super),
    drop_inode: Some(drop_inode),
    evict_inode: Some(evict_inode),
    sync_fs: Some(sync_fs),
    write_inode: Some(write_inode),
    freeze_fs: Some(freeze_fs),
    unfreeze_fs: Some(unfreeze_fs),
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
    let sb = unsafe { SuperBlock::from_raw(sb) };
    // A frozen or read-only filesystem has nothing to commit; an error
    // here is reported by the commit and stops the filesystem.
    let _ = sb.info().commit();
}

/// One step of the background drop of deleted subvolumes: frees a bounded
/// piece of the first one's tree and commits, under the core lock for
/// that step only. Returns whether more is left (the worker then runs
/// again, so an unmount or remount waits for one step, not the whole drop).
///
/// # Safety
/// Called only by the FsInfo's drop worker (see `FsInfo::start_drops`),
/// from a workqueue with no lock held, with `sb` the ferrofs super_block
/// the worker was made for. The worker runs from the end of fill_super
/// until `put_super` stops it (waiting for a running step), so `sb` is
/// live and its FsInfo set for the whole call.
pub(crate) unsafe extern "C" fn drop_step(sb: *mut b::super_block) -> bool {
    // SAFETY: the worker runs only between fill_super and put_super, on a
    // live super_block whose FsInfo is set.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    drop_some(sb)
}

/// drop_step's body.
fn drop_some(sb: &SuperBlock) -> bool {
    let info = sb.info();
    let step = info.with_core(|fs| if fs.is_writable() { fs.drop_step_uncommitted(DROP_STEP_NODES) } else { Ok(None) });
    // The step's commit, with the lock downgraded for its I/O; none when
    // read-only or when no deleted subvolume was left to drop.
    match step.and_then(|ran| ran.map_or(Ok(false), |more| info.commit_or_fail().map(|()| more))) {
        Ok(more) => more,
        // Read-only meanwhile (remount, error): a read-write mount resumes.
        Err(CoreError::ReadOnly) => false,
        Err(e) => {
            // Damage and I/O errors have stopped the filesystem (with_core);
            // anything else leaves the drop for the next mount.
            kernel::pr_err!("ferrofs: {}: dropping a deleted subvolume failed: {}\n", sb.id(), e);
            false
        }
    }
}

/// The seq_file of a /proc/mounts read.
///
/// # Invariants
/// A live seq_file being filled by a show_options call in progress.
#[repr(transparent)]
struct SeqFile(Opaque<b::seq_file>);

impl SeqFile {
    /// Borrows a seq_file as a `SeqFile`.
    ///
    /// # Safety
    /// `ptr` is the seq_file of a show call in progress, live for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::seq_file) -> &'a Self {
        // SAFETY: `SeqFile` is a transparent wrapper of `seq_file`.
        // INVARIANT: the caller guarantees a live seq_file for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Appends `,name=value`, escaping what /proc/mounts cannot show raw
    /// (seq_show_option).
    fn show_option(&self, name: &CStr, value: &CStr) {
        // SAFETY: a live seq_file (type invariant); both are NUL-terminated.
        unsafe { b::ferrofs_seq_show_option(self.0.get(), name.as_char_ptr(), value.as_char_ptr()) };
    }

    /// Appends `text` (seq_puts).
    fn puts(&self, text: &CStr) {
        // SAFETY: a live seq_file (type invariant); `text` is NUL-terminated.
        unsafe { b::ferrofs_seq_puts(self.0.get(), text.as_char_ptr()) };
    }
}

/// `->show_options`: the ferrofs options /proc/mounts shows after the VFS's.
///
/// # Safety
/// Called by show_vfsmnt/show_mountinfo with `m` the live seq_file and
/// `root` the root dentry of a ferrofs mount (any directory, for a bind
/// mount), held by the mount under namespace_sem (s_umount is not held,
/// locking.rst), so its super_block is past fill_super and its FsInfo set.
unsafe extern "C" fn show_options(m: *mut b::seq_file, root: *mut b::dentry) -> kernel::ffi::c_int {
    // d_sb never changes; a mount root is a positive ferrofs directory dentry.
    // SAFETY: the VFS passes the live seq_file and a dentry held by a
    // ferrofs mount, whose super_block is mounted (FsInfo set).
    let (m, sb, root) =
        unsafe { (SeqFile::from_raw(m), SuperBlock::from_raw((*root).d_sb), INode::from_raw(b::ferrofs_dentry_inode(root))) };
    show(m, sb, root);
    0
}

/// show_options' body: `commit=`, `fast_commit=off` and `norecovery`
/// when not the default, and the subvolume the mount shows when it is not
/// the default one.
fn show(m: &SeqFile, sb: &SuperBlock, root: &INode) {
    let mut buf = [0u8; 24];
    // show_commit ends its text with the one NUL.
    if let Some(Ok(text)) = super::options::show_commit(sb.info().commit_interval(), &mut buf).map(CStr::from_bytes_with_nul) {
        m.puts(text);
    }
    if !sb.info().fast_commit() {
        m.puts(c_str!(",fast_commit=off"));
    }
    if sb.info().norecovery() {
        m.puts(c_str!(",norecovery"));
    }
    let sv = root.subvol().id();
    if sv == SubvolId::DEFAULT {
        return;
    }
    if let Ok(text) = CString::try_from_fmt(fmt!(",subvolid={}", sv.0)) {
        m.puts(&text);
    }
    let mut path = KVec::new();
    if subvol_path(sb, sv, &mut path).is_ok() && path.push(0, GFP_KERNEL).is_ok() {
        if let Ok(text) = CStr::from_bytes_with_nul(&path) {
            m.show_option(c_str!("subvol"), text);
        }
    }
}

/// The `subvol=` path of subvolume `sv`: the names from the default
/// subvolume's root down to it, through every directory and subvolume on
/// the way. `Err` on a core error or a path longer than a mount option may
/// be (then only `subvolid=` is shown).
fn subvol_path(sb: &SuperBlock, sv: SubvolId, out: &mut KVec<u8>) -> crate::error::Result<()> {
    use crate::error::Error;
    let info = sb.info();
    // The names, innermost first.
    let mut names: KVec<KVec<u8>> = KVec::new();
    let mut bytes = 0usize;
    let mut add = |name: &[u8]| -> crate::error::Result<()> {
        bytes = bytes.saturating_add(name.len() + 1);
        if bytes > super::options::MAX_SUBVOL_PATH {
            return Err(Error::NameTooLong);
        }
        let mut v = KVec::new();
        v.extend_from_slice(name, GFP_KERNEL).map_err(|_| Error::NoMemory)?;
        names.push(v, GFP_KERNEL).map_err(|_| Error::NoMemory)
    };
    let mut id = sv;
    while id != SubvolId::DEFAULT {
        let s = info.with_core(|fs| fs.subvolume_info(id))?;
        add(s.name())?;
        let parent = SubvolId(s.parent);
        // The directory holding the name, up to its subvolume's root; a
        // directory has one name. Each step adds a name, so the length
        // bound above also ends a loop a damaged tree could make.
        let mut dir = s.dir;
        while dir != crate::format::ROOT_DIR_INO {
            let up = info.with_core(|fs| fs.names_of(parent, dir))?;
            let (above, name) = up.first().ok_or(Error::NotFound)?;
            add(name)?;
            dir = *above;
        }
        id = parent;
    }
    for name in names.iter().rev() {
        out.push(b'/', GFP_KERNEL).map_err(|_| Error::NoMemory)?;
        out.extend_from_slice(name, GFP_KERNEL).map_err(|_| Error::NoMemory)?;
    }
    Ok(())
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
    let inode = unsafe { INode::from_raw(inode) };
    from_result(|| write_times(inode))
}

/// write_inode's body: a read-only mount or an inode already gone from the
/// core has nothing to write.
fn write_times(inode: &INode) -> kernel::error::Result {
    match super::file::push_times(inode) {
        Ok(()) | Err(CoreError::ReadOnly) | Err(CoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// FIFREEZE: everything is committed by now; the background drop stops
/// (waiting for a step in progress) and a last commit covers anything that
/// raced in.
///
/// # Safety
/// Called by freeze_super with `sb` a mounted ferrofs super_block (FsInfo
/// set) whose s_umount it holds exclusively (locking.rst), after it has
/// stopped writers and page faults and synced the filesystem (sync_fs with
/// wait), and stopped internal writers.
unsafe extern "C" fn freeze_fs(sb: *mut b::super_block) -> kernel::ffi::c_int {
    // SAFETY: the VFS freezes a live, mounted super_block (FsInfo set).
    let sb = unsafe { SuperBlock::from_raw(sb) };
    sb.info().stop_drops(false);
    from_result(|| commit_all(sb))
}

/// Thaw: the background drop goes on (if the mount is read-write).
///
/// # Safety
/// Called by thaw_super with `sb` a mounted ferrofs super_block (FsInfo
/// set) whose s_umount it holds exclusively (locking.rst).
unsafe extern "C" fn unfreeze_fs(sb: *mut b::super_block) -> kernel::ffi::c_int {
    // SAFETY: the VFS thaws a live, mounted super_block (FsInfo set).
    let sb = unsafe { SuperBlock::from_raw(sb) };
    if !sb.is_read_only() {
        sb.info().allow_drops();
    }
    0
}

/// `->drop_inode`: whether an inode whose last reference went is evicted
/// now rather than kept in the inode cache. Clean inodes of a subvolume
/// being deleted go (so a busy check sees only inodes in use), as do those
/// of a deleted one; otherwise the generic rule (unlinked or unhashed).
///
/// # Safety
/// Called by iput_final with `inode` a live ferrofs inode whose i_lock it
/// holds (so nothing here sleeps), with no references left.
unsafe extern "C" fn drop_inode(inode: *mut b::inode) -> kernel::ffi::c_int {
    // SAFETY: a live ferrofs inode (caller); its `Subvol` outlives it.
    let i = unsafe { INode::from_raw(inode) };
    // SAFETY: i_lock is held (caller), as both helpers expect.
    unsafe {
        if i.subvol().evict_unused() && b::ferrofs_inode_clean(inode) {
            return 1;
        }
        b::ferrofs_generic_drop_inode(inode)
    }
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
/// clear_inode only its link count, number, subvolume (i_private, whose
/// `Subvol` lives until kill_sb frees the FsInfo) and super_block are read.
unsafe extern "C" fn evict_inode(inode: *mut b::inode) {
    // SAFETY: evict() passes an inode of ours that nothing else uses, whose
    // memory and super_block (FsInfo set) outlive the call.
    let inode = unsafe { INode::from_raw(inode) };
    // SAFETY: this is the inode's one ->evict_inode, which must drop its
    // page cache and end with clear_inode: the shim does both.
    unsafe { b::ferrofs_evict_prepare(inode.as_ptr()) };
    free_if_unlinked(inode);
}

/// evict_inode's body after clear_inode: an unlinked inode leaves the
/// orphan list and gives its space back.
fn free_if_unlinked(inode: &INode) {
    if inode.nlink() != 0 || inode.is_bad() {
        return;
    }
    let ino = inode.ino();
    let sb = inode.super_block();
    if let Err(e) = inode.with_core(|fs, sv| fs.evict(sv, ino)) {
        // A deleted subvolume's inodes go with its tree.
        if e != CoreError::ReadOnly && e != CoreError::NotFound {
            kernel::pr_err!("ferrofs: {}: freeing inode {} failed: {}\n", sb.id(), ino, e);
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
    // SAFETY: the VFS syncs a live, mounted super_block (FsInfo set).
    let sb = unsafe { SuperBlock::from_raw(sb) };
    from_result(|| if wait == 0 { Ok(()) } else { commit_all(sb) })
}

/// sync_fs with wait, and freeze: commits unless the filesystem has gone
/// read-only, and flushes for data rewritten in place since the last flush.
fn commit_all(sb: &SuperBlock) -> kernel::error::Result {
    sb.info().commit()?;
    // Data rewritten in place: no commit names it.
    Ok(sb.info().flush_overwrites()?)
}

/// `->put_super`: stops the background commits and the node cache's
/// shrinker, and unmounts the core with a final commit.
///
/// # Safety
/// Called once by generic_shutdown_super (from `kill_sb`), with s_umount
/// held exclusively (locking.rst), for a super_block on which fill_super set
/// the FsInfo and `s_root`, after every inode has been evicted and while
/// its block device is still open, so the final commit can reach it.
unsafe extern "C" fn put_super(sb: *mut b::super_block) {
    // SAFETY: the VFS calls put_super on a live, mounted super_block (FsInfo
    // set) while its block device is still open.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    unmount(sb);
}

/// put_super's body.
fn unmount(sb: &SuperBlock) {
    let info = sb.info();
    // First, and without the core lock: waits for statistics reads.
    info.remove_sysfs();
    info.stop_commits();
    // Waits for a drop step in progress only: the rest goes on at the next
    // read-write mount.
    info.stop_drops(true);
    // Reclaim stops reaching into the core before it goes.
    info.stop_shrinker();
    if let Err(e) = info.unmount() {
        kernel::pr_err!("ferrofs: {}: final commit at unmount failed: {}\n", sb.id(), e);
    }
}

/// The kstatfs a statfs fills.
///
/// # Invariants
/// The caller's live kstatfs of a statfs call in progress.
#[repr(transparent)]
struct KStatfs(Opaque<b::kstatfs>);

impl KStatfs {
    /// Borrows a kstatfs as a `KStatfs`.
    ///
    /// # Safety
    /// `ptr` is the kstatfs of a statfs call in progress, live for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::kstatfs) -> &'a Self {
        // SAFETY: `KStatfs` is a transparent wrapper of `kstatfs`.
        // INVARIANT: the caller guarantees a live kstatfs for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Fills it from the core's numbers.
    fn fill(&self, s: &crate::fs::StatFs, fsid: u64) {
        // SAFETY: a live kstatfs (type invariant), ours to fill.
        unsafe {
            b::ferrofs_fill_statfs(
                self.0.get(),
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
    // SAFETY: the VFS passes a pinned dentry of a mounted ferrofs (d_sb never
    // changes; FsInfo set) and its kstatfs, both for the call.
    let (sb, buf) = unsafe { (SuperBlock::from_raw((*dentry).d_sb), KStatfs::from_raw(buf)) };
    from_result(|| fill_statfs(sb, buf))
}

/// statfs' body.
fn fill_statfs(sb: &SuperBlock, buf: &KStatfs) -> kernel::error::Result {
    let info = sb.info();
    let s = info.statfs()?;
    let uuid = info.uuid();
    let fsid = u64::from_le_bytes([uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7]])
        ^ u64::from_le_bytes([uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]]);
    buf.fill(&s, fsid);
    Ok(())
}
