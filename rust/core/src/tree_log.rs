// SPDX-License-Identifier: GPL-2.0
//! Tree-log records: the fsync tier between a fast-commit record and a full
//! commit. A record holds one inode's complete item set (inode item,
//! xattrs, symlink target, extent items), every name it has now with the
//! slots of its directory entries, and the CRC'd runs of data blocks it
//! gained since the last commit that no earlier record holds. It goes in
//! the fast-commit area, in the same epoch and sequence chain as the
//! fast-commit records, so it costs one write and one flush (shared with
//! the fast-commit records' group commit) and no superblock write; mount
//! replays both kinds in sequence order.
//!
//! Replay is outcome-based (see `crate::tree_log_replay`): the inode ends
//! with exactly the logged items and names, whatever earlier records or
//! the committed state said, so the records of an epoch apply in order and
//! a replay interrupted before its commit gives the same result again.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `FFIL` |
//! | 4 | 4 | CRC32C of the record with this field zero |
//! | 8 | 8 | epoch: generation of the last commit |
//! | 16 | 8 | sequence number in the epoch (shared with `FFCR` records) |
//! | 24 | 4 | record length in bytes |
//! | 28 | 4 | number of runs |
//! | 32 | 8 | subvolume id |
//! | 40 | 8 | inode number |
//! | 48 | 4 | number of names |
//! | 52 | 4 | number of items |
//! | 56 | 144 | inode item |
//! | 200 | 28 each | runs: file block, disk block, blocks (u64 each), data CRC32C (u32) |
//! | then | 25 + n each | names: directory, entry sequence number, `DIR_HASH` offset (u64 each), length (u8), name |
//! | then | 13 + n each | items: key type (u8), key offset (u64), length (u32), value |

use crate::btree::{self, Cursor, Dir, TreeRoot};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::fast_commit::{ChainHeader, FcError, Ineligible, Run, RUN_SIZE};
use crate::format::{
    get_u32, get_u64, get_u8, name_hash, put_u32, put_u64, Bounds, DirEntry, ExtentItem, FileType, InodeItem, Key, RootItem, XattrHead,
    DIR_HASH_KEY, DIR_SEQ_KEY, EXTENT_KEY, INODE_ITEM_SIZE, INODE_KEY, INODE_REF_KEY, ROOT_TREE_ID, SYMLINK_KEY, XATTR_KEY,
};
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::subvol::{ObjectItems, SubvolId};

/// First bytes of every tree-log record.
pub const LOG_MAGIC: [u8; 4] = *b"FFIL";
/// Bytes before the inode item.
const LOG_HEADER: usize = 56;
/// Bytes of a record without runs, names or items.
pub const LOG_BASE: usize = LOG_HEADER + INODE_ITEM_SIZE;
/// Bytes of a name before its text.
const NAME_HEAD: usize = 25;
/// Bytes of an item before its value.
const ITEM_HEAD: usize = 13;
/// Largest record: past this (many extents, big xattrs) a full commit
/// costs about as much, and replay reads it all.
pub const MAX_LOG_RECORD: usize = 65536;
/// Most other directories with changes a directory fsync looks up to see
/// whether they are its subdirectories; past it a full commit serves.
const MAX_RELATED_DIRS: usize = 64;
/// Most directories a file's fsync logs along (`log_related_along`); past
/// it a full commit costs about as much.
const MAX_DIRS_ALONG: usize = 4;

/// One name of the logged inode: where its directory entry is.
#[derive(Debug, PartialEq, Eq)]
pub struct LoggedName {
    /// The directory.
    pub dir: u64,
    /// The entry's sequence number (`DIR_SEQ` offset).
    pub seq: u64,
    /// The entry's `DIR_HASH` key offset.
    pub hash_off: u64,
    /// The name.
    pub name: TryVec<u8>,
}

/// One item of the logged inode other than its inode item and names.
#[derive(Debug, PartialEq, Eq)]
pub struct LoggedItem {
    /// Key type: `XATTR_KEY`, `SYMLINK_KEY` or `EXTENT_KEY`.
    pub ty: u8,
    /// Key offset.
    pub offset: u64,
    /// The value.
    pub data: TryVec<u8>,
}

/// One decoded tree-log record.
#[derive(Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Generation of the commit the record follows.
    pub epoch: u64,
    /// Sequence number within the epoch.
    pub seq: u64,
    /// Subvolume of the inode.
    pub subvol: SubvolId,
    /// Inode number.
    pub ino: u64,
    /// The inode item as it was at the fsync.
    pub inode: InodeItem,
    /// New data runs since the inode's previous record of the epoch.
    pub runs: TryVec<Run>,
    /// Every name the inode had at the fsync.
    pub names: TryVec<LoggedName>,
    /// Its other items, in key order.
    pub items: TryVec<LoggedItem>,
}

/// Whether an item type is one a record carries (the rest of an inode's
/// keys are names, which go in the name list).
fn loggable(ty: u8) -> bool {
    matches!(ty, XATTR_KEY | SYMLINK_KEY | EXTENT_KEY)
}

impl LogRecord {
    /// Encoded length in bytes.
    pub fn len(&self) -> usize {
        let names: usize = self.names.iter().map(|n| NAME_HEAD + n.name.len()).sum();
        let items: usize = self.items.iter().map(|i| ITEM_HEAD + i.data.len()).sum();
        LOG_BASE + self.runs.len() * RUN_SIZE + names + items
    }

    /// Whether it carries nothing beyond the inode item.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.names.is_empty() && self.items.is_empty()
    }

    /// Encodes into `out` (cleared first), padded with zeros to a multiple
    /// of `pad_to` bytes (`AreaLayout::pad_unit`).
    pub fn encode(&self, pad_to: usize, out: &mut TryVec<u8>) -> Result<()> {
        let len = self.len();
        let h = ChainHeader {
            magic: LOG_MAGIC,
            epoch: self.epoch,
            seq: self.seq,
            len,
            runs: self.runs.len(),
            subvol: self.subvol,
            ino: self.ino,
        };
        h.start(pad_to, out)?;
        put_u32(out, 48, self.names.len() as u32)?;
        put_u32(out, 52, self.items.len() as u32)?;
        out[LOG_HEADER..LOG_BASE].copy_from_slice(&self.inode.encode());
        let mut o = LOG_BASE;
        for r in self.runs.iter() {
            r.put(out, o)?;
            o += RUN_SIZE;
        }
        for n in self.names.iter() {
            put_u64(out, o, n.dir)?;
            put_u64(out, o + 8, n.seq)?;
            put_u64(out, o + 16, n.hash_off)?;
            out[o + 24] = n.name.len() as u8;
            out[o + NAME_HEAD..o + NAME_HEAD + n.name.len()].copy_from_slice(&n.name);
            o += NAME_HEAD + n.name.len();
        }
        for i in self.items.iter() {
            out[o] = i.ty;
            put_u64(out, o + 1, i.offset)?;
            put_u32(out, o + 9, i.data.len() as u32)?;
            out[o + ITEM_HEAD..o + ITEM_HEAD + i.data.len()].copy_from_slice(&i.data);
            o += ITEM_HEAD + i.data.len();
        }
        ChainHeader::seal(out, len)
    }

    /// The record length a header announces, if `b` starts with one.
    pub fn announced_len(b: &[u8]) -> Option<usize> {
        ChainHeader::announced(b, LOG_MAGIC)
    }

    /// Decodes a record of exactly `b.len()` bytes, checking its CRC and
    /// every field: the inode is not a directory and has as many links as
    /// names; names are valid, distinct, with slots that match them; items
    /// are of a loggable type, in strictly increasing key order, each
    /// decodable by its own codec and no larger than a leaf item; extents
    /// do not overlap; runs lie inside the filesystem.
    pub fn decode(b: &[u8], bounds: &Bounds) -> Result<Self> {
        let bad = |what| Err(Error::corrupt(what));
        if b.len() < LOG_BASE || b.len() > MAX_LOG_RECORD || Self::announced_len(b) != Some(b.len()) {
            return bad("tree-log record has a bad length");
        }
        if !ChainHeader::crc_matches(b)? {
            return bad("tree-log record checksum mismatch");
        }
        let nruns = get_u32(b, 28)? as usize;
        let nnames = get_u32(b, 48)? as usize;
        let nitems = get_u32(b, 52)? as usize;
        let inode = InodeItem::decode_bounded(&b[LOG_HEADER..LOG_BASE], bounds)?;
        let ty = inode.file_type();
        if ty == FileType::Dir || inode.nlink as usize != nnames {
            return bad("tree-log record's inode is a directory or its link count is not its names");
        }
        let runs_end = nruns.checked_mul(RUN_SIZE).and_then(|n| n.checked_add(LOG_BASE)).filter(|&e| e <= b.len());
        let Some(mut o) = runs_end else { return bad("tree-log record's runs overrun it") };
        let mut runs = TryVec::try_with_capacity(nruns)?;
        for i in 0..nruns {
            runs.try_push(Run::get(b, LOG_BASE + i * RUN_SIZE, bounds)?)?;
        }
        // Each name and item takes at least its head: the counts cannot
        // ask for more than the record holds.
        if nnames > (b.len() - o) / NAME_HEAD || nitems > (b.len() - o) / ITEM_HEAD {
            return bad("tree-log record's counts overrun it");
        }
        let mut names: TryVec<LoggedName> = TryVec::try_with_capacity(nnames)?;
        for _ in 0..nnames {
            let (dir, seq, hash_off) = (get_u64(b, o)?, get_u64(b, o + 8)?, get_u64(b, o + 16)?);
            let len = get_u8(b, o + 24)? as usize;
            let Some(text) = b.get(o + NAME_HEAD..o + NAME_HEAD + len) else { return bad("tree-log name overruns the record") };
            crate::fs::check_name(text).map_err(|_| Error::corrupt("tree-log record has a bad name"))?;
            if dir == 0 || seq < 2 || hash_off >> 32 != name_hash(text) as u64 {
                return bad("tree-log record has a bad name");
            }
            let clash = names.iter().any(|n| n.dir == dir && (n.seq == seq || n.hash_off == hash_off || *n.name == *text));
            if clash {
                return bad("tree-log record names one slot twice");
            }
            let mut name = TryVec::try_with_capacity(len)?;
            name.try_extend_from_slice(text)?;
            names.try_push(LoggedName { dir, seq, hash_off, name })?;
            o += NAME_HEAD + len;
        }
        let max_item = crate::node::max_item_data(bounds.block_size as usize);
        let mut items: TryVec<LoggedItem> = TryVec::try_with_capacity(nitems)?;
        let mut extent_end = 0u64;
        for _ in 0..nitems {
            let (kty, offset) = (get_u8(b, o)?, get_u64(b, o + 1)?);
            let len = get_u32(b, o + 9)? as usize;
            let Some(data) = b.get(o + ITEM_HEAD..).and_then(|r| r.get(..len)) else { return bad("tree-log item overruns the record") };
            if !loggable(kty) || len > max_item {
                return bad("tree-log record holds an item it may not");
            }
            if items.last().is_some_and(|p| (p.ty, p.offset) >= (kty, offset)) {
                return bad("tree-log items out of order");
            }
            match kty {
                EXTENT_KEY => {
                    let e = ExtentItem::decode_bounded(data, offset, bounds)?;
                    if ty != FileType::Regular || offset < extent_end {
                        return bad("tree-log extent overlaps or belongs to no file");
                    }
                    extent_end = offset + e.nblocks;
                }
                SYMLINK_KEY if ty != FileType::Symlink => return bad("tree-log symlink part of a non-symlink"),
                XATTR_KEY if offset & 0xffff == 0 => {
                    let h = XattrHead::decode(data)?;
                    if offset >> 32 != name_hash(h.name) as u64 {
                        return bad("tree-log xattr under the wrong hash");
                    }
                }
                _ => {}
            }
            let mut v = TryVec::try_with_capacity(len)?;
            v.try_extend_from_slice(data)?;
            items.try_push(LoggedItem { ty: kty, offset, data: v })?;
            o += ITEM_HEAD + len;
        }
        if o != b.len() {
            return bad("tree-log record has bytes past its items");
        }
        let h = ChainHeader::read(b)?;
        Ok(LogRecord { epoch: h.epoch, seq: h.seq, subvol: h.subvol, ino: h.ino, inode, runs, names, items })
    }
}

/// A name some record of the running epoch put in place, so a later
/// record can tell whether the slot it wants will be free at replay.
#[derive(Debug)]
pub struct LoggedSlot {
    /// Subvolume.
    pub sv: u64,
    /// Directory.
    pub dir: u64,
    /// Entry sequence number.
    pub seq: u64,
    /// `DIR_HASH` offset.
    pub hash_off: u64,
    /// Inode it names.
    pub ino: u64,
    /// The name.
    pub name: TryVec<u8>,
}

/// A directory entry as the committed state has it.
struct CommittedEntry {
    ino: u64,
    ty: FileType,
    subvol: bool,
    name_matches: bool,
}

impl<D: BlockDevice> Filesystem<D> {
    /// The fs tree of subvolume `sv` as the last commit left it; `None` if
    /// the subvolume was made since (or is being deleted).
    pub(crate) fn committed_fs_root(&mut self, sv: SubvolId) -> Result<Option<TreeRoot>> {
        let p = self.s.sb.root_tree;
        let rt = TreeRoot { id: ROOT_TREE_ID, block: p.block, generation: p.generation, level: p.level, last_snapshot: 0 };
        let bounds = self.s.bounds();
        let ri = btree::get_with(&mut self.s, &rt, &crate::subvol::root_item_key(sv), |b| RootItem::decode_bounded(b, &bounds))?;
        Ok(ri.filter(|ri| !ri.is_dead()).map(|ri| crate::subvol::tree_root(sv.0, &ri)))
    }

    /// The committed entry at `key` of a directory index, compared with `name`.
    fn committed_entry(&mut self, root: &TreeRoot, key: &Key, name: &[u8]) -> Result<Option<CommittedEntry>> {
        btree::get_with(&mut self.s, root, key, |d| {
            let e = DirEntry::decode(d)?;
            Ok(CommittedEntry { ino: e.ino, ty: e.ty, subvol: e.subvol, name_matches: e.name == name })
        })
    }

    /// The committed entry of `name` in `dir`: (inode, type, subvolume).
    fn committed_entry_by_name(&mut self, root: &TreeRoot, dir: u64, name: &[u8]) -> Result<Option<(u64, FileType, bool)>> {
        let h = (name_hash(name) as u64) << 32;
        let mut c = Cursor::new(Key::new(dir, DIR_HASH_KEY, h), Dir::Forward);
        while let Some((k, d)) = c.next(&mut self.s, root)? {
            if k.objectid != dir || k.ty != DIR_HASH_KEY || k.offset >> 32 != h >> 32 {
                break;
            }
            let e = DirEntry::decode(d)?;
            if e.name == name {
                return Ok(Some((e.ino, e.ty, e.subvol)));
            }
        }
        Ok(None)
    }

    /// Whether replay may take a name from `victim`, which held it at the
    /// last commit: a file (not a directory or subvolume) that has no
    /// links now, or whose every name now is one replay will find
    /// (committed and pointing at it, or put back by an earlier record of
    /// the epoch). Otherwise replay would leave it with fewer names than
    /// it has, perhaps none, and reclaim it: a file renamed away and its
    /// old name reused (the "rename foo bar; create foo; fsync foo" case)
    /// needs a full commit, unless the rename was logged first.
    fn victim_replayable(&mut self, sv: SubvolId, root: &TreeRoot, victim: u64) -> Result<bool> {
        let it = match self.read_inode(victim) {
            Ok(it) => it,
            Err(Error::NotFound) => return Ok(true),
            Err(e) => return Err(e),
        };
        if it.is_dir() {
            return Ok(false);
        }
        if it.nlink == 0 {
            return Ok(true);
        }
        for (dir, name) in self.names_of(sv, victim)?.iter() {
            let logged = self.s.fc.logged_slots.iter().any(|l| l.sv == sv.0 && l.dir == *dir && l.ino == victim && *l.name == **name);
            if !logged && self.committed_entry_by_name(root, *dir, name)?.map(|e| e.0) != Some(victim) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The tree-log records for `ino` (whose item is `it`): one for a file
    /// that is not a directory, one per inode whose entry changed for a
    /// directory (`crate::tree_log_dir`); written together under the next
    /// ticket (not flushed: the flush is the fast-commit records' one,
    /// `fsync` or `crate::group_commit`); false when there was nothing to write (a directory whose
    /// entries are all durable already). Why not, when a full commit must
    /// serve.
    pub(crate) fn tree_log(&mut self, sv: SubvolId, ino: u64, it: &InodeItem) -> core::result::Result<bool, FcError> {
        if self.s.sb.fast_commit_blocks == 0 {
            return Err(FcError::Ineligible(Ineligible::NoArea));
        }
        if self.s.sb.incompat & crate::superblock::INCOMPAT_TREE_LOG == 0 {
            return Err(FcError::Ineligible(Ineligible::NoTreeLog));
        }
        // Replay changes nothing in a read-only subvolume (one made so since
        // the last commit may still hold changes): a full commit serves.
        if self.sv.item.is_read_only() {
            return Err(FcError::Ineligible(Ineligible::Changed));
        }
        let Some(committed) = self.committed_fs_root(sv)? else { return Err(FcError::Ineligible(Ineligible::NewParent)) };
        // Records of one fsync see each other's names; a refusal forgets them.
        let mark = self.s.fc.logged_slots.len();
        let r = if it.is_dir() {
            self.dir_records(sv, ino, it, &committed)
        } else {
            self.inode_record(sv, ino, it, &committed, 0).and_then(|rec| {
                let mut v = TryVec::new();
                v.try_push(rec)?;
                Ok(v)
            })
        };
        let r = r.and_then(|recs| {
            // What records of these inodes alone would separate from them
            // in a crash takes a full commit (refused once the records are
            // built, so that a more telling reason is counted first).
            if self.separates_related(sv, ino, it, &recs)? {
                return Err(FcError::Ineligible(Ineligible::Related));
            }
            self.stage_records(&recs)?;
            for rec in recs.iter() {
                self.s.fc.related.settle(sv, rec.ino);
            }
            Ok(!recs.is_empty())
        });
        if r.is_err() {
            self.s.fc.logged_slots.truncate(mark);
        }
        r
    }

    /// A file's fsync whose records alone would be separated from related
    /// entry changes of other inodes (`Ineligible::Related`): the
    /// directories holding those changes are logged first, by the records
    /// their own fsync would write, and then the file, all before the one
    /// flush. Records are durable in order, so a crash between them leaves
    /// what an fsync of those directories would have, a state the tree had.
    /// A directory its tier cannot log (a directory entry moved in it, a
    /// directory made since the last commit) still takes a full commit,
    /// counted as `related`; records already written for the others are
    /// harmless, being true.
    pub(crate) fn log_related_along(&mut self, sv: SubvolId, ino: u64, it: &InodeItem) -> core::result::Result<bool, FcError> {
        let related = FcError::Ineligible(Ineligible::Related);
        let names = self.names_of(sv, ino)?;
        let mut parents = TryVec::try_with_capacity(names.len())?;
        for (d, _) in names.iter() {
            parents.try_push(*d)?;
        }
        let Some(dirs) = self.s.fc.related.dirs_to_log_along(sv, &[ino], &parents, MAX_DIRS_ALONG) else { return Err(related) };
        for &dir in dirs.iter() {
            let dir_item = match self.read_inode(dir) {
                Ok(d) if d.is_dir() => d,
                Ok(_) | Err(Error::NotFound) => return Err(related),
                Err(e) => return Err(e.into()),
            };
            match self.tree_log(sv, dir, &dir_item) {
                Ok(_) => self.s.fc.stats.related_dirs_logged += 1,
                Err(FcError::Ineligible(_)) => return Err(related),
                Err(e) => return Err(e),
            }
        }
        self.tree_log(sv, ino, it)
    }

    /// Whether writing `recs` (the records of `ino`'s fsync) alone would
    /// separate them from related entry changes (`RelatedChanges`). A
    /// directory with nothing to log has nothing to separate.
    fn separates_related(&mut self, sv: SubvolId, ino: u64, it: &InodeItem, recs: &[LogRecord]) -> Result<bool> {
        let mut inos = TryVec::try_with_capacity(recs.len())?;
        for rec in recs.iter() {
            inos.try_push(rec.ino)?;
        }
        if it.is_dir() {
            // A directory's entry set is what its fsync promises; changes
            // in its subdirectories (a file moved out of one) or to its own
            // name go with it. Changes in unrelated directories (other
            // files being made elsewhere) do not hold it back.
            if recs.is_empty() {
                return Ok(false);
            }
            let Some(dirs) = self.s.fc.related.dirs_changed_elsewhere(sv, ino, &inos, MAX_RELATED_DIRS) else { return Ok(true) };
            for d in dirs.iter() {
                match self.names_of(sv, *d) {
                    Ok(names) if names.iter().all(|(parent, _)| *parent != ino) => {}
                    // Under `ino`, or removed since: go together.
                    Ok(_) | Err(Error::NotFound) => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            return Ok(false);
        }
        let names = self.names_of(sv, ino)?;
        let mut parents = TryVec::try_with_capacity(names.len())?;
        for (d, _) in names.iter() {
            parents.try_push(*d)?;
        }
        Ok(self.s.fc.related.has_related(sv, &inos, &parents))
    }

    /// The record of non-directory `ino` (item `it`), taking the sequence
    /// number `nth` after the next free one; its names join the epoch's
    /// known slots.
    pub(crate) fn inode_record(
        &mut self,
        sv: SubvolId,
        ino: u64,
        it: &InodeItem,
        committed: &TreeRoot,
        nth: u64,
    ) -> core::result::Result<LogRecord, FcError> {
        let names = self.log_names(sv, ino, committed)?;
        let mut size = LOG_BASE + names.iter().map(|n| NAME_HEAD + n.name.len()).sum::<usize>();
        let items = self.log_items(ino, &mut size)?;
        let runs = if it.file_type() == FileType::Regular { self.new_runs(ino)? } else { TryVec::new() };
        let rec = LogRecord { epoch: self.s.sb.generation, seq: self.s.fc.next_seq + nth, subvol: sv, ino, inode: *it, runs, names, items };
        if rec.len() > MAX_LOG_RECORD {
            return Err(FcError::Ineligible(Ineligible::LogTooBig));
        }
        self.s.fc.logged_slots.try_reserve(rec.names.len())?;
        for n in rec.names.iter() {
            let name = n.name.try_clone()?;
            self.s.fc.logged_slots.try_push(LoggedSlot { sv: sv.0, dir: n.dir, seq: n.seq, hash_off: n.hash_off, ino, name })?;
        }
        Ok(rec)
    }

    /// Stages `recs` one after the other in the area, to go out with one
    /// write (`crate::record_batch`), under the next ticket; `AreaFull` if
    /// they do not fit.
    fn stage_records(&mut self, recs: &[LogRecord]) -> core::result::Result<(), FcError> {
        if recs.is_empty() {
            return Ok(());
        }
        let area = crate::record_batch::AreaLayout::of(&self.s.sb);
        let mut buf: TryVec<u8> = TryVec::new();
        let mut one = TryVec::new();
        for rec in recs.iter() {
            rec.encode(area.pad_unit(), &mut one)?;
            buf.try_extend_from_slice(&one)?;
        }
        if !self.s.fc.staged.fits(&area, buf.len()) {
            return Err(FcError::Ineligible(Ineligible::AreaFull));
        }
        self.s.fc.staged.stage(&area, &buf, self.s.fc.tickets + 1)?;
        self.s.fc.next_seq += recs.len() as u64;
        self.s.fc.tickets += 1;
        self.s.fc.stats.tree_log_bytes += buf.len() as u64;
        // As with fast-commit runs: never rewritten in place, pinned if freed.
        for r in recs.iter().flat_map(|rec| rec.runs.iter()) {
            self.s.space.txn_alloc.remove(r.disk_block, r.blocks)?;
        }
        for rec in recs.iter().filter(|rec| rec.inode.file_type() == FileType::Regular) {
            self.s.fc.new_data.taken(rec.subvol, rec.ino);
        }
        Ok(())
    }

    /// Every name of `ino` now, with its entry's slots, when replay can put
    /// each back: its directory is in the committed state, and the slots
    /// are free there and in what earlier records of the epoch put back,
    /// or held by this very name or by a name of `ino` (replay moves those
    /// away first).
    fn log_names(&mut self, sv: SubvolId, ino: u64, committed: &TreeRoot) -> core::result::Result<TryVec<LoggedName>, FcError> {
        let mut names = TryVec::new();
        let all = self.names_of(sv, ino)?;
        let mut size = LOG_BASE;
        for (dir, name) in all.iter() {
            let (dir, name) = (*dir, &name[..]);
            // Many links: stop before looking up what cannot fit anyway.
            size += NAME_HEAD + name.len();
            if size > MAX_LOG_RECORD {
                return Err(FcError::Ineligible(Ineligible::LogTooBig));
            }
            let f = self.find_entry(dir, name)?.filter(|f| f.ino == ino).ok_or(Error::corrupt("back-reference without its entry"))?;
            let dir_committed =
                btree::get_with(&mut self.s, committed, &crate::fs::inode_key(dir), |b| Ok(InodeItem::decode(b)?.is_dir()))?;
            if dir_committed != Some(true) {
                return Err(FcError::Ineligible(Ineligible::NewParent));
            }
            for key in [Key::new(dir, DIR_HASH_KEY, f.hash_off), Key::new(dir, DIR_SEQ_KEY, f.seq)] {
                if let Some(e) = self.committed_entry(committed, &key, name)? {
                    let moves_away = !e.subvol && (e.ino == ino || (e.name_matches && e.ty != FileType::Dir));
                    if !moves_away {
                        return Err(FcError::Ineligible(Ineligible::SlotTaken));
                    }
                }
            }
            match self.committed_entry_by_name(committed, dir, name)? {
                Some((_, FileType::Dir, _)) | Some((_, _, true)) => return Err(FcError::Ineligible(Ineligible::SlotTaken)),
                Some((v, _, false)) if v != ino && !self.victim_replayable(sv, committed, v)? => {
                    return Err(FcError::Ineligible(Ineligible::SlotTaken));
                }
                _ => {}
            }
            let taken =
                self.s.fc.logged_slots.iter().any(|l| {
                    l.sv == sv.0 && l.dir == dir && (l.seq == f.seq || l.hash_off == f.hash_off) && l.ino != ino && *l.name != *name
                });
            if taken {
                return Err(FcError::Ineligible(Ineligible::SlotTaken));
            }
            // An earlier record may have given the name to another inode.
            let earlier = self.s.fc.logged_slots.iter().rev().find(|l| l.sv == sv.0 && l.dir == dir && *l.name == *name).map(|l| l.ino);
            if let Some(v) = earlier.filter(|&v| v != ino) {
                if !self.victim_replayable(sv, committed, v)? {
                    return Err(FcError::Ineligible(Ineligible::SlotTaken));
                }
            }
            let mut owned = TryVec::try_with_capacity(name.len())?;
            owned.try_extend_from_slice(name)?;
            names.try_push(LoggedName { dir, seq: f.seq, hash_off: f.hash_off, name: owned })?;
        }
        Ok(names)
    }

    /// `ino`'s items other than its inode item and names, in key order,
    /// adding their encoded size to `size`; `LogTooBig` past the cap.
    fn log_items(&mut self, ino: u64, size: &mut usize) -> core::result::Result<TryVec<LoggedItem>, FcError> {
        let mut items = TryVec::new();
        let root = self.sv.root;
        let mut c = Cursor::new(Key::new(ino, INODE_KEY + 1, 0), Dir::Forward);
        while let Some((k, d)) = c.next(&mut self.s, &root)? {
            if k.objectid != ino {
                break;
            }
            if k.ty == INODE_REF_KEY {
                continue;
            }
            if !loggable(k.ty) {
                return Err(FcError::Failed(Error::corrupt("inode has an item of an unknown type")));
            }
            *size += ITEM_HEAD + d.len();
            if *size > MAX_LOG_RECORD {
                return Err(FcError::Ineligible(Ineligible::LogTooBig));
            }
            let mut data = TryVec::try_with_capacity(d.len())?;
            data.try_extend_from_slice(d)?;
            items.try_push(LoggedItem { ty: k.ty, offset: k.offset, data })?;
        }
        Ok(items)
    }

    /// The names `ino` has in the mounted state, with their entries.
    pub(crate) fn current_names(&mut self, ino: u64) -> Result<TryVec<(u64, TryVec<u8>)>> {
        let mut out = TryVec::new();
        let mut items = ObjectItems::new(ino, INODE_REF_KEY, 0);
        while let Some((_, d)) = items.next(&mut self.s, &self.sv)? {
            let r = crate::format::NameRef::decode(d)?;
            let mut name = TryVec::new();
            name.try_extend_from_slice(r.name)?;
            out.try_push((r.dir, name))?;
        }
        Ok(out)
    }
}
