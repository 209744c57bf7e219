// SPDX-License-Identifier: GPL-2.0
//! Subvolumes: the handle every filesystem operation works through, and
//! the set of subvolumes open since mount.
//!
//! Each subvolume is one fs tree with a root item in the root tree. The
//! filesystem keeps one of them active (`Filesystem::sv`); every public
//! operation names its subvolume and `enter` makes that one active before
//! anything else runs, so the namespace, file and xattr code works on "the
//! subvolume" without caring which. The others opened since mount wait in
//! `Filesystem::parked` with their uncommitted roots; commit writes back
//! every root item that changed.

use crate::btree::{self, TreeRoot};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::*;
use crate::fs::Filesystem;
use crate::store::Store;

/// Names a subvolume by its tree id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubvolId(pub u64);

impl SubvolId {
    /// The subvolume mkfs makes, tree id 5.
    pub const DEFAULT: SubvolId = SubvolId(FS_TREE_ID);
}

/// An open subvolume: its fs tree and root item as the running
/// transaction has them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subvolume {
    /// Which one.
    pub id: SubvolId,
    /// Its fs tree.
    pub root: TreeRoot,
    /// Its root item (the root pointer inside is refreshed at commit).
    pub item: RootItem,
    /// The root item as the root tree holds it.
    pub stored: RootItem,
}

/// Where the tree of root item `ri` is.
pub(crate) fn tree_root(id: u64, ri: &RootItem) -> TreeRoot {
    TreeRoot { id, block: ri.block, generation: ri.generation, level: ri.level, last_snapshot: ri.last_snapshot }
}

pub(crate) fn root_item_key(id: SubvolId) -> Key {
    Key::new(id.0, ROOT_ITEM_KEY, 0)
}

impl Subvolume {
    /// The root item with the current root pointer.
    pub(crate) fn current_item(&self) -> RootItem {
        RootItem {
            block: self.root.block,
            generation: self.root.generation,
            level: self.root.level,
            last_snapshot: self.root.last_snapshot,
            ..self.item
        }
    }

    /// Reads subvolume `id`'s root item; `None` if there is none or the
    /// subvolume is being deleted. With `tolerate_bad_counters` (fsck),
    /// inode counters out of range are taken as unknown instead of refused.
    pub(crate) fn load<D: BlockDevice>(s: &mut Store<D>, id: SubvolId, tolerate_bad_counters: bool) -> Result<Option<Self>> {
        if !(id == SubvolId::DEFAULT || (FIRST_SUBVOL_ID..=LAST_SUBVOL_ID).contains(&id.0)) {
            return Ok(None);
        }
        let rt = s.root_tree;
        let Some(ri) = btree::get(s, &rt, &root_item_key(id))? else { return Ok(None) };
        let mut item = RootItem::decode_bounded(&ri, &s.bounds())?;
        // What the root tree holds, so that a repaired counter differs
        // from it and gets written.
        let stored = item;
        if item.is_dead() {
            return Ok(None);
        }
        if let Err(e) = item.check_counters(&s.bounds()) {
            if !tolerate_bad_counters {
                return Err(e);
            }
            item.last_ino = item.last_ino.clamp(ROOT_DIR_INO, LAST_INO_LIMIT - 1);
            item.inode_count = 1;
        }
        if item.last_snapshot > s.sb.generation || item.generation > s.sb.generation {
            return Err(Error::corrupt("root item from a future generation"));
        }
        let root = tree_root(id.0, &item);
        s.node(root.block, root.generation, root.level)?;
        Ok(Some(Subvolume { id, root, item, stored }))
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Makes subvolume `id` the one operations work in. `NotFound` if it
    /// does not exist or is being deleted.
    pub(crate) fn enter(&mut self, id: SubvolId) -> Result<()> {
        if self.sv.id == id {
            return Ok(());
        }
        let next = match self.parked.iter().position(|p| p.id == id) {
            Some(i) => self.parked.remove(i),
            None => {
                self.parked.try_reserve(1)?;
                let sv = Subvolume::load(&mut self.s, id, self.opts.tolerate_bad_counters)?.ok_or(Error::NotFound)?;
                // Counted as open from here on.
                self.unopened_inodes = self.unopened_inodes.saturating_sub(sv.stored.inode_count);
                sv
            }
        };
        let prev = core::mem::replace(&mut self.sv, next);
        // Reserved above, or freed by the remove.
        self.parked.try_push(prev)
    }

    /// The open subvolume `id`, if it was opened since mount.
    pub(crate) fn open_subvol(&self, id: SubvolId) -> Option<&Subvolume> {
        core::iter::once(&self.sv).chain(self.parked.iter()).find(|p| p.id == id)
    }

    /// Inodes in all live subvolumes (for statfs): the open ones as they
    /// are now, the others as committed.
    pub(crate) fn inode_count(&self) -> u64 {
        let open = core::iter::once(&self.sv).chain(self.parked.iter());
        open.fold(self.unopened_inodes, |n, p| n.saturating_add(p.item.inode_count))
    }

    /// Sums the inode counts of the live subvolumes' root items, but for
    /// the open ones (at mount: the default subvolume). One pass over the
    /// root items, which the root tree keeps together.
    pub(crate) fn count_unopened_inodes(&mut self) -> Result<u64> {
        let rt = self.s.root_tree;
        let mut c = btree::Cursor::new(Key::default(), btree::Dir::Forward);
        let mut n = 0u64;
        while let Some((k, d)) = c.next(&mut self.s, &rt)? {
            if k.ty != ROOT_ITEM_KEY {
                continue;
            }
            let item = RootItem::decode(d)?;
            if !item.is_dead() && self.open_subvol(SubvolId(k.objectid)).is_none() {
                n = n.saturating_add(item.inode_count);
            }
        }
        Ok(n)
    }

    /// Writes back every root item the running transaction changed (at
    /// commit), marking the subvolume changed in this transaction.
    pub(crate) fn store_root_items(&mut self) -> Result<()> {
        let gen = self.s.gen;
        for i in 0..=self.parked.len() {
            let sv = if i == 0 { &mut self.sv } else { &mut self.parked[i - 1] };
            let mut cur = sv.current_item();
            if cur == sv.stored {
                continue;
            }
            if cur.block != sv.stored.block || cur.inode_count != sv.stored.inode_count {
                cur.ctransid = gen;
            }
            sv.item.ctransid = cur.ctransid;
            let (id, data) = (sv.id, cur.encode());
            sv.stored = cur;
            let mut rt = self.s.root_tree;
            btree::update(&mut self.s, &mut rt, &root_item_key(id), &data)?;
            self.s.root_tree = rt;
        }
        Ok(())
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// fsck: writes the back-reference of entry `seq` of `dir` naming
    /// `ino` (`add`), or removes `ino`'s back-reference to that entry.
    /// Returns whether anything changed.
    pub(crate) fn repair_backref(&mut self, ino: u64, dir: u64, seq: u64, add: bool) -> Result<bool> {
        if add {
            let mut buf = crate::mem::TryVec::new();
            if !btree::get_into(&mut self.s, &self.sv.root, &Key::new(dir, DIR_SEQ_KEY, seq), &mut buf)? {
                return Ok(false);
            }
            let e = DirEntry::decode(&buf)?;
            let mut name = crate::mem::TryVec::new();
            name.try_extend_from_slice(e.name)?;
            self.add_inode_ref(ino, dir, seq, &name)?;
            return Ok(true);
        }
        let mut found = None;
        let mut items = ObjectItems::new(ino, INODE_REF_KEY, 0);
        while let Some((off, d)) = items.next(&mut self.s, &self.sv)? {
            if NameRef::decode(d).is_ok_and(|n| n.dir == dir && n.seq == seq) {
                found = Some(off);
                break;
            }
        }
        let Some(off) = found else { return Ok(false) };
        btree::delete(&mut self.s, &mut self.sv.root, &Key::new(ino, INODE_REF_KEY, off))?;
        Ok(true)
    }

    /// fsck: adds deleted subvolume `id` to the deletion list, or removes
    /// a list entry that names no deleted subvolume.
    pub(crate) fn repair_dead_list(&mut self, id: u64, add: bool) -> Result<()> {
        if add {
            self.root_tree_insert(&dead_key(id), &[])
        } else {
            self.root_tree_delete(&dead_key(id))
        }
    }
}

/// What `subvolume_info` and `list_subvolumes` report of one subvolume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubvolInfo {
    /// Its id.
    pub id: SubvolId,
    /// The subvolume whose directory names it (0 for the default one).
    pub parent: u64,
    /// The directory in `parent` that names it.
    pub dir: u64,
    /// Its root item (flags, UUIDs, generations, times).
    pub item: RootItem,
    /// The name in `dir`: `name[..name_len]`.
    pub name: [u8; NAME_MAX],
    /// Length of the name.
    pub name_len: usize,
}

impl SubvolInfo {
    /// The subvolume's name in its parent directory (empty for the default).
    pub fn name(&self) -> &[u8] {
        &self.name[..self.name_len]
    }
}

/// Tree changes creating a subvolume makes besides its entry: root item,
/// root ref, root backref, the new tree's root and root directory.
const SUBVOL_ITEMS: u64 = 5;
/// Nodes one drop step frees at most before it commits.
pub const DROP_STEP_NODES: u64 = 256;

fn dead_key(id: u64) -> Key {
    Key::new(DEAD_ROOTS_OBJECTID, ORPHAN_KEY, id)
}

impl<D: BlockDevice> Filesystem<D> {
    fn root_tree_insert(&mut self, key: &Key, data: &[u8]) -> Result<()> {
        let mut rt = self.s.root_tree;
        let r = btree::insert(&mut self.s, &mut rt, key, data);
        self.s.root_tree = rt;
        r
    }

    fn root_tree_delete(&mut self, key: &Key) -> Result<()> {
        let mut rt = self.s.root_tree;
        let r = btree::delete(&mut self.s, &mut rt, key);
        self.s.root_tree = rt;
        r
    }

    /// The next free subvolume id: one above the highest tree id the root
    /// tree names.
    fn next_subvol_id(&mut self) -> Result<SubvolId> {
        let rt = self.s.root_tree;
        let mut c = btree::Cursor::new(Key::new(LAST_SUBVOL_ID, u8::MAX, u64::MAX), btree::Dir::Backward);
        let id = match c.next(&mut self.s, &rt)? {
            Some((k, _)) if k.objectid >= FIRST_SUBVOL_ID => k.objectid.checked_add(1).ok_or(Error::NoSpace)?,
            _ => FIRST_SUBVOL_ID,
        };
        if id > LAST_SUBVOL_ID {
            return Err(Error::NoSpace);
        }
        Ok(SubvolId(id))
    }

    /// Whether the active subvolume holds the name of subvolume `child`
    /// (its `ROOT_REF`). A subvolume entry without one was copied into a
    /// snapshot from its source: it names nothing there.
    pub(crate) fn names_subvolume(&mut self, child: SubvolId) -> Result<bool> {
        self.sv_read().names_subvolume(child)
    }

    /// Names subvolume `child` in directory `dir` of the active subvolume:
    /// the entry, then `ROOT_REF` and `ROOT_BACKREF` with its sequence number.
    fn link_subvolume(&mut self, child: SubvolId, dir: u64, name: &[u8], now: Timespec) -> Result<()> {
        let seq = self.add_entry(dir, name, crate::dir::Target { ino: child.0, ty: FileType::Dir, subvol: true }, now)?;
        let buf = NameRef { dir, seq, name }.encode()?;
        let parent = self.sv.id.0;
        self.root_tree_insert(&Key::new(parent, ROOT_REF_KEY, child.0), &buf)?;
        self.root_tree_insert(&Key::new(child.0, ROOT_BACKREF_KEY, parent), &buf)
    }

    /// A subvolume entry was renamed within the active subvolume: its root
    /// ref and backref follow.
    pub(crate) fn move_root_ref(&mut self, child: SubvolId, dir: u64, seq: u64, name: &[u8]) -> Result<()> {
        let buf = NameRef { dir, seq, name }.encode()?;
        let parent = self.sv.id.0;
        let mut rt = self.s.root_tree;
        btree::update(&mut self.s, &mut rt, &Key::new(parent, ROOT_REF_KEY, child.0), &buf)?;
        btree::update(&mut self.s, &mut rt, &Key::new(child.0, ROOT_BACKREF_KEY, parent), &buf)?;
        self.s.root_tree = rt;
        Ok(())
    }

    /// Checks that `name` can be added to directory `dir` of the active
    /// subvolume.
    fn check_new_name(&mut self, dir: u64, name: &[u8]) -> Result<()> {
        crate::fs::check_name(name)?;
        let d = self.read_dir_inode(dir)?;
        if d.nlink >= crate::fs::LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        if self.find_entry(dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        Ok(())
    }

    /// Creates an empty subvolume named `name` in directory `dir` of
    /// subvolume `sv`, with UUID `uuid` (the caller's random bytes) and a
    /// root directory of mode `0o755`, owned by `uid:gid`.
    #[allow(clippy::too_many_arguments)]
    pub fn create_subvolume(
        &mut self,
        sv: SubvolId,
        dir: u64,
        name: &[u8],
        uuid: [u8; 16],
        uid: u32,
        gid: u32,
        now: Timespec,
    ) -> Result<SubvolId> {
        self.enter(sv)?;
        self.change(|fs| {
            let (id, gen) = fs.begin_subvolume(dir, name)?;
            let blk = fs.s.new_node(id.0, 0)?;
            let mut root = TreeRoot { id: id.0, block: blk, generation: gen, level: 0, last_snapshot: 0 };
            let ino = InodeItem {
                mode: S_IFDIR | 0o755,
                uid,
                gid,
                nlink: 2,
                generation: gen,
                transid: gen,
                atime: now,
                mtime: now,
                ctime: now,
                btime: now,
                parent: ROOT_DIR_INO,
                next_seq: 2,
                ..Default::default()
            };
            btree::insert(&mut fs.s, &mut root, &crate::fs::inode_key(ROOT_DIR_INO), &ino.encode())?;
            let item = RootItem {
                last_ino: ROOT_DIR_INO,
                inode_count: 1,
                root_dir: ROOT_DIR_INO,
                uuid,
                ctransid: gen,
                otransid: gen,
                ctime: now,
                otime: now,
                ..Default::default()
            };
            fs.add_subvolume(Subvolume { id, root, item, stored: item }, dir, name, now)?;
            Ok(id)
        })
    }

    /// Checks that `name` can be added to `dir` of the active subvolume,
    /// reserves space for a new subvolume, and gives its id and the running
    /// transaction.
    fn begin_subvolume(&mut self, dir: u64, name: &[u8]) -> Result<(SubvolId, u64)> {
        self.check_new_name(dir, name)?;
        self.reserve(crate::dir::ENTRY_ITEMS + SUBVOL_ITEMS, 0)?;
        Ok((self.next_subvol_id()?, self.s.gen))
    }

    /// Writes the root item of the new subvolume `new`, opens it, and names
    /// it `name` in `dir` of the active subvolume.
    fn add_subvolume(&mut self, new: Subvolume, dir: u64, name: &[u8], now: Timespec) -> Result<()> {
        let item = new.current_item();
        self.root_tree_insert(&root_item_key(new.id), &item.encode())?;
        self.parked.try_push(Subvolume { stored: item, ..new })?;
        self.link_subvolume(new.id, dir, name, now)
    }

    /// Snapshots subvolume `src` as `name` in directory `dir` of subvolume
    /// `sv`, read-only if asked, with UUID `uuid`. Commits first, so the
    /// snapshot holds everything done before the call; the snapshot then
    /// shares the source's root node, whatever the tree's size.
    #[allow(clippy::too_many_arguments)]
    pub fn snapshot(
        &mut self,
        src: SubvolId,
        sv: SubvolId,
        dir: u64,
        name: &[u8],
        read_only: bool,
        uuid: [u8; 16],
        now: Timespec,
    ) -> Result<SubvolId> {
        self.check_writable()?;
        self.enter(src)?;
        self.enter(sv)?;
        self.check_new_name(dir, name)?;
        // Nothing of the running transaction may be shared: the source's
        // nodes must all be committed ones, which copy-on-write never
        // changes in place.
        self.commit()?;
        self.enter(sv)?;
        self.change(|fs| {
            let (id, gen) = fs.begin_subvolume(dir, name)?;
            let committed = gen.saturating_sub(1);
            let source = *fs.open_subvol(src).ok_or(Error::NotFound)?;
            // Every node the source has now is shared from here on.
            let src_root = TreeRoot { last_snapshot: committed, ..source.root };
            fs.s.space.queue(src_root.block, 1, 1)?;
            let mut root = TreeRoot { id: id.0, ..src_root };
            root.last_snapshot = committed;
            let item = RootItem {
                flags: if read_only { ROOT_RDONLY } else { 0 },
                uuid,
                parent_uuid: source.item.uuid,
                received_uuid: [0; 16],
                ctransid: gen,
                otransid: gen,
                stransid: 0,
                rtransid: 0,
                ctime: now,
                otime: now,
                stime: Timespec::default(),
                rtime: Timespec::default(),
                drop_progress: Key::default(),
                ..source.item
            };
            // Before the name goes in: the source may be where it goes.
            fs.set_last_snapshot(src, committed);
            fs.add_subvolume(Subvolume { id, root, item, stored: item }, dir, name, now)?;
            Ok(id)
        })
    }

    fn set_last_snapshot(&mut self, id: SubvolId, gen: u64) {
        let all = core::iter::once(&mut self.sv).chain(self.parked.iter_mut());
        for p in all.filter(|p| p.id == id) {
            p.root.last_snapshot = gen;
        }
    }

    /// `rmdir` of a name that is a subvolume: deletes it if its root
    /// directory is empty (as `delete_subvolume` does, which does not ask).
    pub(crate) fn rmdir_subvolume(&mut self, dir: u64, f: &crate::dir::Found, name: &[u8], now: Timespec) -> Result<()> {
        let child = SubvolId(f.ino);
        if !self.names_subvolume(child)? {
            // A copied entry: only the name goes.
            self.reserve_delete(crate::dir::ENTRY_ITEMS)?;
            return self.remove_entry(dir, f, name, now);
        }
        let parent = self.sv.id;
        self.enter(child)?;
        let empty = self.dir_is_empty(ROOT_DIR_INO);
        self.enter(parent)?;
        if !empty? {
            return Err(Error::NotEmpty);
        }
        self.unlink_subvolume(dir, f, name, now)
    }

    /// Deletes subvolume `name` in directory `dir` of subvolume `sv`: the
    /// name goes at once and the subvolume is marked deleted; its tree is
    /// dropped later by `drop_step`. `NotEmpty` if it holds other
    /// subvolumes, `Invalid` if the name is not a subvolume.
    pub fn delete_subvolume(&mut self, sv: SubvolId, dir: u64, name: &[u8], now: Timespec) -> Result<SubvolId> {
        self.enter(sv)?;
        self.change(|fs| {
            let f = fs.existing_entry(dir, name)?;
            if !f.subvol || !fs.names_subvolume(SubvolId(f.ino))? {
                return Err(Error::Invalid("not a subvolume"));
            }
            fs.unlink_subvolume(dir, &f, name, now)?;
            Ok(SubvolId(f.ino))
        })
    }

    fn unlink_subvolume(&mut self, dir: u64, f: &crate::dir::Found, name: &[u8], now: Timespec) -> Result<()> {
        let child = SubvolId(f.ino);
        if self.is_sending(child) {
            // A send reads its trees: they stay until it ends (as btrfs).
            return Err(Error::NotPermitted);
        }
        let rt = self.s.root_tree;
        let mut buf = crate::mem::TryVec::new();
        if btree::first_in(&mut self.s, &rt, Key::new(child.0, ROOT_REF_KEY, 0), &mut buf)?.is_some() {
            return Err(Error::NotEmpty);
        }
        self.reserve_delete(crate::dir::ENTRY_ITEMS + 4)?;
        // The child's root item as of now, uncommitted changes included.
        let mut item = match self.open_subvol(child) {
            Some(p) => p.current_item(),
            None => Subvolume::load(&mut self.s, child, true)?.ok_or(Error::corrupt("subvolume entry names no subvolume"))?.current_item(),
        };
        self.remove_entry(dir, f, name, now)?;
        let parent = self.sv.id.0;
        self.root_tree_delete(&Key::new(parent, ROOT_REF_KEY, child.0))?;
        self.root_tree_delete(&Key::new(child.0, ROOT_BACKREF_KEY, parent))?;
        item.flags |= ROOT_DEAD;
        item.drop_progress = Key::default();
        let mut rt = self.s.root_tree;
        btree::update(&mut self.s, &mut rt, &root_item_key(child), &item.encode())?;
        self.s.root_tree = rt;
        self.root_tree_insert(&dead_key(child.0), &[])?;
        if let Some(i) = self.parked.iter().position(|p| p.id == child) {
            self.parked.remove(i);
        }
        Ok(())
    }
}

/// One interior node on the way down a tree being dropped.
#[derive(Clone, Copy, Default)]
struct DropFrame {
    block: u64,
    gen: u64,
    level: u8,
    /// The next child to drop.
    slot: usize,
    /// The first key past this node (none at the right edge).
    hi: Option<Key>,
}

impl<D: BlockDevice> Filesystem<D> {
    /// The first subvolume waiting to have its tree dropped, if any.
    pub fn pending_drop(&mut self) -> Result<Option<SubvolId>> {
        let rt = self.s.root_tree;
        let mut buf = crate::mem::TryVec::new();
        Ok(btree::first_in(&mut self.s, &rt, dead_key(0), &mut buf)?.map(|k| SubvolId(k.offset)))
    }

    /// Drops up to `DROP_STEP_NODES` nodes of the first deleted subvolume's
    /// tree and commits, so deletion goes on where it stopped after a
    /// crash or an unmount. Returns whether more is left to drop (of this
    /// or another deleted subvolume).
    ///
    /// The walk keeps, in the root item, the first key not yet dropped:
    /// everything to its left is gone. A node another tree also
    /// references loses one reference and is not entered; a node only
    /// this tree references is entered, and freed once all its children
    /// are; a leaf's data extents lose one reference each.
    pub fn drop_step(&mut self) -> Result<bool> {
        self.drop_step_limited(DROP_STEP_NODES)
    }

    /// `drop_step` freeing at most `nodes` nodes (tests use small steps).
    /// It commits even when nothing was left to drop: the tools and tests
    /// that call it take it as a commit point. The kernel's worker, which
    /// runs often, skips that commit (`drop_step_uncommitted`'s `None`).
    pub fn drop_step_limited(&mut self, nodes: u64) -> Result<bool> {
        let more = self.drop_step_uncommitted(nodes)?;
        self.commit()?;
        Ok(more == Some(true))
    }

    /// `drop_step_limited` short of its commit, which the caller runs
    /// next: the kernel's, with its lock downgraded for the I/O, so reads
    /// go on meanwhile (a drop step frees thousands of nodes). `None`
    /// when no subvolume is left to drop (nothing changed, nothing to
    /// commit), else whether more is left after this step.
    pub fn drop_step_uncommitted(&mut self, nodes: u64) -> Result<Option<bool>> {
        self.check_writable()?;
        let Some(id) = self.pending_drop()? else { return Ok(None) };
        let rt = self.s.root_tree;
        let raw = btree::get(&mut self.s, &rt, &root_item_key(id))?.ok_or(Error::corrupt("deleted subvolume has no root item"))?;
        let mut item = RootItem::decode_bounded(&raw, &self.s.bounds())?;
        if !item.is_dead() {
            return Err(Error::corrupt("subvolume on the deleted list is not marked deleted"));
        }
        self.op_seq = self.s.mod_seq();
        let r = self.drop_some(id, &mut item, nodes.max(1));
        let r = r.and_then(|finished| {
            if finished {
                self.root_tree_delete(&root_item_key(id))?;
                self.root_tree_delete(&dead_key(id.0))
            } else {
                let mut rt = self.s.root_tree;
                btree::update(&mut self.s, &mut rt, &root_item_key(id), &item.encode())?;
                self.s.root_tree = rt;
                Ok(())
            }
        });
        if let Err(e) = r {
            if self.s.aborted.is_none() {
                self.s.aborted = Some(e);
            }
            return Err(e);
        }
        Ok(Some(self.pending_drop()?.is_some()))
    }

    /// Whether another tree references the block too (exact: queued
    /// changes applied first, by the caller).
    fn shared_now(&mut self, blk: u64) -> Result<bool> {
        Ok(self.s.refcount(blk)? > 1)
    }

    /// Frees leaf `blk` of a tree being dropped, with its data references.
    fn drop_leaf(&mut self, blk: u64, gen: u64) -> Result<()> {
        let mut refs = crate::mem::TryVec::new();
        let bounds = self.s.bounds();
        crate::store::children_of(self.s.node(blk, gen, 0)?, &bounds, &mut refs)?;
        for &(start, len) in refs.iter() {
            self.s.free_data(start, len)?;
        }
        self.s.free_node(blk)
    }

    /// The work of one `drop_step`: true when the whole tree is gone.
    fn drop_some(&mut self, id: SubvolId, item: &mut RootItem, nodes: u64) -> Result<bool> {
        self.s.apply_refs()?;
        let root = tree_root(id.0, item);
        if self.shared_now(root.block)? {
            self.s.space.queue(root.block, 1, -1)?;
            return Ok(true);
        }
        if root.level == 0 {
            self.drop_leaf(root.block, root.generation)?;
            return Ok(true);
        }
        let mut budget = nodes;
        let mut stack = [DropFrame::default(); crate::node::MAX_LEVEL];
        let first = crate::node::child_slot(self.s.node(root.block, root.generation, root.level)?, &item.drop_progress);
        stack[0] = DropFrame { block: root.block, gen: root.generation, level: root.level, slot: first, hi: None };
        let mut depth = 1usize;
        while depth > 0 {
            let top = stack[depth - 1];
            let (n, child) = {
                let b = self.s.node(top.block, top.gen, top.level)?;
                let n = crate::node::nritems(b);
                let child = (top.slot < n).then(|| {
                    let hi = if top.slot + 1 < n { Some(crate::node::ptr_key(b, top.slot + 1)) } else { top.hi };
                    (crate::node::ptr_block(b, top.slot), crate::node::ptr_gen(b, top.slot), hi)
                });
                (n, child)
            };
            let Some((cblk, cgen, chi)) = child else {
                // Every child is gone: so is the node.
                let _ = n;
                self.s.free_node(top.block)?;
                depth -= 1;
                if depth > 0 {
                    stack[depth - 1].slot += 1;
                }
                continue;
            };
            let clevel = top.level - 1;
            if self.shared_now(cblk)? {
                self.s.space.queue(cblk, 1, -1)?;
            } else if clevel == 0 {
                self.drop_leaf(cblk, cgen)?;
            } else {
                let slot = crate::node::child_slot(self.s.node(cblk, cgen, clevel)?, &item.drop_progress);
                if depth >= stack.len() {
                    return Err(Error::corrupt("tree too deep"));
                }
                stack[depth] = DropFrame { block: cblk, gen: cgen, level: clevel, slot, hi: chi };
                depth += 1;
                continue;
            }
            stack[depth - 1].slot += 1;
            budget = budget.saturating_sub(1);
            // Stop only where a key says how far the drop got; past the
            // right edge only the frames' own nodes are left.
            if let Some(next) = chi {
                item.drop_progress = next;
                if budget == 0 {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// What the root tree says of subvolume `id`, uncommitted changes
    /// included. `NotFound` for an id that is not a live subvolume.
    pub fn subvolume_info(&mut self, id: SubvolId) -> Result<SubvolInfo> {
        self.enter(id)?;
        let item = self.sv.current_item();
        let mut info = SubvolInfo { id, parent: 0, dir: 0, item, name: [0; NAME_MAX], name_len: 0 };
        let rt = self.s.root_tree;
        let mut buf = crate::mem::TryVec::new();
        if let Some(k) = btree::first_in(&mut self.s, &rt, Key::new(id.0, ROOT_BACKREF_KEY, 0), &mut buf)? {
            let r = NameRef::decode(&buf)?;
            info.parent = k.offset;
            info.dir = r.dir;
            info.name_len = r.name.len();
            info.name[..r.name.len()].copy_from_slice(r.name);
        }
        Ok(info)
    }

    /// The ids of the live subvolumes whose root items pass `keep`, in id
    /// order.
    fn subvolume_ids(&mut self, keep: impl Fn(&RootItem) -> bool) -> Result<crate::mem::TryVec<SubvolId>> {
        let rt = self.s.root_tree;
        let mut ids = crate::mem::TryVec::new();
        let mut c = btree::Cursor::new(Key::new(FS_TREE_ID, ROOT_ITEM_KEY, 0), btree::Dir::Forward);
        while let Some((k, d)) = c.next(&mut self.s, &rt)? {
            if k.objectid > LAST_SUBVOL_ID {
                break;
            }
            if k.ty == ROOT_ITEM_KEY {
                let ri = RootItem::decode(d)?;
                if !ri.is_dead() && keep(&ri) {
                    ids.try_push(SubvolId(k.objectid))?;
                }
            }
        }
        Ok(ids)
    }

    /// The ids of every live subvolume that is not read-only.
    pub(crate) fn writable_subvolumes(&mut self) -> Result<crate::mem::TryVec<SubvolId>> {
        self.subvolume_ids(|ri| !ri.is_read_only())
    }

    /// Every live subvolume, the default one first, in id order.
    pub fn list_subvolumes(&mut self) -> Result<crate::mem::TryVec<SubvolInfo>> {
        let ids = self.subvolume_ids(|_| true)?;
        let mut out = crate::mem::TryVec::try_with_capacity(ids.len())?;
        for &id in ids.iter() {
            out.try_push(self.subvolume_info(id)?)?;
        }
        Ok(out)
    }

    /// Makes subvolume `id` read-only or writable again.
    pub fn set_subvolume_read_only(&mut self, id: SubvolId, read_only: bool) -> Result<()> {
        self.check_writable()?;
        self.enter(id)?;
        if self.sv.item.is_read_only() == read_only {
            return Ok(());
        }
        if !read_only && self.is_sending(id) {
            return Err(Error::NotPermitted);
        }
        if read_only {
            // Orphan items held in memory go into its tree while it may
            // still change (a commit would put them there later).
            self.change(|fs| fs.store_pending_orphans())?;
        }
        self.reserve(1, 0)?;
        if read_only {
            self.sv.item.flags |= ROOT_RDONLY;
        } else {
            self.sv.item.flags &= !ROOT_RDONLY;
        }
        self.sv.item.ctransid = self.s.gen;
        // Written now: a flag change alone changes no tree, and commit would
        // otherwise find nothing to do.
        self.store_root_items()
    }

    /// Records that subvolume `id` was received from a stream (as btrfs's
    /// SET_RECEIVED_SUBVOL): the sender's UUID and transid and send time;
    /// the running transaction and `now` become its receive transid and
    /// time. `ReadOnly` for a read-only subvolume (received subvolumes are
    /// made read-only after this). Returns the receive transid.
    pub fn set_received_subvolume(&mut self, id: SubvolId, uuid: [u8; 16], stransid: u64, stime: Timespec, now: Timespec) -> Result<u64> {
        self.check_writable()?;
        self.enter(id)?;
        if self.sv.item.is_read_only() {
            return Err(Error::ReadOnly);
        }
        self.reserve(1, 0)?;
        let gen = self.s.gen;
        let item = &mut self.sv.item;
        item.received_uuid = uuid;
        item.stransid = stransid;
        item.stime = stime;
        item.rtransid = gen;
        item.rtime = now;
        // Written now, as a flag change is: no tree changed.
        self.store_root_items()?;
        Ok(gen)
    }

    /// Whether subvolume `id` is read-only.
    pub fn subvolume_read_only(&mut self, id: SubvolId) -> Result<bool> {
        self.enter(id)?;
        Ok(self.sv.item.is_read_only())
    }
}

/// The items of one `(objectid, type)` in a subvolume's tree, in key order
/// from a starting offset, as `(offset, value)`. The file, directory and
/// xattr code read through it rather than walking cursors by hand, so
/// anything that must change what a subvolume's items look like (a log
/// replay overlay) has one place to join.
pub(crate) struct ObjectItems {
    cursor: btree::Cursor,
    objectid: u64,
    ty: u8,
}

impl ObjectItems {
    /// The items of `(objectid, ty)` from offset `from` on.
    pub(crate) fn new(objectid: u64, ty: u8, from: u64) -> Self {
        ObjectItems { cursor: btree::Cursor::new(Key::new(objectid, ty, from), btree::Dir::Forward), objectid, ty }
    }

    /// The next item, or `None` past the last one.
    pub(crate) fn next<'s, S: btree::NodeSource + ?Sized>(&mut self, s: &'s mut S, sv: &Subvolume) -> Result<Option<(u64, &'s [u8])>> {
        match self.cursor.next(s, &sv.root)? {
            Some((k, d)) if k.objectid == self.objectid && k.ty == self.ty => Ok(Some((k.offset, d))),
            _ => Ok(None),
        }
    }
}
