// SPDX-License-Identifier: GPL-2.0
//! The VFS side of subvolumes: one `Subvol` per subvolume a mount has met,
//! shared by all of that subvolume's inodes through `i_private`, with the
//! st_dev stat reports for it, its read-only flag and whether it is gone.
//!
//! Inodes are keyed by (subvolume, inode number) in the inode cache: each
//! subvolume numbers its inodes on its own, so its root directory is 256 in
//! every one of them. `SubvolTable` hands out the `Subvol`s; they are never
//! freed or moved before the FsInfo is, after the last inode is evicted,
//! so an inode's `&Subvol` is valid for as long as the inode.
//!
//! Each subvolume but the default one gets an anonymous device number, so
//! `find -xdev`, `du -x` and `tar --one-file-system` treat it as a
//! separate filesystem and (st_dev, st_ino) stays unique; the default
//! subvolume keeps the super_block's own device.
//!
//! Deletion: the core deletes under its lock, and `deleted` is set under the
//! same lock, so no call through a deleted subvolume's inodes reaches the
//! core afterwards (`FsInfo::with_sv` refuses it): its id may name a new
//! subvolume once the old tree is dropped, and such an inode must not reach
//! the new one. A deleted `Subvol` leaves the table's lookups, so the next
//! subvolume with that id gets a new `Subvol`, and inode-cache keys of the
//! two never match.

use super::bindings as b;
use crate::error::{Error, Result};
use crate::subvol::SubvolId;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// What the adapter keeps of one subvolume of a mount.
pub(crate) struct Subvol {
    id: SubvolId,
    /// Its own device number for stat; 0 for the default subvolume, which
    /// reports the super_block's.
    anon_dev: b::dev_t,
    /// Mirrors the core's read-only flag, for checks that cannot sleep
    /// (permission in RCU walk) or must come before the page cache takes
    /// data; the core refuses changes to a read-only subvolume on its own.
    read_only: AtomicBool,
    /// Set while a delete decides whether the subvolume is busy: its clean
    /// inodes are evicted at their last reference instead of cached.
    dying: AtomicBool,
    /// Set under the core lock when the core deleted the subvolume.
    deleted: AtomicBool,
}

impl Subvol {
    /// Its id in the core.
    pub(crate) fn id(&self) -> SubvolId {
        self.id
    }

    /// The device number stat reports, or None for the super_block's.
    pub(crate) fn anon_dev(&self) -> Option<b::dev_t> {
        (self.anon_dev != 0).then_some(self.anon_dev)
    }

    /// Whether changes are refused with EROFS.
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// Records the core's new read-only flag (after it took it).
    pub(crate) fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Release);
    }

    /// `Err(ReadOnly)` if the subvolume is read-only.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Whether the core has deleted it.
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Marks it deleted; the caller holds the core lock and the core has
    /// just deleted it.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// Whether its unused clean inodes should be evicted rather than cached.
    pub(crate) fn evict_unused(&self) -> bool {
        self.dying.load(Ordering::Acquire) || self.is_deleted()
    }

    /// Starts or ends a delete's busy check (see `evict_unused`).
    pub(crate) fn set_dying(&self, dying: bool) {
        self.dying.store(dying, Ordering::Release);
    }
}

impl Drop for Subvol {
    fn drop(&mut self) {
        if self.anon_dev != 0 {
            // SAFETY: `anon_dev` came from get_anon_bdev in `SubvolTable::get`
            // and is given back once, here.
            unsafe { b::free_anon_bdev(self.anon_dev) };
        }
    }
}

/// The subvolumes of one mount, by id.
///
/// # Invariants
/// Entries are boxed and only dropped with the table (in the FsInfo's
/// drop, after every inode is gone), so a `&Subvol` taken from an entry
/// is valid for as long as the table.
#[pin_data]
pub(crate) struct SubvolTable {
    #[pin]
    entries: Mutex<KVec<KBox<Subvol>>>,
}

impl SubvolTable {
    /// An empty table.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(SubvolTable { entries <- kernel::new_mutex!(KVec::new(), "ferrofs::SubvolTable::entries") })
    }

    /// The live (not deleted) entry for `id`, if there is one.
    pub(crate) fn find(&self, id: SubvolId) -> Option<&Subvol> {
        let entries = self.entries.lock();
        let found = entries.iter().find(|s| s.id == id && !s.is_deleted()).map(|s| &**s as *const Subvol);
        // SAFETY: entries are boxed and live as long as the table (type
        // invariant), so the pointer outlives the guard, for `&self`.
        found.map(|p| unsafe { &*p })
    }

    /// The entry for `id`, made on first use with the core's read-only flag
    /// `read_only` (which the caller has just read, proving the subvolume
    /// exists). Called without the core lock.
    pub(crate) fn get(&self, id: SubvolId, read_only: bool) -> Result<&Subvol> {
        if let Some(s) = self.find(id) {
            return Ok(s);
        }
        let mut anon_dev: b::dev_t = 0;
        if id != SubvolId::DEFAULT {
            // SAFETY: get_anon_bdev writes a free device number through the
            // valid pointer; it does not sleep.
            if unsafe { b::get_anon_bdev(&mut anon_dev) } != 0 {
                return Err(Error::NoMemory);
            }
        }
        let new = KBox::new(
            Subvol { id, anon_dev, read_only: AtomicBool::new(read_only), dying: AtomicBool::new(false), deleted: AtomicBool::new(false) },
            GFP_KERNEL,
        )
        .map_err(|_| Error::NoMemory)?;
        let mut entries = self.entries.lock();
        let p = match entries.iter().find(|s| s.id == id && !s.is_deleted()) {
            // Another task made it meanwhile: ours goes (with its device).
            Some(s) => &**s as *const Subvol,
            None => {
                let p = &*new as *const Subvol;
                entries.push(new, GFP_KERNEL).map_err(|_| Error::NoMemory)?;
                p
            }
        };
        drop(entries);
        // SAFETY: the entry is boxed and lives as long as the table (type
        // invariant).
        Ok(unsafe { &*p })
    }
}

/// `->getattr` of every inode: the generic fields, with the subvolume's own
/// st_dev.
///
/// # Safety
/// Called by vfs_getattr_nosec with `path` the live path of a ferrofs
/// inode, pinned by the caller for the call, `stat` the caller's kstat to
/// fill and `idmap` the path's mount idmap.
pub(crate) unsafe extern "C" fn getattr(
    idmap: *mut b::mnt_idmap,
    path: *const b::path,
    stat: *mut b::kstat,
    request_mask: u32,
    _flags: u32,
) -> core::ffi::c_int {
    // SAFETY: the caller pins the path, so its dentry and (positive) inode,
    // a ferrofs inode, are live for the call.
    let inode = unsafe { super::inode::INode::from_raw(b::ferrofs_dentry_inode((*path).dentry)) };
    let dev = inode.subvol().anon_dev().unwrap_or(0);
    // SAFETY: the live arguments of this getattr, passed on as they came.
    unsafe { b::ferrofs_fill_kstat(idmap, path, stat, request_mask, dev) };
    0
}

/// Whether an access of `mask` to an inode of mode `mode` in `sv` is a
/// change that a read-only subvolume refuses with EROFS (as a read-only
/// mount does): writing to a file, or changing a directory's entries.
fn refused_as_read_only(sv: &Subvol, mode: u32, mask: i32) -> bool {
    use crate::format::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
    // SAFETY: reads an immutable constant that shim.c defines.
    let may_write = unsafe { b::FERROFS_MAY_WRITE };
    let changes_content = matches!(mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK);
    mask & may_write != 0 && changes_content && sv.is_read_only()
}

/// `->permission` of every inode: EROFS for a write in a read-only
/// subvolume (open for writing, create, unlink, rename, link in it), else
/// the generic mode and ACL check.
///
/// # Safety
/// Called by inode_permission with `inode` a live ferrofs inode and `idmap`
/// the mount's idmap. With MAY_NOT_BLOCK in `mask` (RCU walk) the inode is
/// only RCU-protected: nothing here sleeps, and the `Subvol` it reads lives
/// as long as the super_block.
pub(crate) unsafe extern "C" fn permission(idmap: *mut b::mnt_idmap, inode: *mut b::inode, mask: core::ffi::c_int) -> core::ffi::c_int {
    // SAFETY: a ferrofs inode, live at least under RCU for the call.
    let i = unsafe { super::inode::INode::from_raw(inode) };
    // SAFETY: as above; i_mode is read once, as generic_permission does.
    let mode = unsafe { (*inode).i_mode } as u32;
    if refused_as_read_only(i.subvol(), mode, mask) {
        return kernel::error::code::EROFS.to_errno();
    }
    // SAFETY: the live arguments of this permission check, passed on; the
    // generic check honours MAY_NOT_BLOCK itself.
    unsafe { b::generic_permission(idmap, inode, mask) }
}

/// `->update_time`: a read-only subvolume's times stay as they are (reads
/// still work: touch_atime ignores the error); else the generic update,
/// which dirties the inode for `write_inode`.
///
/// # Safety
/// Called by inode_update_time with `inode` a live ferrofs inode, pinned
/// by the caller's file or path for the call.
pub(crate) unsafe extern "C" fn update_time(inode: *mut b::inode, flags: core::ffi::c_int) -> core::ffi::c_int {
    // SAFETY: a live ferrofs inode (caller).
    let i = unsafe { super::inode::INode::from_raw(inode) };
    if i.subvol().is_read_only() {
        return kernel::error::code::EROFS.to_errno();
    }
    if i.ino() == crate::format::EMPTY_SUBVOL_DIR_INO {
        // A snapshot's stand-in for a nested subvolume has no inode of its
        // own in the core to keep times in: they stay as the core gave them.
        return 0;
    }
    // SAFETY: the live arguments of this call, passed on. It returns which
    // times it changed, not a status: ours is 0, as inode_update_time's
    // callers take any other value as the result of their write.
    unsafe { b::generic_update_time(inode, flags) };
    0
}
