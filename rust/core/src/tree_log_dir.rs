// SPDX-License-Identifier: GPL-2.0
//! fsync of a directory through tree-log records: its entry set since the
//! last commit is made durable by one record per file whose entry in it
//! was added, removed or repointed (each record says every name that file
//! has, so replay puts the entry back or takes it away), all written
//! together with one flush.
//!
//! The directory's entries are compared with the committed ones and with
//! the names earlier records of the epoch put in it (an entry an earlier
//! record put back exactly as it is now needs nothing more). A file that no longer
//! exists (unlinked and freed) gets a record of its committed inode with
//! no names and no items: replay takes its names away, frees its blocks
//! and reclaims it as an orphan. Anything a record cannot say takes a full
//! commit: a directory made since the last commit, a changed entry naming
//! a directory or subvolume, a change to the directory's own attributes or
//! xattrs, more than `MAX_DIR_RECORDS` files, or a file the file tier
//! itself refuses.

use crate::btree::{Cursor, Dir, TreeRoot};
use crate::device::BlockDevice;
use crate::error::Error;
use crate::fast_commit::{FcError, Ineligible};
use crate::format::{DirEntry, FileType, InodeItem, Key, DIR_SEQ_KEY, XATTR_KEY};
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::subvol::SubvolId;
use crate::tree_log::LogRecord;

/// Most files one directory fsync logs; past it a full commit costs about
/// as much.
pub const MAX_DIR_RECORDS: usize = 16;
/// Most entries compared on each side; a larger directory takes a full
/// commit rather than a long scan under the filesystem's lock.
const MAX_DIR_SCAN: usize = 4096;

/// One entry of a directory index: sequence number, inode, type,
/// subvolume flag, name.
type Entry = (u64, u64, FileType, bool, TryVec<u8>);

impl<D: BlockDevice> Filesystem<D> {
    /// The records that make directory `dir` (item `it`) durable.
    pub(crate) fn dir_records(
        &mut self,
        sv: SubvolId,
        dir: u64,
        it: &InodeItem,
        committed: &TreeRoot,
    ) -> core::result::Result<TryVec<LogRecord>, FcError> {
        if it.generation >= self.s.gen {
            return Err(FcError::Ineligible(Ineligible::NewParent));
        }
        let Some(was) = crate::btree::get_with(&mut self.s, committed, &crate::fs::inode_key(dir), InodeItem::decode)? else {
            return Err(FcError::Ineligible(Ineligible::NewParent));
        };
        if !same_apart_from_entries(&was, it) || !self.same_xattrs(dir, committed)? {
            return Err(FcError::Ineligible(Ineligible::Changed));
        }
        let root = self.sv.root;
        let old = self.entries(committed, dir)?;
        let now = self.entries(&root, dir)?;
        // Both lists are in sequence order: one merge finds the entries
        // added, removed or repointed.
        let mut files: TryVec<u64> = TryVec::new();
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < now.len() {
            let changed = match (old.get(i), now.get(j)) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    i += 1;
                    j += 1;
                    if a.1 == b.1 && *a.4 == *b.4 {
                        continue;
                    }
                    // Repointed (rename exchange): both inodes changed.
                    note_file(&mut files, a)?;
                    b
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    i += 1;
                    a
                }
                (Some(a), None) => {
                    i += 1;
                    a
                }
                (_, Some(b)) => {
                    j += 1;
                    // Put back by an earlier record exactly as it is: durable.
                    let logged = self.s.fc.logged_slots.iter().any(|l| l.sv == sv.0 && l.dir == dir && l.seq == b.0 && l.ino == b.1);
                    if logged {
                        continue;
                    }
                    b
                }
                (None, None) => break,
            };
            note_file(&mut files, changed)?;
        }
        // Names earlier records put here that are gone now.
        for l in self.s.fc.logged_slots.iter().filter(|l| l.sv == sv.0 && l.dir == dir) {
            let here = now.binary_search_by_key(&l.seq, |n| n.0).is_ok_and(|k| now[k].1 == l.ino);
            if !here && !files.contains(&l.ino) {
                files.try_push(l.ino)?;
                if files.len() > MAX_DIR_RECORDS {
                    return Err(FcError::Ineligible(Ineligible::LogTooBig));
                }
            }
        }
        let mut recs = TryVec::new();
        for (nth, &ino) in files.iter().enumerate() {
            let rec = match self.read_inode(ino) {
                Ok(fit) if fit.is_dir() => return Err(FcError::Ineligible(Ineligible::NotRegular)),
                Ok(fit) => self.inode_record(sv, ino, &fit, committed, nth as u64)?,
                Err(Error::NotFound) => self.gone_record(sv, ino, committed, nth as u64)?,
                Err(e) => return Err(FcError::Failed(e)),
            };
            recs.try_push(rec)?;
        }
        Ok(recs)
    }

    /// The record of a file freed since the last commit: its committed
    /// inode with no links, no names, no items.
    fn gone_record(&mut self, sv: SubvolId, ino: u64, committed: &TreeRoot, nth: u64) -> core::result::Result<LogRecord, FcError> {
        let bounds = self.s.bounds();
        let was = crate::btree::get_with(&mut self.s, committed, &crate::fs::inode_key(ino), |b| InodeItem::decode_bounded(b, &bounds))?;
        // Made and freed since the last commit, after an earlier record
        // named it: no committed item to say it with.
        let Some(was) = was else { return Err(FcError::Ineligible(Ineligible::Changed)) };
        if was.is_dir() {
            return Err(FcError::Ineligible(Ineligible::NotRegular));
        }
        let inode = InodeItem { nlink: 0, ..was };
        Ok(LogRecord {
            epoch: self.s.sb.generation,
            seq: self.s.fc.next_seq + nth,
            subvol: sv,
            ino,
            inode,
            runs: TryVec::new(),
            names: TryVec::new(),
            items: TryVec::new(),
        })
    }

    /// `dir`'s entries in the tree at `root`, by sequence number; past
    /// `MAX_DIR_SCAN` a full commit serves.
    fn entries(&mut self, root: &TreeRoot, dir: u64) -> core::result::Result<TryVec<Entry>, FcError> {
        let mut out = TryVec::new();
        let mut c = Cursor::new(Key::new(dir, DIR_SEQ_KEY, 0), Dir::Forward);
        while let Some((k, d)) = c.next(&mut self.s, root)? {
            if k.objectid != dir || k.ty != DIR_SEQ_KEY {
                break;
            }
            if out.len() >= MAX_DIR_SCAN {
                return Err(FcError::Ineligible(Ineligible::LogTooBig));
            }
            let e = DirEntry::decode(d)?;
            let mut name = TryVec::try_with_capacity(e.name.len())?;
            name.try_extend_from_slice(e.name)?;
            out.try_push((k.offset, e.ino, e.ty, e.subvol, name))?;
        }
        Ok(out)
    }

    /// Whether `dir`'s xattr items are the committed ones.
    fn same_xattrs(&mut self, dir: u64, committed: &TreeRoot) -> core::result::Result<bool, FcError> {
        let root = self.sv.root;
        let mut a = Cursor::new(Key::new(dir, XATTR_KEY, 0), Dir::Forward);
        let mut b = Cursor::new(Key::new(dir, XATTR_KEY, 0), Dir::Forward);
        let mut left: TryVec<u8> = TryVec::new();
        loop {
            let x = match a.next(&mut self.s, &root)? {
                Some((k, d)) if k.objectid == dir && k.ty == XATTR_KEY => {
                    left.clear();
                    left.try_extend_from_slice(d)?;
                    Some(k)
                }
                _ => None,
            };
            let y = match b.next(&mut self.s, committed)? {
                Some((k, d)) if k.objectid == dir && k.ty == XATTR_KEY => Some((k, *d == *left)),
                _ => None,
            };
            match (x, y) {
                (None, None) => return Ok(true),
                (Some(k), Some((l, true))) if k == l => {}
                _ => return Ok(false),
            }
        }
    }
}

/// Adds the file a changed entry names to `files`; a directory or a
/// subvolume, or more files than `MAX_DIR_RECORDS`, takes a full commit.
fn note_file(files: &mut TryVec<u64>, e: &Entry) -> core::result::Result<(), FcError> {
    if e.2 == FileType::Dir || e.3 {
        return Err(FcError::Ineligible(Ineligible::NotRegular));
    }
    if !files.contains(&e.1) {
        files.try_push(e.1)?;
        if files.len() > MAX_DIR_RECORDS {
            return Err(FcError::Ineligible(Ineligible::LogTooBig));
        }
    }
    Ok(())
}

/// Whether a directory's inode item changed only as adding and removing
/// entries changes it (size, link count, times, sequence counter), which
/// replay redoes by itself.
fn same_apart_from_entries(was: &InodeItem, now: &InodeItem) -> bool {
    let strip = |i: &InodeItem| InodeItem {
        size: 0,
        nlink: 0,
        atime: Default::default(),
        mtime: Default::default(),
        ctime: Default::default(),
        next_seq: 0,
        transid: 0,
        ..*i
    };
    strip(was) == strip(now)
}
