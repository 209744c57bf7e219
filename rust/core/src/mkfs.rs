// SPDX-License-Identifier: GPL-2.0
//! Making a new, empty filesystem on a device: the one formatter, used by
//! `mkfs.ferrofs` and by the tests. It builds the allocation tree, the root
//! tree and the default subvolume's fs tree with its root directory through
//! the same store and commit the mounted filesystem uses.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::{InodeItem, Timespec, S_IFDIR};
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::store::Store;
use crate::superblock::{self, first_usable_block, Superblock};

/// What the user asked mkfs for.
#[derive(Debug, Clone)]
pub struct MkfsOptions<'a> {
    /// Block size in bytes.
    pub block_size: u32,
    /// Filesystem size in bytes; rounded down to whole blocks.
    pub size_bytes: u64,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Label, at most 63 bytes.
    pub label: &'a [u8],
    /// Creation time (seconds, nanoseconds) for the root directory.
    pub now: (i64, u32),
    /// Blocks of the fast-commit area (fsync records): `None` for the
    /// default (`default_fast_commit_blocks`), `Some(0)` for none (every
    /// fsync is then a full commit).
    pub fast_commit_blocks: Option<u64>,
}

/// The fast-commit area mkfs reserves by default: a sixty-fourth of the
/// filesystem, at most 1024 blocks, none below 16 (a full commit empties
/// the area, so it only has to hold the fsyncs between two commits).
pub fn default_fast_commit_blocks(total_blocks: u64) -> u64 {
    match total_blocks / 64 {
        n if n < 16 => 0,
        n => n.min(1024),
    }
}

/// Owner of the root directory (`format` uses 0:0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootOwner {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Smallest filesystem mkfs makes, in blocks past the reserved area: enough
/// for the initial trees and some room to grow.
pub const MIN_FREE_BLOCKS: u64 = 256;

/// Writes an empty filesystem with a root directory owned by 0:0, flushes
/// it, then writes the superblock copies. Returns the superblock written.
pub fn format(dev: &mut dyn BlockDevice, opts: &MkfsOptions<'_>) -> Result<Superblock> {
    format_with_owner(dev, opts, RootOwner::default())
}

/// `format` with a chosen owner for the root directory.
/// Writes zeros over `count` blocks from `start` (made durable by the
/// first commit's flush).
fn zero_blocks<D: BlockDevice>(s: &mut Store<D>, start: u64, count: u64) -> Result<()> {
    const CHUNK_BLOCKS: u64 = 64;
    let zeros = TryVec::try_from_elem(0u8, CHUNK_BLOCKS as usize * s.bs)?;
    let mut done = 0;
    while done < count {
        let n = (count - done).min(CHUNK_BLOCKS);
        s.dev.write((start + done) * s.bs as u64, &zeros[..n as usize * s.bs], false)?;
        done += n;
    }
    Ok(())
}

pub fn format_with_owner(dev: &mut dyn BlockDevice, opts: &MkfsOptions<'_>, owner: RootOwner) -> Result<Superblock> {
    superblock::check_block_size(opts.block_size)?;
    if opts.size_bytes > dev.size_bytes() {
        return Err(Error::DeviceTooSmall);
    }
    if opts.now.1 >= 1_000_000_000 {
        return Err(Error::Invalid("nanoseconds out of range"));
    }
    let total_blocks = opts.size_bytes / crate::store::divisor(opts.block_size as u64);
    let first = first_usable_block(opts.block_size);
    let fc_blocks = opts.fast_commit_blocks.unwrap_or_else(|| default_fast_commit_blocks(total_blocks));
    if total_blocks < first.saturating_add(MIN_FREE_BLOCKS).saturating_add(fc_blocks) {
        return Err(Error::Invalid("device too small for a ferrofs filesystem"));
    }
    let mut sb = Superblock::new(opts.block_size, total_blocks, opts.uuid, opts.label)?;
    // The first commit is generation 1.
    sb.generation = 0;
    sb.incompat |= superblock::INCOMPAT_UNWRITTEN;
    let mut s = Store::new(dev, sb)?;
    s.space.free.insert(first, total_blocks - first)?;
    s.space.hint = first;
    if fc_blocks > 0 {
        // Right after the superblocks, allocated (refcount 1) like any
        // other block the filesystem uses, so free space never holds it.
        let (start, got) = s.space.allocate(fc_blocks)?;
        if got != fc_blocks {
            return Err(Error::Bug("fresh free space is not contiguous"));
        }
        s.sb.fast_commit_start = start;
        s.sb.fast_commit_blocks = fc_blocks;
        s.sb.incompat |= superblock::INCOMPAT_FAST_COMMIT | superblock::INCOMPAT_TREE_LOG | superblock::INCOMPAT_PACKED_RECORDS;
    }
    // Records of a filesystem this device held before would otherwise
    // still be there, and those whose epoch, sequence and inode happen to
    // fit the new one would be replayed into it: the area starts as zeros.
    let area = s.sb.fast_commit_start;
    zero_blocks(&mut s, area, fc_blocks)?;
    let now = Timespec { sec: opts.now.0, nsec: opts.now.1 };
    let root = InodeItem {
        mode: S_IFDIR | 0o755,
        uid: owner.uid,
        gid: owner.gid,
        nlink: 2,
        atime: now,
        mtime: now,
        ctime: now,
        btime: now,
        parent: crate::format::ROOT_DIR_INO,
        next_seq: 2,
        ..Default::default()
    };
    finish_format(s, root)
}

/// The end of `format`: the root directory and the first commit, in a
/// frame of its own, apart from the store's (a core is large, and the
/// kernel's KUnit tests format on its stack).
#[inline(never)]
fn finish_format<D: BlockDevice>(s: Store<D>, root: InodeItem) -> Result<Superblock> {
    let mut fs = Filesystem::create_new(s, root)?;
    fs.commit()?;
    Ok(fs.superblock().clone())
}
