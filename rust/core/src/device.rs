// SPDX-License-Identifier: GPL-2.0
//! The block device seen by the core: byte-addressed reads and writes in
//! whole blocks, a cache flush, and writes that can be forced to media (FUA).
//!
//! The kernel implements it over bios, the tools over a file, the tests over a
//! simulated disk that can lose unflushed writes.

use crate::error::Result;

/// A device the core reads and writes. Offsets and lengths are multiples of
/// 512 bytes; the core only issues whole filesystem blocks. The kernel's
/// device also needs the memory's address sector-aligned: the core's own
/// buffers are, and `Filesystem::read` reads into a caller's buffer only at
/// multiples of the block size from its start.
pub trait BlockDevice {
    /// Size of the device in bytes.
    fn size_bytes(&self) -> u64;
    /// Fills `buf` from byte `offset`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes `buf` at byte `offset`. It may sit in a volatile cache until the
    /// next `flush`, unless `fua` asks for it to reach stable media first.
    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<()>;

    /// Starts reading `len` bytes from `offset` into the device's own
    /// buffer without waiting, so the I/O overlaps the caller's work until
    /// `read_ahead_take` collects it. One at a time: another read ahead or
    /// `read_ahead_cancel` drops the last. The caller keeps the blocks
    /// from being written until then (send reads only blocks of the
    /// read-only snapshots it holds). A hint: the default reads nothing,
    /// and a device that cannot start it now may ignore it.
    fn read_ahead(&mut self, _offset: u64, _len: usize) -> Result<()> {
        Ok(())
    }

    /// Fills the start of `buf` from the read ahead started at `offset`,
    /// waiting for it, and drops it; returns how many bytes it filled (at
    /// most the read's length; 0 when none started at `offset`, or when it
    /// failed, so the caller's own read meets and reports the error).
    fn read_ahead_take(&mut self, _offset: u64, _buf: &mut [u8]) -> Result<usize> {
        Ok(0)
    }

    /// Drops the read ahead, if any, once its I/O is over.
    fn read_ahead_cancel(&mut self) {}

    /// Fills `buf` in pieces of `piece` bytes, piece `i` from byte
    /// `offsets[i]` (`buf` holds `offsets.len()` pieces): several reads
    /// submitted together, so the device works on them at once, and waited
    /// for together. Returns false, having read nothing, when the device
    /// does not batch reads (the default): the caller then reads each
    /// piece when it needs it, rather than one by one ahead of need.
    fn read_pieces(&mut self, _offsets: &[u64], _piece: usize, _buf: &mut [u8]) -> Result<bool> {
        Ok(false)
    }
}

/// A borrowed device is a device, so `mkfs` can run the store over
/// `&mut dyn BlockDevice`.
impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn size_bytes(&self) -> u64 {
        (**self).size_bytes()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        (**self).write(offset, buf, fua)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn read_ahead(&mut self, offset: u64, len: usize) -> Result<()> {
        (**self).read_ahead(offset, len)
    }
    fn read_ahead_take(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        (**self).read_ahead_take(offset, buf)
    }
    fn read_ahead_cancel(&mut self) {
        (**self).read_ahead_cancel()
    }
    fn read_pieces(&mut self, offsets: &[u64], piece: usize, buf: &mut [u8]) -> Result<bool> {
        (**self).read_pieces(offsets, piece, buf)
    }
}
