// SPDX-License-Identifier: GPL-2.0
//! Replay of tree-log records (`crate::tree_log`) at mount, in the order
//! of the epoch's chain, each against the state the records before it left.
//!
//! A record says what the inode *is* at its fsync, never what was done to
//! it, so replay compares and sets:
//!
//! 1. Check, changing nothing: the subvolume exists and is writable; the
//!    inode exists with the logged generation and type, or is new; each
//!    logged name's directory exists; an entry now holding a logged name
//!    for another inode is not a directory or subvolume (that inode loses
//!    the name: the rename-over victim); once the entries to remove are
//!    gone, the slots of the names to add are free; runs lie on free
//!    blocks no other run of the record uses, with data matching their
//!    CRCs; every logged extent lies on the record's runs or on blocks the
//!    inode's extents hold now. Any failure ends the replay before this
//!    record.
//! 2. Remove the inode's entries that the record does not list at the same
//!    slots, and the victims' entries of the logged names.
//! 3. Replace the inode's items: references to the logged extents' blocks
//!    are taken (run blocks claimed) before those of the old extents are
//!    dropped, so shared and kept blocks never reach zero; the old items
//!    go and the logged ones and the inode item are put in.
//! 4. Add the missing entries at their logged slots (directory size,
//!    sequence counter and times follow, as for a live entry).
//! 5. Link counts: each victim's is recounted from its back-references,
//!    and an inode left without names goes on the orphan list (mount
//!    reclaims it); the logged inode's comes from the record, and it
//!    leaves or joins the orphan list to match.

use crate::btree;
use crate::device::BlockDevice;
use crate::dir::{orphan_key, Found, Target};
use crate::error::{Error, Result};
use crate::fast_commit::replay_data_crc;
use crate::format::{ExtentItem, FileType, Key, DIR_HASH_KEY, DIR_SEQ_KEY, EXTENT_KEY, LAST_INO_LIMIT, ROOT_DIR_INO};
use crate::fs::{inode_key, Filesystem};
use crate::mem::TryVec;
use crate::replay_read::RunCrcs;
use crate::space::ExtentSet;
use crate::subvol::ObjectItems;
use crate::tree_log::LogRecord;

/// What replaying one checked record changes.
pub(crate) struct LogPlan {
    /// The inode is not in the state yet.
    new_inode: bool,
    /// Entries to remove first: directory, entry, name.
    remove: TryVec<(u64, Found, TryVec<u8>)>,
    /// Indexes of the logged names to add.
    add: TryVec<usize>,
    /// Inodes that lose a name to the logged inode.
    victims: TryVec<u64>,
    /// The record's run blocks.
    runs: ExtentSet,
}

/// `Ok(None)` for what makes a record unreplayable (damage included);
/// other errors (I/O, memory) fail the mount.
fn refuse<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::NotFound | Error::NotDir | Error::Corrupt(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Checks a decoded record against the state replayed so far (step 1
    /// of the module's header); `None` ends the replay.
    pub(crate) fn plan_log_record(&mut self, rec: &LogRecord, crcs: &RunCrcs) -> Result<Option<LogPlan>> {
        if refuse(self.enter(rec.subvol))?.is_none() || self.sv.item.is_read_only() {
            return Ok(None);
        }
        let ino = rec.ino;
        let ty = rec.inode.file_type();
        let new_inode = match self.read_inode(ino) {
            Ok(cur) if cur.generation == rec.inode.generation && cur.file_type() == ty => false,
            Ok(_) => return Ok(None),
            Err(Error::NotFound) if ino > ROOT_DIR_INO && ino < LAST_INO_LIMIT => true,
            Err(e) => return refuse::<()>(Err(e)).map(|_| None),
        };
        let mut remove: TryVec<(u64, Found, TryVec<u8>)> = TryVec::new();
        if !new_inode {
            for (dir, name) in self.current_names(ino)?.iter() {
                let Some(Some(f)) = refuse(self.find_entry(*dir, name))? else { return Ok(None) };
                if f.ino != ino || f.subvol {
                    return Ok(None);
                }
                let kept = rec.names.iter().any(|n| n.dir == *dir && *n.name == **name && n.seq == f.seq && n.hash_off == f.hash_off);
                if !kept {
                    let mut owned = TryVec::new();
                    owned.try_extend_from_slice(name)?;
                    remove.try_push((*dir, f, owned))?;
                }
            }
        }
        let mut add = TryVec::new();
        let mut victims = TryVec::new();
        for (i, n) in rec.names.iter().enumerate() {
            if refuse(self.read_dir_inode(n.dir))?.is_none() {
                return Ok(None);
            }
            let Some(found) = refuse(self.find_entry(n.dir, &n.name))? else { return Ok(None) };
            match found {
                Some(f) if f.ino == ino && !f.subvol && !new_inode && f.seq == n.seq && f.hash_off == n.hash_off => continue,
                // At other slots: listed for removal above.
                Some(f) if f.ino == ino && !f.subvol && !new_inode => {}
                Some(f) if f.subvol || f.ty == FileType::Dir || f.ino == ino => return Ok(None),
                Some(f) => {
                    // Removing the entry removes its back-reference too.
                    if refuse(self.find_inode_ref(f.ino, n.dir, &n.name))?.flatten().is_none() {
                        return Ok(None);
                    }
                    let mut owned = TryVec::new();
                    owned.try_extend_from_slice(&n.name)?;
                    remove.try_push((n.dir, f, owned))?;
                    victims.try_push(f.ino)?;
                }
                None => {}
            }
            add.try_push(i)?;
        }
        let root = self.sv.root;
        for &i in add.iter() {
            let n = &rec.names[i];
            for (kty, off) in [(DIR_HASH_KEY, n.hash_off), (DIR_SEQ_KEY, n.seq)] {
                if btree::get_len(&mut self.s, &root, &Key::new(n.dir, kty, off))?.is_none() {
                    continue;
                }
                let freed =
                    remove.iter().any(|(d, f, _)| *d == n.dir && if kty == DIR_HASH_KEY { f.hash_off == off } else { f.seq == off });
                if !freed {
                    return Ok(None);
                }
            }
        }
        let mut runs = ExtentSet::new();
        for r in rec.runs.iter() {
            if !self.s.space.claimable(r.disk_block, r.blocks) || runs.overlaps(r.disk_block, r.blocks) {
                return Ok(None);
            }
            runs.insert(r.disk_block, r.blocks)?;
            if replay_data_crc(&mut self.s, crcs, r)? != r.data_crc {
                return Ok(None);
            }
        }
        if !self.extents_covered(rec, new_inode, &runs)? {
            return Ok(None);
        }
        Ok(Some(LogPlan { new_inode, remove, add, victims, runs }))
    }

    /// Whether every logged extent lies on the record's runs (each run
    /// block used once) or on blocks the inode's extents hold now.
    fn extents_covered(&mut self, rec: &LogRecord, new_inode: bool, runs: &ExtentSet) -> Result<bool> {
        let mut own = ExtentSet::new();
        if !new_inode {
            for (_, disk, n) in self.current_extents(rec.ino)?.iter() {
                if own.overlaps(*disk, *n) {
                    return Ok(false);
                }
                own.insert(*disk, *n)?;
            }
        }
        let bounds = self.s.bounds();
        let mut used = ExtentSet::new();
        for item in rec.items.iter().filter(|i| i.ty == EXTENT_KEY) {
            let e = ExtentItem::decode_bounded(&item.data, item.offset, &bounds)?;
            let mut ok = true;
            let mut pieces: TryVec<(u64, u64, bool)> = TryVec::new();
            runs.split_by(e.disk_block, e.nblocks, |s, l, inside| pieces.try_push((s, l, inside)))?;
            for &(s, l, inside) in pieces.iter() {
                if inside {
                    ok &= !used.overlaps(s, l);
                    if ok {
                        used.insert(s, l)?;
                    }
                } else {
                    ok &= own.contains(s, l);
                }
            }
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `ino`'s extents in the mounted state: (file block, disk block, blocks).
    fn current_extents(&mut self, ino: u64) -> Result<TryVec<(u64, u64, u64)>> {
        let bounds = self.s.bounds();
        let mut out = TryVec::new();
        let mut items = ObjectItems::new(ino, EXTENT_KEY, 0);
        while let Some((fb, d)) = items.next(&mut self.s, &self.sv)? {
            let e = ExtentItem::decode_bounded(d, fb, &bounds)?;
            out.try_push((fb, e.disk_block, e.nblocks))?;
        }
        Ok(out)
    }

    /// Applies a record `plan_log_record` accepted (steps 2 to 5).
    pub(crate) fn apply_log_record(&mut self, rec: &LogRecord, plan: &LogPlan) -> Result<()> {
        self.enter(rec.subvol)?;
        let ino = rec.ino;
        let now = rec.inode.ctime;
        for (dir, f, name) in plan.remove.iter() {
            self.remove_entry(*dir, f, name, now)?;
        }
        self.replace_items(rec, plan)?;
        let ty = rec.inode.file_type();
        for &i in plan.add.iter() {
            let n = &rec.names[i];
            let d = self.read_dir_inode(n.dir)?;
            self.add_entry_at(n.dir, d, &n.name, Target::inode(ino, ty), n.seq, n.hash_off, now)?;
        }
        for &v in plan.victims.iter().filter(|&&v| v != ino) {
            let mut it = match self.read_inode(v) {
                Ok(it) => it,
                Err(Error::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let links = self.current_names(v)?.len() as u32;
            if it.nlink != links {
                it.nlink = links;
                it.ctime = now;
                self.write_inode(v, &mut it)?;
            }
            self.match_orphan_item(v, links)?;
        }
        self.match_orphan_item(ino, rec.inode.nlink)?;
        self.s.apply_refs()
    }

    /// Step 3: the inode's items become the logged ones.
    fn replace_items(&mut self, rec: &LogRecord, plan: &LogPlan) -> Result<()> {
        let ino = rec.ino;
        let bounds = self.s.bounds();
        // References to the new extents first, so that blocks both sets
        // hold never drop to zero on the way.
        for item in rec.items.iter().filter(|i| i.ty == EXTENT_KEY) {
            let e = ExtentItem::decode_bounded(&item.data, item.offset, &bounds)?;
            let mut pieces: TryVec<(u64, u64, bool)> = TryVec::new();
            plan.runs.split_by(e.disk_block, e.nblocks, |s, l, inside| pieces.try_push((s, l, inside)))?;
            for &(s, l, inside) in pieces.iter() {
                if inside {
                    self.s.space.claim(s, l)?;
                } else {
                    self.s.space.queue(s, l, 1)?;
                }
            }
        }
        let mut old: TryVec<Key> = TryVec::new();
        if !plan.new_inode {
            for &(_, disk, n) in self.current_extents(ino)?.iter() {
                self.s.free_data(disk, n)?;
            }
            let root = self.sv.root;
            let mut c = btree::Cursor::new(Key::new(ino, crate::format::INODE_KEY + 1, 0), btree::Dir::Forward);
            while let Some((k, _)) = c.next(&mut self.s, &root)? {
                if k.objectid != ino {
                    break;
                }
                if k.ty != crate::format::INODE_REF_KEY {
                    old.try_push(k)?;
                }
            }
        }
        for k in old.iter() {
            btree::delete(&mut self.s, &mut self.sv.root, k)?;
        }
        for item in rec.items.iter() {
            btree::insert(&mut self.s, &mut self.sv.root, &Key::new(ino, item.ty, item.offset), &item.data)?;
        }
        let mut it = rec.inode;
        it.transid = self.s.gen;
        if plan.new_inode {
            btree::insert(&mut self.s, &mut self.sv.root, &inode_key(ino), &it.encode())?;
            self.sv.item.inode_count = self.sv.item.inode_count.saturating_add(1);
            self.sv.item.last_ino = self.sv.item.last_ino.max(ino);
            Ok(())
        } else {
            btree::update(&mut self.s, &mut self.sv.root, &inode_key(ino), &it.encode())
        }
    }

    /// Puts `ino` on the orphan list when it has no links, takes it off
    /// when it has some.
    fn match_orphan_item(&mut self, ino: u64, links: u32) -> Result<()> {
        match (links == 0, self.is_orphan(ino)?) {
            (true, false) => btree::insert(&mut self.s, &mut self.sv.root, &orphan_key(ino), &[]),
            (false, true) => self.remove_orphan(ino).map(drop),
            _ => Ok(()),
        }
    }
}
