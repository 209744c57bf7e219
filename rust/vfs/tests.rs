// SPDX-License-Identifier: GPL-2.0
//! KUnit suites run at insmod: the core's codecs as compiled into the
//! kernel, and the C shim against them.

use super::bindings as b;
use super::kunit::{kcheck, kunit_suite, Test};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::mem::TryVec;
use crate::{crc32c, superblock};

fn crc_matches_kernel(t: &mut Test) {
    let vectors: [&[u8]; 4] = [b"", b"123456789", &[0u8; 32], b"ferrofs: a copy-on-write B-tree filesystem"];
    for v in vectors {
        // SAFETY: `v` is valid for `v.len()` bytes.
        let kernel = unsafe { b::ferrofs_crc32c(!0, v.as_ptr().cast(), v.len()) };
        kcheck!(t, !kernel == crc32c::checksum(v));
    }
    kcheck!(t, crc32c::checksum(b"123456789") == 0xE306_9283);
}

fn crc_streams(t: &mut Test) {
    let data = *b"the same bytes in two pieces or one";
    for cut in [0, 1, 7, 16, data.len()] {
        let (a, z) = data.split_at(cut);
        // SAFETY: both halves are valid for their lengths.
        let kernel = unsafe { b::ferrofs_crc32c(b::ferrofs_crc32c(!0, a.as_ptr().cast(), a.len()), z.as_ptr().cast(), z.len()) };
        kcheck!(t, kernel == crc32c::update(crc32c::update(!0, a), z));
    }
}

kunit_suite!(ferrofs_crc_suite, "ferrofs_crc", [crc_matches_kernel, crc_streams]);

/// A device in kernel memory, to run the superblock reader without a disk.
struct MemDevice(TryVec<u8>);

impl BlockDevice for MemDevice {
    fn size_bytes(&self) -> u64 {
        self.0.len() as u64
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = self.0.get(offset as usize..offset as usize + buf.len()).ok_or(Error::Io)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8], _fua: bool) -> Result<()> {
        let dst = self.0.get_mut(offset as usize..offset as usize + buf.len()).ok_or(Error::Io)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

fn sample() -> Option<superblock::Superblock> {
    superblock::Superblock::new(4096, 1024, [0x5a; 16], b"kunit").ok()
}

fn superblock_round_trip(t: &mut Test) {
    let (Some(sb), Ok(mut buf)) = (sample(), TryVec::try_from_elem(0u8, superblock::SUPERBLOCK_SIZE)) else {
        kcheck!(t, false);
        return;
    };
    sb.encode(superblock::SUPERBLOCK_OFFSETS[0], &mut buf);
    kcheck!(t, superblock::Superblock::decode(&buf, superblock::SUPERBLOCK_OFFSETS[0]).as_ref() == Ok(&sb));
    buf[200] ^= 0x40;
    kcheck!(
        t,
        superblock::Superblock::decode(&buf, superblock::SUPERBLOCK_OFFSETS[0]) == Err(Error::Corrupt("superblock checksum mismatch"))
    );
    buf[8] = 0;
    kcheck!(t, superblock::Superblock::decode(&buf, superblock::SUPERBLOCK_OFFSETS[0]) == Err(Error::NotFerrofs));
}

fn superblock_reader_prefers_newest_valid_copy(t: &mut Test) {
    let (Some(mut sb), Ok(mem)) = (sample(), TryVec::try_from_elem(0u8, 1024 * 4096)) else {
        kcheck!(t, false);
        return;
    };
    let mut dev = MemDevice(mem);
    kcheck!(t, superblock::read_superblock(&mut dev) == Err(Error::NotFerrofs));
    kcheck!(t, superblock::write_superblock(&mut dev, &sb).is_ok());
    kcheck!(t, superblock::read_superblock(&mut dev).map(|s| s.generation) == Ok(1));
    // A torn commit: only the first copy got the new generation.
    sb.generation = 2;
    let mut buf = [0u8; 0].as_slice().len();
    buf += superblock::SUPERBLOCK_SIZE;
    if let Ok(mut b) = TryVec::try_from_elem(0u8, buf) {
        sb.encode(superblock::SUPERBLOCK_OFFSETS[0], &mut b);
        kcheck!(t, dev.write(superblock::SUPERBLOCK_OFFSETS[0], &b, true).is_ok());
    }
    kcheck!(t, superblock::read_superblock(&mut dev).map(|s| s.generation) == Ok(2));
    // Damage the newer copy: the older one is still found.
    dev.0[superblock::SUPERBLOCK_OFFSETS[0] as usize + 300] ^= 1;
    kcheck!(t, superblock::read_superblock(&mut dev).map(|s| s.generation) == Ok(1));
    // A device smaller than the filesystem is refused.
    dev.0.truncate(1000 * 4096);
    kcheck!(t, superblock::read_superblock(&mut dev) == Err(Error::DeviceTooSmall));
}

kunit_suite!(ferrofs_superblock_suite, "ferrofs_superblock", [superblock_round_trip, superblock_reader_prefers_newest_valid_copy]);
