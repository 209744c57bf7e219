// SPDX-License-Identifier: GPL-2.0
//! Read-only walks of one subvolume's trees (inodes, names, the block map
//! of a file), written once over any `btree::NodeSource`: the store under
//! the exclusive core lock, or its node cache shared by many readers at
//! once (`CachedNodes`) under the shared lock.
//!
//! # The shared read path
//! A lookup, a getattr, a readdir, a readlink, a getxattr, a listxattr and
//! the block map of a read change nothing in the trees, so the kernel runs them under
//! the core lock taken shared (`Filesystem::lookup_attr_cached` and the
//! other `_cached` calls, all `&self`), any number at once. They see what a
//! call under the exclusive lock sees: the running transaction's nodes are
//! dirty, and dirty nodes are always cached. What a shared walk cannot do
//! is read a node the cache lacks, move a node on the cache's LRU list,
//! read ahead, or open a subvolume; the fingers it leaves go to slots
//! readers share (`crate::shared_fingers`). Where it would read, it
//! fails with `Error::WouldBlock` and names the node (and the leaves a
//! read ahead would have read) for the caller, which reads them with no
//! lock held, inserts them under the exclusive lock
//! (`Filesystem::insert_read_nodes`, as `crate::node_io` does) and runs
//! the walk again; after a few rounds, or where a subvolume must be
//! opened, it runs the `&mut` call under the exclusive lock instead. Any
//! damage a shared walk finds goes the same way: only the exclusive call
//! stops the filesystem for it.

use crate::btree::{self, Cursor, Dir, Finger, NodeSource, Range, TreeRoot};
use crate::device::BlockDevice;
use crate::dir::Found;
use crate::error::{CorruptAt, Error, Result};
use crate::file::{ext_key, CHUNK_BLOCKS};
use crate::file_read::{BlockRun, ReadMap};
use crate::format::*;
use crate::fs::{inode_key, DirEmit, Filesystem, InodeAttr};
use crate::mem::TryVec;
use crate::node_io::{add_want, NodeWant};
use crate::store::Store;
use crate::subvol::{ObjectItems, SubvolId, Subvolume};

/// How the calls that only read were answered since mount: the text of
/// `/sys/fs/ferrofs/<dev>/read_calls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCalls {
    /// Answered on the shared read path, under the lock taken for read.
    pub shared: u64,
    /// Run under the lock taken for write after the shared path could
    /// not answer (a node not cached, a subvolume not opened, damage, no
    /// memory), or without trying it (a read that must not sleep while a
    /// writer holds the lock).
    pub locked: u64,
    /// Of the shared answers, those given while a commit wrote its nodes
    /// and superblock with the lock downgraded to read (calls a commit
    /// would once have made wait).
    pub beside_commit: u64,
}

impl ReadCalls {
    /// One `key value` line per counter.
    pub fn format(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        writeln!(out, "shared {}", self.shared)?;
        writeln!(out, "locked {}", self.locked)?;
        writeln!(out, "beside_commit {}", self.beside_commit)
    }
}

/// The store's cached nodes, for a walk that shares the store with other
/// readers: reads nothing, and changes nothing in the store but the
/// fingers readers share (see the module doc). It names the nodes it lacks in `wants`: the one a walk stopped at
/// first, then the leaves a read ahead would have read, at most
/// `MAX_WANTS`; the caller may read them without any lock and hand them to
/// `Filesystem::insert_read_nodes` (see `crate::node_io`).
pub struct CachedNodes<'a, D: BlockDevice> {
    s: &'a Store<D>,
    wants: &'a mut TryVec<NodeWant>,
}

impl<D: BlockDevice> NodeSource for CachedNodes<'_, D> {
    fn node(&mut self, blk: u64, gen: u64, level: u8) -> Result<&[u8]> {
        // The store's borrow, not this view's: the node outlives `self`.
        let s = self.s;
        if let Some(b) = s.cached_node(blk, gen, level)? {
            return Ok(b);
        }
        if !s.bounds().blocks_inside(blk, 1) {
            return Err(Error::corrupt("block outside the filesystem").at_block(blk));
        }
        add_want(self.wants, NodeWant { blk, gen, level }, true);
        Err(Error::WouldBlock)
    }

    fn finger(&mut self, root: &TreeRoot, key: &Key) -> Option<Finger> {
        self.s.fingers.peek(root, key)
    }

    /// Into the slots readers share (`crate::shared_fingers`).
    fn note(&mut self, root: u64, blk: u64, gen: u64, range: Range) {
        self.s.fingers.note_shared(root, blk, gen, range);
    }

    /// Names the leaves when the first is not cached, as the store's read
    /// ahead would read them.
    fn read_ahead(&mut self, ahead: &[(u64, u64)]) {
        if ahead.first().map_or(true, |&(first, _)| self.s.is_cached(first)) {
            return;
        }
        for &(blk, gen) in ahead {
            if !self.s.is_cached(blk) && self.s.bounds().blocks_inside(blk, 1) {
                add_want(self.wants, NodeWant { blk, gen, level: 0 }, false);
            }
        }
    }

    fn is_cached(&self, blk: u64) -> bool {
        self.s.is_cached(blk)
    }

    fn mod_seq(&self) -> u64 {
        self.s.mod_seq()
    }
}

/// One subvolume's trees, read through node source `S`.
pub(crate) struct SvRead<'a, S: NodeSource + ?Sized> {
    pub(crate) s: &'a mut S,
    pub(crate) sv: &'a Subvolume,
    pub(crate) bounds: Bounds,
    pub(crate) root_tree: TreeRoot,
}

/// The attributes the VFS sees of inode `ino`, whose item is `it`, in a
/// filesystem of `bounds`.
pub(crate) fn attr_of(bounds: &Bounds, ino: u64, it: &InodeItem) -> InodeAttr {
    InodeAttr {
        ino,
        mode: it.mode,
        uid: it.uid,
        gid: it.gid,
        size: it.size,
        nlink: it.nlink,
        blocks: it.blocks.saturating_mul(bounds.block_size as u64 / 512),
        atime: it.atime,
        mtime: it.mtime,
        ctime: it.ctime,
        btime: it.btime,
        rdev: it.rdev,
        generation: it.generation,
        flags: it.flags,
    }
}

impl<S: NodeSource + ?Sized> SvRead<'_, S> {
    /// The inode item of `ino`; `NotFound` if there is none.
    pub(crate) fn read_inode(&mut self, ino: u64) -> Result<InodeItem> {
        let bounds = self.bounds;
        let item = btree::get_with(self.s, &self.sv.root, &inode_key(ino), |b| InodeItem::decode_bounded(b, &bounds));
        item.at_ino(ino)?.ok_or(Error::NotFound)
    }

    /// `read_inode` for calls that only read, which also see the stand-in
    /// directory of a snapshot (`EMPTY_SUBVOL_DIR_INO`): empty, no xattrs,
    /// the snapshot's creation time. Calls that change an inode use
    /// `read_inode`, for which it does not exist.
    pub(crate) fn inode_for_reading(&mut self, ino: u64) -> Result<InodeItem> {
        if ino == EMPTY_SUBVOL_DIR_INO {
            let t = self.sv.item.otime;
            return Ok(InodeItem { mode: S_IFDIR | 0o755, nlink: 2, atime: t, mtime: t, ctime: t, btime: t, ..Default::default() });
        }
        self.read_inode(ino)
    }

    /// The inode item of directory `dir`; `NotDir` if it is not one.
    pub(crate) fn read_dir_inode(&mut self, dir: u64) -> Result<InodeItem> {
        let it = self.read_inode(dir)?;
        if !it.is_dir() {
            return Err(Error::NotDir);
        }
        Ok(it)
    }

    /// The inode item of regular file `ino`.
    pub(crate) fn regular(&mut self, ino: u64) -> Result<InodeItem> {
        let it = self.read_inode(ino)?;
        match it.file_type() {
            FileType::Regular => Ok(it),
            FileType::Dir => Err(Error::IsDir),
            _ => Err(Error::Invalid("not a regular file")),
        }
    }

    /// The extent covering file block `fb`, as `(first file block, item)`.
    pub(crate) fn extent_at(&mut self, ino: u64, fb: u64) -> Result<Option<(u64, ExtentItem)>> {
        let e = self.nearest_extent(ino, fb, Dir::Backward)?;
        Ok(e.filter(|(start, e)| start.checked_add(e.nblocks).is_some_and(|end| end > fb)))
    }

    /// The first extent starting at or after file block `fb`.
    pub(crate) fn extent_from(&mut self, ino: u64, fb: u64) -> Result<Option<(u64, ExtentItem)>> {
        self.nearest_extent(ino, fb, Dir::Forward)
    }

    /// The nearest extent item of `ino` from file block `fb` in direction
    /// `dir`, decoded in place in its leaf (every read's block map takes
    /// one or two, so no copy and no allocation).
    fn nearest_extent(&mut self, ino: u64, fb: u64, dir: Dir) -> Result<Option<(u64, ExtentItem)>> {
        let mut c = Cursor::new(ext_key(ino, fb), dir);
        match c.next(self.s, &self.sv.root)? {
            Some((k, d)) if k.objectid == ino && k.ty == EXTENT_KEY => {
                Ok(Some((k.offset, ExtentItem::decode_bounded(d, k.offset, &self.bounds).at_ino(ino)?)))
            }
            _ => Ok(None),
        }
    }

    /// The entry `name` of `dir`, or else the hash key offset a new entry
    /// of that name takes (what a free-slot search would find): one pass
    /// over the run of its hash serves both, so a create looks the name up
    /// once.
    pub(crate) fn entry_or_free_slot(&mut self, dir: u64, name: &[u8]) -> Result<core::result::Result<Found, u64>> {
        let h = (crate::format::name_hash(name) as u64) << 32;
        let mut items = ObjectItems::new(dir, DIR_HASH_KEY, h);
        // The collision indexes seen so far are 0..next, until the first gap.
        let (mut next, mut gap) = (0u64, None);
        while let Some((off, d)) = items.next(self.s, self.sv)? {
            if off >> 32 != h >> 32 {
                break;
            }
            if gap.is_none() {
                if off & 0xffff_ffff == next {
                    next += 1;
                } else {
                    gap = Some(next);
                }
            }
            let e = DirEntry::decode(d)?;
            if e.name == name {
                return Ok(Ok(Found { hash_off: off, seq: e.other, ino: e.ino, ty: e.ty, subvol: e.subvol }));
            }
        }
        let idx = gap.unwrap_or(next);
        if idx > 0xffff_ffff {
            return Err(Error::NoSpace);
        }
        Ok(Err(h | idx))
    }

    /// Whether this subvolume names subvolume `child` (a `ROOT_REF` item).
    pub(crate) fn names_subvolume(&mut self, child: SubvolId) -> Result<bool> {
        let rt = self.root_tree;
        Ok(btree::get_len(self.s, &rt, &Key::new(self.sv.id.0, ROOT_REF_KEY, child.0))?.is_some())
    }

    /// The inode `name` in `dir` points at, and which subvolume it is in:
    /// a name that is a subvolume gives that subvolume's root directory.
    pub(crate) fn lookup_at(&mut self, dir: u64, name: &[u8]) -> Result<(SubvolId, u64)> {
        let sv = self.sv.id;
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        if dir == EMPTY_SUBVOL_DIR_INO {
            return Err(Error::NotFound);
        }
        self.read_dir_inode(dir)?;
        match self.entry_or_free_slot(dir, name)?.ok() {
            Some(e) if e.subvol && self.names_subvolume(SubvolId(e.ino))? => Ok((SubvolId(e.ino), ROOT_DIR_INO)),
            Some(e) if e.subvol => Ok((sv, EMPTY_SUBVOL_DIR_INO)),
            Some(e) => Ok((sv, e.ino)),
            None => Err(Error::NotFound),
        }
    }

    /// `lookup_at`, with the attributes of the inode found when it is in
    /// this subvolume (see `Filesystem::lookup_attr`).
    pub(crate) fn lookup_attr(&mut self, dir: u64, name: &[u8]) -> Result<(SubvolId, u64, Option<InodeAttr>)> {
        let (found_sv, ino) = self.lookup_at(dir, name)?;
        if found_sv != self.sv.id {
            return Ok((found_sv, ino, None));
        }
        let it = self.inode_for_reading(ino)?;
        Ok((found_sv, ino, Some(attr_of(&self.bounds, ino, &it))))
    }

    /// Lists directory `dir` from `cookie` on (see `Filesystem::readdir`).
    pub(crate) fn readdir(&mut self, dir: u64, cookie: u64, emit: &mut DirEmit<'_>) -> Result<()> {
        if dir == EMPTY_SUBVOL_DIR_INO {
            return Ok(());
        }
        self.read_dir_inode(dir)?;
        let mut items = ObjectItems::new(dir, DIR_SEQ_KEY, cookie.max(2));
        while let Some((seq, d)) = items.next(self.s, self.sv)? {
            let e = DirEntry::decode(d)?;
            // Readdir's inode numbers are hints (lookup gives the real one):
            // a subvolume entry reports its root directory's.
            let ino = if e.subvol { ROOT_DIR_INO } else { e.ino };
            if !emit(e.name, ino, e.ty, seq.saturating_add(1)) {
                break;
            }
        }
        Ok(())
    }

    /// The target of symlink `ino`.
    pub(crate) fn readlink(&mut self, ino: u64) -> Result<TryVec<u8>> {
        let it = self.read_inode(ino)?;
        if it.file_type() != FileType::Symlink {
            return Err(Error::Invalid("not a symlink"));
        }
        // Decoding bounded the size by SYMLINK_MAX.
        let mut out = TryVec::try_with_capacity(it.size as usize)?;
        let mut items = ObjectItems::new(ino, SYMLINK_KEY, 0);
        let mut parts = SymlinkParts::default();
        while let Some((off, d)) = items.next(self.s, self.sv)? {
            parts.accept(off, d).at_ino(ino)?;
            out.try_extend_from_slice(d)?;
        }
        parts.finish(it.size).at_ino(ino)?;
        Ok(out)
    }

    /// The key offset of `ino`'s xattr `name`, or else the offset a new
    /// attribute of that name takes.
    pub(crate) fn find_xattr(&mut self, ino: u64, name: &[u8]) -> Result<core::result::Result<u64, u64>> {
        let h = (name_hash(name) as u64) << 32;
        let mut items = ObjectItems::new(ino, XATTR_KEY, h);
        let mut next_idx = 0u64;
        while let Some((off, d)) = items.next(self.s, self.sv)? {
            let k = Key::new(ino, XATTR_KEY, off);
            if k.offset >> 32 != h >> 32 {
                break;
            }
            if k.offset & 0xffff != 0 {
                continue;
            }
            let idx = (k.offset >> 16) & 0xffff;
            if XattrHead::decode(d)?.name == name {
                return Ok(Ok(k.offset));
            }
            if idx == next_idx {
                next_idx += 1;
            }
        }
        if next_idx > 0xffff {
            return Err(Error::NoSpace);
        }
        Ok(Err(h | next_idx << 16))
    }

    /// Reads `ino`'s xattr `name` (see `Filesystem::get_xattr`).
    pub(crate) fn get_xattr(&mut self, ino: u64, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        crate::xattr::check_xattr_name(name)?;
        self.inode_for_reading(ino)?;
        let Ok(base) = self.find_xattr(ino, name)? else { return Err(Error::NoData) };
        let mut items = ObjectItems::new(ino, XATTR_KEY, base);
        let mut vl = 0;
        let mut got = 0;
        let mut part = 0u64;
        while let Some((off, d)) = items.next(self.s, self.sv)? {
            let k = Key::new(ino, XATTR_KEY, off);
            if k.offset & !0xffff != base {
                break;
            }
            if k.offset & 0xffff != part {
                return Err(Error::corrupt("xattr parts out of sequence"));
            }
            let chunk = if part == 0 {
                let h = XattrHead::decode(d)?;
                vl = h.value_len;
                if buf.is_empty() {
                    return Ok(vl);
                }
                if buf.len() < vl {
                    return Err(Error::Range);
                }
                h.first
            } else {
                d
            };
            let dst = buf.get_mut(got..got + chunk.len()).ok_or(Error::corrupt("xattr value longer than recorded"))?;
            dst.copy_from_slice(chunk);
            got += chunk.len();
            part += 1;
        }
        if got != vl {
            return Err(Error::corrupt("xattr value shorter than recorded"));
        }
        Ok(vl)
    }

    /// Lists `ino`'s xattr names (see `Filesystem::list_xattr`).
    pub(crate) fn list_xattr(&mut self, ino: u64, buf: &mut [u8]) -> Result<usize> {
        self.inode_for_reading(ino)?;
        let mut items = ObjectItems::new(ino, XATTR_KEY, 0);
        let mut n = 0usize;
        while let Some((off, d)) = items.next(self.s, self.sv)? {
            if off & 0xffff != 0 {
                continue;
            }
            let name = XattrHead::decode(d)?.name;
            if !buf.is_empty() {
                let dst = buf.get_mut(n..n + name.len() + 1).ok_or(Error::Range)?;
                dst[..name.len()].copy_from_slice(name);
                dst[name.len()] = 0;
            }
            n += name.len() + 1;
        }
        Ok(n)
    }

    /// The block map of a file range (see `Filesystem::map_blocks`).
    pub(crate) fn map_blocks(&mut self, ino: u64, fb: u64, nblocks: u64, out: &mut TryVec<BlockRun>) -> Result<ReadMap> {
        let size = self.regular(ino)?.size;
        let eof_blocks = crate::store::div_ceil(size, self.bounds.block_size as u64);
        let end = fb.saturating_add(nblocks).min(eof_blocks);
        let first = out.len();
        let mut at = fb;
        while at < end {
            let run = match self.extent_at(ino, at)? {
                Some((start, e)) if e.unwritten => {
                    // Preallocated: the blocks hold whatever the device
                    // had, so they are read as a hole.
                    BlockRun { blocks: (start + e.nblocks - at).min(end - at).min(CHUNK_BLOCKS), disk: None }
                }
                Some((start, e)) => {
                    let disk = e.disk_block + (at - start);
                    let blocks = (start + e.nblocks - at).min(end - at).min(CHUNK_BLOCKS);
                    if !self.bounds.blocks_inside(disk, blocks) {
                        return Err(Error::corrupt("block outside the filesystem").at_ino(ino));
                    }
                    BlockRun { blocks, disk: Some(disk) }
                }
                None => {
                    let next = match self.extent_from(ino, at)? {
                        Some((start, _)) => start,
                        None => u64::MAX,
                    };
                    // The point search found no extent at `at`, so the
                    // next one must start past it; if the forward search
                    // says otherwise the tree's keys contradict each other
                    // (a damaged image), and looping would never end.
                    if next <= at {
                        return Err(Error::corrupt("extent index is inconsistent"));
                    }
                    BlockRun { blocks: next.min(end) - at, disk: None }
                }
            };
            out.try_push(run)?;
            at += run.blocks;
        }
        Ok(ReadMap { size, runs: out.len() - first })
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// The open subvolume's trees through the store (reading what the
    /// cache lacks).
    pub(crate) fn sv_read(&mut self) -> SvRead<'_, Store<D>> {
        let (bounds, root_tree) = (self.s.bounds(), self.s.root_tree);
        SvRead { s: &mut self.s, sv: &self.sv, bounds, root_tree }
    }

    /// Runs `f` on subvolume `sv`'s trees through the cached nodes alone,
    /// naming the nodes it lacks in `wants` (cleared first, see
    /// `CachedNodes`); `WouldBlock` with no wants if `sv` was not opened
    /// since mount.
    fn cached<T>(
        &self,
        wants: &mut TryVec<NodeWant>,
        sv: SubvolId,
        f: impl FnOnce(&mut SvRead<'_, CachedNodes<'_, D>>) -> Result<T>,
    ) -> Result<T> {
        wants.clear();
        let subvol = self.open_subvol(sv).ok_or(Error::WouldBlock)?;
        let mut nodes = CachedNodes { s: &self.s, wants };
        f(&mut SvRead { s: &mut nodes, sv: subvol, bounds: self.s.bounds(), root_tree: self.s.root_tree })
    }

    /// `lookup_attr` on the shared read path (see the module doc).
    /// `WouldBlock` means: read the nodes `wants` names (if any, see
    /// `CachedNodes`), insert them, and call again, or call `lookup_attr`;
    /// any damage found means "call `lookup_attr`", which reports it.
    /// Whatever `wants` holds after an answer other than `WouldBlock` is a
    /// hint (read ahead).
    pub fn lookup_attr_cached(
        &self,
        wants: &mut TryVec<NodeWant>,
        sv: SubvolId,
        dir: u64,
        name: &[u8],
    ) -> Result<(SubvolId, u64, Option<InodeAttr>)> {
        self.cached(wants, sv, |r| r.lookup_attr(dir, name))
    }

    /// `getattr` on the shared read path, as `lookup_attr_cached`.
    pub fn getattr_cached(&self, wants: &mut TryVec<NodeWant>, sv: SubvolId, ino: u64) -> Result<InodeAttr> {
        self.cached(wants, sv, |r| {
            let it = r.inode_for_reading(ino)?;
            Ok(attr_of(&r.bounds, ino, &it))
        })
    }

    /// `readdir` on the shared read path, as `lookup_attr_cached`; `emit`
    /// may have been called for some entries before a `WouldBlock`.
    pub fn readdir_cached(&self, wants: &mut TryVec<NodeWant>, sv: SubvolId, dir: u64, cookie: u64, emit: &mut DirEmit<'_>) -> Result<()> {
        self.cached(wants, sv, |r| r.readdir(dir, cookie, emit))
    }

    /// `readlink` on the shared read path, as `lookup_attr_cached`.
    pub fn readlink_cached(&self, wants: &mut TryVec<NodeWant>, sv: SubvolId, ino: u64) -> Result<TryVec<u8>> {
        self.cached(wants, sv, |r| r.readlink(ino))
    }

    /// `get_xattr` on the shared read path, as `lookup_attr_cached`.
    pub fn get_xattr_cached(&self, wants: &mut TryVec<NodeWant>, sv: SubvolId, ino: u64, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.cached(wants, sv, |r| r.get_xattr(ino, name, buf))
    }

    /// `list_xattr` on the shared read path, as `lookup_attr_cached`.
    pub fn list_xattr_cached(&self, wants: &mut TryVec<NodeWant>, sv: SubvolId, ino: u64, buf: &mut [u8]) -> Result<usize> {
        self.cached(wants, sv, |r| r.list_xattr(ino, buf))
    }

    /// `map_blocks` on the shared read path, as `lookup_attr_cached`.
    pub fn map_blocks_cached(
        &self,
        wants: &mut TryVec<NodeWant>,
        sv: SubvolId,
        ino: u64,
        fb: u64,
        nblocks: u64,
        out: &mut TryVec<BlockRun>,
    ) -> Result<ReadMap> {
        self.cached(wants, sv, |r| r.map_blocks(ino, fb, nblocks, out))
    }
}
