// SPDX-License-Identifier: GPL-2.0
//! The core's `BlockDevice` over the mounted block device, through the
//! buffer cache (shim: `sb_bread`, `__sync_dirty_buffer` with FUA, flush).

use super::bindings as b;
use crate::device::BlockDevice;
use crate::error::{Error, Result};

/// The block device under a mounted super_block, in `block_size` units.
pub(crate) struct KernelDevice {
    sb: *mut b::super_block,
    block_size: u32,
    size: u64,
}

// SAFETY: the super_block outlives the device: the device lives in the
// FsInfo hanging off that super_block and is dropped in put_super/kill_sb,
// before the super_block goes away. Buffer-cache calls may be made from any
// task.
unsafe impl Send for KernelDevice {}

impl KernelDevice {
    /// # Safety
    /// `sb` is a live super_block whose block size was set to `block_size`
    /// with `sb_set_blocksize`, and it outlives the returned device.
    pub(crate) unsafe fn new(sb: *mut b::super_block, block_size: u32) -> Self {
        // SAFETY: `sb` is live and has its block device open (caller).
        let size = unsafe { b::ferrofs_bdev_bytes(sb) };
        KernelDevice { sb, block_size: block_size.max(512), size }
    }

    fn blocks(&self, offset: u64, len: usize) -> Result<core::ops::Range<u64>> {
        let bs = self.block_size as u64;
        let end = offset.checked_add(len as u64).ok_or(Error::Io)?;
        // Block sizes are powers of two: masks and shifts, no division.
        let shift = bs.trailing_zeros();
        if (offset | len as u64) & (bs - 1) != 0 || end > self.size {
            return Err(Error::Invalid("device I/O not in whole blocks within the device"));
        }
        Ok(offset >> shift..end >> shift)
    }
}

impl BlockDevice for KernelDevice {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let bs = self.block_size as usize;
        let mut pos = 0;
        for blk in self.blocks(offset, buf.len())? {
            let chunk = buf.get_mut(pos..pos + bs).ok_or(Error::Io)?;
            // SAFETY: `self.sb` is live (type invariant) with block size
            // `bs`, and `chunk` is exactly `bs` writable bytes.
            let rc = unsafe { b::ferrofs_read_block(self.sb, blk, chunk.as_mut_ptr().cast()) };
            if rc != 0 {
                return Err(Error::Io);
            }
            pos += bs;
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        let bs = self.block_size as usize;
        let mut pos = 0;
        for blk in self.blocks(offset, buf.len())? {
            let chunk = buf.get(pos..pos + bs).ok_or(Error::Io)?;
            // SAFETY: `self.sb` is live with block size `bs`, and `chunk` is
            // exactly `bs` readable bytes.
            let rc = unsafe { b::ferrofs_write_block(self.sb, blk, chunk.as_ptr().cast(), fua) };
            match rc {
                0 => {}
                rc if rc == -(crate::error::errno::ENOMEM) => return Err(Error::NoMemory),
                _ => return Err(Error::Io),
            }
            pos += bs;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        // SAFETY: `self.sb` is live with an open block device.
        match unsafe { b::ferrofs_flush_bdev(self.sb) } {
            0 => Ok(()),
            _ => Err(Error::Io),
        }
    }
}
