// SPDX-License-Identifier: GPL-2.0
//! Fast commit: an fsync whose file changed since the last commit only by
//! data writes and attribute changes costs one record in the fast-commit
//! area and one cache flush; mount replays the records of the last epoch.
//!
//! **Records.** A record is logical and holds outcomes: the inode item as
//! it is now, and the runs of data blocks the file gained since the last
//! commit that no earlier record holds (file block, disk block, length,
//! and a CRC32C of the data they hold). Records follow one another from
//! the start of the area, those staged together sharing blocks
//! (`crate::record_batch`); each carries the
//! generation of the last commit (its *epoch*) and its sequence number in
//! that epoch, and a CRC32C over all of it. A commit makes every record
//! stale at once, since the epoch moves on: nothing is ever erased.
//!
//! **One flush.** The data blocks went to the device when they were
//! written (never in place of committed data); the record is written
//! after them with no ordering between the two, and one flush makes both
//! durable. A crash before the flush may keep the record without its
//! data: the data CRC then fails and replay stops there. The flush need
//! not be the writer's own: the kernel issues it outside the core lock and
//! shares it between concurrent fsyncs (`fsync_unflushed`,
//! `crate::group_commit`). Blocks a record
//! holds leave the running transaction's own set (`Space::txn_alloc`), so
//! later writes copy them instead of rewriting them in place, and freeing
//! them pins them until the next commit: the data a durable record points
//! at never changes before that commit makes the record stale.
//!
//! **Eligibility.** A regular file whose inode changed since the last
//! commit only through writes and attribute changes that do not shrink it;
//! one created since then also when it has its one name from its creation,
//! in a directory that existed at the last commit and lost no entry since
//! (so the name's slots are free in the committed state): the record then
//! carries that name. Everything else (links, unlinks, renames, xattrs,
//! truncation, holes, fallocate, directories) is marked when it happens;
//! its fsync goes to a tree-log record (`crate::tree_log`), in the same
//! area and sequence chain, or else to a full commit, counted by reason.
//!
//! **Replay.** At mount the area is read from its start while records of
//! either kind are whole: right magic, CRC, epoch and sequence; an inode
//! of the mounted state; runs inside the filesystem, free in the state the
//! records before left, not overlapping, and data matching their CRCs.
//! Each record is checked against that state and applied in turn
//! (tree-log records by `crate::tree_log_replay`), up to the first that
//! fails (for a fast-commit record: a new file's inode and name first, at
//! the name's logged slots, unless an earlier record did; each run replaces
//! the file's mapping of its range; then the inode item is set) and
//! committed; a read-only mount applies it in memory only.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `FFCR` |
//! | 4 | 4 | CRC32C of the record with this field zero |
//! | 8 | 8 | epoch: generation of the last commit |
//! | 16 | 8 | sequence number in the epoch, from 0 |
//! | 24 | 4 | record length in bytes |
//! | 28 | 4 | number of runs |
//! | 32 | 8 | subvolume id |
//! | 40 | 8 | inode number |
//! | 48 | 144 | inode item |
//! | 192 | 8 | new file's directory (0: the inode's names are committed) |
//! | 200 | 8 | its entry's sequence number (`DIR_SEQ` offset) |
//! | 208 | 8 | its entry's `DIR_HASH` offset |
//! | 216 | 1 | name length (0 without a name) |
//! | 217 | 255 | name, zero padded |
//! | 472 | 28 each | runs: file block, disk block, blocks (u64 each), data CRC32C (u32) |

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::{
    get_u32, get_u64, get_u8, name_hash, put_u32, put_u64, Bounds, FileType, InodeItem, EXTENT_KEY, INODE_ITEM_SIZE, NAME_MAX,
};
use crate::fs::Filesystem;
use crate::mem::TryVec;
use crate::new_data::Scan;
use crate::record_batch::AreaLayout;
use crate::replay_read::{AreaReader, RunCrcs};
use crate::space::ExtentSet;
use crate::store::{divisor, Store};
use crate::subvol::{ObjectItems, SubvolId};
use crate::tree_log::LogRecord;

/// First bytes of every record.
pub const RECORD_MAGIC: [u8; 4] = *b"FFCR";
/// Bytes before the inode item.
const HEADER: usize = 48;
/// Bytes of one run.
pub const RUN_SIZE: usize = 28;
/// Where the name section starts.
const NAME_AT: usize = HEADER + INODE_ITEM_SIZE;
/// Bytes of a record without runs.
pub const RECORD_BASE: usize = NAME_AT + 25 + NAME_MAX;
/// Most new data blocks one fast commit carries; past this a full commit
/// costs little more than writing the data, and replay reads it all.
pub const MAX_RECORD_DATA_BLOCKS: u64 = 256;
/// The longest fast-commit record: every run holds at least one block.
pub const MAX_RECORD_LEN: usize = RECORD_BASE + MAX_RECORD_DATA_BLOCKS as usize * RUN_SIZE;

/// A run of data blocks a record maps into its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First file block.
    pub file_block: u64,
    /// First disk block.
    pub disk_block: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// CRC32C of the run's data, block after block.
    pub data_crc: u32,
}

impl Run {
    /// Writes the run at `o` (both record kinds' layout).
    pub(crate) fn put(&self, out: &mut [u8], o: usize) -> Result<()> {
        put_u64(out, o, self.file_block)?;
        put_u64(out, o + 8, self.disk_block)?;
        put_u64(out, o + 16, self.blocks)?;
        put_u32(out, o + 24, self.data_crc)
    }

    /// Reads the run at `o`: some blocks, inside the filesystem, below
    /// the largest file.
    pub(crate) fn get(b: &[u8], o: usize, bounds: &Bounds) -> Result<Self> {
        let r =
            Run { file_block: get_u64(b, o)?, disk_block: get_u64(b, o + 8)?, blocks: get_u64(b, o + 16)?, data_crc: get_u32(b, o + 24)? };
        if r.blocks == 0
            || !bounds.blocks_inside(r.disk_block, r.blocks)
            || r.file_block.checked_add(r.blocks).map_or(true, |e| e > bounds.max_file_blocks())
        {
            return Err(Error::corrupt("record run out of range"));
        }
        Ok(r)
    }
}

/// The first 48 bytes both record kinds share: magic, CRC (sealed last),
/// epoch, sequence number, length, run count, subvolume, inode.
pub(crate) struct ChainHeader {
    pub magic: [u8; 4],
    pub epoch: u64,
    pub seq: u64,
    pub len: usize,
    pub runs: usize,
    pub subvol: SubvolId,
    pub ino: u64,
}

impl ChainHeader {
    /// Clears `out` to `len` bytes padded to a multiple of `pad_to` (the
    /// area's `AreaLayout::pad_unit`) and writes the header into it.
    pub(crate) fn start(&self, pad_to: usize, out: &mut TryVec<u8>) -> Result<()> {
        // (`store::div_ceil`: no division-by-zero panic path in the module.)
        let unit = pad_to.max(1);
        let padded = crate::store::div_ceil(self.len as u64, unit as u64) as usize * unit;
        out.clear();
        out.try_resize(padded, 0)?;
        out[0..4].copy_from_slice(&self.magic);
        put_u64(out, 8, self.epoch)?;
        put_u64(out, 16, self.seq)?;
        put_u32(out, 24, self.len as u32)?;
        put_u32(out, 28, self.runs as u32)?;
        put_u64(out, 32, self.subvol.0)?;
        put_u64(out, 40, self.ino)
    }

    /// The CRC over the record's `len` bytes, taken with its own field
    /// still zero.
    pub(crate) fn seal(out: &mut [u8], len: usize) -> Result<()> {
        let crc = crate::crc32c::checksum(&out[..len]);
        put_u32(out, 4, crc)
    }

    /// The length a header of kind `magic` announces, if `b` starts with
    /// one: `None` when the magic is another (the end of the records).
    pub(crate) fn announced(b: &[u8], magic: [u8; 4]) -> Option<usize> {
        if b.get(0..4)? != magic {
            return None;
        }
        get_u32(b, 24).ok().map(|n| n as usize)
    }

    /// Whether the record `b` (exactly its length) matches its CRC.
    pub(crate) fn crc_matches(b: &[u8]) -> Result<bool> {
        let stored = get_u32(b, 4)?;
        let crc = crate::crc32c::update(!0, b.get(..4).unwrap_or(&[]));
        let crc = crate::crc32c::update(crc, &[0; 4]);
        Ok(!crate::crc32c::update(crc, b.get(8..).unwrap_or(&[])) == stored)
    }

    /// Reads the header of a record whose CRC matched.
    pub(crate) fn read(b: &[u8]) -> Result<Self> {
        Ok(ChainHeader {
            magic: [0; 4],
            epoch: get_u64(b, 8)?,
            seq: get_u64(b, 16)?,
            len: get_u32(b, 24)? as usize,
            runs: get_u32(b, 28)? as usize,
            subvol: SubvolId(get_u64(b, 32)?),
            ino: get_u64(b, 40)?,
        })
    }
}

/// The one name of a file created since the last commit, where its
/// directory entry was put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewName {
    /// The directory.
    pub dir: u64,
    /// The entry's sequence number.
    pub seq: u64,
    /// The entry's `DIR_HASH` key offset.
    pub hash_off: u64,
    /// Name length.
    pub len: u8,
    /// The name, zero padded.
    pub bytes: [u8; NAME_MAX],
}

impl NewName {
    /// The name.
    pub fn name(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// One decoded record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
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
    /// Its name, for a file created since the last commit.
    pub name: Option<NewName>,
    /// New data runs since the inode's previous record of the epoch.
    pub runs: TryVec<Run>,
}

/// Why an fsync was not a fast commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    /// The filesystem has no fast-commit area.
    NoArea,
    /// Not a regular file: for the tree-log tier, a directory whose
    /// entries naming directories or subvolumes changed.
    NotRegular,
    /// Created since the last commit: its names are not committed.
    New,
    /// Names, links, xattrs, a shrinking size, holes or fallocate changed
    /// it since the last commit.
    Changed,
    /// More new data than `MAX_RECORD_DATA_BLOCKS`.
    TooMuchData,
    /// The area has no room left for the record.
    AreaFull,
    /// Fast commits are turned off (mount option `fast_commit=off`).
    Disabled,
    /// A tree-log record would need a directory or subvolume the last
    /// commit does not have.
    NewParent,
    /// A tree-log record's name would need a directory entry slot that
    /// replay could not be sure to find free.
    SlotTaken,
    /// The inode's items exceed a tree-log record (`MAX_LOG_RECORD`).
    LogTooBig,
    /// The filesystem lacks `INCOMPAT_TREE_LOG` (made by an older mkfs).
    NoTreeLog,
    /// Other inodes' names changed alongside (`RelatedChanges::has_related`):
    /// a record of this inode alone would separate them in a crash.
    Related,
}

impl Ineligible {
    /// Every reason, in counter order.
    pub const ALL: [Ineligible; 12] = [
        Ineligible::NoArea,
        Ineligible::NotRegular,
        Ineligible::New,
        Ineligible::Changed,
        Ineligible::TooMuchData,
        Ineligible::AreaFull,
        Ineligible::Disabled,
        Ineligible::NewParent,
        Ineligible::SlotTaken,
        Ineligible::LogTooBig,
        Ineligible::NoTreeLog,
        Ineligible::Related,
    ];

    /// Index of the reason's counter.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason's name in the sysfs statistics (`crate::fsync_stats`);
    /// frozen, since tools and scripts match it.
    pub fn name(self) -> &'static str {
        match self {
            Ineligible::NoArea => "no_area",
            Ineligible::NotRegular => "not_regular",
            Ineligible::New => "new",
            Ineligible::Changed => "changed",
            Ineligible::TooMuchData => "too_much_data",
            Ineligible::AreaFull => "area_full",
            Ineligible::Disabled => "disabled",
            Ineligible::NewParent => "new_parent",
            Ineligible::SlotTaken => "slot_taken",
            Ineligible::LogTooBig => "log_too_big",
            Ineligible::NoTreeLog => "no_tree_log",
            Ineligible::Related => "related",
        }
    }
}

/// What `Filesystem::fsync_unflushed` did, and what is left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnflushedFsync {
    /// The tier that serves the fsync.
    pub tier: FsyncTier,
    /// For a fast commit, the ticket of its record
    /// (`crate::group_commit`): staged, durable only once it is written
    /// and a device flush that began after that has completed.
    pub ticket: Option<u64>,
    /// Tickets up to this one are durable already: the core's last commit
    /// covered them (`FastCommitState::flushed_tickets`).
    pub flushed_tickets: u64,
}

/// How an fsync was made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncTier {
    /// Nothing changed since the last commit: nothing to write.
    Clean,
    /// One record and one flush.
    FastCommit,
    /// One tree-log record (`crate::tree_log`) and one flush.
    TreeLog,
    /// A full commit, and why the fast commit could not serve.
    FullCommit(Ineligible),
}

/// Counters of the fsync tiers and of replay (all since mount).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastCommitStats {
    /// Fsyncs served by a record.
    pub fast_commits: u64,
    /// Of those, records that carried a new file's name.
    pub new_names: u64,
    /// Bytes of records staged (each padded to the area's
    /// `AreaLayout::pad_unit`; not the padding of a batch to whole blocks).
    pub record_bytes: u64,
    /// Fsyncs that found nothing to make durable.
    pub clean: u64,
    /// Fsyncs served by a full commit, by `Ineligible::index`.
    pub full_commits: [u64; Ineligible::ALL.len()],
    /// Records replayed at mount (both kinds).
    pub replayed: u64,
    /// Fsyncs served by a tree-log record.
    pub tree_logs: u64,
    /// Bytes of tree-log records staged (as `record_bytes`).
    pub tree_log_bytes: u64,
    /// Directories logged along with a file's fsync so that its records
    /// are not separated from related name changes
    /// (`Filesystem::log_related_along`).
    pub related_dirs_logged: u64,
    /// Nanoseconds mount spent replaying them (reading, applying and, on
    /// a read-write mount, committing), by `MountOptions::clock`; 0 without
    /// a clock or records.
    pub replay_ns: u64,
}

/// The running epoch's place in the area and what it cannot log.
#[derive(Debug, Default)]
pub struct FastCommitState {
    /// Sequence number of the next record.
    pub next_seq: u64,
    /// Records staged since mount, across epochs: the last record's
    /// ticket (`crate::group_commit`).
    pub tickets: u64,
    /// Tickets up to this one are durable without their records: the
    /// core's last commit made durable what they say (or, in `fsync`, this
    /// thread wrote them all before its flush).
    pub flushed_tickets: u64,
    /// (subvolume, inode) changed since the last commit in ways a record
    /// cannot express, sorted.
    pub ineligible: TryVec<(u64, u64)>,
    /// Where the last replay stopped short of the chain's end: the
    /// sequence number of a whole record of the epoch that did not fit
    /// the filesystem (damage or a hostile image), and what it was.
    pub replay_stop: Option<(u64, &'static str)>,
    /// Names tree-log and fast-commit records of this epoch put back.
    pub logged_slots: TryVec<crate::tree_log::LoggedSlot>,
    /// Directory entries changed since the last commit that no record
    /// accounts for yet.
    pub related: crate::related_changes::RelatedChanges,
    /// Records encoded and not yet taken for writing
    /// (`crate::record_batch`).
    pub staged: crate::record_batch::StagedRecords,
    /// Where each file gained new data blocks no record holds yet
    /// (`crate::new_data`).
    pub new_data: crate::new_data::NewData,
    /// Counters.
    pub stats: FastCommitStats,
}

impl FastCommitState {
    /// A commit made every record stale: the area starts over.
    pub fn committed(&mut self) {
        self.next_seq = 0;
        self.staged.restart();
        self.ineligible.clear();
        self.logged_slots.clear();
        self.related.clear();
        self.new_data.clear();
    }

    /// Marks an inode as not expressible by a record until the next commit.
    pub fn mark(&mut self, sv: SubvolId, ino: u64) -> Result<()> {
        let k = (sv.0, ino);
        // Most marks come in order (each unlinked inode, in inode order when
        // a directory is emptied) or repeat the last: no search through
        // what may be every inode of the transaction.
        match self.ineligible.last() {
            Some(&last) if last == k => return Ok(()),
            Some(&last) if last < k => return self.ineligible.try_push(k),
            None => return self.ineligible.try_push(k),
            Some(_) => {}
        }
        match self.ineligible.binary_search(&k) {
            Ok(_) => Ok(()),
            Err(i) => self.ineligible.try_insert(i, k),
        }
    }

    /// Whether the inode was marked.
    pub fn is_marked(&self, sv: SubvolId, ino: u64) -> bool {
        self.ineligible.binary_search(&(sv.0, ino)).is_ok()
    }
}

impl Record {
    /// Encoded length in bytes.
    pub fn len(&self) -> usize {
        RECORD_BASE + self.runs.len() * RUN_SIZE
    }

    /// Whether it has no runs.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Encodes into `out` (cleared first), padded with zeros to a multiple
    /// of `pad_to` bytes (`AreaLayout::pad_unit`).
    pub fn encode(&self, pad_to: usize, out: &mut TryVec<u8>) -> Result<()> {
        let len = self.len();
        let h = ChainHeader {
            magic: RECORD_MAGIC,
            epoch: self.epoch,
            seq: self.seq,
            len,
            runs: self.runs.len(),
            subvol: self.subvol,
            ino: self.ino,
        };
        h.start(pad_to, out)?;
        out[HEADER..NAME_AT].copy_from_slice(&self.inode.encode());
        if let Some(n) = &self.name {
            put_u64(out, NAME_AT, n.dir)?;
            put_u64(out, NAME_AT + 8, n.seq)?;
            put_u64(out, NAME_AT + 16, n.hash_off)?;
            out[NAME_AT + 24] = n.len;
            out[NAME_AT + 25..RECORD_BASE].copy_from_slice(&n.bytes);
        }
        for (i, r) in self.runs.iter().enumerate() {
            r.put(out, RECORD_BASE + i * RUN_SIZE)?;
        }
        ChainHeader::seal(out, len)
    }

    /// The record length a header announces, if `b` starts with one:
    /// `None` when the magic is wrong (the end of the records).
    pub fn announced_len(b: &[u8]) -> Option<usize> {
        ChainHeader::announced(b, RECORD_MAGIC)
    }

    /// Decodes a record of exactly `b.len()` bytes (its announced length),
    /// checking its CRC and the bounds of every field.
    pub fn decode(b: &[u8], bounds: &Bounds) -> Result<Self> {
        if b.len() < RECORD_BASE || Self::announced_len(b) != Some(b.len()) {
            return Err(Error::corrupt("fast-commit record has a bad length"));
        }
        let nruns = get_u32(b, 28)? as usize;
        if nruns.checked_mul(RUN_SIZE) != Some(b.len() - RECORD_BASE) {
            return Err(Error::corrupt("fast-commit record length and run count disagree"));
        }
        if !ChainHeader::crc_matches(b)? {
            return Err(Error::corrupt("fast-commit record checksum mismatch"));
        }
        let inode = InodeItem::decode_bounded(&b[HEADER..NAME_AT], bounds)?;
        let dir = get_u64(b, NAME_AT)?;
        let len = get_u8(b, NAME_AT + 24)?;
        let name = match (dir, len) {
            (0, 0) => None,
            (0, _) | (_, 0) => return Err(Error::corrupt("fast-commit record has half a name")),
            _ => {
                let mut bytes = [0u8; NAME_MAX];
                bytes.copy_from_slice(&b[NAME_AT + 25..RECORD_BASE]);
                let n = NewName { dir, seq: get_u64(b, NAME_AT + 8)?, hash_off: get_u64(b, NAME_AT + 16)?, len, bytes };
                crate::fs::check_name(n.name()).map_err(|_| Error::corrupt("fast-commit record has a bad name"))?;
                if n.bytes[len as usize..].iter().any(|&c| c != 0) || n.hash_off >> 32 != name_hash(n.name()) as u64 {
                    return Err(Error::corrupt("fast-commit record has a bad name"));
                }
                Some(n)
            }
        };
        let mut runs = TryVec::try_with_capacity(nruns)?;
        for i in 0..nruns {
            runs.try_push(Run::get(b, RECORD_BASE + i * RUN_SIZE, bounds)?)?;
        }
        let h = ChainHeader::read(b)?;
        Ok(Record { epoch: h.epoch, seq: h.seq, subvol: h.subvol, ino: h.ino, inode, name, runs })
    }
}

/// CRC32C of `blocks` data blocks from `disk`, read in pieces of at most
/// 64 KiB (the same value however the run is split into reads).
pub(crate) fn data_crc<D: BlockDevice>(s: &mut Store<D>, disk: u64, blocks: u64) -> Result<u32> {
    let bs = s.bs as u64;
    let per = (65536 / divisor(bs)).max(1);
    let mut buf = TryVec::new();
    let mut crc = !0u32;
    let mut done = 0;
    while done < blocks {
        let n = (blocks - done).min(per);
        buf.try_resize((n * bs) as usize, 0)?;
        s.read_blocks(disk + done, &mut buf)?;
        crc = crate::crc32c::update(crc, &buf);
        done += n;
    }
    Ok(!crc)
}

/// The CRC of a record's run at replay: as `RunCrcs` took it when the
/// run was set aside, or read now (a run that was not free then, which
/// its record's check refuses anyway).
pub(crate) fn replay_data_crc<D: BlockDevice>(s: &mut Store<D>, crcs: &RunCrcs, r: &Run) -> Result<u32> {
    match crcs.get(r.disk_block, r.blocks) {
        Some(crc) => Ok(crc),
        None => data_crc(s, r.disk_block, r.blocks),
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Makes inode `ino` of subvolume `sv` durable: its data as written to
    /// the core so far, its attributes, and (by a full commit when a
    /// record cannot express them) its names. Returns the tier that did it.
    /// A fast commit's record is flushed here, with the caller waiting;
    /// the kernel shares that flush between concurrent fsyncs instead
    /// (`fsync_unflushed`).
    pub fn fsync(&mut self, sv: SubvolId, ino: u64) -> Result<FsyncTier> {
        let done = self.fsync_unflushed(sv, ino)?;
        if done.ticket.is_some() {
            self.write_staged_records()?;
            self.s.flush()?;
            // Every record was written, by this thread, before that flush.
            self.s.fc.flushed_tickets = self.s.fc.tickets;
        }
        Ok(done.tier)
    }

    /// `fsync` short of the fast commit's write and flush: a full commit
    /// is done (and flushed) here, but a record is only staged
    /// (`crate::record_batch`). The fsync is complete once the staged
    /// records up to its ticket are written (`take_record_batch`, or
    /// `write_staged_records`) and a device flush that began after that
    /// write has completed (`UnflushedFsync::ticket`,
    /// `crate::group_commit`). The caller may write and flush outside
    /// whatever lock it holds around the core.
    pub fn fsync_unflushed(&mut self, sv: SubvolId, ino: u64) -> Result<UnflushedFsync> {
        let done = self.fsync_staged(sv, ino)?;
        if !matches!(done.tier, FsyncTier::FullCommit(_)) {
            return Ok(done);
        }
        self.commit()?;
        Ok(UnflushedFsync { flushed_tickets: self.s.fc.flushed_tickets, ..done })
    }

    /// `fsync_unflushed` short of the full commit as well: when the tier
    /// is `FullCommit`, the fsync is complete once the caller has run a
    /// commit (any commit sealed after this call). The kernel runs it with
    /// its lock downgraded (`commit_seal`, `commit_write`,
    /// `commit_done`), so reads go on during the commit's I/O.
    pub fn fsync_staged(&mut self, sv: SubvolId, ino: u64) -> Result<UnflushedFsync> {
        let tier = self.fsync_tier(sv, ino)?;
        let fc = &self.s.fc;
        let ticket = match tier {
            FsyncTier::FastCommit | FsyncTier::TreeLog => Some(fc.tickets),
            // A directory whose entries earlier records hold: those must be
            // durable too before the fsync returns.
            FsyncTier::Clean if fc.tickets > fc.flushed_tickets => Some(fc.tickets),
            _ => None,
        };
        Ok(UnflushedFsync { tier, ticket, flushed_tickets: self.s.fc.flushed_tickets })
    }

    fn fsync_tier(&mut self, sv: SubvolId, ino: u64) -> Result<FsyncTier> {
        self.check_writable()?;
        self.enter(sv)?;
        let it = self.read_inode(ino)?;
        if !self.s.is_dirty() {
            self.s.fc.stats.clean += 1;
            return Ok(FsyncTier::Clean);
        }
        let tried = if self.opts.fast_commit { self.fast_commit(sv, ino, &it) } else { Err(FcError::Ineligible(Ineligible::Disabled)) };
        // What a fast-commit record cannot say, a tree-log record may.
        let tried = match tried {
            Ok(()) => Ok(FsyncTier::FastCommit),
            Err(FcError::Ineligible(Ineligible::NotRegular | Ineligible::New | Ineligible::Changed)) => {
                // A directory whose entries all are as durable already: clean.
                self.tree_log(sv, ino, &it).map(|wrote| if wrote { FsyncTier::TreeLog } else { FsyncTier::Clean })
            }
            Err(e) => Err(e),
        };
        // Records of a file alone would leave related name changes behind:
        // their directories' records go first.
        let tried = match tried {
            Err(FcError::Ineligible(Ineligible::Related)) if !it.is_dir() => {
                self.log_related_along(sv, ino, &it).map(|wrote| if wrote { FsyncTier::TreeLog } else { FsyncTier::Clean })
            }
            t => t,
        };
        match tried {
            Ok(tier) => {
                match tier {
                    FsyncTier::TreeLog => self.s.fc.stats.tree_logs += 1,
                    FsyncTier::Clean => self.s.fc.stats.clean += 1,
                    _ => self.s.fc.stats.fast_commits += 1,
                }
                Ok(tier)
            }
            Err(FcError::Ineligible(why)) => {
                // The commit itself is the caller's (`fsync_staged`).
                self.s.fc.stats.full_commits[why.index()] += 1;
                Ok(FsyncTier::FullCommit(why))
            }
            Err(FcError::Failed(e)) => Err(e),
        }
    }

    /// The record for `ino` (whose item is `it`), written (not flushed)
    /// under the next ticket.
    fn fast_commit(&mut self, sv: SubvolId, ino: u64, it: &InodeItem) -> core::result::Result<(), FcError> {
        let area = AreaLayout::of(&self.s.sb);
        if area.blocks == 0 {
            return Err(FcError::Ineligible(Ineligible::NoArea));
        }
        if it.file_type() != FileType::Regular {
            return Err(FcError::Ineligible(Ineligible::NotRegular));
        }
        if self.s.fc.is_marked(sv, ino) {
            return Err(FcError::Ineligible(Ineligible::Changed));
        }
        let name = if it.generation >= self.s.gen { Some(self.new_name(sv, ino, it)?) } else { None };
        let runs = self.new_runs(ino)?;
        let rec = Record { epoch: self.s.sb.generation, seq: self.s.fc.next_seq, subvol: sv, ino, inode: *it, name, runs };
        let mut buf = TryVec::new();
        rec.encode(area.pad_unit(), &mut buf)?;
        if !self.s.fc.staged.fits(&area, buf.len()) {
            return Err(FcError::Ineligible(Ineligible::AreaFull));
        }
        // Allocated before the record is durable: later tree-log records
        // must know the slots it takes.
        let slot = match &rec.name {
            Some(n) => {
                let mut name = TryVec::new();
                name.try_extend_from_slice(n.name())?;
                self.s.fc.logged_slots.try_reserve(1)?;
                Some(crate::tree_log::LoggedSlot { sv: sv.0, dir: n.dir, seq: n.seq, hash_off: n.hash_off, ino, name })
            }
            None => None,
        };
        self.s.fc.staged.stage(&area, &buf, self.s.fc.tickets + 1)?;
        self.s.fc.next_seq += 1;
        self.s.fc.tickets += 1;
        self.s.fc.stats.record_bytes += buf.len() as u64;
        self.s.fc.stats.new_names += u64::from(rec.name.is_some());
        if let Some(slot) = slot {
            self.s.fc.logged_slots.try_push(slot)?;
        }
        self.s.fc.related.settle(sv, ino);
        // What the record holds is as good as committed until the next
        // commit: never rewritten in place, pinned if freed.
        for r in rec.runs.iter() {
            self.s.space.txn_alloc.remove(r.disk_block, r.blocks)?;
        }
        self.s.fc.new_data.taken(sv, ino);
        Ok(())
    }

    /// The one name of `ino`, created in this transaction, if a record can
    /// carry it: a single link, in a directory of the last commit that
    /// lost no entry since.
    fn new_name(&mut self, sv: SubvolId, ino: u64, it: &InodeItem) -> core::result::Result<NewName, FcError> {
        let new = FcError::Ineligible(Ineligible::New);
        if it.nlink != 1 {
            return Err(new);
        }
        let names = self.names_of(sv, ino)?;
        let [(dir, name)] = &names[..] else { return Err(new) };
        let d = self.read_dir_inode(*dir)?;
        // Other names changed beside it (a link, an xattr removal's inode
        // moved in): the tree-log tier decides, and takes a full commit.
        if d.generation >= self.s.gen || self.s.fc.is_marked(sv, *dir) || self.s.fc.related.has_related(sv, &[ino], &[*dir]) {
            return Err(new);
        }
        let f = self.find_entry(*dir, name)?.filter(|f| f.ino == ino).ok_or(Error::corrupt("back-reference without its entry"))?;
        let mut bytes = [0u8; NAME_MAX];
        bytes[..name.len()].copy_from_slice(name);
        Ok(NewName { dir: *dir, seq: f.seq, hash_off: f.hash_off, len: name.len() as u8, bytes })
    }

    /// The runs of `ino`'s data that this transaction wrote and no record
    /// holds yet (its extents' blocks still in `txn_alloc`), with the CRC
    /// of their data (`crate::written_crc`, else read back from the device).
    pub(crate) fn new_runs(&mut self, ino: u64) -> core::result::Result<TryVec<Run>, FcError> {
        let bounds = self.s.bounds();
        let gen = self.s.gen;
        let mut extents: TryVec<(u64, u64, u64, bool)> = TryVec::new();
        // Only where the file gained new blocks (`crate::new_data`): the
        // extent covering the range's start, then those starting in it.
        let (from, to) = match self.s.fc.new_data.scan(self.sv.id, ino) {
            Scan::Nothing => return Ok(TryVec::new()),
            Scan::Range { from, to } => (from, to),
            Scan::Whole => (0, u64::MAX),
        };
        if let Some((fb, e)) = self.extent_at(ino, from)? {
            if fb < from && e.generation == gen {
                extents.try_push((fb, e.disk_block, e.nblocks, e.unwritten))?;
            }
        }
        let mut items = ObjectItems::new(ino, EXTENT_KEY, from);
        while let Some((fb, d)) = items.next(&mut self.s, &self.sv)? {
            if fb >= to {
                break;
            }
            let e = crate::format::ExtentItem::decode_bounded(d, fb, &bounds)?;
            // Extents untouched since the last commit hold no new blocks.
            if e.generation == gen {
                extents.try_push((fb, e.disk_block, e.nblocks, e.unwritten))?;
            }
        }
        let mut runs = TryVec::new();
        let mut total = 0u64;
        for &(fb, disk, n, unwritten) in extents.iter() {
            let mut pieces: TryVec<(u64, u64, bool)> = TryVec::new();
            self.s.space.txn_alloc.split_by(disk, n, |s, l, inside| pieces.try_push((s, l, inside)))?;
            // Blocks preallocated in this transaction hold no data a CRC
            // could vouch for (whatever the device had there, which a
            // replica of the written blocks need not have): a full commit.
            if unwritten && pieces.iter().any(|p| p.2) {
                return Err(FcError::Ineligible(Ineligible::Changed));
            }
            for &(s, l, _) in pieces.iter().filter(|p| p.2) {
                total += l;
                if total > MAX_RECORD_DATA_BLOCKS {
                    return Err(FcError::Ineligible(Ineligible::TooMuchData));
                }
                runs.try_push(Run { file_block: fb + (s - disk), disk_block: s, blocks: l, data_crc: 0 })?;
            }
        }
        for r in runs.iter_mut() {
            // As remembered when the data was written, or read back. The
            // record takes the blocks: no later one names them again.
            r.data_crc = match self.s.space.written.crc_of(r.disk_block, r.blocks, self.s.bs) {
                Some(crc) => crc,
                None => data_crc(&mut self.s, r.disk_block, r.blocks)?,
            };
            self.s.space.written.forget(r.disk_block, r.blocks);
        }
        Ok(runs)
    }

    /// Reads the records of the last epoch from the area, fast-commit and
    /// tree-log ones in one sequence, and applies the longest whole prefix
    /// in order, each checked against the state the ones before it left
    /// (see the module's header and `crate::tree_log_replay`); returns how
    /// many. Called once at mount, before anything else changes the trees.
    pub(crate) fn replay_fast_commits(&mut self) -> Result<u64> {
        let (area_start, area_blocks) = (self.s.sb.fast_commit_start, self.s.sb.fast_commit_blocks);
        if area_blocks == 0 {
            return Ok(0);
        }
        let bounds = self.s.bounds();
        let epoch = self.s.sb.generation;
        let tree_log = self.s.sb.incompat & crate::superblock::INCOMPAT_TREE_LOG != 0;
        // First every whole record of the epoch, in sequence: each after
        // the one before, at the next 8-byte or else block boundary
        // (`AreaLayout::after`).
        let layout = AreaLayout::of(&self.s.sb);
        let mut pending: TryVec<Pending> = TryVec::new();
        let mut area = AreaReader::new(area_start, area_blocks);
        let mut at = [Some(0), None];
        'records: loop {
            for pos in at.into_iter().flatten() {
                let seq = pending.len() as u64;
                if let Some((rec, end)) = self.record_at(&mut area, &layout, pos, epoch, seq, tree_log, &bounds)? {
                    pending.try_push(rec)?;
                    at = layout.after(end);
                    continue 'records;
                }
            }
            break;
        }
        drop(area);
        // The blocks they claim leave the free set before any is applied:
        // tree nodes that applying one allocates must not land on the data
        // of a later one. (A run that is not free fails its record's check.)
        // Their data CRCs are taken now, in one sorted pass: the data of a
        // set-aside run cannot change until replay ends.
        let mut pinned: TryVec<(u64, u64)> = TryVec::new();
        for p in pending.iter() {
            for r in p.runs() {
                if self.s.space.free.contains(r.disk_block, r.blocks) {
                    self.s.space.pin_for_replay(r.disk_block, r.blocks)?;
                    pinned.try_push((r.disk_block, r.blocks))?;
                }
            }
        }
        let r = RunCrcs::compute(&mut self.s, pinned).and_then(|crcs| self.apply_pending(&pending, &crcs));
        self.s.space.unpin_replay()?;
        let replayed = r?;
        self.s.fc.stats.replayed = replayed;
        Ok(replayed)
    }

    /// The record of `epoch` numbered `seq` at area byte `pos`, whole, and
    /// the area byte after it; `None` if there is none there.
    #[allow(clippy::too_many_arguments)]
    fn record_at(
        &mut self,
        area: &mut AreaReader,
        layout: &AreaLayout,
        pos: u64,
        epoch: u64,
        seq: u64,
        tree_log: bool,
        bounds: &Bounds,
    ) -> Result<Option<(Pending, u64)>> {
        let room = layout.bytes().saturating_sub(pos);
        if room < HEADER as u64 {
            return Ok(None);
        }
        let head = area.bytes(&mut self.s, pos, HEADER as u64)?;
        let (len, min, max, is_log) = match (Record::announced_len(head), LogRecord::announced_len(head)) {
            (Some(len), _) => (len, RECORD_BASE, MAX_RECORD_LEN, false),
            (None, Some(len)) if tree_log => (len, crate::tree_log::LOG_BASE, crate::tree_log::MAX_LOG_RECORD, true),
            _ => return Ok(None),
        };
        if len < min || len > max || len as u64 > room {
            return Ok(None);
        }
        let b = area.bytes(&mut self.s, pos, len as u64)?;
        let decoded = match is_log {
            false => Record::decode(b, bounds).map(Pending::Fast),
            true => LogRecord::decode(b, bounds).map(Pending::Log),
        };
        let Ok(rec) = decoded else { return Ok(None) };
        if rec.epoch_seq() != (epoch, seq) {
            return Ok(None);
        }
        Ok(Some((rec, pos + len as u64)))
    }

    /// Checks and applies `pending` in order, each against the state the
    /// ones before it left, up to the first that does not fit; returns how
    /// many were applied.
    fn apply_pending(&mut self, pending: &[Pending], crcs: &RunCrcs) -> Result<u64> {
        // Sets, not lists of the records before: a chain of thousands of
        // records must not cost a scan of all earlier ones each.
        let mut claimed = ExtentSet::new();
        let mut new_files: TryVec<(SubvolId, u64)> = TryVec::new();
        let mut replayed = 0u64;
        for p in pending {
            match p {
                Pending::Fast(rec) => {
                    if !self.replayable(rec, &new_files, &mut claimed, crcs)? {
                        self.s.fc.replay_stop = Some((replayed, "a fast-commit record does not fit the filesystem"));
                        break;
                    }
                    self.apply_record(rec)?;
                    if rec.name.is_some() {
                        if let Err(at) = new_files.binary_search(&(rec.subvol, rec.ino)) {
                            new_files.try_insert(at, (rec.subvol, rec.ino))?;
                        }
                    }
                }
                Pending::Log(rec) => {
                    let Some(plan) = self.plan_log_record(rec, crcs)? else {
                        self.s.fc.replay_stop = Some((replayed, "a tree-log record does not fit the filesystem"));
                        break;
                    };
                    self.apply_log_record(rec, &plan)?;
                }
            }
            replayed += 1;
        }
        // Fast-commit records leave their reference changes queued (see
        // `apply_record`): a chain of appends then costs one update of
        // the allocation tree, not one per record.
        self.s.apply_refs()?;
        Ok(replayed)
    }

    /// Whether a decoded record of this epoch can be applied: a regular
    /// file of the mounted state, runs on blocks free in it that no
    /// earlier record (nor another of its own runs) claimed, and data
    /// matching the runs' CRCs. `new_files` are the files earlier
    /// fast-commit records made, by subvolume and inode, sorted.
    fn replayable(&mut self, rec: &Record, new_files: &[(SubvolId, u64)], claimed: &mut ExtentSet, crcs: &RunCrcs) -> Result<bool> {
        if rec.inode.file_type() != FileType::Regular || self.enter(rec.subvol).is_err() {
            return Ok(false);
        }
        // A new file of an earlier record is not in the state yet: the
        // earlier record stands for it.
        let made_before = new_files.binary_search(&(rec.subvol, rec.ino)).is_ok();
        match (self.read_inode(rec.ino), &rec.name) {
            (Ok(cur), _) if cur.file_type() == FileType::Regular && cur.generation == rec.inode.generation => {
                // Records apply as they are checked: an earlier one (of
                // either kind) put a new file back already, name and all.
                if let Some(n) = &rec.name {
                    let in_place =
                        self.find_entry(n.dir, n.name())?.is_some_and(|f| f.ino == rec.ino && f.seq == n.seq && f.hash_off == n.hash_off);
                    if !made_before && !in_place {
                        return Ok(false);
                    }
                }
            }
            (Err(Error::NotFound), Some(n)) if made_before || self.new_name_fits(rec.ino, n)? => {}
            (Err(Error::NotFound), None) if made_before => {}
            (Ok(_) | Err(Error::NotFound) | Err(Error::Corrupt(_)), _) => return Ok(false),
            (Err(e), _) => return Err(e),
        }
        for r in rec.runs.iter() {
            if !self.s.space.claimable(r.disk_block, r.blocks) || claimed.overlaps(r.disk_block, r.blocks) {
                return Ok(false);
            }
            if replay_data_crc(&mut self.s, crcs, r)? != r.data_crc {
                return Ok(false);
            }
            // A refused record ends the replay: what it claimed is moot.
            claimed.insert(r.disk_block, r.blocks)?;
        }
        Ok(true)
    }

    /// Whether a new file `ino` can be put back under `n`: a number past
    /// every committed one, in an existing directory whose entry slots for
    /// it are free and which has no entry of that name.
    fn new_name_fits(&mut self, ino: u64, n: &NewName) -> Result<bool> {
        // Not `last_ino`: a tree-log record of the epoch may have put back
        // a newer inode before this one.
        if ino <= crate::format::ROOT_DIR_INO || ino >= crate::format::LAST_INO_LIMIT {
            return Ok(false);
        }
        match self.read_dir_inode(n.dir) {
            Ok(_) => {}
            Err(Error::NotFound | Error::NotDir | Error::Corrupt(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        if self.find_entry(n.dir, n.name())?.is_some() {
            return Ok(false);
        }
        let root = self.sv.root;
        for k in [
            crate::format::Key::new(n.dir, crate::format::DIR_HASH_KEY, n.hash_off),
            crate::format::Key::new(n.dir, crate::format::DIR_SEQ_KEY, n.seq),
        ] {
            if crate::btree::get_len(&mut self.s, &root, &k)?.is_some() {
                return Ok(false);
            }
        }
        Ok(n.seq >= 2)
    }

    /// Applies one checked record: a new file's inode and name first (once),
    /// then each run replaces the file's mapping of its range, then the
    /// inode item is set as logged. The reference changes stay queued
    /// (`apply_pending` applies them, as does the next tree-log record):
    /// nothing replay checks reads the allocation tree, the free-space
    /// sets it does read change at once, and no record of a chain claims a
    /// block an earlier one freed (fsync pins what a record holds).
    fn apply_record(&mut self, rec: &Record) -> Result<()> {
        self.enter(rec.subvol)?;
        if let Some(n) = &rec.name {
            if matches!(self.read_inode(rec.ino), Err(Error::NotFound)) {
                let mut it = InodeItem { size: 0, blocks: 0, ..rec.inode };
                it.transid = self.s.gen;
                crate::btree::insert(&mut self.s, &mut self.sv.root, &crate::fs::inode_key(rec.ino), &it.encode())?;
                self.sv.item.inode_count = self.sv.item.inode_count.saturating_add(1);
                self.sv.item.last_ino = self.sv.item.last_ino.max(rec.ino);
                let d = self.read_dir_inode(n.dir)?;
                let t = crate::dir::Target::inode(rec.ino, FileType::Regular);
                self.add_entry_at(n.dir, d, n.name(), t, n.seq, n.hash_off, rec.inode.ctime)?;
            }
        }
        for r in rec.runs.iter() {
            self.replace_range(rec.ino, r.file_block, r.disk_block, r.blocks)?;
        }
        let mut it = rec.inode;
        self.write_inode(rec.ino, &mut it)
    }
}

/// A whole record of the epoch read at mount, before its check. Held in
/// one vector at most as long as the area has blocks; boxing the larger
/// kind would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Pending {
    Fast(Record),
    Log(LogRecord),
}

impl Pending {
    /// The data runs the record claims.
    fn runs(&self) -> &[Run] {
        match self {
            Pending::Fast(r) => &r.runs,
            Pending::Log(r) => &r.runs,
        }
    }

    /// The epoch it belongs to and its sequence number in it.
    fn epoch_seq(&self) -> (u64, u64) {
        match self {
            Pending::Fast(r) => (r.epoch, r.seq),
            Pending::Log(r) => (r.epoch, r.seq),
        }
    }
}

/// A fast commit's outcome short of success.
pub(crate) enum FcError {
    /// A full commit must serve the fsync.
    Ineligible(Ineligible),
    /// An I/O or other error: the fsync fails.
    Failed(Error),
}

impl From<Error> for FcError {
    fn from(e: Error) -> Self {
        FcError::Failed(e)
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Where the mount's replay stopped before the end of the chain, if a
    /// whole record of the epoch did not fit the filesystem: its sequence
    /// number and why. The fsyncs from there on are lost; the adapter
    /// says so once in the kernel log.
    pub fn replay_stopped(&self) -> Option<(u64, &'static str)> {
        self.s.fc.replay_stop
    }

    /// The fsync tiers' and replay's counters since mount.
    pub fn fast_commit_stats(&self) -> FastCommitStats {
        self.s.fc.stats
    }
}
