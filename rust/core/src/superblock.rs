// SPDX-License-Identifier: GPL-2.0
//! The superblock: where a ferrofs filesystem starts, what it needs, and where
//! its trees are. Two copies at fixed byte offsets; encode/decode are explicit
//! little-endian field by field (never a struct cast onto disk bytes).
//!
//! Layout of the 4096-byte superblock (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | crc32c of bytes 4..4096 |
//! | 4 | 4 | zero |
//! | 8 | 8 | magic `"FERROFS\0"` |
//! | 16 | 4 | format version |
//! | 20 | 4 | block size in bytes |
//! | 24 | 8 | incompatible features |
//! | 32 | 8 | read-only-compatible features |
//! | 40 | 8 | compatible features |
//! | 48 | 16 | filesystem UUID |
//! | 64 | 64 | label, NUL padded (at most 63 bytes) |
//! | 128 | 8 | total blocks |
//! | 136 | 8 | generation (of the last commit) |
//! | 144 | 8 | byte offset of this copy |
//! | 152 | 8 | blocks in use |
//! | 160 | 24 | root tree pointer (block, generation, level) |
//! | 184 | 24 | log tree pointer (block 0: none) |
//! | 208 | 8 | first block of the fast-commit area |
//! | 216 | 8 | blocks in the fast-commit area (0: none) |
//! | 224 | 24 | allocation tree pointer (block, generation, level) |
//! | 248 | 3848 | zero, reserved |
//!
//! The root tree holds a root item per fs tree (subvolume); the allocation
//! tree sits here rather than in the root tree so that changing refcounts
//! never has to touch the root tree (see `crate::store`).

use crate::crc32c;
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::le::{self, Field, Limit};
use crate::mem::TryVec;

/// Size of the superblock record, whatever the block size.
pub const SUPERBLOCK_SIZE: usize = 4096;
/// Byte offsets of the two superblock copies. The first 64 KiB are left alone
/// for boot loaders and partition tables.
pub const SUPERBLOCK_OFFSETS: [u64; 2] = [64 * 1024, 128 * 1024];
/// The magic, at byte 8 of the superblock (absolute offset 65544): what
/// libblkid and `mount` look for.
pub const MAGIC: [u8; 8] = *b"FERROFS\0";
/// The `f_type` statfs reports.
pub const STATFS_MAGIC: u32 = 0x4645_5252;
/// The format version this code writes and reads. Version 2 added
/// subvolumes: back-references (`INODE_REF`), the larger root item with
/// UUIDs, generations and times, root refs, and subvolume directory
/// entries. Version 1 images are refused, not upgraded.
pub const FORMAT_VERSION: u32 = 2;
/// Generations stay below 2^62: a million commits a second would take over
/// 100,000 years to get there, and every `generation + n` stays far from
/// overflow.
pub const GENERATION_LIMIT: u64 = 1 << 62;
/// Smallest and largest supported block size.
pub const MIN_BLOCK_SIZE: u32 = 4096;
/// Largest supported block size.
pub const MAX_BLOCK_SIZE: u32 = 65536;
/// Longest label, in bytes.
pub const LABEL_MAX: usize = 63;

/// Incompatible feature: a log tree (fsync) awaits replay. Reserved: the
/// log tree is designed in (see `crate::fs`) but not written yet.
pub const INCOMPAT_LOG_TREE: u64 = 1 << 0;
/// Incompatible feature: the filesystem has a fast-commit area
/// (`fast_commit_start`, `fast_commit_blocks`) whose records since the last
/// commit must be replayed at mount (`crate::fast_commit`); code that
/// cannot replay them would lose fsynced data, so it refuses the image.
pub const INCOMPAT_FAST_COMMIT: u64 = 1 << 1;
/// Incompatible feature: blocks are shared between trees (subvolumes,
/// snapshots, reflinks; refcounts above 1). Code that copies nodes without
/// honouring refcounts must not write such an image. Reserved.
pub const INCOMPAT_SHARED_BLOCKS: u64 = 1 << 2;

/// Incompatible feature: the fast-commit area may hold tree-log records
/// (`crate::tree_log`) besides fast-commit ones. Code that only knows the
/// fast-commit kind would stop its replay at the first tree-log record
/// and silently lose the fsyncs from there on, so it refuses the image.
/// Needs `INCOMPAT_FAST_COMMIT` (the records live in its area).
pub const INCOMPAT_TREE_LOG: u64 = 1 << 3;

/// Incompatible feature: extent items may be unwritten (preallocated by
/// `fallocate`, reading as zeros; `crate::format::ExtentItem`). Code that
/// does not know the flag would read the blocks' stale content as the
/// file's, so it refuses the image. Set by mkfs; without it `fallocate`
/// writes zeros into every block it allocates.
pub const INCOMPAT_UNWRITTEN: u64 = 1 << 4;

/// Incompatible feature: the records of one batch in the fast-commit area
/// follow one another at 8-byte boundaries instead of each starting on a
/// block boundary (`crate::record_batch`). Code that reads only whole
/// blocks would stop its replay at the first record that shares a block
/// and silently lose the fsyncs from there on, so it refuses the image.
/// Needs `INCOMPAT_FAST_COMMIT`. Set by mkfs with the area.
pub const INCOMPAT_PACKED_RECORDS: u64 = 1 << 5;

/// Incompatible features this code understands; an image with any other
/// incompatible bit set is refused. Format version 1 is the layout of
/// `crate::node` and `crate::format` with the range-refcount allocation
/// tree; every later capability gets a feature bit rather than a new
/// version, so an image says exactly what it uses.
pub const INCOMPAT_SUPPORTED: u64 = INCOMPAT_FAST_COMMIT | INCOMPAT_TREE_LOG | INCOMPAT_UNWRITTEN | INCOMPAT_PACKED_RECORDS;
/// Read-only-compatible features this code understands; with any other bit
/// set the image may only be mounted read-only.
pub const RO_COMPAT_SUPPORTED: u64 = 0;

const OFF_CSUM: usize = 0;
const OFF_MAGIC: usize = 8;
const OFF_VERSION: usize = 16;
const OFF_BLOCK_SIZE: usize = 20;
const OFF_INCOMPAT: usize = 24;
const OFF_RO_COMPAT: usize = 32;
const OFF_COMPAT: usize = 40;
const OFF_UUID: usize = 48;
const OFF_LABEL: usize = 64;
const OFF_TOTAL_BLOCKS: usize = 128;
const OFF_GENERATION: usize = 136;
const OFF_SELF_OFFSET: usize = 144;
const OFF_BLOCKS_USED: usize = 152;
const OFF_ROOT_TREE: usize = 160;
const OFF_LOG_TREE: usize = 184;
const OFF_FC_START: usize = 208;
const OFF_FC_BLOCKS: usize = 216;
const OFF_ALLOC_TREE: usize = 224;
const OFF_RESERVED: usize = 248;

/// The superblock's fields by name (see `crate::le`); the checksum is left
/// out: editing tools re-seal it. Tree pointers appear as `<tree>_block`,
/// `<tree>_generation` and `<tree>_level`.
pub const FIELDS: &[Field] = &[
    Field::new("version", OFF_VERSION, 4),
    Field::limited("block_size", OFF_BLOCK_SIZE, 4, Limit::Value(MAX_BLOCK_SIZE as u64)),
    Field::new("incompat", OFF_INCOMPAT, 8),
    Field::new("ro_compat", OFF_RO_COMPAT, 8),
    Field::new("compat", OFF_COMPAT, 8),
    Field::new("uuid", OFF_UUID, 8),
    Field::new("label0", OFF_LABEL, 1),
    Field::limited("total_blocks", OFF_TOTAL_BLOCKS, 8, Limit::TotalBlocks),
    Field::new("generation", OFF_GENERATION, 8),
    Field::new("self_offset", OFF_SELF_OFFSET, 8),
    Field::limited("blocks_used", OFF_BLOCKS_USED, 8, Limit::TotalBlocks),
    Field::limited("root_tree_block", OFF_ROOT_TREE, 8, Limit::TotalBlocks),
    Field::new("root_tree_generation", OFF_ROOT_TREE + 8, 8),
    Field::limited("root_tree_level", OFF_ROOT_TREE + 16, 1, Limit::Value(crate::node::MAX_LEVEL as u64 - 1)),
    Field::limited("log_tree_block", OFF_LOG_TREE, 8, Limit::TotalBlocks),
    Field::limited("fast_commit_start", OFF_FC_START, 8, Limit::TotalBlocks),
    Field::limited("fast_commit_blocks", OFF_FC_BLOCKS, 8, Limit::TotalBlocks),
    Field::limited("alloc_tree_block", OFF_ALLOC_TREE, 8, Limit::TotalBlocks),
    Field::new("alloc_tree_generation", OFF_ALLOC_TREE + 8, 8),
    Field::limited("alloc_tree_level", OFF_ALLOC_TREE + 16, 1, Limit::Value(crate::node::MAX_LEVEL as u64 - 1)),
    Field::new("reserved", OFF_RESERVED, 8),
];

/// Recomputes a superblock copy's checksum after an edit.
pub fn seal(buf: &mut [u8]) {
    if buf.len() >= SUPERBLOCK_SIZE {
        let c = crc32c::checksum(&buf[4..SUPERBLOCK_SIZE]);
        buf[OFF_CSUM..OFF_CSUM + 4].copy_from_slice(&c.to_le_bytes());
    }
}

/// Where a tree's root block is, and the generation and level it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreePointer {
    /// Block number of the root node; 0 means "no tree".
    pub block: u64,
    /// Generation the root node was written in.
    pub generation: u64,
    /// Height of the tree above its leaves (0: the root is a leaf).
    pub level: u8,
}

/// The decoded superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Format version (`FORMAT_VERSION`).
    pub version: u32,
    /// Block size in bytes, a power of two in `MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE`.
    pub block_size: u32,
    /// Features an older reader must not ignore.
    pub incompat: u64,
    /// Features an older reader may ignore when mounting read-only.
    pub ro_compat: u64,
    /// Features any reader may ignore.
    pub compat: u64,
    /// Filesystem UUID, also stamped into every metadata block.
    pub uuid: [u8; 16],
    /// Label bytes, NUL padded.
    pub label: [u8; 64],
    /// Size of the filesystem in blocks.
    pub total_blocks: u64,
    /// Generation of the last commit.
    pub generation: u64,
    /// Blocks allocated, for statfs.
    pub blocks_used: u64,
    /// Root of the root tree, which points at every other tree.
    pub root_tree: TreePointer,
    /// Root of the fsync log tree, if one is pending replay.
    pub log_tree: TreePointer,
    /// First block of the fast-commit area.
    pub fast_commit_start: u64,
    /// Length of the fast-commit area in blocks (0: none).
    pub fast_commit_blocks: u64,
    /// Root of the allocation (refcount) tree.
    pub alloc_tree: TreePointer,
}

// Decode and encode work on whole SUPERBLOCK_SIZE buffers (checked on
// entry), so every field is in range: past the end would read as zero.
fn get_u32(b: &[u8], off: usize) -> u32 {
    le::u32_at(b, off).unwrap_or(0)
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    le::u64_at(b, off).unwrap_or(0)
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    let _ = le::put_at(b, off, &v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    let _ = le::put_at(b, off, &v.to_le_bytes());
}

fn get_tree_pointer(b: &[u8], off: usize) -> TreePointer {
    TreePointer { block: get_u64(b, off), generation: get_u64(b, off + 8), level: b[off + 16] }
}

fn put_tree_pointer(b: &mut [u8], off: usize, p: &TreePointer) {
    put_u64(b, off, p.block);
    put_u64(b, off + 8, p.generation);
    b[off + 16] = p.level;
    b[off + 17..off + 24].fill(0);
}

impl Superblock {
    /// A superblock for a new filesystem; trees are filled in by mkfs.
    pub fn new(block_size: u32, total_blocks: u64, uuid: [u8; 16], label: &[u8]) -> Result<Self> {
        check_block_size(block_size)?;
        if label.len() > LABEL_MAX || label.contains(&0) {
            return Err(Error::Invalid("label must be at most 63 bytes without NUL"));
        }
        let mut l = [0u8; 64];
        l[..label.len()].copy_from_slice(label);
        Ok(Superblock {
            version: FORMAT_VERSION,
            block_size,
            incompat: 0,
            ro_compat: 0,
            compat: 0,
            uuid,
            label: l,
            total_blocks,
            generation: 1,
            blocks_used: 0,
            root_tree: TreePointer::default(),
            log_tree: TreePointer::default(),
            fast_commit_start: 0,
            fast_commit_blocks: 0,
            alloc_tree: TreePointer::default(),
        })
    }

    /// The label without its NUL padding.
    pub fn label(&self) -> &[u8] {
        let n = self.label.iter().position(|&c| c == 0).unwrap_or(self.label.len());
        &self.label[..n]
    }

    /// Size of the filesystem in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.total_blocks.saturating_mul(self.block_size as u64)
    }

    /// Encodes the copy that lives at byte `self_offset`, checksum included.
    /// `out` must be at least `SUPERBLOCK_SIZE` bytes; only that prefix is written.
    pub fn encode(&self, self_offset: u64, out: &mut [u8]) {
        let out = &mut out[..SUPERBLOCK_SIZE];
        out.fill(0);
        out[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
        put_u32(out, OFF_VERSION, self.version);
        put_u32(out, OFF_BLOCK_SIZE, self.block_size);
        put_u64(out, OFF_INCOMPAT, self.incompat);
        put_u64(out, OFF_RO_COMPAT, self.ro_compat);
        put_u64(out, OFF_COMPAT, self.compat);
        out[OFF_UUID..OFF_UUID + 16].copy_from_slice(&self.uuid);
        out[OFF_LABEL..OFF_LABEL + 64].copy_from_slice(&self.label);
        out[OFF_LABEL + LABEL_MAX] = 0;
        put_u64(out, OFF_TOTAL_BLOCKS, self.total_blocks);
        put_u64(out, OFF_GENERATION, self.generation);
        put_u64(out, OFF_SELF_OFFSET, self_offset);
        put_u64(out, OFF_BLOCKS_USED, self.blocks_used);
        put_tree_pointer(out, OFF_ROOT_TREE, &self.root_tree);
        put_tree_pointer(out, OFF_LOG_TREE, &self.log_tree);
        put_u64(out, OFF_FC_START, self.fast_commit_start);
        put_u64(out, OFF_FC_BLOCKS, self.fast_commit_blocks);
        put_tree_pointer(out, OFF_ALLOC_TREE, &self.alloc_tree);
        let csum = crc32c::checksum(&out[4..]);
        put_u32(out, OFF_CSUM, csum);
    }

    /// Decodes and validates the copy read from byte `self_offset`. Checks,
    /// in order: magic, checksum, where the copy says it lives, version,
    /// features, block size and the reserved area. It does not know the
    /// device size; `check_device_size` does that.
    pub fn decode(buf: &[u8], self_offset: u64) -> Result<Self> {
        if buf.len() < SUPERBLOCK_SIZE {
            return Err(Error::Bug("superblock buffer too short"));
        }
        let b = &buf[..SUPERBLOCK_SIZE];
        if b[OFF_MAGIC..OFF_MAGIC + 8] != MAGIC {
            return Err(Error::NotFerrofs);
        }
        if get_u32(b, OFF_CSUM) != crc32c::checksum(&b[4..]) {
            return Err(Error::corrupt("superblock checksum mismatch"));
        }
        if get_u64(b, OFF_SELF_OFFSET) != self_offset {
            return Err(Error::corrupt("superblock copy is not at the offset it records"));
        }
        if get_u32(b, 4) != 0 || b[OFF_RESERVED..].iter().any(|&x| x != 0) {
            return Err(Error::corrupt("superblock reserved bytes are not zero"));
        }
        let version = get_u32(b, OFF_VERSION);
        if version != FORMAT_VERSION {
            return Err(Error::Unsupported(match version {
                1 => "format version 1 image, this ferrofs reads format version 2 only (make a new filesystem and copy the files)",
                _ => "unknown format version, this ferrofs reads format version 2 only",
            }));
        }
        let incompat = get_u64(b, OFF_INCOMPAT);
        if incompat & !INCOMPAT_SUPPORTED != 0 {
            return Err(Error::Unsupported("unknown incompatible feature"));
        }
        let block_size = get_u32(b, OFF_BLOCK_SIZE);
        check_block_size(block_size).map_err(|_| Error::corrupt("invalid block size"))?;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[OFF_UUID..OFF_UUID + 16]);
        let mut label = [0u8; 64];
        label.copy_from_slice(&b[OFF_LABEL..OFF_LABEL + 64]);
        if label[LABEL_MAX] != 0 {
            return Err(Error::corrupt("label is not NUL terminated"));
        }
        let sb = Superblock {
            version,
            block_size,
            incompat,
            ro_compat: get_u64(b, OFF_RO_COMPAT),
            compat: get_u64(b, OFF_COMPAT),
            uuid,
            label,
            total_blocks: get_u64(b, OFF_TOTAL_BLOCKS),
            generation: get_u64(b, OFF_GENERATION),
            blocks_used: get_u64(b, OFF_BLOCKS_USED),
            root_tree: get_tree_pointer(b, OFF_ROOT_TREE),
            log_tree: get_tree_pointer(b, OFF_LOG_TREE),
            fast_commit_start: get_u64(b, OFF_FC_START),
            fast_commit_blocks: get_u64(b, OFF_FC_BLOCKS),
            alloc_tree: get_tree_pointer(b, OFF_ALLOC_TREE),
        };
        sb.check_geometry()?;
        Ok(sb)
    }

    /// Internal consistency of the sizes and pointers (the device aside).
    fn check_geometry(&self) -> Result<()> {
        let first = first_usable_block(self.block_size);
        if self.total_blocks <= first {
            return Err(Error::corrupt("total block count is too small"));
        }
        if self.total_blocks.checked_mul(self.block_size as u64).is_none() {
            return Err(Error::corrupt("total block count overflows"));
        }
        if self.blocks_used > self.total_blocks {
            return Err(Error::corrupt("more blocks used than exist"));
        }
        if self.generation >= GENERATION_LIMIT {
            return Err(Error::corrupt("generation beyond the limit"));
        }
        for p in [&self.root_tree, &self.log_tree, &self.alloc_tree] {
            if p.block != 0 && (p.block < first || p.block >= self.total_blocks) {
                return Err(Error::corrupt("tree pointer outside the filesystem"));
            }
            if p.level as usize >= crate::node::MAX_LEVEL {
                return Err(Error::corrupt("tree pointer level too high"));
            }
            if p.generation > self.generation {
                return Err(Error::corrupt("tree pointer newer than the superblock"));
            }
        }
        if (self.fast_commit_blocks != 0) != (self.incompat & INCOMPAT_FAST_COMMIT != 0) {
            return Err(Error::corrupt("fast-commit area and its feature bit disagree"));
        }
        if self.incompat & INCOMPAT_TREE_LOG != 0 && self.fast_commit_blocks == 0 {
            return Err(Error::corrupt("tree-log feature without a fast-commit area"));
        }
        if self.incompat & INCOMPAT_PACKED_RECORDS != 0 && self.fast_commit_blocks == 0 {
            return Err(Error::corrupt("packed-records feature without a fast-commit area"));
        }
        if self.fast_commit_blocks != 0 {
            let end = self.fast_commit_start.checked_add(self.fast_commit_blocks);
            if self.fast_commit_start < first || end.map_or(true, |e| e > self.total_blocks) {
                return Err(Error::corrupt("fast-commit area outside the filesystem"));
            }
        }
        Ok(())
    }

    /// Refuses a filesystem that claims more blocks than the device has.
    pub fn check_device_size(&self, device_bytes: u64) -> Result<()> {
        if self.size_bytes() > device_bytes {
            return Err(Error::DeviceTooSmall);
        }
        Ok(())
    }

    /// Whether the image carries read-only-compatible features this code
    /// does not know, so it may only be mounted read-only.
    pub fn needs_read_only(&self) -> bool {
        self.ro_compat & !RO_COMPAT_SUPPORTED != 0
    }
}

/// Checks that `bs` is a power of two within the supported range.
pub fn check_block_size(bs: u32) -> Result<()> {
    if !bs.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs) {
        return Err(Error::Invalid("block size must be a power of two from 4096 to 65536"));
    }
    Ok(())
}

/// The first block after the superblock copies: blocks before it are never
/// allocated.
pub fn first_usable_block(block_size: u32) -> u64 {
    let end = SUPERBLOCK_OFFSETS[1] + SUPERBLOCK_SIZE as u64;
    // A NonZero divisor has no division-by-zero panic path; block sizes
    // are checked powers of two, the fallback only keeps this total.
    let bs = core::num::NonZeroU64::new(block_size as u64).unwrap_or(core::num::NonZeroU64::MIN);
    (end + bs.get() - 1) / bs
}

/// Reads both copies and returns the valid one with the highest generation.
/// When neither is valid, the error of the primary copy is returned, since
/// it tells best what the device holds (not ferrofs, corrupt, unsupported).
pub fn read_superblock(dev: &mut dyn BlockDevice) -> Result<Superblock> {
    // Heap, not stack: a 4 KiB frame is too large for a kernel stack.
    let mut buf = TryVec::try_from_elem(0u8, SUPERBLOCK_SIZE)?;
    let mut best: Option<Superblock> = None;
    let mut first_err = None;
    for &off in &SUPERBLOCK_OFFSETS {
        if off + SUPERBLOCK_SIZE as u64 > dev.size_bytes() {
            first_err.get_or_insert(Error::NotFerrofs);
            continue;
        }
        let r = dev.read(off, &mut buf).and_then(|()| Superblock::decode(&buf, off));
        match r {
            Ok(sb) => {
                if best.as_ref().map_or(true, |b| sb.generation > b.generation) {
                    best = Some(sb);
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match best {
        Some(sb) => {
            sb.check_device_size(dev.size_bytes())?;
            Ok(sb)
        }
        None => Err(first_err.unwrap_or(Error::NotFerrofs)),
    }
}

/// Writes both copies; the caller has flushed everything the superblock
/// points at before. Copy 0 is forced to media (FUA): the commit is durable
/// when this returns. Copy 1 is written plainly and becomes durable with
/// the next flush, which the next commit issues before it touches copy 0
/// again. So at any instant one copy is valid and names a tree whose blocks
/// are all durable and unreused: copy 0 unless a crash tore it mid-write,
/// and then copy 1, the previous commit (its blocks freed since are pinned
/// until the commit being written completes). A commit costs two flushes,
/// not three, on a device without FUA, where each FUA write is a write and
/// a flush.
pub fn write_superblock(dev: &mut dyn BlockDevice, sb: &Superblock) -> Result<()> {
    let mut buf = TryVec::try_from_elem(0u8, SUPERBLOCK_SIZE)?;
    for (copy, &off) in SUPERBLOCK_OFFSETS.iter().enumerate() {
        sb.encode(off, &mut buf);
        dev.write(off, &buf, copy == 0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        let mut sb = Superblock::new(4096, 1 << 18, [7; 16], b"scratch").unwrap();
        sb.generation = 9;
        sb.root_tree = TreePointer { block: 40, generation: 9, level: 1 };
        sb.blocks_used = 12;
        sb
    }

    fn encoded(sb: &Superblock, off: u64) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        sb.encode(off, &mut b);
        b
    }

    #[test]
    fn round_trip() {
        let sb = sample();
        for off in SUPERBLOCK_OFFSETS {
            assert_eq!(Superblock::decode(&encoded(&sb, off), off).unwrap(), sb);
        }
        assert_eq!(sb.label(), b"scratch");
        assert_eq!(&encoded(&sb, 65536)[8..16], b"FERROFS\0");
    }

    #[test]
    fn rejects_each_kind_of_damage() {
        let sb = sample();
        let off = SUPERBLOCK_OFFSETS[0];
        let mut b = encoded(&sb, off);
        b[8] = b'X';
        assert_eq!(Superblock::decode(&b, off), Err(Error::NotFerrofs));

        let mut b = encoded(&sb, off);
        b[100] ^= 1;
        assert_eq!(Superblock::decode(&b, off), Err(Error::corrupt("superblock checksum mismatch")));

        assert!(matches!(Superblock::decode(&encoded(&sb, off), SUPERBLOCK_OFFSETS[1]), Err(Error::Corrupt(_))));

        let mut bad = sb.clone();
        bad.incompat = 1 << 40;
        assert!(matches!(Superblock::decode(&encoded(&bad, off), off), Err(Error::Unsupported(_))));
        for v in [1, 3] {
            let mut bad = sb.clone();
            bad.version = v;
            let Err(Error::Unsupported(why)) = Superblock::decode(&encoded(&bad, off), off) else { panic!("version {v} accepted") };
            assert!(why.contains("format version 2"), "{why}");
            assert_eq!(v == 1, why.contains("version 1"), "{why}");
        }
        let mut bad = sb.clone();
        bad.block_size = 5000;
        assert!(matches!(Superblock::decode(&encoded(&bad, off), off), Err(Error::Corrupt(_))));
        let mut bad = sb.clone();
        bad.root_tree.block = bad.total_blocks;
        assert!(matches!(Superblock::decode(&encoded(&bad, off), off), Err(Error::Corrupt(_))));

        assert_eq!(Superblock::decode(&[0u8; SUPERBLOCK_SIZE], off), Err(Error::NotFerrofs));
        assert_eq!(sb.check_device_size(sb.size_bytes() - 1), Err(Error::DeviceTooSmall));
        assert_eq!(sb.check_device_size(sb.size_bytes()), Ok(()));
    }

    #[test]
    fn first_usable_block_is_past_both_copies() {
        assert_eq!(first_usable_block(4096), 33);
        assert_eq!(first_usable_block(65536), 3);
    }
}
