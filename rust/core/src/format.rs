// SPDX-License-Identifier: GPL-2.0
//! The key space and the encoding of every item value: keys, tree ids, item
//! types, and explicit little-endian codecs for inodes, directory entries,
//! file extents, root items and refcount records.
//!
//! # Key space
//!
//! Every item is keyed `(objectid u64, type u8, offset u64)` and items sort
//! by that triple. The meaning per tree:
//!
//! | tree | key | value |
//! |---|---|---|
//! | root (1) | `(tree id, ROOT_ITEM, 0)` | [`RootItem`]: where a tree is, its counters, identity |
//! | root | `(parent tree, ROOT_REF, child tree)` | [`NameRef`]: the child subvolume's name in the parent |
//! | root | `(child tree, ROOT_BACKREF, parent tree)` | [`NameRef`]: the same, found from the child |
//! | root | `(DEAD_ROOTS_OBJECTID, ORPHAN, tree id)` | empty: a deleted subvolume whose tree is being dropped |
//! | alloc (2) | `(first block, REFCOUNT, 0)` | block count `u64`, then the refcount `u64` of every block in the range |
//! | fs (5, later 256+) | `(ino, INODE, 0)` | [`InodeItem`] |
//! | fs | `(ino, INODE_REF, hash32(dir, name) << 32 \| idx)` | [`NameRef`]: one name of the inode (back-reference) |
//! | fs | `(ino, XATTR, hash32 << 32 \| idx << 16 \| part)` | part 0: name + value head; parts 1..: value tail |
//! | fs | `(dir, DIR_HASH, hash32 << 32 \| idx)` | [`DirEntry`] (lookup index) |
//! | fs | `(dir, DIR_SEQ, seq)` | [`DirEntry`] (readdir index, cookie = seq + 1) |
//! | fs | `(ino, SYMLINK, part)` | symlink target bytes, split into parts |
//! | fs | `(ino, EXTENT, file block)` | [`ExtentItem`]: a run of data blocks |
//! | fs | `(ORPHAN_OBJECTID, ORPHAN, ino)` | empty: an unlinked inode to reclaim |
//!
//! `idx` disambiguates hash collisions; lookups scan the whole `hash32` run.
//! Records in the alloc tree never overlap; adjacent records with the same
//! count are merged, so the tree stays small for sequential allocation.

use crate::error::{Error, Result};
pub use crate::le::{Field, Limit};

/// A B-tree key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Key {
    /// Object (inode number, tree id, first block).
    pub objectid: u64,
    /// Item type, one of the `*_KEY` constants.
    pub ty: u8,
    /// Type-specific offset.
    pub offset: u64,
}

impl Key {
    /// A key from its three parts.
    pub const fn new(objectid: u64, ty: u8, offset: u64) -> Self {
        Key { objectid, ty, offset }
    }

    /// The smallest key greater than this one.
    pub fn succ(self) -> Option<Key> {
        if let Some(o) = self.offset.checked_add(1) {
            return Some(Key { offset: o, ..self });
        }
        if let Some(t) = self.ty.checked_add(1) {
            return Some(Key { ty: t, offset: 0, ..self });
        }
        self.objectid.checked_add(1).map(|id| Key::new(id, 0, 0))
    }

    /// The largest key smaller than this one.
    pub fn pred(self) -> Option<Key> {
        if let Some(o) = self.offset.checked_sub(1) {
            return Some(Key { offset: o, ..self });
        }
        if let Some(t) = self.ty.checked_sub(1) {
            return Some(Key { ty: t, offset: u64::MAX, ..self });
        }
        self.objectid.checked_sub(1).map(|id| Key::new(id, u8::MAX, u64::MAX))
    }

    /// The largest key.
    pub const MAX: Key = Key::new(u64::MAX, u8::MAX, u64::MAX);
}

/// Tree id of the root tree (its root is in the superblock).
pub const ROOT_TREE_ID: u64 = 1;
/// Tree id of the allocation (refcount) tree (its root is in the superblock).
pub const ALLOC_TREE_ID: u64 = 2;
/// Tree id reserved for fsync log trees.
pub const LOG_TREE_ID: u64 = 3;
/// Tree id of the first, default subvolume.
pub const FS_TREE_ID: u64 = 5;
/// First tree id for subvolumes and snapshots created later.
pub const FIRST_SUBVOL_ID: u64 = 256;

/// Whether `id` names an fs tree (a subvolume), whose leaves hold inodes
/// and data extents.
pub fn is_fs_tree(id: u64) -> bool {
    id == FS_TREE_ID || (FIRST_SUBVOL_ID..=LAST_SUBVOL_ID).contains(&id)
}

/// Inode number of the stand-in a snapshot shows for a subvolume entry it
/// copied from its source: an empty directory, as the nested subvolume is
/// not part of the snapshot. No inode item has this number.
pub const EMPTY_SUBVOL_DIR_INO: u64 = 2;

/// Inode number of the root directory of every subvolume.
pub const ROOT_DIR_INO: u64 = 256;
/// Inode numbers stay below this (room above for special object ids).
pub const LAST_INO_LIMIT: u64 = u64::MAX - 256;
/// Object id under which orphan items live.
pub const ORPHAN_OBJECTID: u64 = 1;
/// Object id, in the root tree, of the list of subvolumes being deleted.
pub const DEAD_ROOTS_OBJECTID: u64 = u64::MAX - 4;
/// Highest tree id a subvolume may have (ids above are special objects).
pub const LAST_SUBVOL_ID: u64 = u64::MAX - 256;

/// Item types.
pub const INODE_KEY: u8 = 1;
/// A name of an inode: the back-reference of one directory entry.
pub const INODE_REF_KEY: u8 = 12;
/// Extended attribute part.
pub const XATTR_KEY: u8 = 16;
/// Directory entry by name hash.
pub const DIR_HASH_KEY: u8 = 32;
/// Directory entry by sequence number.
pub const DIR_SEQ_KEY: u8 = 33;
/// Symlink target part.
pub const SYMLINK_KEY: u8 = 48;
/// File extent.
pub const EXTENT_KEY: u8 = 64;
/// Orphan inode.
pub const ORPHAN_KEY: u8 = 80;
/// Root item (root tree).
pub const ROOT_ITEM_KEY: u8 = 128;
/// A child subvolume's name, keyed by the parent (root tree).
pub const ROOT_REF_KEY: u8 = 132;
/// A subvolume's name, keyed by the subvolume (root tree).
pub const ROOT_BACKREF_KEY: u8 = 144;
/// Refcount record (alloc tree).
pub const REFCOUNT_KEY: u8 = 160;

/// Longest name in a directory.
pub const NAME_MAX: usize = 255;
/// Longest symlink target.
pub const SYMLINK_MAX: usize = 4095;
/// Longest xattr name.
pub const XATTR_NAME_MAX: usize = 255;
/// Largest xattr value (Linux's XATTR_SIZE_MAX); the format allows more.
pub const XATTR_VALUE_MAX: usize = 65536;
/// Largest file size: 2^48 bytes (256 TiB). Block indices then fit easily in
/// a u64 and every byte offset arithmetic stays far from overflow.
pub const MAX_FILE_SIZE: u64 = 1 << 48;

/// What the superblock says of the filesystem that bounds every item in it.
/// Decoders that take it refuse values no valid image of that size can
/// hold, so the arithmetic on decoded values cannot overflow afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Blocks in the filesystem.
    pub total_blocks: u64,
    /// Block size in bytes (a checked power of two).
    pub block_size: u32,
    /// Whether extents may be unwritten (`INCOMPAT_UNWRITTEN`).
    pub unwritten: bool,
}

impl Bounds {
    /// The largest number of file blocks any file may map.
    pub fn max_file_blocks(&self) -> u64 {
        MAX_FILE_SIZE / (self.block_size.max(1) as u64)
    }

    /// Whether blocks `[first, first + count)` lie inside the filesystem,
    /// past the superblocks.
    pub fn blocks_inside(&self, first: u64, count: u64) -> bool {
        first >= crate::superblock::first_usable_block(self.block_size)
            && first.checked_add(count).is_some_and(|end| end <= self.total_blocks)
    }

    /// The most inodes a filesystem of this size can hold: every inode item
    /// takes at least its bytes plus an item header in some leaf.
    pub fn max_inodes(&self) -> u64 {
        let per_block = self.block_size as u64 / (INODE_ITEM_SIZE + crate::node::ITEM_SIZE) as u64;
        self.total_blocks.saturating_mul(per_block)
    }
}

/// File types, numbered as the `DT_*` values readdir reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileType {
    /// FIFO.
    Fifo = 1,
    /// Character device.
    CharDev = 2,
    /// Directory.
    Dir = 4,
    /// Block device.
    BlockDev = 6,
    /// Regular file.
    Regular = 8,
    /// Symbolic link.
    Symlink = 10,
    /// Socket.
    Socket = 12,
}

/// `S_IFMT` and the type bits of `mode`.
pub const S_IFMT: u32 = 0o170000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;
/// Symlink.
pub const S_IFLNK: u32 = 0o120000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// FIFO.
pub const S_IFIFO: u32 = 0o010000;

impl FileType {
    /// The type encoded in a `mode`, if any.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & S_IFMT {
            S_IFSOCK => FileType::Socket,
            S_IFLNK => FileType::Symlink,
            S_IFREG => FileType::Regular,
            S_IFBLK => FileType::BlockDev,
            S_IFDIR => FileType::Dir,
            S_IFCHR => FileType::CharDev,
            S_IFIFO => FileType::Fifo,
            _ => return None,
        })
    }

    /// The `DT_*` number.
    pub fn dt(self) -> u8 {
        self as u8
    }

    /// Decodes a `DT_*` number.
    pub fn from_dt(dt: u8) -> Option<FileType> {
        Some(match dt {
            1 => FileType::Fifo,
            2 => FileType::CharDev,
            4 => FileType::Dir,
            6 => FileType::BlockDev,
            8 => FileType::Regular,
            10 => FileType::Symlink,
            12 => FileType::Socket,
            _ => return None,
        })
    }
}

/// A point in time, as the VFS gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Timespec {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds, below 10^9.
    pub nsec: u32,
}

/// Reads a little-endian u16 at `off`, or reports corruption.
pub fn get_u16(b: &[u8], off: usize) -> Result<u16> {
    crate::le::u16_at(b, off).ok_or(Error::corrupt("item too short"))
}

/// Reads a little-endian u32 at `off`, or reports corruption.
#[inline]
pub fn get_u32(b: &[u8], off: usize) -> Result<u32> {
    crate::le::u32_at(b, off).ok_or(Error::corrupt("item too short"))
}

/// Reads a little-endian u64 at `off`, or reports corruption.
#[inline]
pub fn get_u64(b: &[u8], off: usize) -> Result<u64> {
    crate::le::u64_at(b, off).ok_or(Error::corrupt("item too short"))
}

/// Reads a byte at `off`, or reports corruption.
pub fn get_u8(b: &[u8], off: usize) -> Result<u8> {
    b.get(off).copied().ok_or(Error::corrupt("item too short"))
}

/// Writes `v` at `off`; a short buffer is a caller bug.
pub fn put_bytes(b: &mut [u8], off: usize, v: &[u8]) -> Result<()> {
    crate::le::put_at(b, off, v).ok_or(Error::Bug("encode buffer too short"))
}

/// Writes a little-endian u32.
#[inline]
pub fn put_u32(b: &mut [u8], off: usize, v: u32) -> Result<()> {
    crate::le::put_array(b, off, v.to_le_bytes()).ok_or(Error::Bug("encode buffer too short"))
}

/// Writes a little-endian u64.
#[inline]
pub fn put_u64(b: &mut [u8], off: usize, v: u64) -> Result<()> {
    crate::le::put_array(b, off, v.to_le_bytes()).ok_or(Error::Bug("encode buffer too short"))
}

fn get_time(b: &[u8], off: usize) -> Result<Timespec> {
    let sec = get_u64(b, off)? as i64;
    let nsec = get_u32(b, off + 8)?;
    if nsec >= 1_000_000_000 {
        return Err(Error::corrupt("inode timestamp nanoseconds out of range"));
    }
    Ok(Timespec { sec, nsec })
}

fn put_time(b: &mut [u8], off: usize, t: Timespec) -> Result<()> {
    put_u64(b, off, t.sec as u64)?;
    put_u32(b, off + 8, t.nsec)
}

/// The inode item.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | mode |
/// | 4 | 4 | uid |
/// | 8 | 4 | gid |
/// | 12 | 4 | nlink |
/// | 16 | 8 | size in bytes |
/// | 24 | 8 | data blocks referenced (filesystem blocks) |
/// | 32 | 8 | rdev (Linux `new_encode_dev` form) |
/// | 40 | 8 | generation (NFS) |
/// | 48 | 8 | transid of the last change (incremental send) |
/// | 56 | 4 | flags |
/// | 60 | 4 | zero |
/// | 64 | 48 | atime, mtime, ctime, btime (i64 seconds + u32 ns each) |
/// | 112 | 8 | parent directory (directories only) |
/// | 120 | 8 | next readdir sequence number (directories only) |
/// | 128 | 16 | zero, reserved |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InodeItem {
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard link count.
    pub nlink: u32,
    /// Size in bytes (target length for symlinks).
    pub size: u64,
    /// Data blocks referenced by the file's extents.
    pub blocks: u64,
    /// Device number for device nodes.
    pub rdev: u64,
    /// Inode generation.
    pub generation: u64,
    /// Transaction that last changed the inode.
    pub transid: u64,
    /// Inode flags (FS_*_FL).
    pub flags: u32,
    /// Last access.
    pub atime: Timespec,
    /// Last data change.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Creation.
    pub btime: Timespec,
    /// Parent directory, for directories.
    pub parent: u64,
    /// Next directory sequence number, for directories.
    pub next_seq: u64,
}

/// Encoded size of an inode item.
pub const INODE_ITEM_SIZE: usize = 144;

impl InodeItem {
    /// Encodes into a fixed-size array.
    pub fn encode(&self) -> [u8; INODE_ITEM_SIZE] {
        let mut b = [0u8; INODE_ITEM_SIZE];
        // The buffer is sized for every field, so these writes cannot fail.
        let _ = self.encode_into(&mut b);
        b
    }

    fn encode_into(&self, b: &mut [u8]) -> Result<()> {
        put_u32(b, 0, self.mode)?;
        put_u32(b, 4, self.uid)?;
        put_u32(b, 8, self.gid)?;
        put_u32(b, 12, self.nlink)?;
        put_u64(b, 16, self.size)?;
        put_u64(b, 24, self.blocks)?;
        put_u64(b, 32, self.rdev)?;
        put_u64(b, 40, self.generation)?;
        put_u64(b, 48, self.transid)?;
        put_u32(b, 56, self.flags)?;
        put_time(b, 64, self.atime)?;
        put_time(b, 76, self.mtime)?;
        put_time(b, 88, self.ctime)?;
        put_time(b, 100, self.btime)?;
        put_u64(b, 112, self.parent)?;
        put_u64(b, 120, self.next_seq)
    }

    /// Decodes and sanity-checks an inode item.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != INODE_ITEM_SIZE {
            return Err(Error::corrupt("inode item has the wrong size"));
        }
        let it = InodeItem {
            mode: get_u32(b, 0)?,
            uid: get_u32(b, 4)?,
            gid: get_u32(b, 8)?,
            nlink: get_u32(b, 12)?,
            size: get_u64(b, 16)?,
            blocks: get_u64(b, 24)?,
            rdev: get_u64(b, 32)?,
            generation: get_u64(b, 40)?,
            transid: get_u64(b, 48)?,
            flags: get_u32(b, 56)?,
            atime: get_time(b, 64)?,
            mtime: get_time(b, 76)?,
            ctime: get_time(b, 88)?,
            btime: get_time(b, 100)?,
            parent: get_u64(b, 112)?,
            next_seq: get_u64(b, 120)?,
        };
        if FileType::from_mode(it.mode).is_none() {
            return Err(Error::corrupt("inode has no valid file type"));
        }
        if it.size > MAX_FILE_SIZE {
            return Err(Error::corrupt("inode size beyond the maximum"));
        }
        // The target length is used to size a buffer: bound it here.
        if it.file_type() == FileType::Symlink && (it.size == 0 || it.size > SYMLINK_MAX as u64) {
            return Err(Error::corrupt("symlink size outside 1..=4095"));
        }
        Ok(it)
    }

    /// `decode`, then the checks that need the filesystem's size: the
    /// block count fits the filesystem.
    pub fn decode_bounded(b: &[u8], bounds: &Bounds) -> Result<Self> {
        let it = Self::decode(b)?;
        if it.blocks > bounds.total_blocks {
            return Err(Error::corrupt("inode block count beyond the filesystem size"));
        }
        Ok(it)
    }

    /// The file type (validated at decode time).
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode).unwrap_or(FileType::Regular)
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// The encoded bytes of an item that holds a name (`DirEntry`, `NameRef`):
/// a header of at most `DIR_ENTRY_HEADER` bytes, then 1..=`NAME_MAX` name
/// bytes, kept on the stack.
pub struct NameItem {
    bytes: [u8; DIR_ENTRY_HEADER + NAME_MAX],
    len: usize,
}

impl NameItem {
    /// An empty item for `name`; `NameTooLong` for an empty or too long one.
    fn for_name(name: &[u8]) -> Result<Self> {
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        Ok(NameItem { bytes: [0; DIR_ENTRY_HEADER + NAME_MAX], len: 0 })
    }

    /// Appends `b`; the encoders stay within the header and name sizes.
    fn put(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        self.bytes[self.len..end].copy_from_slice(b);
        self.len = end;
    }
}

impl core::ops::Deref for NameItem {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A directory entry, the value of both `DIR_HASH` and `DIR_SEQ` items.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | inode number, or the tree id of a subvolume (flag bit 0) |
/// | 8 | 8 | the other index's key offset (seq in a hash item, hash key in a seq item) |
/// | 16 | 1 | `DT_*` type |
/// | 17 | 1 | flags: bit 0 the entry names a subvolume (its root directory); others zero |
/// | 18 | 1 | name length (1..=255) |
/// | 19 | n | name |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Inode the name points at, or the subvolume's tree id when `subvol`.
    pub ino: u64,
    /// Cross-reference into the other index.
    pub other: u64,
    /// Type of the inode (`Dir` for a subvolume).
    pub ty: FileType,
    /// The entry names another subvolume's root directory.
    pub subvol: bool,
    /// The name.
    pub name: &'a [u8],
}

/// Size of a directory entry header before the name.
pub const DIR_ENTRY_HEADER: usize = 19;

/// `DirEntry` flag: the entry names a subvolume.
const DIR_ENTRY_SUBVOL: u8 = 1;

impl<'a> DirEntry<'a> {
    /// An entry for an inode of the same tree.
    pub fn inode(ino: u64, other: u64, ty: FileType, name: &'a [u8]) -> Self {
        DirEntry { ino, other, ty, subvol: false, name }
    }

    /// The item's bytes, built on the stack: entries are written on every
    /// create, and a heap buffer per item showed up in profiles.
    pub fn encode(&self) -> Result<NameItem> {
        let mut out = NameItem::for_name(self.name)?;
        out.put(&self.ino.to_le_bytes());
        out.put(&self.other.to_le_bytes());
        out.put(&[self.ty.dt(), if self.subvol { DIR_ENTRY_SUBVOL } else { 0 }, self.name.len() as u8]);
        out.put(self.name);
        Ok(out)
    }

    /// Decodes a directory entry item.
    pub fn decode(b: &'a [u8]) -> Result<Self> {
        let ino = get_u64(b, 0)?;
        let other = get_u64(b, 8)?;
        let ty = FileType::from_dt(get_u8(b, 16)?).ok_or(Error::corrupt("directory entry has a bad type"))?;
        let flags = get_u8(b, 17)?;
        let n = get_u8(b, 18)? as usize;
        let name = b.get(DIR_ENTRY_HEADER..).ok_or(Error::corrupt("directory entry too short"))?;
        if n == 0 || name.len() != n {
            return Err(Error::corrupt("directory entry name length mismatch"));
        }
        if flags & !DIR_ENTRY_SUBVOL != 0 {
            return Err(Error::corrupt("directory entry has unknown flags"));
        }
        let subvol = flags & DIR_ENTRY_SUBVOL != 0;
        if subvol && (ty != FileType::Dir || !(FIRST_SUBVOL_ID..=LAST_SUBVOL_ID).contains(&ino)) {
            return Err(Error::corrupt("subvolume entry with a bad type or tree id"));
        }
        Ok(DirEntry { ino, other, ty, subvol, name })
    }
}

/// A name, as back-references record it: the value of `INODE_REF` (a name
/// of an inode), `ROOT_REF` and `ROOT_BACKREF` (the name of a subvolume in
/// its parent).
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | directory holding the name |
/// | 8 | 8 | the entry's sequence number in that directory (`DIR_SEQ` offset) |
/// | 16 | 1 | name length (1..=255) |
/// | 17 | n | name |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRef<'a> {
    /// The directory.
    pub dir: u64,
    /// The entry's sequence number in it.
    pub seq: u64,
    /// The name.
    pub name: &'a [u8],
}

/// Size of a `NameRef` header before the name.
pub const NAME_REF_HEADER: usize = 17;

impl<'a> NameRef<'a> {
    /// The item's bytes, built on the stack (see `DirEntry::encode`).
    pub fn encode(&self) -> Result<NameItem> {
        let mut out = NameItem::for_name(self.name)?;
        out.put(&self.dir.to_le_bytes());
        out.put(&self.seq.to_le_bytes());
        out.put(&[self.name.len() as u8]);
        out.put(self.name);
        Ok(out)
    }

    /// Decodes a name reference.
    pub fn decode(b: &'a [u8]) -> Result<Self> {
        let dir = get_u64(b, 0)?;
        let seq = get_u64(b, 8)?;
        let n = get_u8(b, 16)? as usize;
        let name = b.get(NAME_REF_HEADER..).ok_or(Error::corrupt("name reference too short"))?;
        if n == 0 || name.len() != n {
            return Err(Error::corrupt("name reference length mismatch"));
        }
        Ok(NameRef { dir, seq, name })
    }

    /// The hash part of an `INODE_REF` key offset for `name` in `dir`.
    pub fn hash(dir: u64, name: &[u8]) -> u64 {
        let mut h = crate::crc32c::update(0, &dir.to_le_bytes());
        h = crate::crc32c::update(h, name);
        (h as u64) << 32
    }
}

/// A file extent: `nblocks` data blocks from `disk_block` hold the file's
/// blocks from the key offset on.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | first disk block |
/// | 8 | 8 | block count |
/// | 16 | 8 | generation that wrote it |
/// | 24 | 8 | flags (present only when not zero): bit 0 unwritten |
///
/// A written extent is 24 bytes, so images that never preallocate keep
/// the layout of format version 2 unchanged; an unwritten one (see
/// `INCOMPAT_UNWRITTEN`) carries the flags word, 32 bytes. A 32-byte item
/// with no flag set, or with an unknown one, is refused: one encoding per
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtentItem {
    /// First data block on disk.
    pub disk_block: u64,
    /// Number of blocks.
    pub nblocks: u64,
    /// Transaction that wrote it.
    pub generation: u64,
    /// Preallocated and never written: the blocks are the file's, but
    /// their content is not, and every reader sees zeros.
    pub unwritten: bool,
}

/// Encoded size of a written extent item.
pub const EXTENT_ITEM_SIZE: usize = 24;
/// Encoded size of an extent item that carries the flags word.
pub const EXTENT_ITEM_FLAGS_SIZE: usize = 32;
/// Extent flag: preallocated, reads as zeros.
pub const EXTENT_FLAG_UNWRITTEN: u64 = 1 << 0;
/// Every extent flag this code understands.
const EXTENT_FLAGS_KNOWN: u64 = EXTENT_FLAG_UNWRITTEN;

/// An encoded extent item: its bytes as a slice (24 or 32 of them).
#[derive(Debug, Clone, Copy)]
pub struct EncodedExtent {
    bytes: [u8; EXTENT_ITEM_FLAGS_SIZE],
    len: usize,
}

impl core::ops::Deref for EncodedExtent {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl ExtentItem {
    /// A written extent.
    pub const fn written(disk_block: u64, nblocks: u64, generation: u64) -> Self {
        ExtentItem { disk_block, nblocks, generation, unwritten: false }
    }

    /// Encodes into 24 bytes, or 32 when a flag is set.
    pub fn encode(&self) -> EncodedExtent {
        let mut bytes = [0u8; EXTENT_ITEM_FLAGS_SIZE];
        bytes[0..8].copy_from_slice(&self.disk_block.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.nblocks.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.generation.to_le_bytes());
        let flags = if self.unwritten { EXTENT_FLAG_UNWRITTEN } else { 0 };
        bytes[24..32].copy_from_slice(&flags.to_le_bytes());
        EncodedExtent { bytes, len: if flags == 0 { EXTENT_ITEM_SIZE } else { EXTENT_ITEM_FLAGS_SIZE } }
    }

    /// Decodes an extent item.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let flags = match b.len() {
            EXTENT_ITEM_SIZE => 0,
            EXTENT_ITEM_FLAGS_SIZE => match get_u64(b, 24)? {
                0 => return Err(Error::corrupt("extent item carries an empty flags word")),
                f if f & !EXTENT_FLAGS_KNOWN != 0 => return Err(Error::corrupt("extent item with unknown flags")),
                f => f,
            },
            _ => return Err(Error::corrupt("extent item has the wrong size")),
        };
        let e = ExtentItem {
            disk_block: get_u64(b, 0)?,
            nblocks: get_u64(b, 8)?,
            generation: get_u64(b, 16)?,
            unwritten: flags & EXTENT_FLAG_UNWRITTEN != 0,
        };
        if e.nblocks == 0 || e.disk_block.checked_add(e.nblocks).is_none() {
            return Err(Error::corrupt("extent item with a bad block range"));
        }
        Ok(e)
    }

    /// `decode` for the extent keyed at `file_block`, then the checks that
    /// need the filesystem's size and features: the disk blocks lie inside
    /// the filesystem and the file blocks below the maximum file size, so
    /// every byte offset computed from it fits a u64; an unwritten extent
    /// only where the superblock announces them.
    pub fn decode_bounded(b: &[u8], file_block: u64, bounds: &Bounds) -> Result<Self> {
        let e = Self::decode(b)?;
        if !bounds.blocks_inside(e.disk_block, e.nblocks) {
            return Err(Error::corrupt("extent points outside the filesystem"));
        }
        if file_block.checked_add(e.nblocks).map_or(true, |end| end > bounds.max_file_blocks()) {
            return Err(Error::corrupt("extent maps past the maximum file size"));
        }
        if e.unwritten && !bounds.unwritten {
            return Err(Error::corrupt("unwritten extent on a filesystem without the unwritten feature"));
        }
        Ok(e)
    }
}

/// A subvolume's tree root, counters and identity, the value of a
/// `ROOT_ITEM`. Generations and times follow the subvolume model send
/// needs: `ctransid`/`ctime` the last change, `otransid`/`otime` creation,
/// `stransid`/`stime` and `rtransid`/`rtime` what `receive` set.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | root block |
/// | 8 | 8 | root generation |
/// | 16 | 1 | root level |
/// | 17 | 1 | drop progress: key type |
/// | 18 | 6 | zero |
/// | 24 | 8 | highest inode number handed out |
/// | 32 | 8 | number of inodes |
/// | 40 | 8 | root directory inode (256) |
/// | 48 | 8 | flags: bit 0 read-only, bit 1 deleted (tree being dropped) |
/// | 56 | 8 | last snapshot: nodes of this generation or older may be shared |
/// | 64 | 16 | UUID |
/// | 80 | 16 | parent UUID: the snapshot's source (zero for none) |
/// | 96 | 16 | received UUID (zero for none) |
/// | 112 | 32 | ctransid, otransid, stransid, rtransid |
/// | 144 | 48 | ctime, otime, stime, rtime (i64 seconds + u32 ns each) |
/// | 192 | 8 | drop progress: object id (first key not yet dropped) |
/// | 200 | 8 | drop progress: offset |
/// | 208 | 48 | zero, reserved |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RootItem {
    /// Root node.
    pub block: u64,
    /// Generation of the root node.
    pub generation: u64,
    /// Level of the root node.
    pub level: u8,
    /// Highest inode number used.
    pub last_ino: u64,
    /// Inode count.
    pub inode_count: u64,
    /// Root directory inode number.
    pub root_dir: u64,
    /// `ROOT_RDONLY`, `ROOT_DEAD`.
    pub flags: u64,
    /// Generation of the last snapshot taken of (or as) this tree.
    pub last_snapshot: u64,
    /// This subvolume's UUID.
    pub uuid: [u8; 16],
    /// UUID of the snapshot's source.
    pub parent_uuid: [u8; 16],
    /// UUID of the subvolume this one was received from.
    pub received_uuid: [u8; 16],
    /// Transaction of the last change.
    pub ctransid: u64,
    /// Transaction that created it.
    pub otransid: u64,
    /// Transaction of the sender's snapshot (receive).
    pub stransid: u64,
    /// Transaction that received it.
    pub rtransid: u64,
    /// Time of the last change.
    pub ctime: Timespec,
    /// Creation time.
    pub otime: Timespec,
    /// Send time (receive).
    pub stime: Timespec,
    /// Receive time.
    pub rtime: Timespec,
    /// While deleted: the first key of the tree not yet dropped.
    pub drop_progress: Key,
}

/// Encoded size of a root item.
pub const ROOT_ITEM_SIZE: usize = 256;
/// Root item flag: a read-only subvolume (snapshot).
pub const ROOT_RDONLY: u64 = 1;
/// Root item flag: deleted, its tree is being dropped.
pub const ROOT_DEAD: u64 = 2;
/// Root item flags this code knows.
pub const ROOT_FLAGS_KNOWN: u64 = ROOT_RDONLY | ROOT_DEAD;

impl RootItem {
    /// Encodes into a fixed-size array.
    pub fn encode(&self) -> [u8; ROOT_ITEM_SIZE] {
        let mut b = [0u8; ROOT_ITEM_SIZE];
        // The buffer is sized for every field, so these writes cannot fail.
        let _ = self.encode_into(&mut b);
        b
    }

    fn encode_into(&self, b: &mut [u8]) -> Result<()> {
        put_u64(b, 0, self.block)?;
        put_u64(b, 8, self.generation)?;
        put_bytes(b, 16, &[self.level, self.drop_progress.ty])?;
        put_u64(b, 24, self.last_ino)?;
        put_u64(b, 32, self.inode_count)?;
        put_u64(b, 40, self.root_dir)?;
        put_u64(b, 48, self.flags)?;
        put_u64(b, 56, self.last_snapshot)?;
        put_bytes(b, 64, &self.uuid)?;
        put_bytes(b, 80, &self.parent_uuid)?;
        put_bytes(b, 96, &self.received_uuid)?;
        for (i, g) in [self.ctransid, self.otransid, self.stransid, self.rtransid].into_iter().enumerate() {
            put_u64(b, 112 + 8 * i, g)?;
        }
        for (i, t) in [self.ctime, self.otime, self.stime, self.rtime].into_iter().enumerate() {
            put_time(b, 144 + 12 * i, t)?;
        }
        put_u64(b, 192, self.drop_progress.objectid)?;
        put_u64(b, 200, self.drop_progress.offset)
    }

    /// Decodes a root item.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != ROOT_ITEM_SIZE {
            return Err(Error::corrupt("root item has the wrong size"));
        }
        let uuid = |off: usize| -> Result<[u8; 16]> {
            let mut u = [0u8; 16];
            u.copy_from_slice(b.get(off..off + 16).ok_or(Error::corrupt("root item too short"))?);
            Ok(u)
        };
        let r = RootItem {
            block: get_u64(b, 0)?,
            generation: get_u64(b, 8)?,
            level: get_u8(b, 16)?,
            last_ino: get_u64(b, 24)?,
            inode_count: get_u64(b, 32)?,
            root_dir: get_u64(b, 40)?,
            flags: get_u64(b, 48)?,
            last_snapshot: get_u64(b, 56)?,
            uuid: uuid(64)?,
            parent_uuid: uuid(80)?,
            received_uuid: uuid(96)?,
            ctransid: get_u64(b, 112)?,
            otransid: get_u64(b, 120)?,
            stransid: get_u64(b, 128)?,
            rtransid: get_u64(b, 136)?,
            ctime: get_time(b, 144)?,
            otime: get_time(b, 156)?,
            stime: get_time(b, 168)?,
            rtime: get_time(b, 180)?,
            drop_progress: Key::new(get_u64(b, 192)?, get_u8(b, 17)?, get_u64(b, 200)?),
        };
        if r.block == 0 || r.level as usize >= crate::node::MAX_LEVEL {
            return Err(Error::corrupt("root item points nowhere"));
        }
        if r.flags & !ROOT_FLAGS_KNOWN != 0 {
            return Err(Error::corrupt("root item has unknown flags"));
        }
        Ok(r)
    }

    /// Whether the subvolume refuses changes.
    pub fn is_read_only(&self) -> bool {
        self.flags & ROOT_RDONLY != 0
    }

    /// Whether the subvolume is deleted and its tree being dropped.
    pub fn is_dead(&self) -> bool {
        self.flags & ROOT_DEAD != 0
    }

    /// `decode`, then the checks that need the filesystem's size: the root
    /// block inside it and the root directory's number (see also
    /// `check_counters`).
    pub fn decode_bounded(b: &[u8], bounds: &Bounds) -> Result<Self> {
        let r = Self::decode(b)?;
        if !bounds.blocks_inside(r.block, 1) {
            return Err(Error::corrupt("root item points outside the filesystem"));
        }
        if r.root_dir != ROOT_DIR_INO {
            return Err(Error::corrupt("root item names a wrong root directory"));
        }
        Ok(r)
    }

    /// Whether the inode counters are ones a filesystem of this size can
    /// hold (they feed statfs and new inode numbers); fsck can repair them.
    pub fn check_counters(&self, bounds: &Bounds) -> Result<()> {
        let r = self;
        if r.last_ino < ROOT_DIR_INO || r.last_ino >= LAST_INO_LIMIT {
            return Err(Error::corrupt("root item's highest inode number out of range"));
        }
        if r.inode_count == 0 || r.inode_count > bounds.max_inodes() || r.inode_count > r.last_ino - ROOT_DIR_INO + 1 {
            return Err(Error::corrupt("root item's inode count out of range"));
        }
        Ok(())
    }
}

/// Size of an xattr part 0 header before the name.
pub const XATTR_HEAD_SIZE: usize = 5;

/// Part 0 of an extended attribute, at `(ino, XATTR, hash32 << 32 | idx
/// << 16 | 0)`; parts 1.. hold the rest of the value, raw.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | name length (1..=255) |
/// | 1 | 4 | value length (at most `XATTR_VALUE_MAX`) |
/// | 5 | n | name |
/// | 5 + n | rest | the value's first bytes |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrHead<'a> {
    /// The attribute's name.
    pub name: &'a [u8],
    /// Length of the whole value.
    pub value_len: usize,
    /// The value's bytes held in this part.
    pub first: &'a [u8],
}

impl<'a> XattrHead<'a> {
    /// Decodes part 0 of an attribute.
    pub fn decode(d: &'a [u8]) -> Result<Self> {
        let nl = get_u8(d, 0)? as usize;
        let vl = get_u32(d, 1)? as usize;
        let name = d.get(XATTR_HEAD_SIZE..XATTR_HEAD_SIZE + nl).ok_or(Error::corrupt("xattr name runs past its item"))?;
        let first = d.get(XATTR_HEAD_SIZE + nl..).unwrap_or(&[]);
        if nl == 0 || vl > XATTR_VALUE_MAX || first.len() > vl {
            return Err(Error::corrupt("malformed xattr item"));
        }
        Ok(XattrHead { name, value_len: vl, first })
    }

    /// Encodes into `out` (cleared first).
    pub fn encode(&self, out: &mut crate::mem::TryVec<u8>) -> Result<()> {
        if self.name.is_empty() || self.name.len() > XATTR_NAME_MAX || self.value_len > XATTR_VALUE_MAX {
            return Err(Error::Bug("xattr head out of range"));
        }
        out.clear();
        out.try_reserve(XATTR_HEAD_SIZE + self.name.len() + self.first.len())?;
        out.try_push(self.name.len() as u8)?;
        out.try_extend_from_slice(&(self.value_len as u32).to_le_bytes())?;
        out.try_extend_from_slice(self.name)?;
        out.try_extend_from_slice(self.first)
    }
}

/// A symlink's target, stored as parts `(ino, SYMLINK, 0..)` holding its
/// bytes in order, each as large as a leaf item may be, the last shorter.
/// `SymlinkParts` checks the parts as they stream past in key order, for
/// readlink and fsck alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SymlinkParts {
    next: u64,
    len: u64,
}

impl SymlinkParts {
    /// The parts of `target` for items of at most `part_size` bytes, with
    /// their key offsets.
    pub fn split(target: &[u8], part_size: usize) -> impl Iterator<Item = (u64, &[u8])> {
        target.chunks(part_size.max(1)).enumerate().map(|(i, c)| (i as u64, c))
    }

    /// Takes the part keyed `part` holding `bytes`: parts come in sequence
    /// from 0, and the target is at most `SYMLINK_MAX` bytes. After an
    /// error the next part is expected after this one.
    pub fn accept(&mut self, part: u64, bytes: &[u8]) -> Result<()> {
        let expected = self.next;
        self.next = part.saturating_add(1);
        self.len = self.len.saturating_add(bytes.len() as u64);
        if part != expected {
            return Err(Error::corrupt("symlink target parts out of sequence"));
        }
        if self.len > SYMLINK_MAX as u64 {
            return Err(Error::corrupt("symlink target too long"));
        }
        Ok(())
    }

    /// Bytes taken so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no part was taken.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }

    /// Checks the parts taken against the inode's size.
    pub fn finish(&self, size: u64) -> Result<()> {
        if self.len != size {
            return Err(Error::corrupt("symlink target length differs from inode size"));
        }
        Ok(())
    }
}

/// The fields of each item type's value, by name, with what bounds them
/// (the layout tables above, for `ferrofs debug set` and the hostile-image
/// tests). Variable parts (names, symlink bytes, xattr values) appear as
/// their first byte.
pub fn item_fields(ty: u8) -> &'static [Field] {
    const TIME_NSEC: Limit = Limit::Value(999_999_999);
    const INODE: &[Field] = &[
        Field::new("mode", 0, 4),
        Field::new("uid", 4, 4),
        Field::new("gid", 8, 4),
        Field::limited("nlink", 12, 4, Limit::Value(crate::fs::LINK_MAX as u64)),
        Field::limited("size", 16, 8, Limit::Value(MAX_FILE_SIZE)),
        Field::limited("blocks", 24, 8, Limit::TotalBlocks),
        Field::new("rdev", 32, 8),
        Field::new("generation", 40, 8),
        Field::new("transid", 48, 8),
        Field::new("flags", 56, 4),
        Field::new("pad", 60, 4),
        Field::new("atime_sec", 64, 8),
        Field::limited("atime_nsec", 72, 4, TIME_NSEC),
        Field::new("mtime_sec", 76, 8),
        Field::limited("mtime_nsec", 84, 4, TIME_NSEC),
        Field::new("ctime_sec", 88, 8),
        Field::limited("ctime_nsec", 96, 4, TIME_NSEC),
        Field::new("btime_sec", 100, 8),
        Field::limited("btime_nsec", 108, 4, TIME_NSEC),
        Field::new("parent", 112, 8),
        Field::new("next_seq", 120, 8),
        Field::new("reserved", 128, 8),
    ];
    const DIR: &[Field] = &[
        Field::new("ino", 0, 8),
        Field::new("other", 8, 8),
        Field::limited("type", 16, 1, Limit::Value(12)),
        Field::limited("flags", 17, 1, Limit::Value(1)),
        Field::limited("name_len", 18, 1, Limit::Value(NAME_MAX as u64)),
        Field::new("name0", 19, 1),
    ];
    const EXTENT: &[Field] = &[
        Field::limited("disk_block", 0, 8, Limit::TotalBlocks),
        Field::limited("nblocks", 8, 8, Limit::TotalBlocks),
        Field::new("generation", 16, 8),
    ];
    const ROOT: &[Field] = &[
        Field::limited("block", 0, 8, Limit::TotalBlocks),
        Field::new("generation", 8, 8),
        Field::limited("level", 16, 1, Limit::Value(crate::node::MAX_LEVEL as u64 - 1)),
        Field::new("drop_type", 17, 1),
        Field::new("last_ino", 24, 8),
        Field::new("inode_count", 32, 8),
        Field::new("root_dir", 40, 8),
        Field::limited("flags", 48, 8, Limit::Value(ROOT_FLAGS_KNOWN)),
        Field::new("last_snapshot", 56, 8),
        Field::new("uuid", 64, 8),
        Field::new("parent_uuid", 80, 8),
        Field::new("received_uuid", 96, 8),
        Field::new("ctransid", 112, 8),
        Field::new("otransid", 120, 8),
        Field::new("ctime_sec", 144, 8),
        Field::limited("ctime_nsec", 152, 4, TIME_NSEC),
        Field::new("drop_objectid", 192, 8),
        Field::new("drop_offset", 200, 8),
    ];
    const NAME_REF: &[Field] = &[
        Field::new("dir", 0, 8),
        Field::new("seq", 8, 8),
        Field::limited("name_len", 16, 1, Limit::Value(NAME_MAX as u64)),
        Field::new("name0", 17, 1),
    ];
    const REFCOUNT: &[Field] = &[Field::limited("len", 0, 8, Limit::TotalBlocks), Field::new("count", 8, 8)];
    const XATTR: &[Field] = &[
        Field::limited("name_len", 0, 1, Limit::Value(XATTR_NAME_MAX as u64)),
        Field::limited("value_len", 1, 4, Limit::Value(XATTR_VALUE_MAX as u64)),
        Field::new("name0", 5, 1),
    ];
    const SYMLINK: &[Field] = &[Field::new("byte0", 0, 1)];
    match ty {
        INODE_KEY => INODE,
        DIR_HASH_KEY | DIR_SEQ_KEY => DIR,
        EXTENT_KEY => EXTENT,
        ROOT_ITEM_KEY => ROOT,
        INODE_REF_KEY | ROOT_REF_KEY | ROOT_BACKREF_KEY => NAME_REF,
        REFCOUNT_KEY => REFCOUNT,
        XATTR_KEY => XATTR,
        SYMLINK_KEY => SYMLINK,
        _ => &[],
    }
}

/// The name of an item type, as dump-tree prints it and `ferrofs debug`
/// takes it.
pub fn item_type_name(ty: u8) -> Option<&'static str> {
    Some(match ty {
        INODE_KEY => "inode",
        XATTR_KEY => "xattr",
        DIR_HASH_KEY => "dir_hash",
        DIR_SEQ_KEY => "dir_seq",
        SYMLINK_KEY => "symlink",
        EXTENT_KEY => "extent",
        ORPHAN_KEY => "orphan",
        ROOT_ITEM_KEY => "root_item",
        REFCOUNT_KEY => "refcount",
        INODE_REF_KEY => "inode_ref",
        ROOT_REF_KEY => "root_ref",
        ROOT_BACKREF_KEY => "root_backref",
        _ => return None,
    })
}

/// The item type called `name` (see `item_type_name`).
pub fn item_type_by_name(name: &str) -> Option<u8> {
    [
        INODE_KEY,
        INODE_REF_KEY,
        XATTR_KEY,
        DIR_HASH_KEY,
        DIR_SEQ_KEY,
        SYMLINK_KEY,
        EXTENT_KEY,
        ORPHAN_KEY,
        ROOT_ITEM_KEY,
        ROOT_REF_KEY,
        ROOT_BACKREF_KEY,
        REFCOUNT_KEY,
    ]
    .into_iter()
    .find(|&t| item_type_name(t) == Some(name))
}

/// The name hash used by directory and xattr indexes: CRC-32C of the name.
pub fn name_hash(name: &[u8]) -> u32 {
    crate::crc32c::checksum(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_succ_pred() {
        let k = Key::new(5, 3, u64::MAX);
        assert_eq!(k.succ(), Some(Key::new(5, 4, 0)));
        assert_eq!(Key::new(5, 4, 0).pred(), Some(k));
        assert_eq!(Key::MAX.succ(), None);
        assert_eq!(Key::default().pred(), None);
    }

    #[test]
    fn inode_round_trip_and_rejects() {
        let i = InodeItem { mode: S_IFDIR | 0o755, nlink: 2, size: 5, ..Default::default() };
        let b = i.encode();
        assert_eq!(InodeItem::decode(&b).unwrap(), i);
        assert!(InodeItem::decode(&b[..10]).is_err());
        let mut bad = b;
        bad[0] = 0;
        bad[1] = 0;
        bad[2] = 0;
        assert!(InodeItem::decode(&bad).is_err());
        let mut bad = b;
        bad[72..76].copy_from_slice(&2_000_000_000u32.to_le_bytes());
        assert!(InodeItem::decode(&bad).is_err());
    }

    #[test]
    fn dir_entry_rejects_garbage() {
        let v = DirEntry::inode(300, 2, FileType::Regular, b"abc").encode().unwrap();
        assert_eq!(v.len(), DIR_ENTRY_HEADER + 3);
        assert_eq!(DirEntry::decode(&v).unwrap().name, b"abc");
        assert!(DirEntry::decode(&v[..v.len() - 1]).is_err());
        let mut bad = v.to_vec();
        bad[16] = 99;
        assert!(DirEntry::decode(&bad).is_err());
        assert!(DirEntry::decode(&[]).is_err());
    }

    #[test]
    fn symlink_parts_in_sequence_and_bounded() {
        let target = [b'x'; 2500];
        let mut p = SymlinkParts::default();
        let parts: alloc::vec::Vec<_> = SymlinkParts::split(&target, 1000).collect();
        assert_eq!(parts.iter().map(|(i, c)| (*i, c.len())).collect::<alloc::vec::Vec<_>>(), [(0, 1000), (1, 1000), (2, 500)]);
        for (i, c) in parts {
            p.accept(i, c).unwrap();
        }
        assert_eq!(p.finish(2500), Ok(()));
        assert!(p.finish(2499).is_err());
        let mut p = SymlinkParts::default();
        assert!(p.accept(1, b"a").is_err());
        let mut p = SymlinkParts::default();
        p.accept(0, &[b'y'; 4000]).unwrap();
        assert_eq!(p.accept(1, &[b'y'; 96]), Err(Error::corrupt("symlink target too long")));
    }

    #[test]
    fn extent_and_root_items() {
        let e = ExtentItem::written(100, 3, 7);
        assert_eq!(e.encode().len(), EXTENT_ITEM_SIZE);
        assert_eq!(ExtentItem::decode(&e.encode()).unwrap(), e);
        assert!(ExtentItem::decode(&ExtentItem { nblocks: 0, ..e }.encode()).is_err());
        let u = ExtentItem { unwritten: true, ..e };
        let ub = u.encode();
        assert_eq!(ub.len(), EXTENT_ITEM_FLAGS_SIZE);
        assert_eq!(ExtentItem::decode(&ub).unwrap(), u);
        // The flags word is there only when it says something, and says
        // only what this code knows.
        let mut empty = [0u8; EXTENT_ITEM_FLAGS_SIZE];
        empty.copy_from_slice(&ub);
        empty[24] = 0;
        assert!(ExtentItem::decode(&empty).is_err());
        let mut unknown = empty;
        unknown[24] = 2 | 1;
        assert!(ExtentItem::decode(&unknown).is_err());
        unknown[24] = 1;
        unknown[31] = 0x80;
        assert!(ExtentItem::decode(&unknown).is_err());
        assert!(ExtentItem::decode(&ub[..28]).is_err());
        let with = Bounds { total_blocks: 1000, block_size: 4096, unwritten: true };
        assert_eq!(ExtentItem::decode_bounded(&ub, 0, &with).unwrap(), u);
        assert!(ExtentItem::decode_bounded(&ub, 0, &Bounds { unwritten: false, ..with }).is_err());
        assert_eq!(ExtentItem::decode_bounded(&e.encode(), 0, &Bounds { unwritten: false, ..with }).unwrap(), e);
        let r = RootItem { block: 50, generation: 2, level: 1, last_ino: 256, inode_count: 1, root_dir: 256, ..Default::default() };
        assert_eq!(RootItem::decode(&r.encode()).unwrap(), r);
        assert!(RootItem::decode(&RootItem { level: 9, ..r }.encode()).is_err());
        assert!(RootItem::decode(&RootItem { flags: 4, ..r }.encode()).is_err());
        let full = RootItem {
            flags: ROOT_RDONLY,
            last_snapshot: 9,
            uuid: [1; 16],
            parent_uuid: [2; 16],
            received_uuid: [3; 16],
            ctransid: 4,
            otransid: 5,
            stransid: 6,
            rtransid: 7,
            ctime: Timespec { sec: 8, nsec: 9 },
            otime: Timespec { sec: -1, nsec: 10 },
            stime: Timespec { sec: 11, nsec: 0 },
            rtime: Timespec { sec: 12, nsec: 999_999_999 },
            drop_progress: Key::new(300, EXTENT_KEY, 17),
            ..r
        };
        assert_eq!(RootItem::decode(&full.encode()).unwrap(), full);
    }

    #[test]
    fn name_refs_and_subvolume_entries() {
        let v = NameRef { dir: 256, seq: 9, name: b"abc" }.encode().unwrap();
        assert_eq!(v.len(), NAME_REF_HEADER + 3);
        assert_eq!(NameRef::decode(&v).unwrap(), NameRef { dir: 256, seq: 9, name: b"abc" });
        assert!(NameRef::decode(&v[..v.len() - 1]).is_err());
        assert!(NameRef { dir: 1, seq: 2, name: b"" }.encode().is_err());
        assert!(NameRef { dir: 1, seq: 2, name: &[b'n'; NAME_MAX + 1] }.encode().is_err());
        let longest = DirEntry::inode(300, 2, FileType::Regular, &[b'n'; NAME_MAX]).encode().unwrap();
        assert_eq!(DirEntry::decode(&longest).unwrap().name.len(), NAME_MAX);
        assert_ne!(NameRef::hash(256, b"a"), NameRef::hash(257, b"a"));
        let e = DirEntry { ino: 300, other: 2, ty: FileType::Dir, subvol: true, name: b"sv" };
        let mut v = e.encode().unwrap().to_vec();
        assert_eq!(DirEntry::decode(&v).unwrap(), e);
        v[17] = 2;
        assert!(DirEntry::decode(&v).is_err());
        assert!(DirEntry::decode(&DirEntry { ino: 5, ..e }.encode().unwrap()).is_err(), "a subvolume entry names a subvolume tree id");
        assert!(DirEntry::decode(&DirEntry { ty: FileType::Regular, ..e }.encode().unwrap()).is_err());
    }
}
