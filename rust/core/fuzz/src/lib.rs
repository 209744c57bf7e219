// SPDX-License-Identifier: GPL-2.0
//! Shared pieces of the ferrofs fuzz targets: an in-memory block device, the
//! small populated image the `mount` target damages, checksum resealing, and
//! the per-type item decoding that the `node` and `items` targets share.

use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use ferrofs_core::alloc_tree::decode_record;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::{Error, Result};
use ferrofs_core::format::*;
use ferrofs_core::fs::{Filesystem, SetAttr};
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::superblock::SUPERBLOCK_SIZE;
use std::collections::BTreeMap;
use std::collections::BTreeSet;

/// Media granularity of `MemDev`, and the block size of the sample image.
pub const PAGE: usize = 4096;
/// Size of the sample image: little above mkfs's minimum, so a mount and a
/// full check stay cheap enough for thousands of runs a second.
pub const IMAGE_SIZE: u64 = 2 << 20;
/// UUID of the sample image.
pub const IMAGE_UUID: [u8; 16] = [0x5a; 16];

/// A copy-on-write view of a base image: writes land in a page overlay, so
/// each fuzz run starts from the shared base without copying it.
pub struct MemDev<'a> {
    base: &'a [u8],
    size: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl<'a> MemDev<'a> {
    /// A device of `size` bytes showing `base` (zeros past its end).
    pub fn new(base: &'a [u8], size: u64) -> Self {
        MemDev { base, size, pages: BTreeMap::new() }
    }

    /// The current content of page `p`, for patching in place.
    pub fn page_mut(&mut self, p: u64) -> &mut [u8] {
        let base = self.base;
        self.pages.entry(p).or_insert_with(|| {
            let mut b = vec![0u8; PAGE].into_boxed_slice();
            let start = (p as usize).saturating_mul(PAGE).min(base.len());
            let src = &base[start..base.len().min(start + PAGE)];
            b[..src.len()].copy_from_slice(src);
            b
        })
    }

    /// The whole device as one buffer.
    pub fn into_image(mut self) -> Vec<u8> {
        (0..self.size / PAGE as u64).flat_map(|p| self.page_mut(p).to_vec()).collect()
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        // The core promises whole 512-byte sectors; a damaged image must not
        // make it break that promise, since a kernel bio could not follow.
        assert!(offset.is_multiple_of(512) && len.is_multiple_of(512), "unaligned I/O at {offset} len {len}");
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::Io),
        }
    }
}

impl BlockDevice for MemDev<'_> {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        let mut pos = offset;
        for chunk in buf.chunks_mut(PAGE) {
            let (p, at) = (pos / PAGE as u64, pos as usize % PAGE);
            let n = chunk.len().min(PAGE - at);
            chunk[..n].copy_from_slice(&self.page_mut(p)[at..at + n]);
            if n < chunk.len() {
                let rest = chunk.len() - n;
                chunk[n..].copy_from_slice(&self.page_mut(p + 1)[..rest]);
            }
            pos += chunk.len() as u64;
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, buf: &[u8], _fua: bool) -> Result<()> {
        self.check(offset, buf.len())?;
        let mut pos = offset;
        for chunk in buf.chunks(PAGE) {
            let (p, at) = (pos / PAGE as u64, pos as usize % PAGE);
            let n = chunk.len().min(PAGE - at);
            self.page_mut(p)[at..at + n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.page_mut(p + 1)[..chunk.len() - n].copy_from_slice(&chunk[n..]);
            }
            pos += chunk.len() as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

fn ts(sec: i64) -> Timespec {
    Timespec { sec, nsec: 0 }
}

/// A small image holding one of everything a decoder can meet: nested
/// directories, files with extents, symlinks of one and several parts,
/// small and multi-part xattrs, a device node, a hard link, an orphan,
/// and enough entries that the fs tree has an interior level.
pub fn sample_image() -> Vec<u8> {
    let mut dev = MemDev::new(&[], IMAGE_SIZE);
    let opts = MkfsOptions {
        block_size: PAGE as u32,
        size_bytes: IMAGE_SIZE,
        uuid: IMAGE_UUID,
        label: b"fuzz",
        now: (1000, 0),
        fast_commit_blocks: Some(8),
    };
    mkfs::format(&mut dev, &opts).expect("mkfs");
    let mut fs = Filesystem::mount(dev).expect("mount of a fresh image");
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"dir", 0o755, 1, 1, ts(2)).expect("mkdir").ino;
    let sub = fs.mkdir(SV, dir, b"sub", 0o700, 1, 1, ts(2)).expect("mkdir").ino;
    let big = fs.create(SV, root, b"big", 0o644, 0, 0, 0, ts(3)).expect("create").ino;
    let data: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
    fs.write(SV, big, 0, &data, ts(3)).expect("write");
    // A hole between two extents.
    fs.write(SV, big, 5 * PAGE as u64, b"tail", ts(3)).expect("write");
    fs.set_xattr(SV, big, b"user.small", b"v", 0, ts(3)).expect("xattr");
    fs.set_xattr(SV, big, b"user.large", &[7u8; 2500], 0, ts(3)).expect("xattr");
    let small = fs.create(SV, sub, b"small", 0o600, 0, 0, 0, ts(4)).expect("create").ino;
    fs.write(SV, small, 0, b"hello", ts(4)).expect("write");
    fs.link(SV, small, root, b"hardlink", ts(4)).expect("link");
    fs.symlink(SV, root, b"short", b"dir/sub/small", 0, 0, ts(5)).expect("symlink");
    fs.symlink(SV, dir, b"long", &[b'z'; 3000], 0, 0, ts(5)).expect("symlink");
    fs.mknod(SV, root, b"fifo", S_IFIFO | 0o644, 0, 0, 0, ts(6)).expect("mknod");
    fs.mknod(SV, root, b"chr", S_IFCHR | 0o644, 0x0103, 0, 0, ts(6)).expect("mknod");
    for i in 0..24 {
        fs.create(SV, dir, format!("entry-{i:02}").as_bytes(), 0o644, 0, 0, 0, ts(7)).expect("create");
    }
    // A subvolume with a file, and a read-only snapshot sharing the tree.
    let sv = fs.create_subvolume(SV, root, b"subvol", [9; 16], 0, 0, ts(7)).expect("subvolume");
    fs.create(sv, 256, b"inside", 0o644, 0, 0, 0, ts(7)).expect("create");
    fs.snapshot(SV, SV, dir, b"snap", true, [10; 16], ts(7)).expect("snapshot");
    // Unlinked while (notionally) open: stays on the orphan list.
    let gone = fs.create(SV, root, b"gone", 0o644, 0, 0, 0, ts(8)).expect("create").ino;
    fs.write(SV, gone, 0, &[1u8; 5000], ts(8)).expect("write");
    fs.unlink(SV, root, b"gone", ts(8)).expect("unlink");
    fs.commit().expect("commit");
    // An fsync since that commit: a fast-commit record for mount to replay,
    // kept by stopping the filesystem before another commit.
    fs.write(SV, big, 9000, b"fsynced", ts(9)).expect("write");
    let tier = fs.fsync(SV, big).expect("fsync");
    assert_eq!(tier, ferrofs_core::fast_commit::FsyncTier::FastCommit);
    // And a tree-log record after it: a new name for a file with two.
    fs.link(SV, small, dir, b"third", ts(10)).expect("link");
    let tier = fs.fsync(SV, small).expect("fsync");
    assert_eq!(tier, ferrofs_core::fast_commit::FsyncTier::TreeLog);
    fs.abort(Error::Io);
    fs.unmount().expect("unmount").into_image()
}

/// Makes `b` a record of the fast-commit area (either kind, by `magic`)
/// as far as magic, length and CRC go, so the field checks see it.
pub fn reseal_record(b: &mut [u8], magic: [u8; 4]) {
    b[0..4].copy_from_slice(&magic);
    let len = b.len() as u32;
    b[24..28].copy_from_slice(&len.to_le_bytes());
    b[4..8].fill(0);
    let crc = ferrofs_core::crc32c::checksum(b);
    b[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes a superblock's checksum (bytes 4..4096 into 0..4).
pub fn reseal_superblock(b: &mut [u8]) {
    if b.len() >= SUPERBLOCK_SIZE {
        let c = ferrofs_core::crc32c::checksum(&b[4..SUPERBLOCK_SIZE]);
        b[..4].copy_from_slice(&c.to_le_bytes());
    }
}

/// Decodes an item value the way its key type says, and checks that
/// whatever decodes survives an encode/decode round trip. Types without a
/// public decoder (xattr and symlink parts, orphans) are reached through
/// the `mount` target's reads instead.
pub fn decode_item(key: &Key, d: &[u8]) {
    match key.ty {
        INODE_KEY => {
            if let Ok(i) = InodeItem::decode(d) {
                assert_eq!(InodeItem::decode(&i.encode()), Ok(i));
                let _ = (i.file_type(), i.is_dir());
            }
        }
        DIR_HASH_KEY | DIR_SEQ_KEY => {
            if let Ok(e) = DirEntry::decode(d) {
                let v = e.encode().expect("encoding a decoded entry");
                assert_eq!(DirEntry::decode(&v), Ok(e));
                assert_eq!(&v[..], d);
            }
        }
        EXTENT_KEY => {
            if let Ok(e) = ExtentItem::decode(d) {
                assert_eq!(ExtentItem::decode(&e.encode()), Ok(e));
                assert_eq!(&e.encode()[..], d);
            }
        }
        ROOT_ITEM_KEY => {
            if let Ok(r) = RootItem::decode(d) {
                assert_eq!(RootItem::decode(&r.encode()), Ok(r));
            }
        }
        INODE_REF_KEY | ROOT_REF_KEY | ROOT_BACKREF_KEY => {
            if let Ok(n) = NameRef::decode(d) {
                let v = n.encode().expect("encoding a decoded name reference");
                assert_eq!(&v[..], d);
                let _ = NameRef::hash(n.dir, n.name);
            }
        }
        REFCOUNT_KEY => {
            if let Ok(r) = decode_record(key, d) {
                assert!(r.len > 0 && r.count > 0 && r.start.checked_add(r.len).is_some());
            }
        }
        _ => {}
    }
}

/// Bounds on the walk, so a directory that a damaged tree makes huge or
/// cyclic costs milliseconds, not the run.
const MAX_INODES: usize = 64;
const MAX_ENTRIES: usize = 512;
const MAX_READ: usize = 64 << 10;

fn now() -> ferrofs_core::format::Timespec {
    ferrofs_core::format::Timespec { sec: 2000, nsec: 0 }
}

/// Every read the VFS could make, from the root down; all errors are fine.
pub fn read_everything(fs: &mut Filesystem<MemDev<'_>>) {
    let root = fs.root_ino();
    let _ = fs.getattr(SV, root);
    let mut todo = vec![root];
    let mut seen = BTreeSet::from([root]);
    let mut buf = vec![0u8; MAX_READ];
    while let Some(dir) = todo.pop() {
        let mut ents = Vec::new();
        let _ = fs.readdir(SV, dir, 0, &mut |name, ino, ty, _| {
            ents.push((name.to_vec(), ino, ty));
            ents.len() < MAX_ENTRIES
        });
        let _ = fs.lookup(SV, dir, b"no such name");
        for (name, ino, ty) in ents {
            let _ = fs.lookup(SV, dir, &name);
            if seen.len() >= MAX_INODES || !seen.insert(ino) {
                continue;
            }
            let Ok(attr) = fs.getattr(SV, ino) else { continue };
            match attr.file_type() {
                FileType::Regular => {
                    let _ = fs.read(SV, ino, 0, &mut buf);
                    let _ = fs.read(SV, ino, attr.size.saturating_sub(100), &mut buf[..4096]);
                }
                FileType::Symlink => {
                    let _ = fs.readlink(SV, ino);
                }
                FileType::Dir if ty == FileType::Dir => todo.push(ino),
                _ => {}
            }
            read_xattrs(fs, ino, &mut buf);
        }
    }
}

fn read_xattrs(fs: &mut Filesystem<MemDev<'_>>, ino: u64, buf: &mut [u8]) {
    let Ok(n) = fs.list_xattr(SV, ino, &mut []) else { return };
    let mut names = vec![0u8; n.min(MAX_READ)];
    let Ok(n) = fs.list_xattr(SV, ino, &mut names) else { return };
    for name in names[..n.min(names.len())].split(|&c| c == 0).filter(|s| !s.is_empty()) {
        let _ = fs.get_xattr(SV, ino, name, &mut []);
        let _ = fs.get_xattr(SV, ino, name, buf);
    }
}

/// Changes that walk and rewrite damaged trees: create, write, xattr,
/// truncate, rename and unlink.
pub fn change_things(fs: &mut Filesystem<MemDev<'_>>) {
    let root = fs.root_ino();
    let Ok(a) = fs.create(SV, root, b"fuzz-new", S_IFREG | 0o644, 0, 0, 0, now()) else { return };
    let _ = fs.write(SV, a.ino, 3000, &[9u8; 6000], now());
    let _ = fs.set_xattr(SV, a.ino, b"user.fuzz", b"value", 0, now());
    if let Ok(big) = fs.lookup(SV, root, b"big") {
        let _ = fs.setattr(SV, big, &SetAttr { size: Some(100), ..Default::default() }, now());
    }
    let _ = fs.rename(SV, root, b"fuzz-new", root, b"short", 0, now());
    let _ = fs.unlink(SV, root, b"hardlink", now());
    let _ = fs.commit();
}
