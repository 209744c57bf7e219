// SPDX-License-Identifier: GPL-2.0
//! Incremental send: from the keys that differ between the parent snapshot
//! and the source, the commands that turn the receiver's copy of the
//! parent into the source.
//!
//! Every inode with a differing key is an entry. An entry is the *same*
//! inode on both sides when both have it with one generation; an inode
//! number reused by a new inode (delete, then create) is a deletion plus a
//! creation. The receiver knows files only by path, so the plan keeps, for
//! each entry, where the receiver has it right now (`Loc`): at one of its
//! old names, at one of its new names, at a temporary orphan name
//! `o<ino>-<gen>-<n>` in the top directory, or nowhere. Paths are built
//! from that on demand, walking up through the entries and, for inodes
//! that did not change, through the source's back-references (an unchanged
//! inode has the same names on both sides).
//!
//! The commands come in five passes, which is what makes renames safe in
//! any combination (swaps, cycles, a directory moved under its former
//! child, names reused by other inodes) without btrfs's pending-move
//! bookkeeping:
//!
//! 1. **Remove**, in inode order: names that go away are unlinked; an inode
//!    that keeps none of its names is renamed to its orphan name (and its
//!    other old names unlinked); a deleted directory is renamed to its
//!    orphan name. After this pass no old name that the source lacks is
//!    taken, and every directory still exists somewhere.
//! 2. **Place**, parents before children (by depth in the source): an
//!    orphaned inode is renamed to its first new name, a new inode is
//!    created there. Its parent already exists: it is unchanged, or it was
//!    placed earlier, being shallower.
//! 3. **Link**, in inode order: every further new name becomes a link.
//! 4. **Rmdir**: the deleted directories, empty by now.
//! 5. **Content**, in inode order: data, size, xattrs, owner, mode and
//!    times of each new or changed inode, each only where it differs.
//!    Times come last of all namespace changes, so they stay as the source
//!    has them. The top directory is always an entry, as orphan names pass
//!    through it.
//!
//! The cost is two renames for a moved inode where btrfs often needs one;
//! the plan's memory grows with the number of changed inodes.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::*;
use crate::fs::{Filesystem, InodeAttr};
use crate::mem::TryVec;
use crate::send::{check_depth, join, SendSession, SEND_NO_FILE_DATA};
use crate::send_stream::Command;
use crate::subvol::SubvolId;
use crate::tree_diff::{self, Change};

type Names = TryVec<(u64, TryVec<u8>)>;

/// Entries of the content pass whose file data is read ahead at once.
const CONTENT_AHEAD: usize = 64;

/// Where the receiver has an entry's inode at this point of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// At `old_names[i]`.
    Old(usize),
    /// At `new_names[i]`.
    New(usize),
    /// At its orphan name in the top directory.
    Orphan { gen: u64, idx: u32 },
    /// Not there (not yet created, or removed).
    Absent,
}

struct Entry {
    ino: u64,
    old: Option<InodeAttr>,
    new: Option<InodeAttr>,
    old_names: Names,
    new_names: Names,
    /// The same inode on both sides.
    same: bool,
    cur: Loc,
    /// Pass 2 renames or creates it at `new_names[0]`.
    placed: bool,
    /// Orphan index of its deleted old directory, for pass 4.
    dead_dir: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Remove,
    Place,
    Link,
    Rmdir,
    Content,
    Done,
}

/// Where the building of a plan is.
enum BuildStage {
    /// Finding the inodes with a differing key.
    Diff,
    /// Reading both sides of each of them, from the index given.
    Entries(usize),
    /// Pass 2's depths, from the entry index given.
    Depths(usize),
}

/// An incremental send's plan being built (see `plan_build_step`).
pub(crate) struct PlanBuilder {
    source: SubvolId,
    parent: SubvolId,
    stage: BuildStage,
    /// The diff while `stage` is `Diff` (one element).
    diff: TryVec<tree_diff::TreeDiff>,
    /// The inodes with a differing key, ascending.
    inos: TryVec<u64>,
    entries: TryVec<Entry>,
    order: TryVec<(usize, usize)>,
}

/// An incremental send's plan and its progress.
pub(crate) struct Plan {
    source: SubvolId,
    parent: SubvolId,
    entries: TryVec<Entry>,
    /// Pass 2's order: `(depth, entry index)`, sorted.
    order: TryVec<(usize, usize)>,
    pass: Pass,
    /// Next entry (or `order` position) of the running pass.
    next: usize,
    /// First entry of the content pass whose data is not read ahead yet.
    ahead: usize,
}

impl Plan {
    pub(crate) fn done(&self) -> bool {
        self.pass == Pass::Done
    }

    fn find(&self, ino: u64) -> Option<&Entry> {
        self.entries.binary_search_by_key(&ino, |e| e.ino).ok().map(|i| &self.entries[i])
    }
}

fn contains(names: &Names, dir: u64, name: &[u8]) -> bool {
    names.iter().any(|(d, n)| *d == dir && n[..] == *name)
}

fn orphan_name(ino: u64, gen: u64, idx: u32) -> Result<TryVec<u8>> {
    let mut s = TryVec::new();
    let mut w = ByteWriter(&mut s, None);
    core::fmt::write(&mut w, format_args!("o{ino}-{gen}-{idx}")).map_err(|_| w.1.unwrap_or(Error::NoMemory))?;
    Ok(s)
}

/// `core::fmt::Write` into a `TryVec`, keeping the allocation error.
struct ByteWriter<'a>(&'a mut TryVec<u8>, Option<Error>);

impl core::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.try_extend_from_slice(s.as_bytes()).map_err(|e| {
            self.1 = Some(e);
            core::fmt::Error
        })
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// `getattr` and `names_of`, or `None` for an inode the snapshot does
    /// not have or has under no name (an open, unlinked file).
    fn send_inode(&mut self, sv: SubvolId, ino: u64) -> Result<Option<(InodeAttr, Names)>> {
        let a = match self.getattr(sv, ino) {
            Ok(a) => a,
            Err(Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let names = self.names_of(sv, ino)?;
        if names.is_empty() && ino != ROOT_DIR_INO {
            return Ok(None);
        }
        Ok(Some((a, names)))
    }

    /// Starts planning the incremental send of `source` against `parent`;
    /// `plan_build_step` does the work.
    pub(crate) fn plan_begin(&mut self, source: SubvolId, parent: SubvolId) -> Result<PlanBuilder> {
        self.enter(parent)?;
        let left = self.sv.root;
        self.enter(source)?;
        let right = self.sv.root;
        // On the heap (a vector of one, the fallible box): two tree paths
        // the session, which the kernel keeps on its stack, need not hold.
        let mut diff = TryVec::new();
        diff.try_push(tree_diff::TreeDiff::new(&mut self.s, &left, &right)?)?;
        Ok(PlanBuilder { source, parent, stage: BuildStage::Diff, diff, inos: TryVec::new(), entries: TryVec::new(), order: TryVec::new() })
    }

    /// Does about `work` units of the plan's building (tree positions,
    /// inodes): the plan once it is complete, else None and more to do.
    /// In steps, so that a large change holds the core for a bounded time.
    pub(crate) fn plan_build_step(&mut self, b: &mut PlanBuilder, work: usize) -> Result<Option<Plan>> {
        let (source, parent) = (b.source, b.parent);
        match &mut b.stage {
            BuildStage::Diff => {
                let diff = b.diff.last_mut().ok_or(Error::Bug("plan builder without its diff"))?;
                let inos = &mut b.inos;
                let done = diff.step(&mut self.s, work, &mut |_: Change, k: Key| {
                    let inode_key =
                        matches!(k.ty, INODE_KEY | INODE_REF_KEY | XATTR_KEY | SYMLINK_KEY | EXTENT_KEY | DIR_HASH_KEY | DIR_SEQ_KEY);
                    if inode_key && (ROOT_DIR_INO..LAST_INO_LIMIT).contains(&k.objectid) && inos.last() != Some(&k.objectid) {
                        inos.try_push(k.objectid)?;
                    }
                    Ok(())
                })?;
                if done {
                    b.diff.clear();
                    if !b.inos.is_empty() && b.inos[0] != ROOT_DIR_INO {
                        b.inos.try_insert(0, ROOT_DIR_INO)?;
                    }
                    b.entries = TryVec::try_with_capacity(b.inos.len())?;
                    b.stage = BuildStage::Entries(0);
                }
            }
            BuildStage::Entries(next) => {
                let stop = next.saturating_add(work).min(b.inos.len());
                for &ino in b.inos[*next..stop].iter() {
                    let old = self.send_inode(parent, ino)?;
                    let new = self.send_inode(source, ino)?;
                    let same = match (&old, &new) {
                        (Some((o, _)), Some((n, _))) => o.generation == n.generation && o.file_type() == n.file_type(),
                        _ => false,
                    };
                    let (old, old_names) = old.map_or((None, TryVec::new()), |(a, n)| (Some(a), n));
                    let (new, new_names) = new.map_or((None, TryVec::new()), |(a, n)| (Some(a), n));
                    let cur = if old.is_some() { Loc::Old(0) } else { Loc::Absent };
                    let placed =
                        ino != ROOT_DIR_INO && new.is_some() && (!same || !old_names.iter().any(|(d, n)| contains(&new_names, *d, n)));
                    b.entries.try_push(Entry { ino, old, new, old_names, new_names, same, cur, placed, dead_dir: None })?;
                }
                *next = stop;
                if stop == b.inos.len() {
                    b.stage = BuildStage::Depths(0);
                }
            }
            BuildStage::Depths(next) => {
                let stop = next.saturating_add(work).min(b.entries.len());
                for i in *next..stop {
                    if b.entries[i].placed {
                        let depth = self.depth_in(source, b.entries[i].new_names[0].0)?;
                        b.order.try_push((depth, i))?;
                    }
                }
                *next = stop;
                if stop == b.entries.len() {
                    b.order.sort_unstable();
                    let entries = core::mem::take(&mut b.entries);
                    let order = core::mem::take(&mut b.order);
                    return Ok(Some(Plan { source, parent, entries, order, pass: Pass::Remove, next: 0, ahead: 0 }));
                }
            }
        }
        Ok(None)
    }

    /// Levels from the top directory down to directory `dir` in `sv`.
    fn depth_in(&mut self, sv: SubvolId, mut dir: u64) -> Result<usize> {
        let mut depth = 0;
        while dir != ROOT_DIR_INO {
            depth += 1;
            check_depth(depth)?;
            let names = self.names_of(sv, dir)?;
            dir = names.first().ok_or(Error::corrupt("directory without a name"))?.0;
        }
        Ok(depth)
    }

    /// A free orphan name for `ino` of generation `gen`: one neither
    /// snapshot's top directory holds.
    fn free_orphan(&mut self, plan: &Plan, ino: u64, gen: u64) -> Result<u32> {
        for idx in 0..u32::MAX {
            let name = orphan_name(ino, gen, idx)?;
            let mut taken = false;
            for sv in [plan.parent, plan.source] {
                match self.lookup(sv, ROOT_DIR_INO, &name) {
                    Ok(_) => taken = true,
                    Err(Error::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            if !taken {
                return Ok(idx);
            }
        }
        Err(Error::NoSpace)
    }

    /// Where the receiver has inode `ino` now (one of its names).
    fn current_path(&mut self, plan: &Plan, ino: u64) -> Result<TryVec<u8>> {
        let mut parts: TryVec<TryVec<u8>> = TryVec::new();
        let mut at = ino;
        while at != ROOT_DIR_INO {
            check_depth(parts.len())?;
            let (dir, name) = match plan.find(at) {
                Some(e) => match e.cur {
                    Loc::Old(i) => (e.old_names[i].0, copy(&e.old_names[i].1)?),
                    Loc::New(i) => (e.new_names[i].0, copy(&e.new_names[i].1)?),
                    Loc::Orphan { gen, idx } => (ROOT_DIR_INO, orphan_name(at, gen, idx)?),
                    Loc::Absent => return Err(Error::Bug("send path through an inode the receiver lacks")),
                },
                None => {
                    let mut names = self.names_of(plan.source, at)?;
                    if names.is_empty() {
                        return Err(Error::corrupt("directory without a name"));
                    }
                    names.remove(0)
                }
            };
            parts.try_push(name)?;
            at = dir;
        }
        crate::send::path_of_parts(&parts)
    }

    /// `dir`'s current path joined with `name`.
    fn path_in(&mut self, plan: &Plan, dir: u64, name: &[u8]) -> Result<TryVec<u8>> {
        let d = self.current_path(plan, dir)?;
        join(&d, name)
    }

    /// Emits the next piece of the plan: one entry of the running pass.
    pub(crate) fn plan_step(&mut self, plan: &mut Plan, st: &mut SendSession, out: &mut TryVec<u8>) -> Result<()> {
        let limit = if plan.pass == Pass::Place { plan.order.len() } else { plan.entries.len() };
        if plan.next >= limit {
            plan.pass = match plan.pass {
                Pass::Remove => Pass::Place,
                Pass::Place => Pass::Link,
                Pass::Link => Pass::Rmdir,
                Pass::Rmdir => Pass::Content,
                Pass::Content | Pass::Done => Pass::Done,
            };
            plan.next = 0;
            return Ok(());
        }
        let i = if plan.pass == Pass::Place { plan.order[plan.next].1 } else { plan.next };
        plan.next += 1;
        match plan.pass {
            Pass::Remove => self.pass_remove(plan, st, out, i),
            Pass::Place => self.pass_place(plan, st, out, i),
            Pass::Link => self.pass_link(plan, st, out, i),
            Pass::Rmdir => {
                let e = &plan.entries[i];
                if let (Some(idx), Some(old)) = (e.dead_dir, e.old) {
                    let path = orphan_name(e.ino, old.generation, idx)?;
                    st.sink.emit(out, &Command::Rmdir { path: &path })?;
                }
                Ok(())
            }
            Pass::Content => {
                if i >= plan.ahead && st.request().flags & SEND_NO_FILE_DATA == 0 {
                    // The data of this entry and the next ones, in few reads.
                    plan.ahead = i.saturating_add(CONTENT_AHEAD).min(plan.entries.len());
                    let files = plan.entries[i..plan.ahead].iter().filter_map(|e| e.new.as_ref().map(|n| (n, e.same)));
                    self.prefetch_changed(plan.source, plan.parent, files, &mut st.prefetch)?;
                }
                let e = &plan.entries[i];
                let Some(new) = e.new else { return Ok(()) };
                let (ino, old) = (e.ino, if e.same { e.old } else { None });
                let path = self.current_path(plan, ino)?;
                self.start_content(st, ino, path, new, old)
            }
            Pass::Done => Ok(()),
        }
    }

    fn pass_remove(&mut self, plan: &mut Plan, st: &mut SendSession, out: &mut TryVec<u8>, i: usize) -> Result<()> {
        let e = &plan.entries[i];
        let Some(old) = e.old else { return Ok(()) };
        if e.ino == ROOT_DIR_INO {
            return Ok(());
        }
        let (ino, same, gen) = (e.ino, e.same, old.generation);
        let keep = if same { e.old_names.iter().position(|(d, n)| contains(&e.new_names, *d, n)) } else { None };
        if let Some(k) = keep {
            // Kept names stay; the others go.
            for j in 0..plan.entries[i].old_names.len() {
                let e = &plan.entries[i];
                let (dir, name) = (e.old_names[j].0, copy(&e.old_names[j].1)?);
                if !contains(&e.new_names, dir, &name) {
                    let path = self.path_in(plan, dir, &name)?;
                    st.sink.emit(out, &Command::Unlink { path: &path })?;
                }
            }
            plan.entries[i].cur = Loc::Old(k);
            return Ok(());
        }
        let is_dir = old.file_type() == FileType::Dir;
        let first = if same || is_dir {
            // Out of the way under its orphan name until pass 2 (or 4).
            let idx = self.free_orphan(plan, ino, gen)?;
            let from = self.current_path(plan, ino)?;
            let to = orphan_name(ino, gen, idx)?;
            st.sink.emit(out, &Command::Rename { from: &from, to: &to })?;
            plan.entries[i].cur = Loc::Orphan { gen, idx };
            if !same {
                plan.entries[i].dead_dir = Some(idx);
            }
            1
        } else {
            plan.entries[i].cur = Loc::Absent;
            0
        };
        // Its other names (all of them for a deleted non-directory).
        for j in first..plan.entries[i].old_names.len() {
            let (dir, name) = (plan.entries[i].old_names[j].0, copy(&plan.entries[i].old_names[j].1)?);
            let path = self.path_in(plan, dir, &name)?;
            st.sink.emit(out, &Command::Unlink { path: &path })?;
        }
        Ok(())
    }

    fn pass_place(&mut self, plan: &mut Plan, st: &mut SendSession, out: &mut TryVec<u8>, i: usize) -> Result<()> {
        let e = &plan.entries[i];
        let Some(new) = e.new else { return Ok(()) };
        let (ino, same) = (e.ino, e.same);
        let (dir, name) = (e.new_names[0].0, copy(&e.new_names[0].1)?);
        let to = self.path_in(plan, dir, &name)?;
        if same {
            let from = self.current_path(plan, ino)?;
            st.sink.emit(out, &Command::Rename { from: &from, to: &to })?;
        } else {
            self.send_create(st, out, &to, &new)?;
        }
        plan.entries[i].cur = Loc::New(0);
        Ok(())
    }

    fn pass_link(&mut self, plan: &mut Plan, st: &mut SendSession, out: &mut TryVec<u8>, i: usize) -> Result<()> {
        let e = &plan.entries[i];
        if e.new.is_none() || e.ino == ROOT_DIR_INO {
            return Ok(());
        }
        let ino = e.ino;
        for j in 0..plan.entries[i].new_names.len() {
            let e = &plan.entries[i];
            let (dir, name) = (e.new_names[j].0, copy(&e.new_names[j].1)?);
            let exists = if e.placed { j == 0 } else { contains(&e.old_names, dir, &name) };
            if exists {
                continue;
            }
            let path = self.path_in(plan, dir, &name)?;
            let target = self.current_path(plan, ino)?;
            st.sink.emit(out, &Command::Link { path: &path, target: &target })?;
        }
        Ok(())
    }

    /// The next range of `ino` at or after `pos`, below `end`, where the
    /// source's blocks differ from the parent's (where the file was
    /// `old_size` bytes long): `(start, stop, data)`,
    /// `data` false where the source has a hole. Bytes past the parent's
    /// size differ where the source has data (the receiver's file reads
    /// zeros there once its size is set).
    pub(crate) fn next_difference(
        &mut self,
        source: SubvolId,
        parent: SubvolId,
        ino: u64,
        old_size: u64,
        mut pos: u64,
        end: u64,
    ) -> Result<Option<(u64, u64, bool)>> {
        let bs = self.s.bs as u64;
        while pos < end {
            let fb = pos / crate::store::divisor(bs);
            self.enter(source)?;
            let (new_blk, new_end) = self.block_run(ino, fb)?;
            let mut stop = new_end.saturating_mul(bs).min(end);
            if pos >= old_size {
                if new_blk.is_some() {
                    return Ok(Some((pos, stop, true)));
                }
                pos = stop;
                continue;
            }
            stop = stop.min(old_size);
            self.enter(parent)?;
            let (old_blk, old_end) = self.block_run(ino, fb)?;
            stop = stop.min(old_end.saturating_mul(bs));
            if new_blk != old_blk {
                return Ok(Some((pos, stop, new_blk.is_some())));
            }
            pos = stop;
        }
        Ok(None)
    }

    /// The disk block behind file block `fb` of `ino` in the active
    /// subvolume (`None` in a hole or an unwritten extent, which both read
    /// as zeros), and the first file block past the run that continues
    /// alike (the extent's end, or the next extent's start).
    pub(crate) fn block_run(&mut self, ino: u64, fb: u64) -> Result<(Option<u64>, u64)> {
        if let Some((start, e)) = self.extent_at(ino, fb)? {
            let disk = (!e.unwritten).then_some(e.disk_block + (fb - start));
            return Ok((disk, start.saturating_add(e.nblocks)));
        }
        Ok(match self.extent_from(ino, fb)? {
            Some((start, _)) => (None, start),
            None => (None, u64::MAX),
        })
    }
}

fn copy(b: &[u8]) -> Result<TryVec<u8>> {
    let mut v = TryVec::try_with_capacity(b.len())?;
    v.try_extend_from_slice(b)?;
    Ok(v)
}
