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
}
