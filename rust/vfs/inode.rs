// SPDX-License-Identifier: GPL-2.0
//! Inodes as the VFS sees them: a reference-counted wrapper (`ARef<INode>`),
//! the `NewINode` typestate for an inode still being set up (dropping it
//! fails it with `iget_failed`), and `iget`, which loads an inode from the
//! core on first use, keyed by subvolume and inode number (see `subvol`).

use super::bindings as b;
use super::cell::zeroed;
use super::fs_info::FsInfo;
use super::subvol::Subvol;
use super::types::SuperBlock;
use super::{aops, dir, file, namei, xattr};
use crate::error::Result as CoreResult;
use crate::format::{FileType, Timespec};
use crate::fs::InodeAttr;
use crate::mem::TryVec;
use crate::node_io::NodeWant;
use crate::subvol::SubvolId;
use core::ptr::NonNull;
use kernel::ffi::c_int;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};

/// A VFS inode of a ferrofs filesystem.
///
/// # Invariants
/// The inode is live for every borrow of it (an `ARef` holds a reference;
/// a borrow from `from_raw` is covered by what pins the inode for the
/// call), and it belongs to a mounted ferrofs super_block whose
/// `s_fs_info` is set, which outlives the inode.
#[repr(transparent)]
pub(crate) struct INode(Opaque<b::inode>);

impl INode {
    /// Borrows an inode as an `INode`.
    ///
    /// # Safety
    /// `ptr` is a ferrofs inode kept live for `'a` (by a reference the
    /// caller holds or by the VFS object that pins it, such as an open file
    /// or a positive dentry), of a super_block whose fill_super is done.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::inode) -> &'a Self {
        // SAFETY: `INode` is a transparent wrapper of `inode`.
        // INVARIANT: the caller guarantees a live ferrofs inode for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::inode {
        self.0.get()
    }

    /// The inode number (the core's, within its subvolume).
    pub(crate) fn ino(&self) -> u64 {
        // SAFETY: the inode is live (type invariant); i_ino never changes.
        unsafe { b::ferrofs_inode_ino(self.as_ptr()) }
    }

    /// The subvolume the inode belongs to.
    pub(crate) fn subvol(&self) -> &Subvol {
        // SAFETY: `iget` keys every ferrofs inode with its `Subvol`
        // (i_private, set before the inode is visible and never changed),
        // an entry of its FsInfo's table, which outlives every inode.
        unsafe { &*b::ferrofs_inode_subvol(self.as_ptr()).cast::<Subvol>() }
    }

    /// Runs `f` on the core for this inode's subvolume (`FsInfo::with_sv`).
    pub(crate) fn with_core<T>(
        &self,
        f: impl FnOnce(&mut crate::fs::Filesystem<super::device::KernelDevice>, SubvolId) -> CoreResult<T>,
    ) -> CoreResult<T> {
        self.info().with_sv(self.subvol(), f)
    }

    /// `with_core` for a call that only reads: nodes it lacks are read
    /// outside the core lock, and `f` may run several times
    /// (`FsInfo::with_sv_read`).
    pub(crate) fn with_core_read<T>(
        &self,
        f: impl FnMut(&mut crate::fs::Filesystem<super::device::KernelDevice>, SubvolId) -> CoreResult<T>,
    ) -> CoreResult<T> {
        self.info().with_sv_read(self.subvol(), f)
    }

    /// `with_core_read` that first tries `shared` under the core lock
    /// taken for read, beside other readers (`FsInfo::with_sv_shared`).
    pub(crate) fn with_core_shared<T>(
        &self,
        shared: impl FnMut(&crate::fs::Filesystem<super::device::KernelDevice>, &mut TryVec<NodeWant>, SubvolId) -> CoreResult<T>,
        f: impl FnMut(&mut crate::fs::Filesystem<super::device::KernelDevice>, SubvolId) -> CoreResult<T>,
    ) -> CoreResult<T> {
        self.info().with_sv_shared(self.subvol(), shared, f)
    }

    /// `shared` under the core lock taken for read, if it can answer
    /// there (`FsInfo::try_shared`); `None`: use `with_core_read`.
    pub(crate) fn try_core_shared<T>(
        &self,
        shared: impl FnMut(&crate::fs::Filesystem<super::device::KernelDevice>, &mut TryVec<NodeWant>, SubvolId) -> CoreResult<T>,
    ) -> Option<CoreResult<T>> {
        self.info().try_shared(self.subvol(), false, shared)
    }

    /// S_NOSEC: the inode has no security.capability xattr and is neither
    /// setuid nor setgid. The VFS sets it after finding so (and we, on an
    /// inode a create just made: `iget_created`); every store of a
    /// `security.` xattr clears it first, under i_rwsem (the VFS's
    /// __vfs_setxattr_noperm and our handler), so a true answer read here
    /// without that lock is one that held before any such store.
    pub(crate) fn nosec(&self) -> bool {
        // SAFETY: the inode is live (type invariant); an unlocked read of
        // i_flags, as file_remove_privs makes.
        unsafe { b::ferrofs_inode_nosec(self.as_ptr()) }
    }

    /// Whether it is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        // SAFETY: the inode is live (type invariant); the file type bits of
        // i_mode never change.
        let mode = unsafe { (*self.as_ptr()).i_mode } as u32;
        mode & crate::format::S_IFMT == crate::format::S_IFDIR
    }

    /// Whether `other` is in the same subvolume (links and renames may
    /// not cross subvolumes).
    pub(crate) fn same_subvol(&self, other: &INode) -> bool {
        core::ptr::eq(self.subvol(), other.subvol())
    }

    /// The super_block the inode belongs to.
    pub(crate) fn super_block(&self) -> &SuperBlock {
        // SAFETY: a live ferrofs inode's super_block is mounted, has its
        // s_fs_info set and outlives the inode (type invariant).
        unsafe { SuperBlock::from_raw(b::ferrofs_inode_sb(self.as_ptr())) }
    }

    /// The mount's state.
    pub(crate) fn info(&self) -> &FsInfo {
        self.super_block().info()
    }

    /// The link count (i_nlink).
    pub(crate) fn nlink(&self) -> u32 {
        // SAFETY: the inode is live (type invariant); a plain read, as the
        // VFS's own readers of i_nlink do.
        unsafe { b::ferrofs_inode_nlink(self.as_ptr()) }
    }

    /// Whether iget_failed marked the inode bad.
    pub(crate) fn is_bad(&self) -> bool {
        // SAFETY: the inode is live (type invariant).
        unsafe { b::is_bad_inode(self.as_ptr()) }
    }

    /// i_size (i_size_read).
    pub(crate) fn size(&self) -> i64 {
        // SAFETY: the inode is live (type invariant); i_size_read is the
        // VFS's lock-free read.
        unsafe { b::ferrofs_i_size_read(self.as_ptr()) }
    }

    /// The VFS inode's atime, mtime and ctime, in that order.
    pub(crate) fn times(&self) -> [Timespec; 3] {
        let (mut sec, mut nsec) = ([0i64; 3], [0u32; 3]);
        // SAFETY: the inode is live (type invariant); the arrays have the
        // three slots the shim fills.
        unsafe { b::ferrofs_inode_times(self.as_ptr(), sec.as_mut_ptr(), nsec.as_mut_ptr()) };
        [0, 1, 2].map(|i| Timespec { sec: sec[i], nsec: nsec[i] })
    }

    /// Writes back every dirty page of the inode and waits for it
    /// (filemap_write_and_wait_range over the whole file). The caller must
    /// hold no folio lock of this inode, or it deadlocks.
    pub(crate) fn write_back_all(&self) -> CoreResult<()> {
        // SAFETY: the inode and so its mapping are live (type invariant).
        match unsafe { b::filemap_write_and_wait_range(b::ferrofs_inode_mapping(self.as_ptr()), 0, i64::MAX) } {
            0 => Ok(()),
            _ => Err(crate::error::Error::Io),
        }
    }

    /// Writes back the dirty pages of bytes `start..=end` and waits for
    /// them (filemap_write_and_wait_range). The caller must hold no folio
    /// lock of this inode, nor the core lock.
    pub(crate) fn write_back_range(&self, start: i64, end: i64) -> kernel::error::Result {
        // SAFETY: the inode and so its mapping are live (type invariant).
        kernel::error::to_result(unsafe { b::filemap_write_and_wait_range(b::ferrofs_inode_mapping(self.as_ptr()), start, end) })
    }

    /// Whether bytes `start..=end` have dirty pages or pages under
    /// writeback, which `write_back_range` would wait for.
    pub(crate) fn range_needs_writeback(&self, start: i64, end: i64) -> bool {
        // SAFETY: the inode is live (type invariant).
        unsafe { b::ferrofs_range_needs_writeback(self.as_ptr(), start, end) }
    }

    /// Drops the clean page cache of bytes `start..=end`, unmapping it from
    /// user mappings (invalidate_inode_pages2_range); EBUSY when a page
    /// could not go (dirtied again through a mapping meanwhile). The caller
    /// must hold no folio lock of this inode, nor the core lock.
    pub(crate) fn invalidate_range(&self, start: i64, end: i64) -> kernel::error::Result {
        // SAFETY: the inode is live (type invariant); the call locks the
        // folios it drops itself.
        kernel::error::to_result(unsafe { b::ferrofs_invalidate_range(self.as_ptr(), start, end) })
    }

    /// Sets i_blocks (under i_lock: writeback changes it outside the
    /// inode lock).
    pub(crate) fn set_blocks(&self, blocks: u64) {
        // SAFETY: the inode is live (type invariant); the shim takes i_lock.
        unsafe { b::ferrofs_inode_set_blocks(self.as_ptr(), blocks) }
    }

    /// Records a writeback error on the inode's page cache
    /// (mapping_set_error), for fsync to report.
    pub(crate) fn set_mapping_error(&self, errno: c_int) {
        // SAFETY: the inode and so its mapping are live (type invariant);
        // mapping_set_error only sets the mapping's error state.
        unsafe { b::ferrofs_mapping_set_error(b::ferrofs_inode_mapping(self.as_ptr()), errno) }
    }

    /// Takes the inode's i_rwsem exclusively (inode_lock) until the guard
    /// drops. The caller must not hold it already, nor a folio lock or the
    /// core lock (lock order: i_rwsem, folio, core).
    pub(crate) fn lock(&self) -> INodeLock<'_> {
        // SAFETY: the inode is live (type invariant).
        unsafe { b::ferrofs_inode_lock(self.as_ptr()) };
        // INVARIANT: we took the lock just above and hold it until the
        // guard drops.
        INodeLock(Locked(self))
    }

    /// `lock` without sleeping: `None` when another task holds it.
    pub(crate) fn try_lock(&self) -> Option<INodeLock<'_>> {
        // SAFETY: the inode is live (type invariant).
        if !unsafe { b::ferrofs_inode_trylock(self.as_ptr()) } {
            return None;
        }
        // INVARIANT: we took the lock just above and hold it until the
        // guard drops.
        Some(INodeLock(Locked(self)))
    }

    /// Takes the inode's i_rwsem shared (inode_lock_shared) until the
    /// guard drops: size changes and writes wait meanwhile. Same order as
    /// `lock`.
    pub(crate) fn lock_shared(&self) -> INodeSharedLock<'_> {
        // SAFETY: the inode is live (type invariant).
        unsafe { b::ferrofs_inode_lock_shared(self.as_ptr()) };
        // INVARIANT: we took the lock just above and hold it until the
        // guard drops.
        INodeSharedLock(self)
    }

    /// `lock_shared` without sleeping: `None` when a writer holds or waits
    /// for the lock (for IOCB_NOWAIT).
    pub(crate) fn try_lock_shared(&self) -> Option<INodeSharedLock<'_>> {
        // SAFETY: the inode is live (type invariant).
        if !unsafe { b::ferrofs_inode_trylock_shared(self.as_ptr()) } {
            return None;
        }
        // INVARIANT: we took the lock just above and hold it until the
        // guard drops.
        Some(INodeSharedLock(self))
    }

    /// `lock` with lockdep's parent subclass (I_MUTEX_PARENT), for a
    /// directory one of whose entries' inode is locked next, as rmdir does.
    pub(crate) fn lock_parent(&self) -> INodeLock<'_> {
        // SAFETY: the inode is live (type invariant).
        unsafe { b::ferrofs_inode_lock_parent(self.as_ptr()) };
        // INVARIANT: we took the lock just above and hold it until the
        // guard drops.
        INodeLock(Locked(self))
    }
}

/// The i_rwsem of an inode, taken by `INode::lock` and given back on drop.
///
/// # Invariants
/// This thread took the i_rwsem of `.0` exclusively and gives it back
/// only when the guard drops.
pub(crate) struct INodeLock<'a>(Locked<'a>);

impl<'a> core::ops::Deref for INodeLock<'a> {
    type Target = Locked<'a>;
    fn deref(&self) -> &Locked<'a> {
        &self.0
    }
}

impl Drop for INodeLock<'_> {
    fn drop(&mut self) {
        // SAFETY: we hold the lock (type invariant) and give it back.
        unsafe { b::ferrofs_inode_unlock(self.as_ptr()) };
    }
}

/// The i_rwsem of an inode, taken shared by `INode::lock_shared` and
/// given back on drop.
///
/// # Invariants
/// This thread took the i_rwsem of `.0` shared and gives it back only
/// when the guard drops.
pub(crate) struct INodeSharedLock<'a>(&'a INode);

impl Drop for INodeSharedLock<'_> {
    fn drop(&mut self) {
        // SAFETY: we hold the lock shared (type invariant) and give it back.
        unsafe { b::ferrofs_inode_unlock_shared(self.0.as_ptr()) };
    }
}

/// An inode whose i_rwsem is held exclusively for the borrow: by an
/// `INodeLock` of this thread, or by the VFS around the callback that lent
/// the inode. Attribute updates that the VFS serialises with i_rwsem go
/// through here.
///
/// # Invariants
/// The i_rwsem of `.0` is held exclusively for `'a`, on behalf of this
/// thread.
#[derive(Clone, Copy)]
pub(crate) struct Locked<'a>(&'a INode);

impl<'a> Locked<'a> {
    /// Vouches that the VFS holds `inode`'s i_rwsem for the call.
    ///
    /// # Safety
    /// The i_rwsem of `inode` is held exclusively for `'a`, on behalf of
    /// the calling thread (by the VFS around the current callback).
    pub(crate) unsafe fn assume(inode: &'a INode) -> Self {
        // INVARIANT: the caller guarantees the lock for 'a.
        Locked(inode)
    }

    /// The inode, without the lock's guarantee.
    pub(crate) fn inode(self) -> &'a INode {
        self.0
    }

    /// i_mode: file type and permission bits.
    pub(crate) fn mode(self) -> u32 {
        // SAFETY: live inode whose i_rwsem is held (type invariant), which
        // keeps i_mode from changing under this read.
        unsafe { (*self.as_ptr()).i_mode as u32 }
    }

    /// Whether the file may grow to `size` bytes (inode_newsize_ok): EFBIG,
    /// with SIGXFSZ to the caller, past its RLIMIT_FSIZE or the largest
    /// file size, as for a write.
    pub(crate) fn check_new_size(self, size: i64) -> kernel::error::Result {
        // SAFETY: live inode whose i_rwsem is held (type invariant), as
        // inode_newsize_ok expects of a size change.
        kernel::error::to_result(unsafe { b::inode_newsize_ok(self.as_ptr(), size) })
    }

    /// Sets i_size (i_size_write).
    pub(crate) fn set_size(self, size: i64) {
        // SAFETY: live inode whose i_rwsem is held (type invariant), as
        // i_size_write requires.
        unsafe { b::ferrofs_i_size_write(self.as_ptr(), size) }
    }

    /// Sets i_size and drops the page cache past it (truncate_setsize),
    /// waiting for writeback of the folios it drops. The caller must hold
    /// no folio lock or core lock.
    pub(crate) fn truncate_setsize(self, size: i64) {
        // SAFETY: live inode whose i_rwsem is held (type invariant), as
        // truncate_setsize requires.
        unsafe { b::truncate_setsize(self.as_ptr(), size) }
    }

    /// Drops the page cache of bytes `start..=end` (truncate_pagecache_range).
    pub(crate) fn truncate_pagecache_range(self, start: i64, end: i64) {
        // SAFETY: live inode whose i_rwsem is held (type invariant), which
        // keeps writes from bringing pages of the range back meanwhile.
        unsafe { b::truncate_pagecache_range(self.as_ptr(), start, end) }
    }

    /// Clears S_NOSEC (see `INode::nosec`), before a `security.` xattr is
    /// stored.
    pub(crate) fn clear_nosec(self) {
        // SAFETY: live inode whose i_rwsem is held (type invariant), which
        // serialises i_flags changes.
        unsafe { b::ferrofs_inode_clear_nosec(self.as_ptr()) }
    }

    /// `refresh` under the lock.
    pub(crate) fn refresh(self, a: &InodeAttr) {
        // SAFETY: live inode whose i_rwsem is held (type invariant), which
        // serialises its attribute updates.
        unsafe { refresh(self.as_ptr(), a) }
    }

    /// `refresh_fields` under the lock.
    pub(crate) fn refresh_fields(self, a: &InodeAttr, take: Fields) {
        // SAFETY: live inode whose i_rwsem is held (type invariant), which
        // serialises its attribute updates.
        unsafe { refresh_fields(self.as_ptr(), a, take) }
    }
}

impl<'a> core::ops::Deref for Locked<'a> {
    type Target = INode;
    fn deref(&self) -> &INode {
        self.0
    }
}

// SAFETY: inodes are refcounted by the VFS: `ihold` takes a reference and
// `iput` drops one, freeing the inode only when the last one goes.
unsafe impl AlwaysRefCounted for INode {
    fn inc_ref(&self) {
        // SAFETY: `self` is a live inode we hold a reference to.
        unsafe { b::ihold(self.0.get()) };
    }

    /// Gives one reference back with `iput`.
    ///
    /// # Safety
    /// As the trait requires: the caller owns a reference to the live inode
    /// `obj` (from `inc_ref`, `iget_locked` or the VFS) that it gives up here,
    /// and does not use the inode afterwards unless it owns another. It runs
    /// where sleeping is allowed: the last `iput` can evict the inode.
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller owns one reference, which we give back.
        unsafe { b::iput(obj.cast::<b::inode>().as_ptr()) };
    }
}

/// An inode fresh from `iget_locked` (I_NEW set), not yet visible to others.
struct NewINode(NonNull<b::inode>);

impl NewINode {
    /// Unlocks the fully set-up inode and hands out its reference.
    fn unlock(self) -> ARef<INode> {
        let p = self.0;
        core::mem::forget(self);
        // SAFETY: the inode is fully initialised; unlock_new_inode publishes
        // it, and the reference iget_locked gave us moves into the ARef.
        unsafe {
            b::unlock_new_inode(p.as_ptr());
            ARef::from_raw(p.cast())
        }
    }
}

impl Drop for NewINode {
    fn drop(&mut self) {
        // SAFETY: the inode is still I_NEW and we own its only reference;
        // iget_failed marks it bad, unlocks and drops it.
        unsafe { b::iget_failed(self.0.as_ptr()) };
    }
}

/// The inode-cache hash of inode `ino` of subvolume `sv`.
fn inode_hash(sv: SubvolId, ino: u64) -> usize {
    (ino ^ sv.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)) as usize
}

/// Returns the inode `ino` of subvolume `sv` of `sb`. If the VFS does not
/// have it cached it is filled from `known` (attributes the caller just got
/// from the core, as after a create) or else read from the core. A
/// snapshot's stand-in directory is never cached: each call makes one.
///
/// # Safety
/// `sb` is a live ferrofs super_block whose `s_fs_info` is set, and `sv` an
/// entry of that FsInfo's subvolume table.
pub(crate) unsafe fn iget(sb: *mut b::super_block, sv: &Subvol, ino: u64, known: Option<&InodeAttr>) -> CoreResult<ARef<INode>> {
    // SAFETY: per the contract.
    unsafe { iget_with(sb, sv, ino, known, None) }
}

/// `iget` of the inode a create just made, `attr` the core's attributes
/// of it. `inherited_acl`: the directory's default ACL gave it ACLs. What
/// a new inode lacks is noted on it so that later calls need not ask the
/// core (`ferrofs_inode_new_xattrs`): no security.capability xattr
/// (S_NOSEC, which spares each chown and the first write a look-up) and,
/// without `inherited_acl`, no ACL (spares the first chmod one).
///
/// # Safety
/// As `iget`.
pub(crate) unsafe fn iget_created(sb: *mut b::super_block, sv: &Subvol, attr: &InodeAttr, inherited_acl: bool) -> CoreResult<ARef<INode>> {
    // SAFETY: per the contract.
    unsafe { iget_with(sb, sv, attr.ino, Some(attr), Some(inherited_acl)) }
}

/// `iget`; `created` as `iget_created`'s `inherited_acl` for a new inode.
///
/// # Safety
/// As `iget`.
unsafe fn iget_with(
    sb: *mut b::super_block,
    sv: &Subvol,
    ino: u64,
    known: Option<&InodeAttr>,
    created: Option<bool>,
) -> CoreResult<ARef<INode>> {
    let tag = (sv as *const Subvol).cast_mut().cast::<core::ffi::c_void>();
    // A snapshot's stand-ins for nested subvolumes all have one number in
    // its tree, yet are different directories: each lookup gets an inode
    // of its own, outside the inode cache.
    let standin = ino == crate::format::EMPTY_SUBVOL_DIR_INO;
    // SAFETY: `sb` is live (caller); `tag` outlives every inode of `sb`
    // (contract), as the key the inode keeps in i_private must.
    let raw = unsafe {
        if standin {
            b::ferrofs_new_unhashed(sb, ino, tag)
        } else {
            b::ferrofs_iget5(sb, inode_hash(sv.id(), ino), ino, tag)
        }
    };
    let Some(raw) = NonNull::new(raw) else {
        return Err(crate::error::Error::NoMemory);
    };
    // SAFETY: `raw` is a referenced inode of `sb`.
    if !unsafe { b::ferrofs_inode_is_new(raw.as_ptr()) } {
        // SAFETY: iget5_locked returned a reference we now own.
        return Ok(unsafe { ARef::from_raw(raw.cast()) });
    }
    let new = NewINode(raw);
    let read;
    let attr = match known {
        Some(a) => a,
        None => {
            // SAFETY: `sb` is live with its FsInfo set (caller).
            let info = unsafe { FsInfo::from_sb_info(b::ferrofs_sb_fs_info(sb)) };
            read = info.with_sv_shared(sv, |fs, wants, id| fs.getattr_cached(wants, id, ino), |fs, id| fs.getattr(id, ino))?;
            &read
        }
    };
    // SAFETY: the inode is I_NEW, so only we touch it.
    unsafe { fill(new.0.as_ptr(), attr) };
    if let Some(inherited_acl) = created {
        // SAFETY: as above. The core made the inode under this lookup's
        // key just now, with no xattr but the inherited ACLs; one found in
        // the cache instead (not I_NEW) keeps what it has.
        unsafe { b::ferrofs_inode_new_xattrs(new.0.as_ptr(), !inherited_acl) };
    }
    Ok(new.unlock())
}

/// Copies core attributes into a new VFS inode and picks its operations.
///
/// # Safety
/// `inode` is I_NEW and owned by the caller.
unsafe fn fill(inode: *mut b::inode, a: &InodeAttr) {
    // SAFETY: exclusive access to an I_NEW inode (caller).
    unsafe {
        refresh(inode, a);
        (*inode).i_generation = a.generation as u32;
        xattr::apply_flags(inode, a.flags);
        match a.file_type() {
            FileType::Dir => b::ferrofs_inode_set_ops(inode, &dir::DIR_INODE_OPS, &dir::DIR_FILE_OPS.0, core::ptr::null()),
            FileType::Regular => b::ferrofs_inode_set_ops(inode, &FILE_INODE_OPS, &file::FILE_OPS.0, &aops::FILE_AOPS.0),
            FileType::Symlink => b::ferrofs_inode_set_ops(inode, &SYMLINK_INODE_OPS, core::ptr::null(), core::ptr::null()),
            FileType::Fifo | FileType::CharDev | FileType::BlockDev | FileType::Socket => {
                b::ferrofs_inode_set_ops(inode, &SPECIAL_INODE_OPS, core::ptr::null(), core::ptr::null());
                b::ferrofs_init_special_inode(inode, a.mode, a.rdev);
            }
        }
    }
}

/// Brings a VFS inode's attributes in line with the core's, after a core
/// call changed them.
///
/// A regular file already in memory keeps its own size, access and
/// modification times: the page cache runs ahead of the core there (see
/// `file`), so only the fields the core decides are taken. Any inode
/// already in memory keeps its atime: reads move it in the VFS inode and
/// `write_inode` hands it to the core later, so the core's may be older.
///
/// # Safety
/// `inode` is live and the caller holds what serialises its attribute
/// updates (I_NEW, or the VFS inode lock for the operation).
pub(crate) unsafe fn refresh(inode: *mut b::inode, a: &InodeAttr) {
    // SAFETY: per the contract.
    let new = unsafe { b::ferrofs_inode_is_new(inode) };
    let vfs_ahead = a.file_type() == FileType::Regular && !new;
    // SAFETY: per the contract.
    unsafe { refresh_fields(inode, a, Fields { size: !vfs_ahead, times: !vfs_ahead, atime: new }) }
}

/// Which of the fields the VFS inode may run ahead on to take from the core.
pub(crate) struct Fields {
    pub(crate) size: bool,
    /// Modification time (ctime is always taken).
    pub(crate) times: bool,
    /// Access time; only with `times`.
    pub(crate) atime: bool,
}

/// `refresh` with an explicit choice of size and times.
///
/// # Safety
/// As for `refresh`.
pub(crate) unsafe fn refresh_fields(inode: *mut b::inode, a: &InodeAttr, take: Fields) {
    // SAFETY: per the contract.
    unsafe {
        (*inode).i_mode = a.mode as u16;
        b::set_nlink(inode, a.nlink);
        b::ferrofs_inode_set_owner(inode, a.uid, a.gid);
        if take.size {
            b::ferrofs_inode_set_size(inode, a.size, a.blocks);
        } else {
            b::ferrofs_inode_set_blocks(inode, a.blocks);
        }
        if take.times {
            let atime = if take.atime {
                (a.atime.sec, a.atime.nsec)
            } else {
                let (mut sec, mut nsec) = ([0i64; 3], [0u32; 3]);
                b::ferrofs_inode_times(inode, sec.as_mut_ptr(), nsec.as_mut_ptr());
                (sec[0], nsec[0])
            };
            b::ferrofs_inode_set_times(inode, atime.0, atime.1, a.mtime.sec, a.mtime.nsec, a.ctime.sec, a.ctime.nsec);
        } else {
            b::ferrofs_inode_set_ctime(inode, a.ctime.sec, a.ctime.nsec);
        }
    }
}

/// Attributes, xattrs and ACLs: what every inode type but symlinks has.
const ATTR_ACL_OPS: b::inode_operations = b::inode_operations {
    getattr: Some(super::subvol::getattr),
    permission: Some(super::subvol::permission),
    update_time: Some(super::subvol::update_time),
    setattr: Some(namei::setattr),
    listxattr: Some(xattr::listxattr),
    get_inode_acl: Some(xattr::get_inode_acl),
    set_acl: Some(xattr::set_acl),
    ..zeroed()
};

/// `ATTR_ACL_OPS` plus inode flags: regular files and directories.
pub(crate) const ATTR_ACL_FLAG_OPS: b::inode_operations =
    b::inode_operations { fileattr_get: Some(xattr::fileattr_get), fileattr_set: Some(xattr::fileattr_set), ..ATTR_ACL_OPS };

/// Regular files: attributes, xattrs, ACLs, inode flags and FIEMAP (data
/// goes through `file::FILE_OPS`).
static FILE_INODE_OPS: b::inode_operations = b::inode_operations { fiemap: Some(super::extents::fiemap), ..ATTR_ACL_FLAG_OPS };

/// Fifos, sockets and device nodes: as regular files but without inode
/// flags, as in ext4 (FS_IOC_GETFLAGS on an open device reaches its driver).
static SPECIAL_INODE_OPS: b::inode_operations = ATTR_ACL_OPS;

/// Symlinks: no ACLs (their permissions are never checked) and no flags.
static SYMLINK_INODE_OPS: b::inode_operations = b::inode_operations {
    get_link: Some(namei::get_link),
    getattr: Some(super::subvol::getattr),
    permission: Some(super::subvol::permission),
    update_time: Some(super::subvol::update_time),
    setattr: Some(namei::setattr),
    listxattr: Some(xattr::listxattr),
    ..zeroed()
};
