// SPDX-License-Identifier: GPL-2.0
//! Send: the stream of commands (`crate::send_stream`) that recreates a
//! read-only snapshot on the receiving side, whole or as the difference
//! from a parent snapshot the receiver already has.
//!
//! A send is a `SendSession` driven in steps: `send_step` appends encoded
//! commands to a buffer until it holds about `budget` bytes and returns, so
//! the kernel adapter can write them out without the filesystem lock and
//! look for signals between steps. Everything a session remembers between
//! steps is a position (a directory stack, an index into its plan, a file
//! offset), never a borrowed node, and both snapshots are read-only, so
//! commits of other subvolumes between steps change nothing it reads. A
//! snapshot being sent cannot be deleted or made writable
//! (`NotPermitted`) until `send_end`.
//!
//! A full send walks the snapshot's directory tree depth first from its root
//! and creates each inode where it is first met: a directory's contents
//! follow its creation, its times are set when the walk leaves it (creating
//! entries changes a directory's times on the receiver), and further names
//! of a hard-linked inode become links to the first. Nested subvolumes are
//! not crossed (their names are left out), as btrfs does.
//!
//! An incremental send is planned by `crate::send_plan` from the keys
//! `crate::tree_diff` finds changed.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::*;
use crate::fs::{Filesystem, InodeAttr};
use crate::mem::TryVec;
use crate::send_plan::{Plan, PlanBuilder};
use crate::send_prefetch::{DataAhead, Prefetch, READ_AHEAD};
use crate::send_stream::{max_write, stream_header, Command, StreamEncoder, StreamTime};
use crate::store::divisor;
use crate::subvol::SubvolId;

/// Flag: WRITE commands become UPDATE_EXTENT (offset and length only).
pub const SEND_NO_FILE_DATA: u64 = 0x1;
/// Flag: leave out the stream header (a later stream of a multi-subvolume send).
pub const SEND_OMIT_STREAM_HEADER: u64 = 0x2;
/// Flag: leave out the END command (more streams follow).
pub const SEND_OMIT_END_CMD: u64 = 0x4;
/// Flag: `version` is valid (else version 1).
pub const SEND_VERSION: u64 = 0x8;
/// Flag: resume an interrupted transfer (`SendRequest::resume`).
pub const SEND_RESUME: u64 = 0x10;
/// Every flag send understands.
pub const SEND_FLAGS: u64 = SEND_NO_FILE_DATA | SEND_OMIT_STREAM_HEADER | SEND_OMIT_END_CMD | SEND_VERSION | SEND_RESUME;
/// The xattr a resumed stream sets on the received subvolume's top
/// directory right after SUBVOL or SNAPSHOT, its value the number of
/// commands left out in decimal: `ferrofs receive` takes it as the sign to
/// go on with the partial subvolume (and does not set it).
pub const RESUME_XATTR: &[u8] = b"user.ferrofs.resume";
/// Highest stream version send writes.
pub const SEND_MAX_VERSION: u32 = 2;
/// `FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE`: how a version 2 stream
/// says a range became a hole.
const PUNCH_HOLE_KEEP_SIZE: u32 = 0x1 | 0x2;
/// Longest path a command can carry (attribute lengths are 16 bits).
const PATH_MAX_STREAM: usize = u16::MAX as usize;
/// Most directory levels a path may cross; a deeper chain means a loop.
const MAX_DEPTH: usize = PATH_MAX_STREAM / 2;

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRequest {
    /// The read-only snapshot to recreate.
    pub source: SubvolId,
    /// The read-only snapshot the receiver has, for an incremental send.
    pub parent: Option<SubvolId>,
    /// `SEND_*` flags.
    pub flags: u64,
    /// Stream version, when `flags` has `SEND_VERSION`.
    pub version: u32,
    /// With `SEND_RESUME`: how many commands after SUBVOL or SNAPSHOT the
    /// receiver applied before the transfer broke. The stream is the one
    /// the same request without it would be, those commands left out (the
    /// commands come out the same every time for the same snapshots).
    pub resume: u64,
    /// With `SEND_RESUME` and `resume` > 0: the CRC (from its header) of
    /// the last command the receiver applied. The send checks that its own
    /// command there is the same one: another snapshot, parent, clone
    /// source or option would make another stream.
    pub resume_crc: u32,
}

/// A file whose data is being sent, resumable at `pos`.
pub(crate) struct DataJob {
    pub ino: u64,
    pub path: TryVec<u8>,
    /// Next byte to look at.
    pub pos: u64,
    /// First byte past the range to send.
    pub end: u64,
    /// The parent's size of the file, when only ranges whose blocks differ
    /// from the parent's copy are sent (an incremental send of a changed
    /// file).
    pub diff: Option<u64>,
    /// The inode's generation: a clone source's inode of the same number
    /// is the same file only with the same generation.
    pub gen: u64,
    /// The range last found to send, `(start, stop, data)`: later pieces
    /// of it need no new search.
    pub run: (u64, u64, bool),
}

/// Work (tree positions, inodes) one step of building an incremental
/// plan does before the step ends with nothing written.
const PLAN_WORK: usize = 2048;
/// Directory entries a full send reads at once.
const DIR_BATCH: usize = 64;

/// What an inode's content still needs once its data is out.
pub(crate) struct Finish {
    pub ino: u64,
    pub path: TryVec<u8>,
    pub new: InodeAttr,
    /// The parent's attributes for a changed inode; `None` for one the
    /// receiver does not have yet.
    pub old: Option<InodeAttr>,
    /// Its times wait until its directory entries are done (a directory
    /// in a full send).
    pub defer_times: bool,
}

enum Stage {
    Begin,
    Full,
    /// Building the incremental plan, in steps of `PLAN_WORK`.
    Planning,
    Incremental,
    End,
    Done,
}

/// One directory the full send is inside.
struct Frame {
    dir: u64,
    /// Readdir cookie of the next entry.
    cookie: u64,
    /// Length of `path` for this directory.
    path_len: usize,
}

/// A directory entry of a full send's batch.
#[derive(Clone, Copy)]
struct BatchEntry {
    ino: u64,
    /// Readdir cookie of the entry after it.
    next: u64,
    /// Where its name lies in the batch's names, and how long it is.
    name_at: usize,
    name_len: usize,
    /// Its inode's attributes, looked up once for the batch (the data
    /// read ahead and the entry's commands both need them); `None` for a
    /// nested subvolume's name, which is not crossed.
    attr: Option<InodeAttr>,
}

/// A send in progress.
pub struct SendSession {
    req: SendRequest,
    pub(crate) sink: Sink,
    stage: Stage,
    /// Full send: the directories being walked, the root first.
    stack: TryVec<Frame>,
    /// Full send: the current directory's path (relative, no leading `/`).
    path: TryVec<u8>,
    /// Full send: hard-linked inodes already created, and where, by inode.
    linked: TryVec<(u64, TryVec<u8>)>,
    /// Full send: entries of the top directory read ahead, names in
    /// `batch_names`; the next to take is `batch_at`.
    batch: TryVec<BatchEntry>,
    batch_names: TryVec<u8>,
    batch_at: usize,
    pub(crate) plan: Option<Plan>,
    builder: Option<PlanBuilder>,
    /// Snapshots the receiver has, whose blocks the stream may CLONE:
    /// the clone sources, then the parent; with their stream identities.
    clones: TryVec<(SubvolId, [u8; 16], u64)>,
    pub(crate) data: Option<DataJob>,
    pub(crate) finish: Option<Finish>,
    /// A version 1 hole's WRITE: zeros, `max_write` of them.
    pub(crate) zeros: TryVec<u8>,
    /// The small files' data of the current batch (full send) or of the
    /// next entries (incremental), read ahead.
    pub(crate) prefetch: Prefetch,
    /// File data read ahead: `ahead_len` bytes of inode `ahead_ino` from
    /// byte `ahead_start`.
    ahead: TryVec<u8>,
    ahead_ino: u64,
    ahead_start: u64,
    ahead_len: usize,
    /// The piece the device is reading ahead: the one after `ahead`, or
    /// the first of the next file.
    next_ahead: Option<DataAhead>,
}

impl SendSession {
    /// The request this session serves.
    pub fn request(&self) -> &SendRequest {
        &self.req
    }
}

/// The receiver's view of a snapshot: its UUID and transid, or what it was
/// received as when it came from a stream itself.
fn stream_identity(item: &RootItem) -> ([u8; 16], u64) {
    if item.received_uuid != [0; 16] {
        (item.received_uuid, item.stransid)
    } else {
        (item.uuid, item.ctransid)
    }
}

pub(crate) fn stream_time(t: Timespec) -> StreamTime {
    StreamTime { sec: t.sec as u64, nsec: t.nsec }
}

/// `dir/name`, or `name` at the top (`dir` empty).
pub(crate) fn join(dir: &[u8], name: &[u8]) -> Result<TryVec<u8>> {
    let mut p = TryVec::try_with_capacity(dir.len() + 1 + name.len())?;
    if !dir.is_empty() {
        p.try_extend_from_slice(dir)?;
        p.try_push(b'/')?;
    }
    p.try_extend_from_slice(name)?;
    check_path(&p)?;
    Ok(p)
}

/// The path of names collected walking up from an inode (innermost
/// first): joined top down with `/`, and checked.
pub(crate) fn path_of_parts(parts: &[TryVec<u8>]) -> Result<TryVec<u8>> {
    let mut path = TryVec::new();
    for (i, p) in parts.iter().rev().enumerate() {
        if i > 0 {
            path.try_push(b'/')?;
        }
        path.try_extend_from_slice(p)?;
    }
    check_path(&path)?;
    Ok(path)
}

pub(crate) fn check_path(p: &[u8]) -> Result<()> {
    if p.len() > PATH_MAX_STREAM {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

/// Where commands go: encoded into the step's output, except the first
/// `skip` after the SUBVOL or SNAPSHOT command of a resumed send, which
/// the receiver applied already.
pub(crate) struct Sink {
    pub enc: StreamEncoder,
    /// Commands still to leave out.
    pub skip: u64,
    /// The CRC the last command left out must have.
    pub last_crc: u32,
}

impl Sink {
    /// Appends one encoded command to the step's output (or leaves it out).
    pub(crate) fn emit(&mut self, out: &mut TryVec<u8>, cmd: &Command<'_>) -> Result<()> {
        if self.skip > 1 {
            self.skip -= 1;
            return Ok(());
        }
        if self.skip == 1 {
            // The receiver's last command: it must be this one.
            self.skip = 0;
            let bytes = self.enc.encode(cmd)?;
            let crc = bytes.get(6..10).map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            if crc != self.last_crc {
                return Err(Error::Invalid("send resume token does not match this send"));
            }
            return Ok(());
        }
        self.enc.encode_append(cmd, out)
    }

    /// Whether the next command is left out without being looked at (not
    /// the last one left out, whose CRC is checked).
    fn skips_blind(&self) -> bool {
        self.skip > 1
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Starts a send: checks the request and marks its snapshots busy.
    /// `clones` are further snapshots the receiver has (clone sources).
    /// `Invalid` for unknown flags or versions, a parent that is the
    /// source or shares no history with it; `NotFound` for a snapshot that
    /// does not exist; `NotPermitted` for a snapshot that is not read-only.
    pub fn send_begin(&mut self, req: SendRequest, clones: &[SubvolId]) -> Result<SendSession> {
        if req.flags & !SEND_FLAGS != 0 {
            return Err(Error::Invalid("unknown send flags"));
        }
        let version = if req.flags & SEND_VERSION != 0 { req.version } else { 1 };
        if !(1..=SEND_MAX_VERSION).contains(&version) {
            return Err(Error::Invalid("unsupported send stream version"));
        }
        if req.parent == Some(req.source) {
            return Err(Error::Invalid("send parent is the source"));
        }
        for &sv in core::iter::once(&req.source).chain(req.parent.iter()).chain(clones) {
            if !self.subvolume_read_only(sv)? {
                return Err(Error::NotPermitted);
            }
        }
        if let Some(parent) = req.parent {
            let (p, s) = (self.subvolume_info(parent)?.item, self.subvolume_info(req.source)?.item);
            if !related(&p, &s) {
                return Err(Error::Invalid("send parent unrelated to the source"));
            }
        }
        let enc = StreamEncoder::new(version)?;
        let mut zeros = TryVec::new();
        zeros.try_resize(max_write(version), 0)?;
        let mut sources = TryVec::try_with_capacity(clones.len() + 1)?;
        for &sv in clones.iter().chain(req.parent.iter()) {
            if sv != req.source && !sources.iter().any(|c: &(SubvolId, [u8; 16], u64)| c.0 == sv) {
                let (uuid, ctransid) = stream_identity(&self.subvolume_info(sv)?.item);
                sources.try_push((sv, uuid, ctransid))?;
            }
        }
        self.sending.try_reserve(sources.len() + 1)?;
        let session = SendSession {
            req: SendRequest { version, ..req },
            sink: Sink { enc, skip: 0, last_crc: req.resume_crc },
            stage: Stage::Begin,
            stack: TryVec::new(),
            path: TryVec::new(),
            linked: TryVec::new(),
            batch: TryVec::new(),
            batch_names: TryVec::new(),
            batch_at: 0,
            plan: None,
            builder: None,
            clones: sources,
            data: None,
            finish: None,
            zeros,
            prefetch: Prefetch::default(),
            ahead: TryVec::new(),
            ahead_ino: 0,
            ahead_start: 0,
            ahead_len: 0,
            next_ahead: None,
        };
        for sv in core::iter::once(req.source).chain(session.clones.iter().map(|c| c.0)) {
            self.sending.try_push(sv)?;
        }
        Ok(session)
    }

    /// Ends a send (finished or not): its snapshots may be deleted again.
    pub fn send_end(&mut self, session: SendSession) {
        // A read ahead outstanding holds blocks of a snapshot that may go
        // now (whichever session started it: they share the device).
        self.s.cancel_read_ahead();
        for sv in core::iter::once(session.req.source).chain(session.clones.iter().map(|c| c.0)) {
            if let Some(i) = self.sending.iter().position(|&s| s == sv) {
                self.sending.remove(i);
            }
        }
    }

    /// Whether subvolume `sv` is being sent (and must stay as it is).
    pub(crate) fn is_sending(&self, sv: SubvolId) -> bool {
        self.sending.contains(&sv)
    }

    /// Appends the next commands to `out` until it holds at least `budget`
    /// bytes or the stream is complete; returns whether it is.
    pub fn send_step(&mut self, st: &mut SendSession, out: &mut TryVec<u8>, budget: usize) -> Result<bool> {
        while out.len() < budget {
            if st.data.is_some() {
                self.send_data_chunk(st, out)?;
                continue;
            }
            if let Some(f) = st.finish.take() {
                self.send_finish(st, out, &f)?;
                continue;
            }
            match st.stage {
                Stage::Begin => self.send_start(st, out)?,
                Stage::Full => self.full_step(st, out)?,
                Stage::Planning => {
                    let mut b = st.builder.take().ok_or(Error::Bug("incremental send without a plan builder"))?;
                    match self.plan_build_step(&mut b, PLAN_WORK)? {
                        Some(plan) => {
                            st.plan = Some(plan);
                            st.stage = Stage::Incremental;
                        }
                        None => {
                            // Let the caller drop the core between steps.
                            st.builder = Some(b);
                            return Ok(false);
                        }
                    }
                }
                Stage::Incremental => {
                    let mut plan = st.plan.take().ok_or(Error::Bug("incremental send without a plan"))?;
                    let r = self.plan_step(&mut plan, st, out);
                    let done = plan.done();
                    st.plan = Some(plan);
                    r?;
                    if done {
                        st.stage = Stage::End;
                    }
                }
                Stage::End => {
                    if st.sink.skip > 0 {
                        return Err(Error::Invalid("send resume position past the end of the stream"));
                    }
                    if st.req.flags & SEND_OMIT_END_CMD == 0 {
                        st.sink.emit(out, &Command::End)?;
                    }
                    st.stage = Stage::Done;
                }
                Stage::Done => return Ok(true),
            }
        }
        Ok(matches!(st.stage, Stage::Done) && st.data.is_none() && st.finish.is_none())
    }

    /// The stream header and the SUBVOL or SNAPSHOT command.
    fn send_start(&mut self, st: &mut SendSession, out: &mut TryVec<u8>) -> Result<()> {
        if st.req.flags & SEND_OMIT_STREAM_HEADER == 0 {
            out.try_extend_from_slice(&stream_header(st.sink.enc.version()))?;
        }
        let resume = if st.req.flags & SEND_RESUME != 0 { st.req.resume } else { 0 };
        let info = self.subvolume_info(st.req.source)?;
        let (uuid, ctransid) = stream_identity(&info.item);
        let name = info.name();
        match st.req.parent {
            None => {
                st.sink.emit(out, &Command::Subvol { path: name, uuid, ctransid })?;
                self.resume_marker(st, out, resume)?;
                let root = self.root_ino();
                let new = self.getattr(st.req.source, root)?;
                // The root directory exists on the receiver: its attributes
                // now, its times when the walk leaves it.
                st.finish = Some(Finish { ino: root, path: TryVec::new(), new, old: None, defer_times: true });
                st.stack.try_push(Frame { dir: root, cookie: 0, path_len: 0 })?;
                st.stage = Stage::Full;
            }
            Some(parent) => {
                let p = self.subvolume_info(parent)?;
                let (clone_uuid, clone_ctransid) = stream_identity(&p.item);
                st.sink.emit(out, &Command::Snapshot { path: name, uuid, ctransid, clone_uuid, clone_ctransid })?;
                self.resume_marker(st, out, resume)?;
                st.builder = Some(self.plan_begin(st.req.source, parent)?);
                st.stage = Stage::Planning;
            }
        }
        Ok(())
    }

    /// For a resumed send: the marker `ferrofs receive` knows it by, then
    /// the commands the receiver has are left out.
    fn resume_marker(&mut self, st: &mut SendSession, out: &mut TryVec<u8>, resume: u64) -> Result<()> {
        if st.req.flags & SEND_RESUME == 0 {
            return Ok(());
        }
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = resume;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        st.sink.emit(out, &Command::SetXattr { path: b"", name: RESUME_XATTR, data: &digits[at..] })?;
        st.sink.skip = resume;
        Ok(())
    }

    /// One entry of the full send's walk, or leaving a finished directory.
    fn full_step(&mut self, st: &mut SendSession, out: &mut TryVec<u8>) -> Result<()> {
        let src = st.req.source;
        let Some(top) = st.stack.last() else {
            st.stage = Stage::End;
            return Ok(());
        };
        let (dir, cookie, path_len) = (top.dir, top.cookie, top.path_len);
        if st.batch_at >= st.batch.len() {
            self.read_entries(st, dir, cookie)?;
            for e in st.batch.iter_mut().filter(|e| e.ino != ROOT_DIR_INO) {
                e.attr = Some(self.getattr(src, e.ino)?);
            }
            if st.req.flags & SEND_NO_FILE_DATA == 0 {
                self.prefetch_files(src, st.batch.iter().filter_map(|e| e.attr.as_ref()), &mut st.prefetch)?;
            }
        }
        let found = st.batch.get(st.batch_at).copied();
        st.batch_at += 1;
        let Some(BatchEntry { ino, next, name_at, name_len, attr }) = found else {
            // The directory is complete: its times, then back up. `path`
            // holds the top directory's path.
            let a = self.getattr(src, dir)?;
            let mut p = TryVec::new();
            p.try_extend_from_slice(&st.path[..path_len.min(st.path.len())])?;
            st.stack.pop();
            st.path.truncate(st.stack.last().map_or(0, |f| f.path_len));
            st.batch.clear();
            st.batch_at = 0;
            return self.send_times(st, out, &p, &a);
        };
        if let Some(top) = st.stack.last_mut() {
            top.cookie = next;
        }
        let Some(a) = attr else {
            // A nested subvolume's name: not crossed.
            return Ok(());
        };
        st.path.truncate(path_len);
        let path = join(&st.path, &st.batch_names[name_at..name_at + name_len])?;
        if a.file_type() != FileType::Dir && a.nlink > 1 {
            match st.linked.binary_search_by_key(&ino, |e| e.0) {
                Ok(i) => return st.sink.emit(out, &Command::Link { path: &path, target: &st.linked[i].1 }),
                Err(i) => {
                    let mut first = TryVec::new();
                    first.try_extend_from_slice(&path)?;
                    st.linked.try_insert(i, (ino, first))?;
                }
            }
        }
        self.send_create(st, out, &path, &a)?;
        if a.file_type() == FileType::Dir {
            st.path.truncate(0);
            st.path.try_extend_from_slice(&path)?;
            st.stack.try_push(Frame { dir: ino, cookie: 0, path_len: path.len() })?;
            // The batch was the parent's: read again from its cookie on return.
            st.batch.clear();
            st.batch_at = 0;
            st.finish = Some(Finish { ino, path, new: a, old: None, defer_times: true });
        } else {
            self.start_content(st, ino, path, a, None)?;
        }
        Ok(())
    }

    /// Reads up to `DIR_BATCH` entries of `dir` from `cookie` on into the
    /// session's batch: one directory lookup for many entries.
    fn read_entries(&mut self, st: &mut SendSession, dir: u64, cookie: u64) -> Result<()> {
        st.batch.clear();
        st.batch_names.clear();
        st.batch_at = 0;
        let (batch, names) = (&mut st.batch, &mut st.batch_names);
        let mut err = None;
        self.readdir(st.req.source, dir, cookie.max(2), &mut |name, ino, _, next| {
            let r = names.try_extend_from_slice(name).and_then(|()| {
                batch.try_push(BatchEntry { ino, next, name_at: names.len() - name.len(), name_len: name.len(), attr: None })
            });
            if let Err(e) = r {
                err = Some(e);
                return false;
            }
            batch.len() < DIR_BATCH
        })?;
        err.map_or(Ok(()), Err)
    }

    /// The command that makes inode `a` at `path`.
    pub(crate) fn send_create(&mut self, st: &mut SendSession, out: &mut TryVec<u8>, path: &[u8], a: &InodeAttr) -> Result<()> {
        let ino = a.ino;
        let cmd = match a.file_type() {
            FileType::Regular => Command::Mkfile { path, ino },
            FileType::Dir => Command::Mkdir { path, ino },
            FileType::Fifo => Command::Mkfifo { path, ino },
            FileType::Socket => Command::Mksock { path, ino },
            FileType::CharDev | FileType::BlockDev => Command::Mknod { path, ino, mode: a.mode as u64, rdev: a.rdev },
            FileType::Symlink => {
                let target = self.readlink(st.req.source, ino)?;
                return st.sink.emit(out, &Command::Symlink { path, ino, target: &target });
            }
        };
        st.sink.emit(out, &cmd)
    }

    /// Queues inode `a`'s content at `path`: its data (all of it, or for a
    /// changed file what differs from `old`), then `send_finish`.
    pub(crate) fn start_content(
        &mut self,
        st: &mut SendSession,
        ino: u64,
        path: TryVec<u8>,
        a: InodeAttr,
        old: Option<InodeAttr>,
    ) -> Result<()> {
        if a.file_type() == FileType::Regular {
            let mut dpath = TryVec::new();
            dpath.try_extend_from_slice(&path)?;
            st.data =
                Some(DataJob { ino, path: dpath, pos: 0, end: a.size, diff: old.map(|o| o.size), gen: a.generation, run: (0, 0, false) });
        }
        st.finish = Some(Finish { ino, path, new: a, old, defer_times: false });
        Ok(())
    }

    /// Sends the next piece of the running data job: one WRITE (or one
    /// hole) at most; ends the job at its end.
    fn send_data_chunk(&mut self, st: &mut SendSession, out: &mut TryVec<u8>) -> Result<()> {
        let Some(job) = st.data.as_mut() else { return Ok(()) };
        let (ino, pos, end) = (job.ino, job.pos, job.end);
        if pos >= end {
            st.data = None;
            return Ok(());
        }
        let src = st.req.source;
        let parent = job.diff.zip(st.req.parent);
        // The next range to send, and whether it is data or a hole.
        let (start, stop, data) = if job.run.0 <= pos && pos < job.run.1 {
            (pos, job.run.1, job.run.2)
        } else {
            match parent {
                // All of a read-ahead small file is one run of data.
                None if st.prefetch.size_of(ino) == Some(end) => (pos, end, true),
                None => match self.seek_data(src, ino, pos)? {
                    None => (end, end, false),
                    Some(d) if d >= end => (end, end, false),
                    Some(d) => (d, self.seek_hole(src, ino, d)?.min(end), true),
                },
                Some((old_size, parent)) => match self.next_difference(src, parent, ino, old_size, pos, end)? {
                    None => (end, end, false),
                    Some(r) => r,
                },
            }
        };
        if start >= end {
            st.data = None;
            return Ok(());
        }
        if let Some(job) = st.data.as_mut() {
            job.run = (start, stop, data);
        }
        if data && st.req.flags & SEND_NO_FILE_DATA == 0 {
            if let Some((c, len)) = self.clone_run(st, start, stop)? {
                let (sv, clone_uuid, clone_ctransid) = st.clones[c];
                let clone_path = self.tree_path(sv, ino)?;
                let job = st.data.as_mut().ok_or(Error::Bug("send data job vanished"))?;
                job.pos = start + len;
                let cmd = Command::Clone {
                    path: &job.path,
                    offset: start,
                    len,
                    clone_uuid,
                    clone_ctransid,
                    clone_path: &clone_path,
                    clone_offset: start,
                };
                return st.sink.emit(out, &cmd);
            }
        }
        let max = max_write(st.sink.enc.version()) as u64;
        let len = (stop - start).min(max);
        let job = st.data.as_mut().ok_or(Error::Bug("send data job vanished"))?;
        job.pos = start + len;
        let path = &job.path;
        if st.req.flags & SEND_NO_FILE_DATA != 0 && data {
            return st.sink.emit(out, &Command::UpdateExtent { path, offset: start, len });
        }
        if !data && st.sink.enc.version() >= 2 {
            let cmd = Command::Fallocate { path, mode: PUNCH_HOLE_KEEP_SIZE, offset: start, len };
            return st.sink.emit(out, &cmd);
        }
        if data && st.sink.skips_blind() {
            // A WRITE the receiver has: its data need not be read.
            st.sink.skip -= 1;
            return Ok(());
        }
        if data {
            let ahead_end = st.ahead_start + st.ahead_len as u64;
            if st.ahead_ino != ino || start < st.ahead_start || start + len > ahead_end {
                // Read on from the block holding `start` to the end of the
                // run, up to a piece of whole WRITEs: block-aligned, so the
                // blocks go straight from the device into the (page-aligned)
                // buffer, and the next piece starts where the next WRITE
                // does, so it can be read ahead.
                let bs = self.s.bs as u64;
                let from = start / divisor(bs) * bs;
                let piece = (READ_AHEAD as u64 / max * max).max(max);
                let want = (stop - from).min(piece).max(start - from + len) as usize;
                if st.ahead.len() < want {
                    st.ahead.try_resize(want, 0)?;
                }
                if !st.prefetch.copy(ino, from, &mut st.ahead[..want]) {
                    self.send_read(src, ino, from, &mut st.ahead[..want], &mut st.next_ahead)?;
                    // While this piece is encoded: the next one, as long.
                    let (next, size) = (from + want as u64, st.data.as_ref().map_or(0, |j| j.end));
                    if next < size {
                        self.send_read_ahead(src, ino, next, want as u64, &mut st.next_ahead)?;
                    } else {
                        self.read_ahead_next_entry(st, piece)?;
                    }
                }
                (st.ahead_ino, st.ahead_start, st.ahead_len) = (ino, from, want);
            }
            let off = (start - st.ahead_start) as usize;
            let job = st.data.as_ref().ok_or(Error::Bug("send data job vanished"))?;
            let cmd = Command::Write { path: &job.path, offset: start, data: &st.ahead[off..off + len as usize] };
            return st.sink.emit(out, &cmd);
        }
        // A hole in a version 1 stream: zeros.
        st.sink.emit(out, &Command::Write { path, offset: start, data: &st.zeros[..len as usize] })
    }

    /// Full send, at a file's last piece: has the device read the first
    /// piece of the batch's next entry ahead, when that is a file whose
    /// data the batch did not read ahead (a hard link met before sends no
    /// data, and its read ahead is dropped unused).
    fn read_ahead_next_entry(&mut self, st: &mut SendSession, piece: u64) -> Result<()> {
        if !matches!(st.stage, Stage::Full) {
            return Ok(());
        }
        let Some(a) = st.batch.get(st.batch_at).and_then(|e| e.attr) else { return Ok(()) };
        if a.file_type() != FileType::Regular || a.size == 0 || st.prefetch.size_of(a.ino).is_some() {
            return Ok(());
        }
        let bs = self.s.bs as u64;
        let len = piece.min(crate::store::div_ceil(a.size, bs) * bs);
        self.send_read_ahead(st.req.source, a.ino, 0, len, &mut st.next_ahead)
    }

    /// A clone source that has the same file with the same blocks at
    /// `start` (a snapshot sharing them): its index in the session's
    /// clones and how many bytes from `start` it shares, in whole blocks
    /// inside both files' sizes and below `stop`.
    fn clone_run(&mut self, st: &SendSession, start: u64, stop: u64) -> Result<Option<(usize, u64)>> {
        let Some(job) = st.data.as_ref() else { return Ok(None) };
        let (ino, gen, size) = (job.ino, job.gen, job.end);
        let bs = self.s.bs as u64;
        // (`divisor`: no division-by-zero panic path in the module.)
        if st.clones.is_empty() || start % divisor(bs) != 0 {
            return Ok(None);
        }
        let fb = start / divisor(bs);
        self.enter(st.req.source)?;
        let (Some(blk), run_end) = self.block_run(ino, fb)? else { return Ok(None) };
        for (i, &(sv, _, _)) in st.clones.iter().enumerate() {
            let their_size = match self.getattr(sv, ino) {
                Ok(a) if a.generation == gen && a.file_type() == FileType::Regular && a.nlink > 0 => a.size,
                Ok(_) | Err(Error::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let (their_blk, their_end) = self.block_run(ino, fb)?;
            if their_blk != Some(blk) {
                continue;
            }
            let whole = size.min(their_size) / divisor(bs) * bs;
            let end = run_end.min(their_end).saturating_mul(bs).min(stop).min(whole);
            if end > start {
                return Ok(Some((i, end - start)));
            }
        }
        Ok(None)
    }

    /// A path of inode `ino` in snapshot `sv`, from its back-references.
    fn tree_path(&mut self, sv: SubvolId, ino: u64) -> Result<TryVec<u8>> {
        let mut parts: TryVec<TryVec<u8>> = TryVec::new();
        let mut at = ino;
        while at != ROOT_DIR_INO {
            check_depth(parts.len())?;
            let mut names = self.names_of(sv, at)?;
            if names.is_empty() {
                return Err(Error::corrupt("inode without a name"));
            }
            let (dir, name) = names.remove(0);
            parts.try_push(name)?;
            at = dir;
        }
        path_of_parts(&parts)
    }

    /// The rest of an inode's content once its data is out: size, xattrs,
    /// owner, mode, times, each only when it differs from `old`.
    fn send_finish(&mut self, st: &mut SendSession, out: &mut TryVec<u8>, f: &Finish) -> Result<()> {
        let (a, path) = (&f.new, &f.path[..]);
        let ty = a.file_type();
        if ty == FileType::Regular {
            let old_size = f.old.map_or(0, |o| o.size);
            if a.size != old_size || self.ends_in_hole(st.req.source, f.ino, a.size)? && f.old.is_none() {
                st.sink.emit(out, &Command::Truncate { path, size: a.size })?;
            }
        }
        self.send_xattrs(st, out, f)?;
        if f.old.map_or(true, |o| o.uid != a.uid || o.gid != a.gid) {
            st.sink.emit(out, &Command::Chown { path, uid: a.uid as u64, gid: a.gid as u64 })?;
        }
        if ty != FileType::Symlink && f.old.map_or(true, |o| o.mode != a.mode) {
            st.sink.emit(out, &Command::Chmod { path, mode: (a.mode & 0o7777) as u64 })?;
        }
        if !f.defer_times {
            self.send_times(st, out, path, a)?;
        }
        Ok(())
    }

    /// Whether the file's last byte is in no mapped block: the writes of a
    /// full send then stop short of the size, and TRUNCATE sets it.
    fn ends_in_hole(&mut self, sv: SubvolId, ino: u64, size: u64) -> Result<bool> {
        if size == 0 {
            return Ok(false);
        }
        Ok(self.seek_hole(sv, ino, size - 1)? < size)
    }

    pub(crate) fn send_times(&mut self, st: &mut SendSession, out: &mut TryVec<u8>, path: &[u8], a: &InodeAttr) -> Result<()> {
        let cmd = Command::Utimes { path, atime: stream_time(a.atime), mtime: stream_time(a.mtime), ctime: stream_time(a.ctime) };
        st.sink.emit(out, &cmd)
    }

    /// SET_XATTR for every attribute that is new or changed, REMOVE_XATTR
    /// for every one that went.
    fn send_xattrs(&mut self, st: &mut SendSession, out: &mut TryVec<u8>, f: &Finish) -> Result<()> {
        let src = st.req.source;
        let new_names = self.xattr_names(src, f.ino)?;
        let old = match (f.old, st.req.parent) {
            (Some(_), Some(p)) => Some(p),
            _ => None,
        };
        let old_names = match old {
            Some(p) => self.xattr_names(p, f.ino)?,
            None => TryVec::new(),
        };
        let mut value = TryVec::new();
        let mut old_value = TryVec::new();
        for name in new_names.split(|&c| c == 0).filter(|n| !n.is_empty()) {
            self.xattr_value(src, f.ino, name, &mut value)?;
            if let Some(p) = old {
                if has_name(&old_names, name) {
                    self.xattr_value(p, f.ino, name, &mut old_value)?;
                    if old_value[..] == value[..] {
                        continue;
                    }
                }
            }
            st.sink.emit(out, &Command::SetXattr { path: &f.path, name, data: &value })?;
        }
        for name in old_names.split(|&c| c == 0).filter(|n| !n.is_empty()) {
            if !has_name(&new_names, name) {
                st.sink.emit(out, &Command::RemoveXattr { path: &f.path, name })?;
            }
        }
        Ok(())
    }

    /// The NUL-separated xattr names of an inode.
    fn xattr_names(&mut self, sv: SubvolId, ino: u64) -> Result<TryVec<u8>> {
        let n = self.list_xattr(sv, ino, &mut [])?;
        let mut names = TryVec::new();
        if n == 0 {
            // Most inodes have none: no second lookup.
            return Ok(names);
        }
        names.try_resize(n, 0)?;
        let n = self.list_xattr(sv, ino, &mut names)?;
        names.truncate(n);
        Ok(names)
    }

    fn xattr_value(&mut self, sv: SubvolId, ino: u64, name: &[u8], out: &mut TryVec<u8>) -> Result<()> {
        let n = self.get_xattr(sv, ino, name, &mut [])?;
        out.clear();
        out.try_resize(n, 0)?;
        let n = self.get_xattr(sv, ino, name, out)?;
        out.truncate(n);
        Ok(())
    }
}

/// Whether two subvolumes share history: one is a snapshot of the other,
/// or both are snapshots of one subvolume (a zero parent UUID standing for
/// the default subvolume, which has none). The diff is right for any two
/// trees; this guards against a parent that shares nothing, whose send
/// would cost as much as a full one and which the receiver cannot have.
fn related(a: &RootItem, b: &RootItem) -> bool {
    let nonzero_eq = |x: &[u8; 16], y: &[u8; 16]| *x != [0; 16] && x == y;
    nonzero_eq(&a.uuid, &b.parent_uuid) || nonzero_eq(&b.uuid, &a.parent_uuid) || a.parent_uuid == b.parent_uuid
}

fn has_name(list: &[u8], name: &[u8]) -> bool {
    list.split(|&c| c == 0).any(|n| n == name)
}

/// Depth guard for walks up a directory chain.
pub(crate) fn check_depth(depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::corrupt("directory chain too deep or looping"));
    }
    Ok(())
}
