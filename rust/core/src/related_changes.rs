// SPDX-License-Identifier: GPL-2.0
//! The directory-entry changes of the running transaction that a fsync of
//! one inode must not be separated from in a crash: which other inodes'
//! names changed beside it, and which of them a record already made durable.
//!
//! A fast-commit or tree-log record holds one inode. When another inode's
//! entry changed in the same directory (a file renamed out of the way of
//! a new one, a link added next to a rename) or a parent directory itself
//! moved, replaying the record alone would give a state no moment before
//! the crash had; btrfs logs such inodes along, ext4's fast commit falls
//! back to a full commit. ferrofs logs the directories holding them first
//! (`Filesystem::log_related_along`), and takes a full commit
//! (`Ineligible::Related`) where their records cannot serve.

use crate::mem::TryVec;
use crate::subvol::SubvolId;

/// Most changes remembered per transaction. Past it every fsync that
/// would need them takes a full commit, which starts the list over: the
/// checks below stay linear in a bounded list.
pub const MAX_ENTRY_CHANGES: usize = 4096;

/// One directory entry added or removed (a repoint is both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EntryChange {
    subvol: u64,
    dir: u64,
    /// The inode the entry names (added) or named (removed).
    ino: u64,
    /// `crate::format::name_hash` of the name.
    name_hash: u32,
    added: bool,
}

/// The transaction's entry changes not yet accounted for by a record.
#[derive(Debug, Default)]
pub struct RelatedChanges {
    changes: TryVec<EntryChange>,
    /// A change could not be remembered (the cap, or no memory): every
    /// question is answered "related" until the next commit.
    overflowed: bool,
}

impl RelatedChanges {
    /// A commit made every change durable.
    pub fn clear(&mut self) {
        self.changes.clear();
        self.overflowed = false;
    }

    /// Notes that the entry `name` of `dir` was added or removed, naming
    /// (or having named) `ino`. Never fails: a change it cannot keep only
    /// costs later fsyncs a full commit.
    pub fn note(&mut self, sv: SubvolId, dir: u64, ino: u64, name: &[u8], added: bool) {
        let change = EntryChange { subvol: sv.0, dir, ino, name_hash: crate::format::name_hash(name), added };
        if self.changes.len() >= MAX_ENTRY_CHANGES || self.changes.try_push(change).is_err() {
            self.overflowed = true;
        }
    }

    /// Whether records of `inos` alone would leave behind a related
    /// change: another inode's entry changed in a directory where one of
    /// theirs did (except the removal of a name one of them then took: the
    /// rename-over victim, which replay recounts), or one of `parents`
    /// (the directories holding their names) was itself renamed or moved.
    pub fn has_related(&self, sv: SubvolId, inos: &[u64], parents: &[u64]) -> bool {
        self.any_uncovered(sv, inos, |c, own| is_related(c, own, parents))
    }

    /// The directories whose records, written before those of `inos`,
    /// leave them nothing related to separate from (`has_related`): each
    /// directory holding a related change, at most `max` of them; `None`
    /// when there are more or the list is incomplete. Whether their
    /// records can say it all is the directory tier's question.
    pub fn dirs_to_log_along(&self, sv: SubvolId, inos: &[u64], parents: &[u64], max: usize) -> Option<TryVec<u64>> {
        if self.overflowed {
            return None;
        }
        let own = self.own_changes(sv, inos).ok()?;
        let mut dirs = TryVec::new();
        for c in self.changes.iter().filter(|c| c.subvol == sv.0 && !inos.contains(&c.ino) && !took_from(&own, c)) {
            if is_related(c, &own, parents) && !dirs.contains(&c.dir) {
                if dirs.len() >= max {
                    return None;
                }
                dirs.try_push(c.dir).ok()?;
            }
        }
        Some(dirs)
    }

    /// The directories other than `dir` where entries changed that
    /// records of `inos` (a directory fsync's: `dir`'s changed files) do
    /// not account for, at most `max` of them; `None` when there are more,
    /// the list is incomplete, or `dir` itself was renamed or moved.
    pub fn dirs_changed_elsewhere(&self, sv: SubvolId, dir: u64, inos: &[u64], max: usize) -> Option<TryVec<u64>> {
        if self.overflowed {
            return None;
        }
        let own = self.own_changes(sv, inos).ok()?;
        let mut dirs = TryVec::new();
        for c in self.changes.iter().filter(|c| c.subvol == sv.0 && !inos.contains(&c.ino) && !took_from(&own, c)) {
            if c.ino == dir {
                return None;
            }
            if c.dir != dir && !dirs.contains(&c.dir) {
                if dirs.len() >= max {
                    return None;
                }
                dirs.try_push(c.dir).ok()?;
            }
        }
        Some(dirs)
    }

    /// Whether `test` holds for a change records of `inos` do not account
    /// for, given their own changes; true when the list is incomplete.
    fn any_uncovered(&self, sv: SubvolId, inos: &[u64], test: impl Fn(&EntryChange, &[EntryChange]) -> bool) -> bool {
        if self.overflowed {
            return true;
        }
        // The records' own changes are few; the others are checked against them.
        let Ok(own) = self.own_changes(sv, inos) else { return true };
        self.changes.iter().filter(|c| c.subvol == sv.0 && !inos.contains(&c.ino) && !took_from(&own, c)).any(|c| test(c, &own))
    }

    /// The changes naming one of `inos`.
    fn own_changes(&self, sv: SubvolId, inos: &[u64]) -> crate::error::Result<TryVec<EntryChange>> {
        let mut own = TryVec::new();
        for c in self.changes.iter().filter(|c| c.subvol == sv.0 && inos.contains(&c.ino)) {
            own.try_push(*c)?;
        }
        Ok(own)
    }

    /// Forgets the changes a written record of `ino` accounts for: its
    /// own, and the removal of each name it took from another inode.
    /// Records are durable in order, so later fsyncs need not carry them.
    pub fn settle(&mut self, sv: SubvolId, ino: u64) {
        // Without memory for the list, the victims' removals stay: that
        // costs a later fsync in their directory a full commit, no more.
        let own = self.own_changes(sv, &[ino]).unwrap_or_default();
        let mut kept = 0;
        for n in 0..self.changes.len() {
            let c = self.changes[n];
            let settled = c.subvol == sv.0 && (c.ino == ino || took_from(&own, &c));
            if !settled {
                self.changes[kept] = c;
                kept += 1;
            }
        }
        self.changes.truncate(kept);
    }
}

/// Whether `c`, another inode's change, is related to records whose own
/// changes are `own` and whose names lie in `parents`: it moved one of
/// those directories, or lies in a directory where one of theirs does.
fn is_related(c: &EntryChange, own: &[EntryChange], parents: &[u64]) -> bool {
    parents.contains(&c.ino) || own.iter().any(|o| o.dir == c.dir)
}

/// Whether `c` is the removal of a name one of `own`'s additions then took
/// in the same directory (a rename over it). Compared by name hash: two
/// names of one hash in one directory within one transaction, one taking
/// the other's place, are counted as the same.
fn took_from(own: &[EntryChange], c: &EntryChange) -> bool {
    !c.added && own.iter().any(|o| o.added && o.dir == c.dir && o.name_hash == c.name_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SV: SubvolId = SubvolId::DEFAULT;

    #[test]
    fn past_the_cap_everything_is_related_until_cleared() {
        let mut r = RelatedChanges::default();
        r.note(SV, 10, 1, b"a", true);
        assert!(!r.has_related(SV, &[2], &[11]), "another directory's change");
        for n in 0..MAX_ENTRY_CHANGES as u64 {
            r.note(SV, 20, 100 + n, b"x", true);
        }
        assert!(r.has_related(SV, &[2], &[11]));
        assert!(r.dirs_changed_elsewhere(SV, 11, &[2], 64).is_none());
        r.clear();
        assert!(!r.has_related(SV, &[2], &[11]));
        assert_eq!(r.dirs_changed_elsewhere(SV, 11, &[2], 64).map(|d| d.len()), Some(0));
    }

    #[test]
    fn a_rename_over_is_the_records_own_but_another_removal_is_not() {
        let mut r = RelatedChanges::default();
        // 2 renamed from "t" over "v" (inode 3), all in directory 10.
        r.note(SV, 10, 3, b"v", false);
        r.note(SV, 10, 2, b"v", true);
        r.note(SV, 10, 2, b"t", false);
        assert!(!r.has_related(SV, &[2], &[10]));
        r.note(SV, 10, 4, b"w", false);
        assert!(r.has_related(SV, &[2], &[10]), "inode 4's removal beside it");
        assert_eq!(r.dirs_to_log_along(SV, &[2], &[10], 8).as_deref(), Some(&[10][..]));
        assert!(r.dirs_to_log_along(SV, &[2], &[10], 0).is_none(), "past the bound");
        r.settle(SV, 2);
        r.note(SV, 10, 6, b"n", true);
        assert!(r.has_related(SV, &[6], &[10]), "inode 4's removal is left");
        r.settle(SV, 4);
        assert!(!r.has_related(SV, &[6], &[10]));
        r.settle(SV, 6);
        assert_eq!(r.dirs_changed_elsewhere(SV, 11, &[], 64).map(|d| d.len()), Some(0));
    }

    #[test]
    fn a_moved_parent_is_related() {
        let mut r = RelatedChanges::default();
        r.note(SV, 1, 10, b"d", false);
        r.note(SV, 1, 10, b"e", true);
        assert!(r.has_related(SV, &[2], &[10]));
        assert_eq!(r.dirs_to_log_along(SV, &[2], &[10], 8).as_deref(), Some(&[1][..]), "the moved parent's own directory");
        assert!(r.dirs_changed_elsewhere(SV, 10, &[2], 64).is_none());
        assert!(!r.has_related(SV, &[2], &[11]));
    }
}
