// SPDX-License-Identifier: GPL-2.0
//! KUnit suites run at insmod: the core's codecs as compiled into the
//! kernel, and the C shim against them.

use super::bindings as b;
use super::kunit::{kcheck, kunit_suite, Test};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::mem::TryVec;
use crate::{crc32c, crc32c_soft, superblock};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;

fn crc_matches_kernel(t: &mut Test) {
    let vectors: [&[u8]; 4] = [b"", b"123456789", &[0u8; 32], b"ferrofs: a copy-on-write B-tree filesystem"];
    for v in vectors {
        // SAFETY: `v` is valid for `v.len()` bytes.
        let kernel = unsafe { b::ferrofs_crc32c(!0, v.as_ptr().cast(), v.len()) };
        kcheck!(t, !kernel == crc32c_soft::checksum(v));
        // The core's CRC in the module is the kernel's, behind the same API.
        kcheck!(t, crc32c::checksum(v) == crc32c_soft::checksum(v));
    }
    kcheck!(t, crc32c::checksum(b"123456789") == 0xE306_9283);
    kcheck!(t, crc32c_soft::checksum(b"123456789") == 0xE306_9283);
}

fn crc_streams(t: &mut Test) {
    let data = *b"the same bytes in two pieces or one";
    for cut in [0, 1, 7, 16, data.len()] {
        let (a, z) = data.split_at(cut);
        // SAFETY: both halves are valid for their lengths.
        let kernel = unsafe { b::ferrofs_crc32c(b::ferrofs_crc32c(!0, a.as_ptr().cast(), a.len()), z.as_ptr().cast(), z.len()) };
        kcheck!(t, kernel == crc32c_soft::update(crc32c_soft::update(!0, a), z));
        kcheck!(t, crc32c::update(crc32c::update(0, a), z) == crc32c_soft::update(crc32c_soft::update(0, a), z));
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
        superblock::Superblock::decode(&buf, superblock::SUPERBLOCK_OFFSETS[0]) == Err(Error::corrupt("superblock checksum mismatch"))
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
    if let Ok(mut b) = TryVec::try_from_elem(0u8, superblock::SUPERBLOCK_SIZE) {
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

/// A small formatted filesystem in kernel memory.
fn formatted_mem_fs() -> Option<MemDevice> {
    let mut dev = MemDevice(TryVec::try_from_elem(0u8, 1024 * 4096).ok()?);
    let opts = crate::mkfs::MkfsOptions {
        block_size: 4096,
        size_bytes: 1024 * 4096,
        uuid: [3; 16],
        label: b"kunit",
        now: (1_700_000_000, 5),
        fast_commit_blocks: None,
    };
    crate::mkfs::format(&mut dev, &opts).ok()?;
    Some(dev)
}

/// A mounted core in a box: the tests hold a pointer rather than the core,
/// as the adapter's mount does, so that replay and commits, which run deep,
/// do not run under a frame that holds it (a mounted core is large, and
/// the kernel's stack is 16 KiB without KASAN).
type BoxedFs = KBox<crate::fs::Filesystem<MemDevice>>;

/// Mounts `dev` into a box: opened in a frame of its own, then replayed
/// through the box.
fn mount_boxed(dev: MemDevice, opts: crate::fs::MountOptions) -> Result<BoxedFs> {
    let mut fs = open_boxed(dev, opts)?;
    fs.finish_mount()?;
    Ok(fs)
}

/// `Filesystem::open` into a box. Not inlined: its frame holds the core
/// while it is built.
#[inline(never)]
fn open_boxed(dev: MemDevice, opts: crate::fs::MountOptions) -> Result<BoxedFs> {
    KBox::new(crate::fs::Filesystem::open(dev, opts)?, GFP_KERNEL).map_err(|_| Error::NoMemory)
}

/// Unmounts a boxed core and returns its device: the commit runs through
/// the box, and only the unmount of a clean core holds the core in a frame.
#[inline(never)]
fn unmount_boxed(mut fs: BoxedFs) -> Result<MemDevice> {
    fs.commit()?;
    KBox::into_inner(fs).unmount()
}

fn engine_mkfs_mount_root(t: &mut Test) {
    let Some(dev) = formatted_mem_fs() else {
        kcheck!(t, false);
        return;
    };
    let Ok(mut fs) = mount_boxed(dev, crate::fs::MountOptions::default()) else {
        kcheck!(t, false);
        return;
    };
    let root_ino = fs.root_ino();
    let root = fs.getattr(crate::subvol::SubvolId::DEFAULT, root_ino);
    kcheck!(t, root.map(|a| a.mode) == Ok(0o040755));
    kcheck!(t, root.map(|a| (a.nlink, a.mtime.sec, a.mtime.nsec)) == Ok((2, 1_700_000_000, 5)));
    kcheck!(t, fs.lookup(crate::subvol::SubvolId::DEFAULT, root_ino, b"missing") == Err(Error::NotFound));
    let s = fs.statfs();
    kcheck!(t, s.total_blocks == 1024 && s.free_blocks > 0 && s.free_blocks < 1024);
    kcheck!(t, unmount_boxed(fs).is_ok());
}

fn engine_files_survive_remount(t: &mut Test) {
    let Some(dev) = formatted_mem_fs() else {
        kcheck!(t, false);
        return;
    };
    if let Some(dev) = write_files(t, dev) {
        read_files_back(t, dev);
    }
}

const REMOUNT_DATA: &[u8; 52] = b"written inside the kernel, read back after a remount";

/// First half of `engine_files_survive_remount`, in its own frame: each
/// half holds one mounted core, so the test's stack stays within the
/// kernel's (a mounted core is large, and commits run deep under it).
#[inline(never)]
fn write_files(t: &mut Test, dev: MemDevice) -> Option<MemDevice> {
    let now = crate::format::Timespec { sec: 1_700_000_100, nsec: 0 };
    let Ok(mut fs) = mount_boxed(dev, crate::fs::MountOptions::default()) else {
        kcheck!(t, false);
        return None;
    };
    let root = fs.root_ino();
    let dir = fs.mkdir(crate::subvol::SubvolId::DEFAULT, root, b"dir", 0o755, 0, 0, now).map(|a| a.ino);
    kcheck!(t, dir.is_ok());
    let file = dir.and_then(|d| fs.create(crate::subvol::SubvolId::DEFAULT, d, b"file", 0o100644, 0, 0, 0, now)).map(|a| a.ino);
    kcheck!(t, file.is_ok());
    kcheck!(t, file.and_then(|f| fs.write(crate::subvol::SubvolId::DEFAULT, f, 8192, REMOUNT_DATA, now)) == Ok(REMOUNT_DATA.len()));
    let dev = unmount_boxed(fs);
    kcheck!(t, dev.is_ok());
    dev.ok()
}

/// Second half of `engine_files_survive_remount` (see `write_files`).
#[inline(never)]
fn read_files_back(t: &mut Test, dev: MemDevice) {
    let Ok(mut fs) = mount_boxed(dev, crate::fs::MountOptions::default()) else {
        kcheck!(t, false);
        return;
    };
    let root = fs.root_ino();
    let data = REMOUNT_DATA;
    let dir = fs.lookup(crate::subvol::SubvolId::DEFAULT, root, b"dir");
    let file = dir.and_then(|d| fs.lookup(crate::subvol::SubvolId::DEFAULT, d, b"file"));
    let mut back = [0u8; 52];
    kcheck!(t, file.and_then(|f| fs.read(crate::subvol::SubvolId::DEFAULT, f, 8192, &mut back)) == Ok(data.len()));
    kcheck!(t, &back == data);
    let mut hole = [1u8; 16];
    kcheck!(t, file.and_then(|f| fs.read(crate::subvol::SubvolId::DEFAULT, f, 0, &mut hole)) == Ok(16));
    kcheck!(t, hole == [0u8; 16]);
    kcheck!(t, file.and_then(|f| fs.getattr(crate::subvol::SubvolId::DEFAULT, f)).map(|a| a.size) == Ok(8192 + data.len() as u64));
    let mut names = 0;
    kcheck!(
        t,
        fs.readdir(crate::subvol::SubvolId::DEFAULT, root, 2, &mut |name, _, _, _| {
            names += (name == b"dir") as u32;
            true
        })
        .is_ok()
    );
    kcheck!(t, names == 1);
    kcheck!(t, unmount_boxed(fs).is_ok());
}

/// The node cache in the kernel's allocator: reclaim drops clean nodes
/// only, and what it dropped reads back from the device.
fn engine_cache_shrinks(t: &mut Test) {
    use crate::subvol::SubvolId;
    let Some(dev) = formatted_mem_fs() else {
        kcheck!(t, false);
        return;
    };
    let now = crate::format::Timespec { sec: 1_700_000_100, nsec: 0 };
    let opts = crate::fs::MountOptions { cache_blocks: 4096, ..crate::fs::MountOptions::default() };
    let Ok(mut fs) = mount_boxed(dev, opts) else {
        kcheck!(t, false);
        return;
    };
    let root = fs.root_ino();
    let mut name = *b"file-000";
    for i in 0..300u32 {
        name[5..].copy_from_slice(&[b'0' + (i / 100) as u8, b'0' + (i / 10 % 10) as u8, b'0' + (i % 10) as u8]);
        kcheck!(t, fs.create(SubvolId::DEFAULT, root, &name, 0o100644, 0, 0, 0, now).is_ok());
    }
    kcheck!(t, fs.commit().is_ok());
    let cached = fs.cached_clean_nodes();
    kcheck!(t, cached > 2);
    kcheck!(t, fs.shrink_cache(2) == 2 && fs.cached_clean_nodes() == cached - 2);
    // A change in flight: its dirty nodes survive reclaim.
    kcheck!(t, fs.create(SubvolId::DEFAULT, root, b"late", 0o100644, 0, 0, 0, now).is_ok());
    let dirty = fs.store().dirty_nodes();
    kcheck!(t, dirty > 0);
    kcheck!(t, fs.shrink_cache(usize::MAX) > 0 && fs.cached_clean_nodes() == 0);
    kcheck!(t, fs.store().dirty_nodes() == dirty);
    // Every name is still there; the leaves that went are read back.
    let reads = fs.stats().meta_reads;
    for i in 0..300u32 {
        name[5..].copy_from_slice(&[b'0' + (i / 100) as u8, b'0' + (i / 10 % 10) as u8, b'0' + (i % 10) as u8]);
        kcheck!(t, fs.lookup(SubvolId::DEFAULT, root, &name).is_ok());
    }
    kcheck!(t, fs.lookup(SubvolId::DEFAULT, root, b"late").is_ok());
    kcheck!(t, fs.stats().meta_reads > reads);
    kcheck!(t, unmount_boxed(fs).is_ok());
}

kunit_suite!(ferrofs_engine_suite, "ferrofs_engine", [engine_mkfs_mount_root, engine_files_survive_remount, engine_cache_shrinks]);
