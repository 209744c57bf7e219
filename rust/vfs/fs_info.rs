// SPDX-License-Identifier: GPL-2.0
//! Per-mount state hanging off `super_block::s_fs_info`: the core's view of
//! the filesystem behind one lock, and the queries the VFS glue makes of it.
//!
//! One mutex serialises every call into the core for this mount; it is never
//! held while copying to or from user memory (readdir copies a batch out
//! first), so page faults cannot nest inside it.

use super::device::KernelDevice;
use crate::error::Result;
use crate::superblock::Superblock;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Inode number of the root directory.
pub(crate) const ROOT_INO: u64 = 256;

/// What the VFS needs of an inode when it first loads it.
pub(crate) struct Attr {
    pub(crate) mode: u32,
    pub(crate) nlink: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) blocks_512: u64,
    pub(crate) atime: (i64, u32),
    pub(crate) mtime: (i64, u32),
    pub(crate) ctime: (i64, u32),
    pub(crate) generation: u32,
}

/// Filesystem-wide counts for statfs.
pub(crate) struct StatFs {
    pub(crate) block_size: u32,
    pub(crate) blocks: u64,
    pub(crate) free: u64,
    pub(crate) files: u64,
    pub(crate) free_files: u64,
    pub(crate) uuid: [u8; 16],
}

/// The state the lock protects.
struct Core {
    dev: KernelDevice,
    sb: Superblock,
}

/// Per-mount state.
#[pin_data]
pub(crate) struct FsInfo {
    #[pin]
    core: Mutex<Core>,
}

impl FsInfo {
    /// Takes over the device and the validated superblock.
    pub(crate) fn new(dev: KernelDevice, sb: Superblock) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(pin_init!(FsInfo { core <- kernel::new_mutex!(Core { dev, sb }, "ferrofs::FsInfo::core") }), GFP_KERNEL)
            .map_err(|_| crate::error::Error::NoMemory)
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

    /// Attributes of inode `ino`.
    pub(crate) fn getattr(&self, ino: u64) -> Result<Attr> {
        let core = self.core.lock();
        if ino != ROOT_INO {
            return Err(crate::error::Error::NotFound);
        }
        let _ = &core.dev;
        Ok(Attr {
            mode: 0o040755,
            nlink: 2,
            uid: 0,
            gid: 0,
            size: 0,
            blocks_512: 0,
            atime: (0, 0),
            mtime: (0, 0),
            ctime: (0, 0),
            generation: 0,
        })
    }

    /// The inode number `name` refers to in directory `dir`.
    pub(crate) fn lookup(&self, _dir: u64, _name: &[u8]) -> Result<u64> {
        let _core = self.core.lock();
        Err(crate::error::Error::NotFound)
    }

    /// Directory entries of `dir` from `cookie` on, at most `max` of them,
    /// each as (name, ino, DT_* type, cookie of the next entry).
    pub(crate) fn readdir(&self, _dir: u64, _cookie: u64, _out: &mut KVec<(KVec<u8>, u64, u8, u64)>, _max: usize) -> Result<()> {
        let _core = self.core.lock();
        Ok(())
    }

    /// Filesystem-wide counts.
    pub(crate) fn statfs(&self) -> StatFs {
        let core = self.core.lock();
        let sb = &core.sb;
        StatFs {
            block_size: sb.block_size,
            blocks: sb.total_blocks,
            free: sb.total_blocks - sb.blocks_used,
            files: 0,
            free_files: 0,
            uuid: sb.uuid,
        }
    }
}
