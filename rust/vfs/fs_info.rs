// SPDX-License-Identifier: GPL-2.0
//! Per-mount state hanging off `super_block::s_fs_info`: the mounted core
//! filesystem behind one lock, and the calls the VFS glue makes into it.
//!
//! One mutex serialises every call into the core for this mount (the core
//! is a single-writer engine taking `&mut self`). It is never held while
//! copying to or from user memory (readdir copies a batch out first), so a
//! page fault cannot nest inside it.

use super::device::KernelDevice;
use crate::error::{Error, Result};
use crate::format::FileType;
use crate::fs::{Filesystem, InodeAttr, MountOptions, StatFs};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::sync::Mutex;

/// One directory entry handed from the core to the VFS.
pub(crate) struct DirEntryOut {
    pub(crate) name: KVec<u8>,
    pub(crate) ino: u64,
    pub(crate) file_type: FileType,
    pub(crate) next_cookie: u64,
}

/// Per-mount state.
#[pin_data]
pub(crate) struct FsInfo {
    root_ino: u64,
    uuid: [u8; 16],
    /// `None` once put_super has unmounted the core.
    #[pin]
    core: Mutex<Option<Filesystem<KernelDevice>>>,
    /// Blocks promised to dirty page-cache folios not yet written back (one
    /// per folio tagged in `aops`), so a buffered write that could not be
    /// written back fails with ENOSPC at write(2) and not later.
    dirty_reserved: AtomicU64,
}

impl FsInfo {
    /// Mounts the core filesystem on `dev`.
    pub(crate) fn new(dev: KernelDevice, read_only: bool) -> Result<Pin<KBox<Self>>> {
        let fs = Filesystem::mount_with(dev, MountOptions { read_only, ..MountOptions::default() })?;
        let (root_ino, uuid) = (fs.root_ino(), fs.superblock().uuid);
        KBox::pin_init(
            pin_init!(FsInfo {
                root_ino,
                uuid,
                core <- kernel::new_mutex!(Some(fs), "ferrofs::FsInfo::core"),
                dirty_reserved: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
            .map_err(|_| Error::NoMemory)
    }

    /// Hands ownership to the super_block as an opaque pointer.
    pub(crate) fn into_foreign(this: Pin<KBox<Self>>) -> *mut core::ffi::c_void {
        // SAFETY: the pointer is only turned back into a pinned box by
        // `from_foreign`, so the pinned value never moves.
        KBox::into_raw(unsafe { Pin::into_inner_unchecked(this) }).cast()
    }

    /// Takes ownership back from `into_foreign`.
    ///
    /// # Safety
    /// `ptr` came from `into_foreign` and is not used afterwards.
    pub(crate) unsafe fn from_foreign(ptr: *mut core::ffi::c_void) -> Pin<KBox<Self>> {
        // SAFETY: per the contract, `ptr` is a leaked KBox<FsInfo>, pinned.
        unsafe { Pin::new_unchecked(KBox::from_raw(ptr.cast())) }
    }

    /// Borrows the FsInfo of a mounted super_block.
    ///
    /// # Safety
    /// `ptr` is the `s_fs_info` of a live ferrofs super_block, set by
    /// fill_super; the borrow does not outlive the super_block.
    pub(crate) unsafe fn from_sb_info<'a>(ptr: *mut core::ffi::c_void) -> &'a FsInfo {
        // SAFETY: per the contract.
        unsafe { &*ptr.cast::<FsInfo>() }
    }

    /// Inode number of the root directory.
    pub(crate) fn root_ino(&self) -> u64 {
        self.root_ino
    }

    /// Counts one more block promised to a dirty folio.
    pub(crate) fn reserve_dirty(&self) {
        self.dirty_reserved.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives back the block of a folio written back or thrown away.
    pub(crate) fn release_dirty(&self) {
        // Never below zero, even if a tag outlived a remount of the count.
        let _ = self.dirty_reserved.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Whether the core has room for every promised block plus one more
    /// and the tree nodes that writing them back will copy: a margin of 64
    /// blocks and one in 16 of the promised ones.
    pub(crate) fn room_for_one_more(&self) -> Result<bool> {
        let promised = self.dirty_reserved.load(Ordering::Relaxed);
        let avail = self.statfs()?.avail_blocks;
        Ok(avail > promised + 1 + 64 + promised / 16)
    }

    /// Filesystem UUID.
    pub(crate) fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// Runs `f` on the mounted core; `Err(Io)` after put_super.
    ///
    /// Allocations under the lock must not recurse into filesystem reclaim,
    /// which can evict ferrofs inodes and so take this same lock: the core
    /// runs in a NOFS allocation scope.
    pub(crate) fn with_core<T>(&self, f: impl FnOnce(&mut Filesystem<KernelDevice>) -> Result<T>) -> Result<T> {
        let mut guard = self.core.lock();
        // SAFETY: plain task-flag save/restore, paired below.
        let nofs = unsafe { super::bindings::ferrofs_nofs_save() };
        let r = match guard.as_mut() {
            Some(fs) => f(fs),
            None => Err(Error::Io),
        };
        // SAFETY: restores what ferrofs_nofs_save returned on this task.
        unsafe { super::bindings::ferrofs_nofs_restore(nofs) };
        r
    }

    /// Attributes of inode `ino`.
    pub(crate) fn getattr(&self, ino: u64) -> Result<InodeAttr> {
        self.with_core(|fs| fs.getattr(ino))
    }

    /// The inode number `name` refers to in directory `dir`.
    pub(crate) fn lookup(&self, dir: u64, name: &[u8]) -> Result<u64> {
        self.with_core(|fs| fs.lookup(dir, name))
    }

    /// Appends up to `max` entries of `dir` from `cookie` on to `out`.
    pub(crate) fn readdir(&self, dir: u64, cookie: u64, out: &mut KVec<DirEntryOut>, max: usize) -> Result<()> {
        self.with_core(|fs| {
            let mut failed = None;
            fs.readdir(dir, cookie, &mut |name, ino, file_type, next_cookie| {
                if out.len() >= max {
                    return false;
                }
                let mut n = KVec::new();
                let pushed = n
                    .extend_from_slice(name, GFP_KERNEL)
                    .and_then(|()| out.push(DirEntryOut { name: n, ino, file_type, next_cookie }, GFP_KERNEL));
                if pushed.is_err() {
                    failed = Some(Error::NoMemory);
                    return false;
                }
                true
            })?;
            failed.map_or(Ok(()), Err)
        })
    }

    /// Filesystem-wide counts.
    pub(crate) fn statfs(&self) -> Result<StatFs> {
        self.with_core(|fs| Ok(fs.statfs()))
    }

    /// Commits and releases the core; later calls fail with EIO.
    pub(crate) fn unmount(&self) -> Result<()> {
        let taken = self.core.lock().take();
        match taken {
            Some(fs) => fs.unmount().map(drop),
            None => Ok(()),
        }
    }
}
