// SPDX-License-Identifier: GPL-2.0
//! The core's `BlockDevice` over the mounted block device: bios straight
//! from and to the core's buffers (shim `ferrofs_bdev_io`), so a run of
//! blocks the core reads or writes at once goes out as one large bio; and
//! the core's one read ahead (`BlockDevice::read_ahead`), whose bios run
//! while the core goes on (shim `ferrofs_aread_*`); and batches of reads
//! submitted together (`BlockDevice::read_pieces`, shim
//! `ferrofs_bdev_read_pieces`).

use super::bindings as b;
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use core::ptr::NonNull;

/// The block device under a mounted super_block.
pub(crate) struct KernelDevice {
    sb: *mut b::super_block,
    size: u64,
    /// The read ahead the core started, if any.
    ahead: Option<ReadAhead>,
}

// SAFETY: the super_block outlives the device: the device lives in the
// FsInfo hanging off that super_block and is dropped in put_super/kill_sb,
// before the super_block goes away. Bios may be submitted from any task.
unsafe impl Send for KernelDevice {}
// SAFETY: `&self` gives only `read_shared` and `write_shared`, which submit
// bios and wait on their own stack; the block layer takes bios from many
// tasks at once. `sb` and `size` never change after `new`; `ahead` is only
// reached through `&mut self`.
unsafe impl Sync for KernelDevice {}

impl KernelDevice {
    /// # Safety
    /// `sb` is a live super_block with its block device open, and it
    /// outlives the returned device.
    pub(crate) unsafe fn new(sb: *mut b::super_block) -> Self {
        // SAFETY: `sb` is live and has its block device open (caller).
        let size = unsafe { b::ferrofs_bdev_bytes(sb) };
        KernelDevice { sb, size, ahead: None }
    }

    /// A second handle on the same device, for file data read and written
    /// outside the core lock; it lives in the same FsInfo.
    pub(crate) fn duplicate(&self) -> Self {
        KernelDevice { sb: self.sb, size: self.size, ahead: None }
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

    fn read_ahead(&mut self, offset: u64, len: usize) -> Result<()> {
        // The last one's bios end before a new one starts.
        self.ahead = None;
        self.check(offset, len)?;
        // SAFETY: `self.sb` is live with an open device, and it outlives
        // this device and so the read ahead (type invariant).
        self.ahead = unsafe { ReadAhead::start(self.sb, offset, len) };
        Ok(())
    }

    fn read_ahead_take(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        Ok(match self.ahead.take() {
            Some(r) if r.offset == offset => r.copy_to(buf),
            _ => 0,
        })
    }

    fn read_ahead_cancel(&mut self) {
        self.ahead = None;
    }

    fn read_pieces(&mut self, offsets: &[u64], piece: usize, buf: &mut [u8]) -> Result<bool> {
        if offsets.len().checked_mul(piece) != Some(buf.len()) {
            return Err(Error::Bug("batch buffer not one piece per offset"));
        }
        for &offset in offsets {
            self.check(offset, piece)?;
        }
        // SAFETY: `self.sb` is live with an open device (type invariant);
        // `offsets` holds `offsets.len()` offsets and `buf` the pieces'
        // bytes, both the caller's for the call, which waits for the I/O.
        let rc = unsafe { b::ferrofs_bdev_read_pieces(self.sb, offsets.as_ptr(), offsets.len(), buf.as_mut_ptr().cast(), piece) };
        match rc {
            0 => Ok(true),
            rc if rc == -(crate::error::errno::ENOMEM) => Err(Error::NoMemory),
            rc if rc == -(crate::error::errno::EINVAL) => Err(Error::Bug("device buffer not sector aligned")),
            _ => Err(Error::Io),
        }
    }
}

/// A read of the device in flight, into a buffer of its own.
///
/// # Invariants
/// `r` came from `ferrofs_aread_start` and is freed only by `drop`, which
/// waits for its bios first; its buffer holds `len` bytes.
struct ReadAhead {
    r: NonNull<b::ferrofs_aread>,
    offset: u64,
    len: usize,
}

impl ReadAhead {
    /// Starts reading `len` bytes at byte `offset` (whole sectors within
    /// the device); `None` when the shim cannot (no memory).
    ///
    /// # Safety
    /// `sb` is a live super_block with its block device open, and it
    /// outlives the returned read.
    unsafe fn start(sb: *mut b::super_block, offset: u64, len: usize) -> Option<Self> {
        // SAFETY: `sb` is live with an open device (caller); the shim
        // checks the alignment and owns the buffer it reads into.
        let r = NonNull::new(unsafe { b::ferrofs_aread_start(sb, offset, len) })?;
        // INVARIANT: `r` is a fresh read of `len` bytes.
        Some(ReadAhead { r, offset, len })
    }

    /// Waits for the read and copies its bytes into the start of `buf`;
    /// returns how many (0 when the read failed).
    fn copy_to(&self, buf: &mut [u8]) -> usize {
        // SAFETY: `r` is a live read (type invariant).
        if unsafe { b::ferrofs_aread_wait(self.r.as_ptr()) } != 0 {
            return 0;
        }
        // SAFETY: `r` is live, and its read is over (waited above).
        let data = unsafe { b::ferrofs_aread_buf(self.r.as_ptr()) };
        let n = self.len.min(buf.len());
        // SAFETY: the buffer holds `len` >= `n` bytes the finished read
        // filled, owned by `r` until `drop`, and `buf` is other memory.
        let src = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), n) };
        buf[..n].copy_from_slice(src);
        n
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // SAFETY: `r` is live and freed only here (type invariant); the
        // shim waits for its bios before freeing.
        unsafe { b::ferrofs_aread_free(self.r.as_ptr()) };
    }
}
