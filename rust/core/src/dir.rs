// SPDX-License-Identifier: GPL-2.0
//! Namespace operations: directory entries in their two indexes, create,
//! mkdir, mknod, symlink, tmpfile, link, unlink, rmdir, rename, and freeing
//! inodes (evict and the orphan list).
//!
//! Each entry is stored twice: under `(dir, DIR_HASH, hash32 << 32 | idx)`
//! for lookup by name, and under `(dir, DIR_SEQ, seq)` for readdir, where
//! `seq` comes from a per-directory counter that only grows, so a readdir
//! cookie (`seq + 1`) keeps its place while entries come and go. Each copy
//! names the other's key offset, so removal needs one lookup.
//!
//! Every entry naming an inode of the same tree has a back-reference,
//! `(ino, INODE_REF, hash32(dir, name) << 32 | idx)` holding the directory,
//! the entry's sequence number and the name, written and removed with the
//! entry: the names of any inode can be listed without scanning
//! directories (fsync logging and send need them). An entry naming another
//! subvolume (`DirEntry::subvol`) has its back-reference in the root tree
//! instead (`ROOT_REF` / `ROOT_BACKREF`, see `crate::subvol`).

use crate::btree::{self, Cursor, Dir, TreeRoot};
use crate::device::BlockDevice;
use crate::error::{CorruptAt, Error, Result};
use crate::format::*;
use crate::fs::{check_name, inode_key, Filesystem, InodeAttr, LINK_MAX, RENAME_EXCHANGE, RENAME_NOREPLACE};
use crate::mem::TryVec;
use crate::subvol::{ObjectItems, SubvolId};

/// A directory entry found by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub hash_off: u64,
    pub seq: u64,
    pub ino: u64,
    pub ty: FileType,
    /// `ino` is a subvolume's tree id.
    pub subvol: bool,
}

/// What a new entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub ino: u64,
    pub ty: FileType,
    /// `ino` is a subvolume's tree id.
    pub subvol: bool,
}

impl Target {
    pub(crate) fn inode(ino: u64, ty: FileType) -> Self {
        Target { ino, ty, subvol: false }
    }
}

impl Found {
    fn target(&self) -> Target {
        Target { ino: self.ino, ty: self.ty, subvol: self.subvol }
    }
}

/// Where a new entry goes: its sequence number and hash key offset, both
/// free, and whether it names an inode the same call has just made (not a
/// subvolume), which has no back-reference yet: its first takes index 0 of
/// its hash without a search.
struct EntryPlace {
    seq: u64,
    hash_off: u64,
    fresh_target: bool,
}

/// What `Filesystem::remove` left: the attributes of the directory and
/// of the inode whose name went (`None` for a subvolume, whose root
/// directory lives in its own tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub dir: InodeAttr,
    pub victim: Option<InodeAttr>,
}

/// Most items of an inode, besides its inode item, that freeing it takes
/// in one step (`evict_orphan_item`).
const EVICT_BATCH: usize = 16;

/// An item keyed by an inode, with the blocks it holds if it is a data
/// extent (`items_after_inode`).
type InodeItemRef = (Key, Option<(u64, u64)>);

/// Tree changes one entry add or remove makes (two index items, the
/// back-reference and the directory inode), for reservations.
pub(crate) const ENTRY_ITEMS: u64 = 4;

pub(crate) fn orphan_key(ino: u64) -> Key {
    Key::new(ORPHAN_OBJECTID, ORPHAN_KEY, ino)
}

/// The first free collision index in the run of keys `(objectid, ty,
/// hash | idx)` of one 32-bit hash.
fn free_slot<D: BlockDevice>(s: &mut crate::store::Store<D>, root: &crate::btree::TreeRoot, objectid: u64, ty: u8, h: u64) -> Result<u64> {
    let mut idx = 0u64;
    let mut c = Cursor::new(Key::new(objectid, ty, h), Dir::Forward);
    while let Some((k, _)) = c.next(s, root)? {
        if k.objectid != objectid || k.ty != ty || k.offset >> 32 != h >> 32 || k.offset & 0xffff_ffff != idx {
            break;
        }
        idx += 1;
    }
    if idx > 0xffff_ffff {
        return Err(Error::NoSpace);
    }
    Ok(h | idx)
}

impl<D: BlockDevice> Filesystem<D> {
    pub(crate) fn find_entry(&mut self, dir: u64, name: &[u8]) -> Result<Option<Found>> {
        Ok(self.entry_or_free_slot(dir, name)?.ok())
    }

    /// The entry `name` of `dir`, or else the hash key offset a new entry
    /// of that name takes (what `free_slot` would find): one pass over the
    /// run of its hash serves both, so a create looks the name up once.
    fn entry_or_free_slot(&mut self, dir: u64, name: &[u8]) -> Result<core::result::Result<Found, u64>> {
        self.sv_read().entry_or_free_slot(dir, name)
    }

    /// The key of `ino`'s back-reference for `name` in `dir`, if it has one.
    pub(crate) fn find_inode_ref(&mut self, ino: u64, dir: u64, name: &[u8]) -> Result<Option<Key>> {
        let h = NameRef::hash(dir, name);
        let mut items = ObjectItems::new(ino, INODE_REF_KEY, h);
        while let Some((off, d)) = items.next(&mut self.s, &self.sv)? {
            if off >> 32 != h >> 32 {
                break;
            }
            let r = NameRef::decode(d).at_ino(ino)?;
            if r.dir == dir && r.name == name {
                return Ok(Some(Key::new(ino, INODE_REF_KEY, off)));
            }
        }
        Ok(None)
    }

    /// Every name of inode `ino`, from its back-references: `(directory,
    /// name)`, in key order.
    pub fn names_of(&mut self, sv: SubvolId, ino: u64) -> Result<TryVec<(u64, TryVec<u8>)>> {
        self.enter(sv)?;
        self.read_inode(ino)?;
        let mut out = TryVec::new();
        let mut items = ObjectItems::new(ino, INODE_REF_KEY, 0);
        while let Some((_, d)) = items.next(&mut self.s, &self.sv)? {
            let r = NameRef::decode(d).at_ino(ino)?;
            let mut name = TryVec::new();
            name.try_extend_from_slice(r.name)?;
            out.try_push((r.dir, name))?;
        }
        Ok(out)
    }

    pub(crate) fn add_inode_ref(&mut self, ino: u64, dir: u64, seq: u64, name: &[u8]) -> Result<()> {
        let root = self.sv.root;
        let off = free_slot(&mut self.s, &root, ino, INODE_REF_KEY, NameRef::hash(dir, name))?;
        self.insert_inode_ref(ino, off, dir, seq, name)
    }

    /// Writes `ino`'s back-reference at key offset `off`, which is free.
    fn insert_inode_ref(&mut self, ino: u64, off: u64, dir: u64, seq: u64, name: &[u8]) -> Result<()> {
        let item = NameRef { dir, seq, name }.encode()?;
        btree::insert(&mut self.s, &mut self.sv.root, &Key::new(ino, INODE_REF_KEY, off), &item)
    }

    fn remove_inode_ref(&mut self, ino: u64, dir: u64, name: &[u8]) -> Result<()> {
        let missing = || Error::corrupt("directory entry has no back-reference").at_ino(ino);
        // Most often in a leaf the transaction changed already (the one of
        // the inode item): found and deleted there in one search.
        let h = NameRef::hash(dir, name);
        let (first, last) = (Key::new(ino, INODE_REF_KEY, h), Key::new(ino, INODE_REF_KEY, h | 0xffff_ffff));
        let root = self.sv.root;
        let same = |d: &[u8]| NameRef::decode(d).at_ino(ino).map(|r| r.dir == dir && r.name == name);
        match btree::delete_first_in_place(&mut self.s, &root, &first, &last, same)? {
            Some(true) => return Ok(()),
            Some(false) => return Err(missing()),
            None => {}
        }
        let k = self.find_inode_ref(ino, dir, name)?.ok_or_else(missing)?;
        btree::delete(&mut self.s, &mut self.sv.root, &k)
    }

    /// Adds `name -> t` to `dir`'s two indexes, with its back-reference,
    /// and updates the directory. Returns the entry's sequence number.
    pub(crate) fn add_entry(&mut self, dir: u64, name: &[u8], t: Target, now: Timespec) -> Result<u64> {
        let d = self.read_dir_inode(dir)?;
        let root = self.sv.root;
        let hash_off = free_slot(&mut self.s, &root, dir, DIR_HASH_KEY, (name_hash(name) as u64) << 32)?;
        let seq = d.next_seq.max(2);
        self.add_entry_at(dir, d, name, t, seq, hash_off, now)?;
        Ok(seq)
    }

    /// `add_entry` at a sequence number and hash key offset chosen before
    /// (fast-commit replay puts a name back where it was), both free;
    /// `d` is the directory's inode item.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_entry_at(
        &mut self,
        dir: u64,
        d: InodeItem,
        name: &[u8],
        t: Target,
        seq: u64,
        hash_off: u64,
        now: Timespec,
    ) -> Result<()> {
        self.add_entry_in(dir, d, name, t, EntryPlace { seq, hash_off, fresh_target: false }, now)
    }

    /// `add_entry_at` at `place`.
    fn add_entry_in(&mut self, dir: u64, mut d: InodeItem, name: &[u8], t: Target, place: EntryPlace, now: Timespec) -> Result<()> {
        let EntryPlace { seq, hash_off, fresh_target } = place;
        d.next_seq = d.next_seq.max(seq.checked_add(1).ok_or(Error::NoSpace)?);
        self.s.fc.related.note(self.sv.id, dir, t.ino, name, true);
        let by_hash = DirEntry { ino: t.ino, other: seq, ty: t.ty, subvol: t.subvol, name }.encode()?;
        btree::insert(&mut self.s, &mut self.sv.root, &Key::new(dir, DIR_HASH_KEY, hash_off), &by_hash)?;
        let by_seq = DirEntry { ino: t.ino, other: hash_off, ty: t.ty, subvol: t.subvol, name }.encode()?;
        btree::insert(&mut self.s, &mut self.sv.root, &Key::new(dir, DIR_SEQ_KEY, seq), &by_seq)?;
        if fresh_target {
            self.insert_inode_ref(t.ino, NameRef::hash(dir, name), dir, seq, name)?;
        } else if !t.subvol {
            self.add_inode_ref(t.ino, dir, seq, name)?;
        }
        d.size = d.size.saturating_add(name.len() as u64);
        if t.ty == FileType::Dir {
            d.nlink = d.nlink.saturating_add(1);
        }
        d.mtime = now;
        d.ctime = now;
        self.write_inode(dir, &mut d)
    }

    /// Removes an entry found by `find_entry`, with its back-reference,
    /// and updates the directory.
    pub(crate) fn remove_entry(&mut self, dir: u64, f: &Found, name: &[u8], now: Timespec) -> Result<()> {
        let d = self.read_dir_inode(dir)?;
        self.remove_entry_in(dir, d, f, name, now).map(|_| ())
    }

    /// `remove_entry` with the directory's inode item `d` in hand; returns
    /// that item as written.
    fn remove_entry_in(&mut self, dir: u64, mut d: InodeItem, f: &Found, name: &[u8], now: Timespec) -> Result<InodeItem> {
        // A freed slot may be taken again: a fast-commit record cannot say
        // a new name in this directory until the next commit.
        self.s.fc.mark(self.sv.id, dir)?;
        self.s.fc.related.note(self.sv.id, dir, f.ino, name, false);
        btree::delete(&mut self.s, &mut self.sv.root, &Key::new(dir, DIR_HASH_KEY, f.hash_off))?;
        btree::delete(&mut self.s, &mut self.sv.root, &Key::new(dir, DIR_SEQ_KEY, f.seq))?;
        if !f.subvol {
            self.remove_inode_ref(f.ino, dir, name)?;
        }
        d.size = d.size.saturating_sub(name.len() as u64);
        if f.ty == FileType::Dir {
            d.nlink = d.nlink.saturating_sub(1);
        }
        d.mtime = now;
        d.ctime = now;
        self.write_inode(dir, &mut d)?;
        Ok(d)
    }

    /// Points an existing entry at another target (rename exchange),
    /// moving the back-reference from the old target to the new.
    fn repoint_entry(&mut self, dir: u64, f: &Found, name: &[u8], t: Target) -> Result<()> {
        self.s.fc.mark(self.sv.id, dir)?;
        self.s.fc.related.note(self.sv.id, dir, f.ino, name, false);
        self.s.fc.related.note(self.sv.id, dir, t.ino, name, true);
        let by_hash = DirEntry { ino: t.ino, other: f.seq, ty: t.ty, subvol: t.subvol, name }.encode()?;
        btree::update(&mut self.s, &mut self.sv.root, &Key::new(dir, DIR_HASH_KEY, f.hash_off), &by_hash)?;
        let by_seq = DirEntry { ino: t.ino, other: f.hash_off, ty: t.ty, subvol: t.subvol, name }.encode()?;
        btree::update(&mut self.s, &mut self.sv.root, &Key::new(dir, DIR_SEQ_KEY, f.seq), &by_seq)?;
        if !f.subvol {
            self.remove_inode_ref(f.ino, dir, name)?;
        }
        if !t.subvol {
            self.add_inode_ref(t.ino, dir, f.seq, name)?;
        }
        Ok(())
    }

    /// The entry `name` of directory `dir`, which must exist.
    pub(crate) fn existing_entry(&mut self, dir: u64, name: &[u8]) -> Result<Found> {
        self.existing_entry_in(dir, name).map(|(_, f)| f)
    }

    /// `existing_entry`, with the directory's inode item.
    fn existing_entry_in(&mut self, dir: u64, name: &[u8]) -> Result<(InodeItem, Found)> {
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        let d = self.read_dir_inode(dir)?;
        Ok((d, self.find_entry(dir, name)?.ok_or(Error::NotFound)?))
    }

    pub(crate) fn dir_is_empty(&mut self, dir: u64) -> Result<bool> {
        let mut buf = TryVec::new();
        let root = self.sv.root;
        Ok(btree::first_in(&mut self.s, &root, Key::new(dir, DIR_SEQ_KEY, 0), &mut buf)?.is_none())
    }

    /// Creates an inode of any type and links it into `dir`.
    fn new_inode(&mut self, dir: u64, name: &[u8], mut it: InodeItem, extra_items: u64) -> Result<InodeAttr> {
        check_name(name)?;
        let d = self.read_dir_inode(dir)?;
        let Err(hash_off) = self.entry_or_free_slot(dir, name)? else { return Err(Error::Exists) };
        // A commit here (to get space) changes no item: `d` and `hash_off`
        // stay true.
        self.reserve(2 + ENTRY_ITEMS + extra_items, 0)?;
        let ino = self.next_ino()?;
        it.generation = self.s.gen;
        it.transid = self.s.gen;
        if it.is_dir() {
            it.parent = dir;
            it.next_seq = 2;
        }
        btree::insert(&mut self.s, &mut self.sv.root, &inode_key(ino), &it.encode())?;
        self.sv.item.inode_count = self.sv.item.inode_count.saturating_add(1);
        let place = EntryPlace { seq: d.next_seq.max(2), hash_off, fresh_target: true };
        self.add_entry_in(dir, d, name, Target::inode(ino, it.file_type()), place, it.ctime)?;
        Ok(self.attr_of(ino, &it))
    }

    fn fresh(mode: u32, uid: u32, gid: u32, now: Timespec) -> InodeItem {
        InodeItem { mode, uid, gid, nlink: 1, atime: now, mtime: now, ctime: now, btime: now, ..Default::default() }
    }

    /// Creates a regular file, fifo, socket or device node. `mode` carries
    /// the type bits (none means regular).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        sv: SubvolId,
        dir: u64,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
        now: Timespec,
    ) -> Result<InodeAttr> {
        self.enter(sv)?;
        let mode = if mode & S_IFMT == 0 { mode | S_IFREG } else { mode };
        let ty = FileType::from_mode(mode).ok_or(Error::Invalid("unknown file type"))?;
        if matches!(ty, FileType::Dir | FileType::Symlink) {
            return Err(Error::Invalid("create makes neither directories nor symlinks"));
        }
        let mut it = Self::fresh(mode & (S_IFMT | 0o7777), uid, gid, now);
        if matches!(ty, FileType::CharDev | FileType::BlockDev) {
            it.rdev = rdev;
        }
        self.change(|fs| fs.new_inode(dir, name, it, 0))
    }

    /// Creates a device node, fifo or socket: `create` with the type in `mode`.
    #[allow(clippy::too_many_arguments)]
    pub fn mknod(
        &mut self,
        sv: SubvolId,
        dir: u64,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
        now: Timespec,
    ) -> Result<InodeAttr> {
        self.create(sv, dir, name, mode, rdev, uid, gid, now)
    }

    /// Creates a directory.
    #[allow(clippy::too_many_arguments)]
    pub fn mkdir(&mut self, sv: SubvolId, dir: u64, name: &[u8], mode: u32, uid: u32, gid: u32, now: Timespec) -> Result<InodeAttr> {
        self.enter(sv)?;
        let mut it = Self::fresh(S_IFDIR | (mode & 0o7777), uid, gid, now);
        it.nlink = 2;
        self.change(|fs| {
            let d = fs.read_dir_inode(dir)?;
            if d.nlink >= LINK_MAX {
                return Err(Error::TooManyLinks);
            }
            fs.new_inode(dir, name, it, 0)
        })
    }

    /// Creates a symlink to `target` (1 to 4095 bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn symlink(&mut self, sv: SubvolId, dir: u64, name: &[u8], target: &[u8], uid: u32, gid: u32, now: Timespec) -> Result<InodeAttr> {
        self.enter(sv)?;
        if target.len() > SYMLINK_MAX {
            return Err(Error::NameTooLong);
        }
        if target.is_empty() || target.contains(&0) {
            return Err(Error::Invalid("symlink target must be non-empty without NUL"));
        }
        let mut it = Self::fresh(S_IFLNK | 0o777, uid, gid, now);
        it.size = target.len() as u64;
        let part = crate::node::max_item_data(self.s.bs);
        let parts = crate::store::div_ceil(target.len() as u64, part as u64) as usize;
        self.change(|fs| {
            let a = fs.new_inode(dir, name, it, parts as u64)?;
            for (i, chunk) in SymlinkParts::split(target, part) {
                btree::insert(&mut fs.s, &mut fs.sv.root, &Key::new(a.ino, SYMLINK_KEY, i), chunk)?;
            }
            Ok(a)
        })
    }

    /// Creates a regular file with no name (O_TMPFILE): link count 0 and
    /// already on the orphan list, so `evict` frees it, or the next
    /// read-write mount after a crash, unless `link` gives it a name first.
    /// `mode` may carry `S_IFREG` or no type bits; any other type is refused.
    pub fn tmpfile(&mut self, sv: SubvolId, mode: u32, uid: u32, gid: u32, now: Timespec) -> Result<InodeAttr> {
        self.enter(sv)?;
        if mode & S_IFMT != 0 && mode & S_IFMT != S_IFREG {
            return Err(Error::Invalid("tmpfile makes only regular files"));
        }
        let mut it = Self::fresh(S_IFREG | (mode & 0o7777), uid, gid, now);
        it.nlink = 0;
        self.change(|fs| {
            fs.reserve(3, 0)?;
            let ino = fs.next_ino()?;
            it.generation = fs.s.gen;
            it.transid = fs.s.gen;
            btree::insert(&mut fs.s, &mut fs.sv.root, &inode_key(ino), &it.encode())?;
            btree::insert(&mut fs.s, &mut fs.sv.root, &orphan_key(ino), &[])?;
            fs.sv.item.inode_count = fs.sv.item.inode_count.saturating_add(1);
            Ok(fs.attr_of(ino, &it))
        })
    }

    /// The target of a symlink.
    pub fn readlink(&mut self, sv: SubvolId, ino: u64) -> Result<TryVec<u8>> {
        self.enter(sv)?;
        self.s.stats.inode_reads += 1;
        self.sv_read().readlink(ino)
    }

    /// Adds another name for `ino` in `dir`. An inode with no name yet
    /// (a tmpfile, or unlinked but still open; the VFS decides which may be
    /// linked) comes off the orphan list, so neither `evict` nor a mount
    /// frees it.
    pub fn link(&mut self, sv: SubvolId, ino: u64, dir: u64, name: &[u8], now: Timespec) -> Result<InodeAttr> {
        self.enter(sv)?;
        self.change(|fs| {
            check_name(name)?;
            let mut it = fs.read_inode(ino)?;
            if it.is_dir() {
                return Err(Error::NotPermitted);
            }
            if it.nlink >= LINK_MAX {
                return Err(Error::TooManyLinks);
            }
            fs.read_dir_inode(dir)?;
            if fs.find_entry(dir, name)?.is_some() {
                return Err(Error::Exists);
            }
            fs.reserve(2 + ENTRY_ITEMS, 0)?;
            // Looked up first: a failed delete would already have copied the
            // path, and an inode at 0 links without an orphan item (fsck
            // flags it) must still get its name rather than abort.
            if it.nlink == 0 && fs.is_orphan(ino)? {
                fs.remove_orphan(ino)?;
            }
            it.nlink += 1;
            it.ctime = now;
            fs.write_inode(ino, &mut it)?;
            fs.add_entry(dir, name, Target::inode(ino, it.file_type()), now)?;
            Ok(fs.attr_of(ino, &it))
        })
    }

    /// Drops one link; at zero the inode goes on the orphan list. Returns
    /// the inode's item as written.
    fn drop_link(&mut self, ino: u64, whole_dir: bool, now: Timespec) -> Result<InodeItem> {
        let it = self.modify_inode(ino, |it| {
            it.nlink = if whole_dir { 0 } else { it.nlink.saturating_sub(1) };
            it.ctime = now;
        })?;
        if it.nlink == 0 {
            self.add_orphan(ino)?;
        }
        Ok(it)
    }

    /// Removes a non-directory name.
    pub fn unlink(&mut self, sv: SubvolId, dir: u64, name: &[u8], now: Timespec) -> Result<()> {
        self.remove(sv, dir, name, false, now).map(|_| ())
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, sv: SubvolId, dir: u64, name: &[u8], now: Timespec) -> Result<()> {
        self.remove(sv, dir, name, true, now).map(|_| ())
    }

    /// `rmdir` when `is_dir`, else `unlink`, reporting what `getattr`
    /// would now say of both inodes: the items are in hand, so the caller
    /// needs no second call to read them back.
    pub fn remove(&mut self, sv: SubvolId, dir: u64, name: &[u8], is_dir: bool, now: Timespec) -> Result<Removed> {
        self.enter(sv)?;
        self.change(|fs| {
            let (d, f) = fs.existing_entry_in(dir, name)?;
            if is_dir && f.ty != FileType::Dir {
                return Err(Error::NotDir);
            }
            if !is_dir && f.ty == FileType::Dir {
                return Err(Error::IsDir);
            }
            if f.subvol {
                fs.rmdir_subvolume(dir, &f, name, now)?;
                let d = fs.read_inode(dir)?;
                return Ok(Removed { dir: fs.attr_of(dir, &d), victim: None });
            }
            if is_dir && !fs.dir_is_empty(f.ino)? {
                return Err(Error::NotEmpty);
            }
            // A commit here (to get space) changes no item: `d` stays true.
            fs.reserve_delete(ENTRY_ITEMS + 2)?;
            let d = fs.remove_entry_in(dir, d, &f, name, now)?;
            let it = fs.drop_link(f.ino, is_dir, now)?;
            Ok(Removed { dir: fs.attr_of(dir, &d), victim: Some(fs.attr_of(f.ino, &it)) })
        })
    }

    /// Whether `anc` is `ino` or one of its ancestors.
    ///
    /// The parent chain comes from disk, so it may loop. Brent's cycle
    /// detection finds any loop within a small multiple of its length plus
    /// the chain before it, whatever the root item's counters claim, and
    /// each step reads one inode that must exist: the walk is bounded by
    /// the directories really in the tree.
    fn is_ancestor(&mut self, anc: u64, mut ino: u64) -> Result<bool> {
        let (mut saved, mut power, mut steps) = (ino, 1u64, 0u64);
        loop {
            if ino == anc {
                return Ok(true);
            }
            if ino == self.sv.item.root_dir {
                return Ok(false);
            }
            let it = self.read_dir_inode(ino).map_err(|e| match e {
                Error::NotFound | Error::NotDir => Error::corrupt("directory's parent is not a directory"),
                e => e,
            });
            ino = it.at_ino(ino)?.parent;
            if ino == saved {
                return Err(Error::corrupt("directory parents form a loop").at_ino(ino));
            }
            steps += 1;
            if steps == power {
                saved = ino;
                power = power.saturating_mul(2);
                steps = 0;
            }
        }
    }

    /// Renames, with `RENAME_NOREPLACE` or `RENAME_EXCHANGE`.
    #[allow(clippy::too_many_arguments)]
    pub fn rename(&mut self, sv: SubvolId, odir: u64, oname: &[u8], ndir: u64, nname: &[u8], flags: u32, now: Timespec) -> Result<()> {
        self.enter(sv)?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 || flags == RENAME_NOREPLACE | RENAME_EXCHANGE {
            return Err(Error::Invalid("unsupported rename flags"));
        }
        self.change(|fs| fs.rename_inner(odir, oname, ndir, nname, flags, now))
    }

    fn rename_inner(&mut self, odir: u64, oname: &[u8], ndir: u64, nname: &[u8], flags: u32, now: Timespec) -> Result<()> {
        if oname.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        check_name(nname)?;
        self.read_dir_inode(odir)?;
        self.read_dir_inode(ndir)?;
        let src = self.find_entry(odir, oname)?.ok_or(Error::NotFound)?;
        let dst = self.find_entry(ndir, nname)?;
        let exchange = flags & RENAME_EXCHANGE != 0;
        if exchange && dst.is_none() {
            return Err(Error::NotFound);
        }
        if flags & RENAME_NOREPLACE != 0 && dst.is_some() {
            return Err(Error::Exists);
        }
        if let Some(d) = dst {
            if d.target() == src.target() {
                return Ok(());
            }
            // A subvolume's name moves, but nothing replaces or swaps with it.
            if d.subvol || (src.subvol && exchange) {
                return Err(Error::CrossDevice);
            }
        }
        let src_dir = src.ty == FileType::Dir;
        if src_dir && !src.subvol && odir != ndir && self.is_ancestor(src.ino, ndir)? {
            return Err(Error::Invalid("cannot move a directory under itself"));
        }
        if let Some(d) = dst {
            let dst_dir = d.ty == FileType::Dir;
            if exchange {
                if dst_dir && odir != ndir && self.is_ancestor(d.ino, odir)? {
                    return Err(Error::Invalid("cannot move a directory under itself"));
                }
            } else if src_dir {
                if !dst_dir {
                    return Err(Error::NotDir);
                }
                if !self.dir_is_empty(d.ino)? {
                    return Err(Error::NotEmpty);
                }
            } else if dst_dir {
                return Err(Error::IsDir);
            }
        }
        if src_dir && odir != ndir && !exchange && dst.is_none() {
            let nd = self.read_dir_inode(ndir)?;
            if nd.nlink >= LINK_MAX {
                return Err(Error::TooManyLinks);
            }
        }
        self.reserve(4 * ENTRY_ITEMS + 4, 0)?;
        if let (true, Some(d)) = (exchange, dst) {
            self.repoint_entry(odir, &src, oname, d.target())?;
            self.repoint_entry(ndir, &d, nname, src.target())?;
            for (ino, newparent) in [(src.ino, ndir), (d.ino, odir)] {
                let mut it = self.read_inode(ino)?;
                it.ctime = now;
                if it.is_dir() {
                    it.parent = newparent;
                }
                self.write_inode(ino, &mut it)?;
            }
            if odir != ndir && src_dir != (d.ty == FileType::Dir) {
                let (gain, lose) = if src_dir { (ndir, odir) } else { (odir, ndir) };
                let mut g = self.read_inode(gain)?;
                g.nlink = g.nlink.saturating_add(1);
                self.write_inode(gain, &mut g)?;
                let mut l = self.read_inode(lose)?;
                l.nlink = l.nlink.saturating_sub(1);
                self.write_inode(lose, &mut l)?;
            }
            for dir in [odir, ndir] {
                let mut it = self.read_inode(dir)?;
                it.mtime = now;
                it.ctime = now;
                self.write_inode(dir, &mut it)?;
            }
            return Ok(());
        }
        if let Some(d) = dst {
            self.remove_entry(ndir, &d, nname, now)?;
            self.drop_link(d.ino, d.ty == FileType::Dir, now)?;
        }
        self.remove_entry(odir, &src, oname, now)?;
        let seq = self.add_entry(ndir, nname, src.target(), now)?;
        if src.subvol {
            return self.move_root_ref(SubvolId(src.ino), ndir, seq, nname);
        }
        let mut it = self.read_inode(src.ino)?;
        it.ctime = now;
        if src_dir {
            it.parent = ndir;
        }
        self.write_inode(src.ino, &mut it)
    }

    /// The VFS dropped its last reference to `ino`: free it if no name
    /// points at it any more.
    /// In a deleted subvolume nothing is freed here (its whole tree goes),
    /// nor in a read-only one (no name can go there).
    pub fn evict(&mut self, sv: SubvolId, ino: u64) -> Result<()> {
        match self.enter(sv) {
            Err(Error::NotFound) => return Ok(()),
            r => r?,
        }
        if self.sv.item.is_read_only() {
            return Ok(());
        }
        self.change(|fs| {
            // The inode item and the items after it in one walk: they sit
            // side by side, most often in one leaf.
            let (it, items, more) = fs.inode_and_items(ino)?;
            match it {
                Some(it) if it.nlink == 0 => fs.evict_items(ino, Some(it), items, more),
                _ => Ok(()),
            }
        })
    }

    /// Frees an unlinked inode: its data, xattrs, symlink parts, the inode
    /// item and its orphan item, in bounded steps.
    pub(crate) fn evict_orphan(&mut self, ino: u64) -> Result<()> {
        let it = match self.read_inode(ino) {
            Ok(it) => Some(it),
            Err(Error::NotFound) => None,
            Err(e) => return Err(e),
        };
        self.evict_orphan_item(ino, it)
    }

    /// `evict_orphan` with the inode's item in hand (`None`: it has none).
    fn evict_orphan_item(&mut self, ino: u64, it: Option<InodeItem>) -> Result<()> {
        if let Some(it) = it {
            if it.nlink != 0 {
                // Linked again (or never unlinked): only the orphan item goes.
                self.reserve_delete(1)?;
                return self.remove_orphan(ino).map(drop);
            }
        }
        let (items, more) = self.items_after_inode(ino)?;
        self.evict_items(ino, it, items, more)
    }

    /// `evict_orphan_item` of an unlinked inode (or of none), with the
    /// first of the items after its inode item in hand
    /// (`items_after_inode`).
    fn evict_items(&mut self, ino: u64, it: Option<InodeItem>, items: TryVec<InodeItemRef>, more: bool) -> Result<()> {
        if !more {
            // Few items (an empty or small file, most of all): they, the
            // inode item and the orphan item go in one step, under one
            // reservation, so no commit falls between them and no
            // committed inode item counts blocks its extents no longer
            // hold.
            self.reserve_delete(items.len() as u64 + 2)?;
            self.delete_inode_items(&items)?;
            return self.delete_inode_and_orphan(ino, it.is_some());
        }
        if let Some(it) = it {
            // Data first, from the end, keeping the item's count true at
            // every step; a file that counts no blocks has no extents for
            // it (any stray one goes with the items below).
            if it.file_type() == FileType::Regular && it.blocks != 0 {
                self.shrink_blocks(ino, 0)?;
            }
        }
        // Everything else keyed by the inode, in batches.
        loop {
            let (items, _) = self.items_after_inode(ino)?;
            if items.is_empty() {
                break;
            }
            self.reserve_delete(items.len() as u64)?;
            self.delete_inode_items(&items)?;
            self.s.apply_refs()?;
        }
        self.reserve_delete(2)?;
        self.delete_inode_and_orphan(ino, it.is_some())
    }

    /// Up to `EVICT_BATCH` of the items keyed by `ino` after its inode
    /// item, each with the blocks it holds if it is a data extent, and
    /// whether more follow.
    fn items_after_inode(&mut self, ino: u64) -> Result<(TryVec<InodeItemRef>, bool)> {
        let root = self.sv.root;
        let mut c = Cursor::new(Key::new(ino, INODE_KEY + 1, 0), Dir::Forward);
        self.items_of_inode(ino, &mut c, &root)
    }

    /// `ino`'s inode item (`None`: it has none) and `items_after_inode`,
    /// from one walk: `read_inode` then `items_after_inode` in one.
    fn inode_and_items(&mut self, ino: u64) -> Result<(Option<InodeItem>, TryVec<InodeItemRef>, bool)> {
        self.s.stats.inode_reads += 1;
        let (bounds, root) = (self.s.bounds(), self.sv.root);
        let mut c = Cursor::new(inode_key(ino), Dir::Forward);
        let it = match c.next(&mut self.s, &root)? {
            Some((k, d)) if k == inode_key(ino) => Some(InodeItem::decode_bounded(d, &bounds).at_ino(ino)?),
            // Not the inode item: the walk starts again after it.
            _ => {
                c = Cursor::new(Key::new(ino, INODE_KEY + 1, 0), Dir::Forward);
                None
            }
        };
        let (items, more) = self.items_of_inode(ino, &mut c, &root)?;
        Ok((it, items, more))
    }

    /// The rest of `items_after_inode` from cursor `c`, placed after the
    /// inode item.
    fn items_of_inode(&mut self, ino: u64, c: &mut Cursor, root: &TreeRoot) -> Result<(TryVec<InodeItemRef>, bool)> {
        let bounds = self.s.bounds();
        let mut out = TryVec::new();
        while let Some((k, d)) = c.next(&mut self.s, root)? {
            if k.objectid != ino {
                break;
            }
            if out.len() >= EVICT_BATCH {
                return Ok((out, true));
            }
            let blocks = if k.ty == EXTENT_KEY {
                let e = ExtentItem::decode_bounded(d, k.offset, &bounds).at_ino(ino)?;
                Some((e.disk_block, e.nblocks))
            } else {
                None
            };
            out.try_push((k, blocks))?;
        }
        Ok((out, false))
    }

    /// Deletes items `items_after_inode` found, freeing the data extents'
    /// blocks. Each extent's reference is dropped after its item goes: the
    /// delete may copy a leaf shared with a snapshot, and the copy takes
    /// its own reference on every extent the leaf still names, which the
    /// drop must come after (a count that touched zero first would free
    /// blocks the snapshot still has).
    fn delete_inode_items(&mut self, items: &[InodeItemRef]) -> Result<()> {
        for (k, blocks) in items.iter() {
            btree::delete(&mut self.s, &mut self.sv.root, k)?;
            if let Some((start, len)) = *blocks {
                self.s.free_data(start, len)?;
            }
        }
        Ok(())
    }

    /// The last step of freeing an inode: its inode item (if `has_item`)
    /// and its orphan item (if it has one).
    fn delete_inode_and_orphan(&mut self, ino: u64, has_item: bool) -> Result<()> {
        if has_item {
            btree::delete(&mut self.s, &mut self.sv.root, &inode_key(ino))?;
            self.sv.item.inode_count = self.sv.item.inode_count.saturating_sub(1);
        }
        self.remove_orphan(ino).map(drop)
    }
}
