// SPDX-License-Identifier: GPL-2.0
//! The core's `BlockDevice` over the mounted block device: bios straight
//! from and to the core's buffers (shim `ferrofs_bdev_io`), so a run of
//! blocks the core reads or writes at once goes out as one large bio.

use super::bindings as b;
use crate::device::BlockDevice;
use crate::error::{Error, Result};

/// The block device under a mounted super_block.
pub(crate) struct KernelDevice {
    sb: *mut b::super_block,
    size: u64,
}

// SAFETY: the super_block outlives the device: the device lives in the
// FsInfo hanging off that super_block and is dropped in put_super/kill_sb,
// before the super_block goes away. Bios may be submitted from any task.
unsafe impl Send for KernelDevice {}
// SAFETY: `&self` gives only `read_shared`, which submits bios and waits on
// its own stack; the block layer takes bios from many tasks at once, and
// the fields are never changed after `new`.
unsafe impl Sync for KernelDevice {}

impl KernelDevice {
    /// # Safety
    /// `sb` is a live super_block with its block device open, and it
    /// outlives the returned device.
    pub(crate) unsafe fn new(sb: *mut b::super_block) -> Self {
        // SAFETY: `sb` is live and has its block device open (caller).
        let size = unsafe { b::ferrofs_bdev_bytes(sb) };
        KernelDevice { sb, size }
    }

    /// A second handle on the same device, for file data read and written
    /// outside the core lock; it lives in the same FsInfo.
    pub(crate) fn duplicate(&self) -> Self {
        KernelDevice { sb: self.sb, size: self.size }
    }

    /// Fills `buf` (sector-aligned memory, a whole number of sectors) from
    /// byte `offset`, without the core: many tasks may read at once.
    pub(crate) fn read_shared(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.io(offset, buf.as_mut_ptr(), buf.len(), false, false)
    }

    /// Writes `buf` (as for `read_shared`) at byte `offset`, without the
    /// core, into blocks no one else writes (`crate::data_write`).
    pub(crate) fn write_shared(&self, offset: u64, buf: &[u8]) -> Result<()> {
        // The bio only reads from the buffer for a write.
        self.io(offset, buf.as_ptr().cast_mut(), buf.len(), true, false)
    }

    /// The super_block whose device this is.
    pub(crate) fn super_block(&self) -> *mut b::super_block {
        self.sb
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        let end = offset.checked_add(len as u64).ok_or(Error::Io)?;
        if (offset | len as u64) & 511 != 0 || end > self.size {
            return Err(Error::Bug("device I/O not in whole sectors within the device"));
        }
        Ok(())
    }

    fn io(&self, offset: u64, ptr: *mut u8, len: usize, write: bool, fua: bool) -> Result<()> {
        self.check(offset, len)?;
        // SAFETY: `self.sb` is live with an open device (type invariant);
        // `ptr` points to `len` bytes the caller owns for the call (readable
        // for a write, writable for a read), and the call waits for the I/O.
        match unsafe { b::ferrofs_bdev_io(self.sb, offset, ptr.cast(), len, write, fua) } {
            0 => Ok(()),
            rc if rc == -(crate::error::errno::ENOMEM) => Err(Error::NoMemory),
            rc if rc == -(crate::error::errno::EINVAL) => Err(Error::Bug("device buffer not sector aligned")),
            _ => Err(Error::Io),
        }
    }
}

impl BlockDevice for KernelDevice {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.io(offset, buf.as_mut_ptr(), buf.len(), false, false)
    }

    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        // The bio only reads from the buffer for a write.
        self.io(offset, buf.as_ptr().cast_mut(), buf.len(), true, fua)
    }

    fn flush(&mut self) -> Result<()> {
        // SAFETY: `self.sb` is live with an open block device.
        match unsafe { b::ferrofs_flush_bdev(self.sb) } {
            0 => Ok(()),
            _ => Err(Error::Io),
        }
    }
}
