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
//! symlink and xattr parts; the orphan list; the subvolume's inode counters.

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

/// A name pointing at an inode.
#[derive(Clone, Copy)]
struct Link {
    target: u64,
    from: u64,
    ty: FileType,
}

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
    orphans: TryVec<u64>,
    refs: TryVec<(u64, u64)>,
    max_ino: u64,
    bs: u64,
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
            EXTENT_KEY => match ExtentItem::decode(d) {
                Ok(e) => {
                    if k.offset < self.cur.ext_end {
                        r.add(Kind::Extent, tree, 0, ino, "extents overlap", (self.cur.ext_end, k.offset))?;
                    }
                    self.cur.ext_end = k.offset.saturating_add(e.nblocks);
                    self.cur.ext_blocks = self.cur.ext_blocks.saturating_add(e.nblocks);
                    self.refs.try_push((e.disk_block, e.nblocks))?;
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
        self.links.try_push(Link { target: e.ino, from: dir, ty: e.ty })
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

impl<D: BlockDevice> Filesystem<D> {
    /// Checks every invariant; with `repair`, fixes leaked blocks, link
    /// counts and counters, and commits. Commits first if there are
    /// uncommitted changes, so what is checked is what is on disk.
    pub fn check(&mut self, repair: bool) -> Result<Report> {
        if self.s.is_dirty() && self.check_writable().is_ok() {
            self.commit()?;
        }
        let mut r = Report::default();
        let mut refs: TryVec<(u64, u64)> = TryVec::new();
        let mut records: TryVec<RefRecord> = TryVec::new();
        let mut roots: TryVec<(u64, RootItem)> = TryVec::new();
        let bs = self.s.bs as u64;

        // Root tree and allocation tree.
        for root in [self.s.root_tree, self.s.alloc_tree] {
            let rec = &mut records;
            let rts = &mut roots;
            self.walk_tree(&root, &mut r, &mut refs, &mut |r, k, d| {
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
                } else if k.ty == ROOT_ITEM_KEY {
                    match RootItem::decode(d) {
                        Ok(ri) => rts.try_push((k.objectid, ri))?,
                        Err(_) => r.add(Kind::BadItem, ROOT_TREE_ID, 0, 0, "root item does not decode", (k.objectid, 0))?,
                    }
                } else {
                    r.add(Kind::BadItem, ROOT_TREE_ID, 0, 0, "unknown item in the root tree", (k.objectid, k.ty as u64))?;
                }
                Ok(())
            })?;
        }
        if !roots.iter().any(|(id, _)| *id == FS_TREE_ID) {
            r.add(Kind::Missing, ROOT_TREE_ID, 0, 0, "no root item for the default subvolume", (0, 0))?;
        }

        // Every fs tree.
        let mut nlink_fixes: TryVec<(u64, u32)> = TryVec::new();
        let mut counter_fix = None;
        for &(id, ri) in roots.iter() {
            let root = TreeRoot { id, block: ri.block, generation: ri.generation, level: ri.level };
            let mut fc = FsCheck {
                tree: id,
                cur: Cur::default(),
                inodes: TryVec::new(),
                links: TryVec::new(),
                orphans: TryVec::new(),
                refs: TryVec::new(),
                max_ino: 0,
                bs,
            };
            self.walk_tree(&root, &mut r, &mut refs, &mut |r, k, d| fc.item(r, k, d))?;
            fc.finish_inode(&mut r)?;
            refs.try_extend_from_slice(&fc.refs)?;
            self.check_links(id, &ri, &mut fc, &mut r, &mut nlink_fixes)?;
            if fc.max_ino > ri.last_ino || fc.inodes.len() as u64 != ri.inode_count {
                r.add(Kind::Counter, id, 0, 0, "subvolume inode counters are wrong", (ri.inode_count, fc.inodes.len() as u64))?;
                if id == FS_TREE_ID {
                    counter_fix = Some((fc.max_ino.max(ri.last_ino), fc.inodes.len() as u64));
                }
            }
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
            self.repair(&leaks, &nlink_fixes, counter_fix, &mut r)?;
        }
        Ok(r)
    }

    fn walk_tree(&mut self, root: &TreeRoot, r: &mut Report, refs: &mut TryVec<(u64, u64)>, items: &mut ItemVisitor<'_>) -> Result<()> {
        let id = root.id;
        self.s.walk(root, &mut |_, v| match v {
            Visit::Bad { block, error } => {
                refs.try_push((block, 1))?;
                r.add(Kind::BadNode, id, block, 0, error.reason(), (0, 0))
            }
            Visit::Node { block, buf, .. } => {
                r.nodes += 1;
                refs.try_push((block, 1))?;
                if node::owner(buf) != id {
                    r.add(Kind::Owner, id, block, 0, "node owned by another tree", (id, node::owner(buf)))?;
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

    fn check_links(&mut self, id: u64, ri: &RootItem, fc: &mut FsCheck, r: &mut Report, fixes: &mut TryVec<(u64, u32)>) -> Result<()> {
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
                fixes.try_push((ino.ino, names.len() as u32))?;
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

    fn repair(&mut self, leaks: &[(u64, u64, u64)], nlink: &[(u64, u32)], counters: Option<(u64, u64)>, r: &mut Report) -> Result<()> {
        self.check_writable()?;
        self.change(|fs| {
            for &(start, len, extra) in leaks {
                for _ in 0..extra {
                    fs.s.space.queue(start, len, -1)?;
                }
                r.repaired += 1;
            }
            for &(ino, n) in nlink {
                fs.reserve(4, 0)?;
                let mut it = fs.read_inode(ino)?;
                let key = Key::new(ORPHAN_OBJECTID, ORPHAN_KEY, ino);
                if it.nlink == 0 && n > 0 {
                    let _ = crate::btree::delete(&mut fs.s, &mut fs.fs_root, &key);
                } else if n == 0 && it.nlink > 0 {
                    crate::btree::upsert(&mut fs.s, &mut fs.fs_root, &key, &[])?;
                }
                it.nlink = n;
                fs.write_inode(ino, &mut it)?;
                r.repaired += 1;
            }
            if let Some((last, count)) = counters {
                fs.root_item.last_ino = last;
                fs.root_item.inode_count = count;
                // Written now: a repair of the counters alone changes no
                // tree, and the commit would otherwise find nothing to do.
                fs.reserve(2, 0)?;
                fs.store_root_item(false)?;
                r.repaired += 1;
            }
            Ok(())
        })?;
        self.commit()
    }
}
