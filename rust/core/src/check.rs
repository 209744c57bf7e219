// SPDX-License-Identifier: GPL-2.0
//! fsck: checks every invariant of a mounted filesystem and reports each
//! violation naming the block, tree or inode; optionally repairs the kinds
//! that are safe to repair (leaked blocks, link counts, subvolume counters).
//!
//! Checked: node checksums, identity and structure; key order and the key
//! range each parent gives; parent/child level and generation; owners;
//! every item's encoding; reference counts against every reachable node and
//! data block (missing, leaked, wrong or doubly used blocks); superblock
//! usage count; inode link counts against directory entries; both directory
//! indexes against each other and the name hashes; directory parents and
//! sizes; extents (order, overlap, below the largest file size, block
//! count; blocks past the end of file are preallocation, not damage);
//! symlink and xattr parts; the orphan list; the subvolume's inode counters;
//! back-references (every entry has its `INODE_REF` and every `INODE_REF`
//! its entry); subvolume entries against `ROOT_REF` / `ROOT_BACKREF`; the
//! list of subvolumes being deleted against their root items.
//!
//! Sharing: a node or data extent several trees share is referenced once
//! by each parent node or root item pointing at it, so the walk counts
//! each node's own references (its children, its leaf's extents) only the
//! first time it meets the node, whichever tree it comes through, and
//! each tree's items are still checked in full. A node may be owned by
//! another fs tree when it is old enough to be shared (written no later
//! than the tree's last snapshot). A tree being dropped is walked only
//! from its drop progress on: everything left of it is already freed.

use crate::alloc_tree::decode_record;
use crate::btree::TreeRoot;
use crate::device::BlockDevice;
use crate::error::Result;
use crate::format::*;
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::node;
use crate::space::RefRecord;
use crate::walk::Visit;

/// Which invariant a problem breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A node is unreadable, fails its checksum or its structure.
    BadNode,
    /// A node's owner is not the tree it is in.
    Owner,
    /// An item does not decode.
    BadItem,
    /// A block is referenced but has no refcount record.
    Unrecorded,
    /// A block has a refcount record but nothing references it.
    Leaked,
    /// A block's recorded refcount differs from its references.
    RefCount,
    /// A block is referenced more often than its count allows (double use).
    DoubleUse,
    /// The superblock's usage count is wrong.
    Usage,
    /// An inode's link count differs from its names.
    Nlink,
    /// The two directory indexes disagree.
    DirIndex,
    /// A directory entry is malformed or points at a missing or different inode.
    DirEntry,
    /// A directory's parent or size field is wrong.
    DirField,
    /// Extents overlap, exceed the largest file, or disagree with the block count.
    Extent,
    /// Symlink parts are missing or disagree with the size.
    Symlink,
    /// Xattr parts are missing or malformed.
    Xattr,
    /// The orphan list and the unlinked inodes disagree.
    Orphan,
    /// A subvolume counter (last inode, inode count) is wrong.
    Counter,
    /// A required item (root item, root directory) is missing.
    Missing,
    /// A directory entry and its back-reference (`INODE_REF`, or the root
    /// refs of a subvolume) disagree.
    BackRef,
    /// A subvolume's root item, its refs, or the deletion list disagree.
    Subvolume,
}

/// One violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    /// What kind.
    pub kind: Kind,
    /// Tree id (0 when not about a tree).
    pub tree: u64,
    /// Block number (0 when not about a block).
    pub block: u64,
    /// Inode number (0 when not about an inode).
    pub ino: u64,
    /// What exactly.
    pub what: &'static str,
    /// Two numbers that say more (expected and found, a block count, ...).
    pub values: (u64, u64),
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.what)?;
        if self.tree != 0 {
            write!(f, " tree {}", self.tree)?;
        }
        if self.block != 0 {
            write!(f, " block {}", self.block)?;
        }
        if self.ino != 0 {
            write!(f, " inode {}", self.ino)?;
        }
        write!(f, " ({}, {})", self.values.0, self.values.1)
    }
}

/// What `check` found and did.
#[derive(Default)]
pub struct Report {
    /// Every violation found.
    pub problems: TryVec<Problem>,
    /// Nodes visited.
    pub nodes: u64,
    /// Items visited.
    pub items: u64,
    /// Inodes seen.
    pub inodes: u64,
    /// Repairs made.
    pub repaired: u64,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn add(&mut self, kind: Kind, tree: u64, block: u64, ino: u64, what: &'static str, values: (u64, u64)) -> Result<()> {
        // A badly broken image must not exhaust memory with reports.
        if self.problems.len() < 10_000 {
            self.problems.try_push(Problem { kind, tree, block, ino, what, values })?;
        }
        Ok(())
    }
}

/// Called for every leaf item during a check.
type ItemVisitor<'a> = dyn FnMut(&mut Report, &Key, &[u8]) -> Result<()> + 'a;

/// A name pointing at an inode (or at a subvolume, `subvol`).
#[derive(Clone, Copy)]
struct Link {
    target: u64,
    from: u64,
    ty: FileType,
    seq: u64,
    name_crc: u32,
    subvol: bool,
}

/// A back-reference: `(inode or child subvolume, directory, seq, name crc)`.
type BackRef = (u64, u64, u64, u32);

/// An inode as the checks need it.
#[derive(Clone, Copy)]
struct Ino {
    ino: u64,
    nlink: u32,
    ty: FileType,
    parent: u64,
}

/// Per-inode state while its items stream past.
#[derive(Default)]
struct Cur {
    ino: u64,
    item: Option<InodeItem>,
    ext_end: u64,
    ext_blocks: u64,
    sym: SymlinkParts,
    xattr_base: Option<u64>,
    xattr_part: u64,
    xattr_left: u64,
    hash: TryVec<(u64, u64, u64, u8, u32)>,
    seq_seen: u64,
    subdirs: u32,
    name_bytes: u64,
    max_seq: u64,
}

struct FsCheck {
    tree: u64,
    cur: Cur,
    inodes: TryVec<Ino>,
    links: TryVec<Link>,
    backrefs: TryVec<BackRef>,
    orphans: TryVec<u64>,
    max_ino: u64,
    bs: u64,
    /// The superblock has `INCOMPAT_UNWRITTEN`: extents may be unwritten.
    unwritten_ok: bool,
}

impl FsCheck {
    fn finish_inode(&mut self, r: &mut Report) -> Result<()> {
        let c = core::mem::take(&mut self.cur);
        if c.ino == 0 || c.ino == ORPHAN_OBJECTID {
            return Ok(());
        }
        let tree = self.tree;
        let Some(it) = c.item else {
            return r.add(Kind::Missing, tree, 0, c.ino, "items of an inode that does not exist", (0, 0));
        };
        r.inodes += 1;
        self.max_ino = self.max_ino.max(c.ino);
        self.inodes.try_push(Ino { ino: c.ino, nlink: it.nlink, ty: it.file_type(), parent: it.parent })?;
        let ty = it.file_type();
        if ty == FileType::Regular {
            if c.ext_blocks != it.blocks {
                r.add(Kind::Extent, tree, 0, c.ino, "block count differs from the extents", (it.blocks, c.ext_blocks))?;
            }
            // Extents past the size are allowed: `fallocate` with
            // `keep_size` makes them (and fills them with zeros).
            if c.ext_end > crate::store::div_ceil(MAX_FILE_SIZE, self.bs) {
                r.add(Kind::Extent, tree, 0, c.ino, "extent beyond the largest file size", (it.size, c.ext_end))?;
            }
        } else if c.ext_blocks != 0 || it.blocks != 0 {
            r.add(Kind::Extent, tree, 0, c.ino, "extents on an inode that is not a regular file", (it.blocks, c.ext_blocks))?;
        }
        if ty == FileType::Symlink {
            if c.sym.finish(it.size).is_err() || c.sym.is_empty() {
                r.add(Kind::Symlink, tree, 0, c.ino, "symlink target length differs from the size", (it.size, c.sym.len()))?;
            }
        } else if !c.sym.is_empty() {
            r.add(Kind::Symlink, tree, 0, c.ino, "symlink parts on an inode that is not a symlink", (0, c.sym.len()))?;
        }
        if c.xattr_base.is_some() && c.xattr_left != 0 {
            r.add(Kind::Xattr, tree, 0, c.ino, "xattr value shorter than recorded", (0, c.xattr_left))?;
        }
        if ty == FileType::Dir {
            if c.seq_seen != c.hash.len() as u64 {
                r.add(Kind::DirIndex, tree, 0, c.ino, "hash and sequence indexes differ in size", (c.hash.len() as u64, c.seq_seen))?;
            }
            if it.nlink != 2 + c.subdirs && it.nlink != 0 {
                r.add(
                    Kind::Nlink,
                    tree,
                    0,
                    c.ino,
                    "directory link count differs from 2 + subdirectories",
                    (2 + c.subdirs as u64, it.nlink as u64),
                )?;
            }
            if it.size != c.name_bytes {
                r.add(Kind::DirField, tree, 0, c.ino, "directory size differs from its names", (c.name_bytes, it.size))?;
            }
            if c.max_seq >= it.next_seq.max(2) && c.seq_seen > 0 {
                r.add(Kind::DirIndex, tree, 0, c.ino, "entry sequence not below the directory's next sequence", (c.max_seq, it.next_seq))?;
            }
        } else if !c.hash.is_empty() || c.seq_seen != 0 {
            r.add(Kind::DirEntry, tree, 0, c.ino, "directory entries under a non-directory", (0, 0))?;
        }
        Ok(())
    }

    fn item(&mut self, r: &mut Report, k: &Key, d: &[u8]) -> Result<()> {
        if k.objectid != self.cur.ino {
            self.finish_inode(r)?;
            self.cur.ino = k.objectid;
        }
        let tree = self.tree;
        let ino = k.objectid;
        match k.ty {
            ORPHAN_KEY if ino == ORPHAN_OBJECTID => self.orphans.try_push(k.offset)?,
            INODE_KEY if k.offset == 0 => match InodeItem::decode(d) {
                Ok(it) => self.cur.item = Some(it),
                Err(_) => r.add(Kind::BadItem, tree, 0, ino, "inode item does not decode", (0, 0))?,
            },
            INODE_REF_KEY => match NameRef::decode(d) {
                Ok(n) => {
                    if NameRef::hash(n.dir, n.name) >> 32 != k.offset >> 32 {
                        r.add(Kind::BackRef, tree, 0, ino, "back-reference under the wrong hash", (n.dir, k.offset))?;
                    }
                    self.backrefs.try_push((ino, n.dir, n.seq, crate::crc32c::checksum(n.name)))?;
                }
                Err(_) => r.add(Kind::BadItem, tree, 0, ino, "back-reference does not decode", (k.offset, 0))?,
            },
            EXTENT_KEY => match ExtentItem::decode(d) {
                Ok(e) => {
                    if k.offset < self.cur.ext_end {
                        r.add(Kind::Extent, tree, 0, ino, "extents overlap", (self.cur.ext_end, k.offset))?;
                    }
                    if e.unwritten && !self.unwritten_ok {
                        r.add(Kind::Extent, tree, 0, ino, "unwritten extent without the unwritten feature", (k.offset, 0))?;
                    }
                    self.cur.ext_end = k.offset.saturating_add(e.nblocks);
                    self.cur.ext_blocks = self.cur.ext_blocks.saturating_add(e.nblocks);
                }
                Err(_) => r.add(Kind::BadItem, tree, 0, ino, "extent item does not decode", (k.offset, 0))?,
            },
            SYMLINK_KEY => {
                let expected = self.cur.sym.len();
                if let Err(e) = self.cur.sym.accept(k.offset, d) {
                    r.add(Kind::Symlink, tree, 0, ino, e.reason(), (expected, k.offset))?;
                }
            }
            XATTR_KEY => self.xattr(r, k, d)?,
            DIR_HASH_KEY => match DirEntry::decode(d) {
                Ok(e) => {
                    if (name_hash(e.name) as u64) != k.offset >> 32 {
                        r.add(Kind::DirIndex, tree, 0, ino, "entry under the wrong name hash", (k.offset, 0))?;
                    }
                    self.cur.hash.try_push((e.other, k.offset, e.ino, e.ty.dt(), crate::crc32c::checksum(e.name)))?;
                }
                Err(_) => r.add(Kind::BadItem, tree, 0, ino, "directory hash entry does not decode", (k.offset, 0))?,
            },
            DIR_SEQ_KEY => match DirEntry::decode(d) {
                Ok(e) => self.seq_entry(r, k, &e)?,
                Err(_) => r.add(Kind::BadItem, tree, 0, ino, "directory sequence entry does not decode", (k.offset, 0))?,
            },
            _ => r.add(Kind::BadItem, tree, 0, ino, "unknown item type in an fs tree", (k.ty as u64, k.offset))?,
        }
        Ok(())
    }

    fn seq_entry(&mut self, r: &mut Report, k: &Key, e: &DirEntry<'_>) -> Result<()> {
        let tree = self.tree;
        let dir = k.objectid;
        if self.cur.seq_seen == 0 {
            self.cur.hash.sort_unstable_by_key(|h| h.0);
        }
        self.cur.seq_seen += 1;
        self.cur.max_seq = self.cur.max_seq.max(k.offset);
        self.cur.name_bytes += e.name.len() as u64;
        let ok = match self.cur.hash.binary_search_by_key(&k.offset, |h| h.0) {
            Ok(i) => {
                let h = self.cur.hash[i];
                h.1 == e.other && h.2 == e.ino && h.3 == e.ty.dt() && h.4 == crate::crc32c::checksum(e.name)
            }
            Err(_) => false,
        };
        if !ok {
            r.add(Kind::DirIndex, tree, 0, dir, "sequence entry has no matching hash entry", (k.offset, e.ino))?;
        }
        if k.offset < 2 {
            r.add(Kind::DirIndex, tree, 0, dir, "entry sequence below 2", (k.offset, e.ino))?;
        }
        if e.ty == FileType::Dir {
            self.cur.subdirs += 1;
        }
        if e.subvol {
            // Named from the root tree, not from this one.
            let name_crc = crate::crc32c::checksum(e.name);
            return self.links.try_push(Link { target: e.ino, from: dir, ty: e.ty, seq: k.offset, name_crc, subvol: true });
        }
        let name_crc = crate::crc32c::checksum(e.name);
        self.links.try_push(Link { target: e.ino, from: dir, ty: e.ty, seq: k.offset, name_crc, subvol: false })
    }

    fn xattr(&mut self, r: &mut Report, k: &Key, d: &[u8]) -> Result<()> {
        let tree = self.tree;
        let ino = k.objectid;
        let base = k.offset & !0xffff;
        let part = k.offset & 0xffff;
        if part == 0 {
            if self.cur.xattr_base.is_some() && self.cur.xattr_left != 0 {
                r.add(Kind::Xattr, tree, 0, ino, "xattr value shorter than recorded", (0, self.cur.xattr_left))?;
            }
            match XattrHead::decode(d) {
                Ok(h) => {
                    if (name_hash(h.name) as u64) != k.offset >> 32 {
                        r.add(Kind::Xattr, tree, 0, ino, "xattr under the wrong name hash", (k.offset, 0))?;
                    }
                    self.cur.xattr_base = Some(base);
                    self.cur.xattr_part = 1;
                    self.cur.xattr_left = (h.value_len - h.first.len()) as u64;
                }
                _ => {
                    self.cur.xattr_base = None;
                    r.add(Kind::BadItem, tree, 0, ino, "xattr head does not decode", (k.offset, 0))?;
                }
            }
        } else if self.cur.xattr_base != Some(base) || self.cur.xattr_part != part || d.len() as u64 > self.cur.xattr_left {
            r.add(Kind::Xattr, tree, 0, ino, "xattr part out of sequence", (k.offset, 0))?;
        } else {
            self.cur.xattr_part += 1;
            self.cur.xattr_left -= d.len() as u64;
        }
        Ok(())
    }
}

/// Turns `(start, len)` references into sorted `(start, len, count)` runs.
fn coverage(refs: &mut TryVec<(u64, u64)>) -> Result<TryVec<RefRecord>> {
    let mut ev: TryVec<(u64, i64)> = TryVec::try_with_capacity(refs.len() * 2)?;
    for &(s, l) in refs.iter() {
        ev.try_push((s, 1))?;
        ev.try_push((s.saturating_add(l), -1))?;
    }
    ev.sort_unstable();
    let mut out: TryVec<RefRecord> = TryVec::new();
    let mut count = 0i64;
    let mut i = 0;
    while i < ev.len() {
        let at = ev[i].0;
        while i < ev.len() && ev[i].0 == at {
            count += ev[i].1;
            i += 1;
        }
        let next = ev.get(i).map(|e| e.0);
        if let (Some(n), true) = (next, count > 0) {
            match out.last_mut() {
                Some(r) if r.start + r.len == at && r.count == count as u64 => r.len += n - at,
                _ => out.try_push(RefRecord { start: at, len: n - at, count: count as u64 })?,
            }
        }
    }
    Ok(out)
}

/// Compares actual references with recorded counts; returns leaked runs
/// (recorded count above actual) for repair.
fn compare_refs(r: &mut Report, actual: &[RefRecord], recorded: &[RefRecord], leaks: &mut TryVec<(u64, u64, u64)>) -> Result<()> {
    let mut cuts: TryVec<u64> = TryVec::new();
    for x in actual.iter().chain(recorded.iter()) {
        cuts.try_push(x.start)?;
        cuts.try_push(x.start + x.len)?;
    }
    cuts.sort_unstable();
    let (mut i, mut j) = (0, 0);
    for w in 0..cuts.len().saturating_sub(1) {
        let (a, b) = (cuts[w], cuts[w + 1]);
        if a == b {
            continue;
        }
        while actual.get(i).is_some_and(|x| x.start + x.len <= a) {
            i += 1;
        }
        while recorded.get(j).is_some_and(|x| x.start + x.len <= a) {
            j += 1;
        }
        let have = actual.get(i).filter(|x| x.start <= a).map_or(0, |x| x.count);
        let rec = recorded.get(j).filter(|x| x.start <= a).map_or(0, |x| x.count);
        if have == rec {
            continue;
        }
        let (kind, what) = if rec == 0 {
            (Kind::Unrecorded, "blocks in use have no refcount record")
        } else if have == 0 {
            (Kind::Leaked, "blocks recorded as used but referenced by nothing")
        } else if have > rec {
            (Kind::DoubleUse, "blocks referenced more often than their count")
        } else {
            (Kind::RefCount, "refcount higher than the references")
        };
        r.add(kind, ALLOC_TREE_ID, a, 0, what, (rec, have))?;
        if rec > have {
            leaks.try_push((a, b - a, rec - have))?;
        }
    }
    Ok(())
}

/// Blocks whose own references were already counted (see the module doc).
struct Seen(TryVec<u64>);

impl Seen {
    fn new(total_blocks: u64) -> Result<Self> {
        Ok(Seen(TryVec::try_from_elem(0u64, (total_blocks / 64 + 1) as usize)?))
    }

    /// Marks `blk`; true the first time.
    fn first(&mut self, blk: u64) -> bool {
        let (w, bit) = ((blk / 64) as usize, 1u64 << (blk % 64));
        match self.0.get_mut(w) {
            Some(x) if *x & bit == 0 => {
                *x |= bit;
                true
            }
            Some(_) => false,
            // Outside the filesystem: the walk reports it as a bad node.
            None => true,
        }
    }
}

/// What the root tree says of subvolumes, for the cross-checks.
#[derive(Default)]
struct RootTreeItems {
    roots: TryVec<(u64, RootItem)>,
    /// `(parent, child, dir, seq, name crc)` from `ROOT_REF` items.
    refs: TryVec<(u64, u64, u64, u64, u32)>,
    /// The same from `ROOT_BACKREF` items.
    backrefs: TryVec<(u64, u64, u64, u64, u32)>,
    dead: TryVec<u64>,
}

impl RootTreeItems {
    fn item(&mut self, r: &mut Report, k: &Key, d: &[u8]) -> Result<()> {
        match k.ty {
            ROOT_ITEM_KEY => match RootItem::decode(d) {
                Ok(ri) => self.roots.try_push((k.objectid, ri))?,
                Err(_) => r.add(Kind::BadItem, ROOT_TREE_ID, 0, 0, "root item does not decode", (k.objectid, 0))?,
            },
            ROOT_REF_KEY | ROOT_BACKREF_KEY => match NameRef::decode(d) {
                Ok(n) => {
                    let crc = crate::crc32c::checksum(n.name);
                    if k.ty == ROOT_REF_KEY {
                        self.refs.try_push((k.objectid, k.offset, n.dir, n.seq, crc))?;
                    } else {
                        self.backrefs.try_push((k.offset, k.objectid, n.dir, n.seq, crc))?;
                    }
                }
                Err(_) => r.add(Kind::BadItem, ROOT_TREE_ID, 0, 0, "root ref does not decode", (k.objectid, k.offset))?,
            },
            ORPHAN_KEY if k.objectid == DEAD_ROOTS_OBJECTID => self.dead.try_push(k.offset)?,
            _ => r.add(Kind::BadItem, ROOT_TREE_ID, 0, 0, "unknown item in the root tree", (k.objectid, k.ty as u64))?,
        }
        Ok(())
    }

    /// Root refs against backrefs, subvolume entries and root items; the
    /// deletion list against the deleted flags.
    fn cross_check(&mut self, r: &mut Report, subvol_links: &mut TryVec<(u64, u64, u64, u64, u32)>, fixes: &mut Fixes) -> Result<()> {
        self.refs.sort_unstable();
        self.backrefs.sort_unstable();
        subvol_links.sort_unstable();
        if self.refs[..] != self.backrefs[..] {
            r.add(
                Kind::Subvolume,
                ROOT_TREE_ID,
                0,
                0,
                "root refs and root backrefs differ",
                (self.refs.len() as u64, self.backrefs.len() as u64),
            )?;
        }
        // Every root ref has its entry; an entry without a root ref is one
        // a snapshot copied from its source, which names nothing.
        for x in self.refs.iter() {
            if subvol_links.binary_search(x).is_err() {
                r.add(Kind::BackRef, x.0, 0, x.2, "root ref has no subvolume entry", (x.1, x.3))?;
            }
        }
        self.dead.sort_unstable();
        for &(id, ri) in self.roots.iter() {
            let live = !ri.is_dead();
            let named = self.refs.iter().filter(|x| x.1 == id).count();
            if live && id != FS_TREE_ID && named != 1 {
                r.add(Kind::Subvolume, id, 0, 0, "subvolume is not named exactly once", (1, named as u64))?;
            }
            if !live && named != 0 {
                r.add(Kind::Subvolume, id, 0, 0, "deleted subvolume still has a name", (0, named as u64))?;
            }
            if ri.is_dead() != self.dead.binary_search(&id).is_ok() {
                r.add(Kind::Subvolume, id, 0, 0, "deleted flag and deletion list disagree", (ri.is_dead() as u64, 0))?;
                if ri.is_dead() {
                    fixes.dead_add.try_push(id)?;
                }
            }
            if id == FS_TREE_ID && !live {
                r.add(Kind::Subvolume, id, 0, 0, "the default subvolume is marked deleted", (0, 0))?;
            }
        }
        for &id in self.dead.iter() {
            if !self.roots.iter().any(|x| x.0 == id && x.1.is_dead()) {
                r.add(Kind::Subvolume, id, 0, 0, "deletion list names a missing or live subvolume", (0, 0))?;
                fixes.dead_remove.try_push(id)?;
            }
        }
        for x in self.refs.iter() {
            if !self.roots.iter().any(|(id, ri)| *id == x.1 && !ri.is_dead()) {
                r.add(Kind::Subvolume, x.0, 0, 0, "root ref names a missing subvolume", (x.1, 0))?;
            }
        }
        Ok(())
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Checks every invariant; with `repair`, fixes leaked blocks, link
    /// counts and counters, and commits. Commits first if there are
    /// uncommitted changes, so what is checked is what is on disk.
    pub fn check(&mut self, repair: bool) -> Result<Report> {
        if self.s.is_dirty() {
            if self.check_writable().is_ok() {
                self.commit()?;
            } else {
                // A read-only mount that replayed fast-commit records in
                // memory: root items and refcounts brought in line as a
                // commit would, without writing anything.
                self.store_pending_orphans()?;
                self.s.apply_refs()?;
                self.store_root_items()?;
                self.s.apply_refs()?;
            }
        }
        let mut r = Report::default();
        let mut refs: TryVec<(u64, u64)> = TryVec::new();
        let mut records: TryVec<RefRecord> = TryVec::new();
        let mut rti = RootTreeItems::default();
        let mut seen = Seen::new(self.s.sb.total_blocks)?;
        let bs = self.s.bs as u64;

        // Root tree and allocation tree.
        for root in [self.s.root_tree, self.s.alloc_tree] {
            let rec = &mut records;
            let rt = &mut rti;
            self.walk_tree(&root, Key::default(), &mut r, &mut refs, &mut seen, &mut |r, k, d| {
                if root.id == ALLOC_TREE_ID {
                    match decode_record(k, d) {
                        Ok(x) => {
                            if rec.last().is_some_and(|p| p.start + p.len > x.start) {
                                r.add(Kind::BadItem, ALLOC_TREE_ID, x.start, 0, "refcount records overlap", (x.start, x.len))?;
                            }
                            rec.try_push(x)?;
                        }
                        Err(_) => r.add(Kind::BadItem, ALLOC_TREE_ID, k.objectid, 0, "refcount record does not decode", (0, 0))?,
                    }
                    Ok(())
                } else {
                    rt.item(r, k, d)
                }
            })?;
        }
        if !rti.roots.iter().any(|(id, _)| *id == FS_TREE_ID) {
            r.add(Kind::Missing, ROOT_TREE_ID, 0, 0, "no root item for the default subvolume", (0, 0))?;
        }

        // Every fs tree.
        let mut nlink_fixes: TryVec<(u64, u64, u32)> = TryVec::new();
        let mut counter_fix = None;
        let mut fixes = Fixes::default();
        let mut subvol_links = TryVec::new();
        for i in 0..rti.roots.len() {
            let (id, ri) = rti.roots[i];
            let root = crate::subvol::tree_root(id, &ri);
            if ri.is_dead() {
                // Only what is left to drop, and only its references.
                self.walk_tree(&root, ri.drop_progress, &mut r, &mut refs, &mut seen, &mut |_, _, _| Ok(()))?;
                continue;
            }
            let mut fc = FsCheck {
                tree: id,
                cur: Cur::default(),
                inodes: TryVec::new(),
                links: TryVec::new(),
                backrefs: TryVec::new(),
                orphans: TryVec::new(),
                max_ino: 0,
                bs,
                unwritten_ok: self.s.bounds().unwritten,
            };
            self.walk_tree(&root, Key::default(), &mut r, &mut refs, &mut seen, &mut |r, k, d| fc.item(r, k, d))?;
            fc.finish_inode(&mut r)?;
            for l in fc.links.iter().filter(|l| l.subvol) {
                subvol_links.try_push((id, l.target, l.from, l.seq, l.name_crc))?;
            }
            self.check_links(id, &ri, &mut fc, &mut r, &mut nlink_fixes)?;
            check_backrefs(id, &mut fc, &mut r, &mut fixes.backrefs)?;
            if fc.max_ino > ri.last_ino || fc.inodes.len() as u64 != ri.inode_count {
                r.add(Kind::Counter, id, 0, 0, "subvolume inode counters are wrong", (ri.inode_count, fc.inodes.len() as u64))?;
                if id == FS_TREE_ID {
                    counter_fix = Some((fc.max_ino.max(ri.last_ino), fc.inodes.len() as u64));
                }
            }
        }
        rti.cross_check(&mut r, &mut subvol_links, &mut fixes)?;

        // The superblock's one reference to the fast-commit area.
        if self.s.sb.fast_commit_blocks > 0 {
            refs.try_push((self.s.sb.fast_commit_start, self.s.sb.fast_commit_blocks))?;
        }

        // References against the allocation tree.
        let actual = coverage(&mut refs)?;
        let mut leaks = TryVec::new();
        compare_refs(&mut r, &actual, &records, &mut leaks)?;
        let covered: u64 = records.iter().map(|x| x.len).sum();
        let used = covered + crate::superblock::first_usable_block(self.s.sb.block_size);
        if !self.s.is_dirty() && used != self.s.sb.blocks_used {
            r.add(Kind::Usage, 0, 0, 0, "superblock blocks-used count is wrong", (self.s.sb.blocks_used, used))?;
        }

        if repair && !r.is_clean() {
            self.repair(&leaks, &nlink_fixes, counter_fix, &fixes, &mut r)?;
        }
        Ok(r)
    }

    /// Walks one tree from key `from` on: checks each node, counts the
    /// references it holds the first time any tree meets it (`seen`), and
    /// hands every leaf item to `items`.
    #[allow(clippy::too_many_arguments)]
    fn walk_tree(
        &mut self,
        root: &TreeRoot,
        from: Key,
        r: &mut Report,
        refs: &mut TryVec<(u64, u64)>,
        seen: &mut Seen,
        items: &mut ItemVisitor<'_>,
    ) -> Result<()> {
        let id = root.id;
        let bounds = self.s.bounds();
        // The root item's (or superblock's) reference to the root node.
        refs.try_push((root.block, 1))?;
        let mut held = TryVec::new();
        self.s.walk_from(root, from, &mut |_, v| match v {
            Visit::Bad { block, error } => r.add(Kind::BadNode, id, block, 0, error.reason(), (0, 0)),
            Visit::Node { block, buf, .. } => {
                r.nodes += 1;
                let owner = node::owner(buf);
                let may_share = is_fs_tree(id) && is_fs_tree(owner) && node::generation(buf) <= root.last_snapshot;
                if owner != id && !may_share {
                    r.add(Kind::Owner, id, block, 0, "node owned by another tree", (id, owner))?;
                }
                if seen.first(block) {
                    match crate::store::children_of(buf, &bounds, &mut held) {
                        Ok(()) => {
                            let n = held.len();
                            for (i, &x) in held.iter().enumerate() {
                                // Children left of `from` are dropped already.
                                if node::level(buf) > 0 && i + 1 < n && node::ptr_key(buf, i + 1) <= from {
                                    continue;
                                }
                                refs.try_push(x)?;
                            }
                        }
                        // The item checks report the extent that does not decode.
                        Err(_) => held.clear(),
                    }
                }
                if node::level(buf) == 0 {
                    for i in 0..node::nritems(buf) {
                        r.items += 1;
                        items(r, &node::item_key(buf, i), node::item_data(buf, i))?;
                    }
                }
                Ok(())
            }
        })
    }

    fn check_links(&mut self, id: u64, ri: &RootItem, fc: &mut FsCheck, r: &mut Report, fixes: &mut TryVec<(u64, u64, u32)>) -> Result<()> {
        // Subvolume entries are checked against the root refs instead.
        let mut inode_links = TryVec::try_with_capacity(fc.links.len())?;
        for l in fc.links.iter().filter(|l| !l.subvol) {
            inode_links.try_push(*l)?;
        }
        fc.links = inode_links;
        fc.links.sort_unstable_by_key(|l| l.target);
        fc.orphans.sort_unstable();
        let mut li = 0;
        for ino in fc.inodes.iter() {
            while fc.links.get(li).is_some_and(|l| l.target < ino.ino) {
                let l = fc.links[li];
                r.add(Kind::DirEntry, id, 0, l.from, "entry points at a missing inode", (l.target, 0))?;
                li += 1;
            }
            let start = li;
            while fc.links.get(li).is_some_and(|l| l.target == ino.ino) {
                li += 1;
            }
            let names = &fc.links[start..li];
            for l in names {
                if l.ty != ino.ty {
                    r.add(Kind::DirEntry, id, 0, l.from, "entry type differs from the inode's", (ino.ino, l.ty.dt() as u64))?;
                }
            }
            let orphan = fc.orphans.binary_search(&ino.ino).is_ok();
            if ino.ty == FileType::Dir {
                if ino.ino == ri.root_dir {
                    if !names.is_empty() || ino.parent != ino.ino {
                        r.add(
                            Kind::DirField,
                            id,
                            0,
                            ino.ino,
                            "root directory has a name or a foreign parent",
                            (names.len() as u64, ino.parent),
                        )?;
                    }
                } else if ino.nlink == 0 {
                    if !names.is_empty() {
                        r.add(Kind::Nlink, id, 0, ino.ino, "unlinked directory still has a name", (0, names.len() as u64))?;
                    }
                } else if names.len() != 1 {
                    r.add(Kind::DirEntry, id, 0, ino.ino, "directory does not have exactly one name", (1, names.len() as u64))?;
                } else if names[0].from != ino.parent {
                    r.add(
                        Kind::DirField,
                        id,
                        0,
                        ino.ino,
                        "directory parent differs from the directory naming it",
                        (names[0].from, ino.parent),
                    )?;
                }
            } else if ino.nlink as usize != names.len() {
                r.add(Kind::Nlink, id, 0, ino.ino, "link count differs from the names", (names.len() as u64, ino.nlink as u64))?;
                fixes.try_push((id, ino.ino, names.len() as u32))?;
            }
            if (ino.nlink == 0) != orphan {
                r.add(Kind::Orphan, id, 0, ino.ino, "orphan list and link count disagree", (ino.nlink as u64, orphan as u64))?;
            }
        }
        for l in &fc.links[li..] {
            r.add(Kind::DirEntry, id, 0, l.from, "entry points at a missing inode", (l.target, 0))?;
        }
        let mut ii = 0;
        for &o in fc.orphans.iter() {
            while fc.inodes.get(ii).is_some_and(|x| x.ino < o) {
                ii += 1;
            }
            if fc.inodes.get(ii).map_or(true, |x| x.ino != o) {
                r.add(Kind::Orphan, id, 0, o, "orphan item for a missing inode", (0, 0))?;
            }
        }
        Ok(())
    }

    fn repair(
        &mut self,
        leaks: &[(u64, u64, u64)],
        nlink: &[(u64, u64, u32)],
        counters: Option<(u64, u64)>,
        fixes: &Fixes,
        r: &mut Report,
    ) -> Result<()> {
        self.check_writable()?;
        self.enter(crate::subvol::SubvolId::DEFAULT)?;
        self.change(|fs| {
            for &(tree, ino, dir, seq, add) in fixes.backrefs.iter() {
                fs.enter(crate::subvol::SubvolId(tree))?;
                if fs.sv.item.is_read_only() {
                    continue;
                }
                fs.reserve(2, 0)?;
                if fs.repair_backref(ino, dir, seq, add)? {
                    r.repaired += 1;
                }
            }
            for &id in fixes.dead_add.iter() {
                fs.reserve(2, 0)?;
                fs.repair_dead_list(id, true)?;
                r.repaired += 1;
            }
            for &id in fixes.dead_remove.iter() {
                fs.reserve(2, 0)?;
                fs.repair_dead_list(id, false)?;
                r.repaired += 1;
            }
            for &(start, len, extra) in leaks {
                for _ in 0..extra {
                    fs.s.space.queue(start, len, -1)?;
                }
                r.repaired += 1;
            }
            for &(tree, ino, n) in nlink {
                fs.enter(crate::subvol::SubvolId(tree))?;
                if fs.sv.item.is_read_only() {
                    continue;
                }
                fs.reserve(4, 0)?;
                let mut it = fs.read_inode(ino)?;
                let key = Key::new(ORPHAN_OBJECTID, ORPHAN_KEY, ino);
                if it.nlink == 0 && n > 0 {
                    let _ = crate::btree::delete(&mut fs.s, &mut fs.sv.root, &key);
                } else if n == 0 && it.nlink > 0 {
                    crate::btree::upsert(&mut fs.s, &mut fs.sv.root, &key, &[])?;
                }
                it.nlink = n;
                fs.write_inode(ino, &mut it)?;
                r.repaired += 1;
            }
            if let Some((last, count)) = counters {
                fs.enter(crate::subvol::SubvolId::DEFAULT)?;
                fs.sv.item.last_ino = last;
                fs.sv.item.inode_count = count;
                // Written now: a repair of the counters alone changes no
                // tree, and the commit would otherwise find nothing to do.
                fs.reserve(2, 0)?;
                fs.store_root_items()?;
                r.repaired += 1;
            }
            Ok(())
        })?;
        self.commit()
    }
}

/// Repairs found besides leaks, link counts and counters.
#[derive(Default)]
struct Fixes {
    /// `(tree, inode, dir, seq, add)`: a back-reference to write from its
    /// entry (`add`) or to remove.
    backrefs: TryVec<(u64, u64, u64, u64, bool)>,
    /// Deleted subvolumes missing from the deletion list.
    dead_add: TryVec<u64>,
    /// Deletion list entries naming no deleted subvolume.
    dead_remove: TryVec<u64>,
}

/// Every entry naming an inode has its back-reference and every
/// back-reference its entry.
fn check_backrefs(id: u64, fc: &mut FsCheck, r: &mut Report, fixes: &mut TryVec<(u64, u64, u64, u64, bool)>) -> Result<()> {
    let mut want: TryVec<BackRef> = TryVec::try_with_capacity(fc.links.len())?;
    for l in fc.links.iter().filter(|l| !l.subvol) {
        want.try_push((l.target, l.from, l.seq, l.name_crc))?;
    }
    want.sort_unstable();
    fc.backrefs.sort_unstable();
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < fc.backrefs.len() {
        match (want.get(i), fc.backrefs.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.map_or(true, |b| a < b) => {
                r.add(Kind::BackRef, id, 0, a.0, "directory entry has no back-reference", (a.1, a.2))?;
                fixes.try_push((id, a.0, a.1, a.2, true))?;
                i += 1;
            }
            (_, Some(b)) => {
                r.add(Kind::BackRef, id, 0, b.0, "back-reference has no directory entry", (b.1, b.2))?;
                fixes.try_push((id, b.0, b.1, b.2, false))?;
                j += 1;
            }
            _ => break,
        }
    }
    Ok(())
}
