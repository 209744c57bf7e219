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
use crate::send_plan::Plan;
use crate::send_stream::{max_write, stream_header, Command, StreamEncoder, StreamTime};
use crate::subvol::SubvolId;

/// Flag: WRITE commands become UPDATE_EXTENT (offset and length only).
pub const SEND_NO_FILE_DATA: u64 = 0x1;
/// Flag: leave out the stream header (a later stream of a multi-subvolume send).
pub const SEND_OMIT_STREAM_HEADER: u64 = 0x2;
/// Flag: leave out the END command (more streams follow).
pub const SEND_OMIT_END_CMD: u64 = 0x4;
/// Flag: `version` is valid (else version 1).
pub const SEND_VERSION: u64 = 0x8;
/// Every flag send understands.
pub const SEND_FLAGS: u64 = SEND_NO_FILE_DATA | SEND_OMIT_STREAM_HEADER | SEND_OMIT_END_CMD | SEND_VERSION;
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
}

/// A file whose data is being sent, resumable at `pos`.
pub(crate) struct DataJob {
    pub ino: u64,
    pub path: TryVec<u8>,
    /// Next byte to look at.
    pub pos: u64,
    /// First byte past the range to send.
    pub end: u64,
    /// Compare with the parent's copy of the file and send only ranges
    /// whose blocks differ (an incremental send of a changed file).
    pub diff: bool,
}

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

/// A send in progress.
pub struct SendSession {
    req: SendRequest,
    pub(crate) enc: StreamEncoder,
    stage: Stage,
    /// Full send: the directories being walked, the root first.
    stack: TryVec<Frame>,
    /// Full send: the current directory's path (relative, no leading `/`).
    path: TryVec<u8>,
    /// Full send: hard-linked inodes already created, and where, by inode.
    linked: TryVec<(u64, TryVec<u8>)>,
    pub(crate) plan: Option<Plan>,
    pub(crate) data: Option<DataJob>,
    pub(crate) finish: Option<Finish>,
    pub(crate) chunk: TryVec<u8>,
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

pub(crate) fn check_path(p: &[u8]) -> Result<()> {
    if p.len() > PATH_MAX_STREAM {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

/// Appends one encoded command to the step's output.
pub(crate) fn emit(enc: &mut StreamEncoder, out: &mut TryVec<u8>, cmd: &Command<'_>) -> Result<()> {
    let bytes = enc.encode(cmd)?;
    out.try_extend_from_slice(bytes)
}

impl<D: BlockDevice> Filesystem<D> {
    /// Starts a send: checks the request and marks its snapshots busy.
    /// `Invalid` for unknown flags or versions, a parent that is the
    /// source; `NotFound` for a snapshot that does not exist;
    /// `NotPermitted` for a snapshot that is not read-only.
    pub fn send_begin(&mut self, req: SendRequest) -> Result<SendSession> {
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
        for sv in core::iter::once(req.source).chain(req.parent) {
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
        let mut chunk = TryVec::new();
        chunk.try_resize(max_write(version), 0)?;
        self.sending.try_reserve(2)?;
        let session = SendSession {
            req: SendRequest { version, ..req },
            enc,
            stage: Stage::Begin,
            stack: TryVec::new(),
            path: TryVec::new(),
            linked: TryVec::new(),
            plan: None,
            data: None,
            finish: None,
            chunk,
        };
        for sv in core::iter::once(req.source).chain(req.parent) {
            self.sending.try_push(sv)?;
        }
        Ok(session)
    }

    /// Ends a send (finished or not): its snapshots may be deleted again.
    pub fn send_end(&mut self, session: SendSession) {
        for sv in core::iter::once(session.req.source).chain(session.req.parent) {
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
                    if st.req.flags & SEND_OMIT_END_CMD == 0 {
                        emit(&mut st.enc, out, &Command::End)?;
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
            out.try_extend_from_slice(&stream_header(st.enc.version()))?;
        }
        let info = self.subvolume_info(st.req.source)?;
        let (uuid, ctransid) = stream_identity(&info.item);
        let name = info.name();
        match st.req.parent {
            None => {
                emit(&mut st.enc, out, &Command::Subvol { path: name, uuid, ctransid })?;
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
                emit(&mut st.enc, out, &Command::Snapshot { path: name, uuid, ctransid, clone_uuid, clone_ctransid })?;
                st.plan = Some(self.plan_incremental(st.req.source, parent)?);
                st.stage = Stage::Incremental;
            }
        }
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
        let mut found: Option<(TryVec<u8>, u64, u64)> = None;
        let mut err = None;
        self.readdir(src, dir, cookie.max(2), &mut |name, ino, _, next| {
            let mut n = TryVec::new();
            match n.try_extend_from_slice(name) {
                Ok(()) => found = Some((n, ino, next)),
                Err(e) => err = Some(e),
            }
            false
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        let Some((name, ino, next)) = found else {
            // The directory is complete: its times, then back up. `path`
            // holds the top directory's path.
            let a = self.getattr(src, dir)?;
            let mut p = TryVec::new();
            p.try_extend_from_slice(&st.path[..path_len.min(st.path.len())])?;
            st.stack.pop();
            st.path.truncate(st.stack.last().map_or(0, |f| f.path_len));
            return self.send_times(st, out, &p, &a);
        };
        if let Some(top) = st.stack.last_mut() {
            top.cookie = next;
        }
        if ino == ROOT_DIR_INO {
            // A nested subvolume's name: not crossed.
            return Ok(());
        }
        st.path.truncate(path_len);
        let path = join(&st.path, &name)?;
        let a = self.getattr(src, ino)?;
        if a.file_type() != FileType::Dir && a.nlink > 1 {
            match st.linked.binary_search_by_key(&ino, |e| e.0) {
                Ok(i) => return emit(&mut st.enc, out, &Command::Link { path: &path, target: &st.linked[i].1 }),
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
            st.finish = Some(Finish { ino, path, new: a, old: None, defer_times: true });
        } else {
            self.start_content(st, ino, path, a, None)?;
        }
        Ok(())
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
                return emit(&mut st.enc, out, &Command::Symlink { path, ino, target: &target });
            }
        };
        emit(&mut st.enc, out, &cmd)
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
            st.data = Some(DataJob { ino, path: dpath, pos: 0, end: a.size, diff: old.is_some() });
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
        let parent = if job.diff { st.req.parent } else { None };
        // The next range to send, and whether it is data or a hole.
        let (start, stop, data) = match parent {
            None => match self.seek_data(src, ino, pos)? {
                None => (end, end, false),
                Some(d) if d >= end => (end, end, false),
                Some(d) => (d, self.seek_hole(src, ino, d)?.min(end), true),
            },
            Some(parent) => match self.next_difference(src, parent, ino, pos, end)? {
                None => (end, end, false),
                Some(r) => r,
            },
        };
        if start >= end {
            st.data = None;
            return Ok(());
        }
        let max = max_write(st.enc.version()) as u64;
        let len = (stop - start).min(max);
        let job = st.data.as_mut().ok_or(Error::Bug("send data job vanished"))?;
        job.pos = start + len;
        let path = &job.path;
        if st.req.flags & SEND_NO_FILE_DATA != 0 && data {
            return emit(&mut st.enc, out, &Command::UpdateExtent { path, offset: start, len });
        }
        if !data && st.enc.version() >= 2 {
            let cmd = Command::Fallocate { path, mode: PUNCH_HOLE_KEEP_SIZE, offset: start, len };
            return emit(&mut st.enc, out, &cmd);
        }
        let buf = &mut st.chunk[..len as usize];
        if data {
            let n = self.read(src, ino, start, buf)?;
            // Bytes past what read returned (the file ends) are zeros.
            buf[n..].fill(0);
        } else {
            buf.fill(0);
        }
        emit(&mut st.enc, out, &Command::Write { path, offset: start, data: buf })
    }

    /// The rest of an inode's content once its data is out: size, xattrs,
    /// owner, mode, times, each only when it differs from `old`.
    fn send_finish(&mut self, st: &mut SendSession, out: &mut TryVec<u8>, f: &Finish) -> Result<()> {
        let (a, path) = (&f.new, &f.path[..]);
        let ty = a.file_type();
        if ty == FileType::Regular {
            let old_size = f.old.map_or(0, |o| o.size);
            if a.size != old_size || self.ends_in_hole(st.req.source, f.ino, a.size)? && f.old.is_none() {
                emit(&mut st.enc, out, &Command::Truncate { path, size: a.size })?;
            }
        }
        self.send_xattrs(st, out, f)?;
        if f.old.map_or(true, |o| o.uid != a.uid || o.gid != a.gid) {
            emit(&mut st.enc, out, &Command::Chown { path, uid: a.uid as u64, gid: a.gid as u64 })?;
        }
        if ty != FileType::Symlink && f.old.map_or(true, |o| o.mode != a.mode) {
            emit(&mut st.enc, out, &Command::Chmod { path, mode: (a.mode & 0o7777) as u64 })?;
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
        emit(&mut st.enc, out, &cmd)
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
            emit(&mut st.enc, out, &Command::SetXattr { path: &f.path, name, data: &value })?;
        }
        for name in old_names.split(|&c| c == 0).filter(|n| !n.is_empty()) {
            if !has_name(&new_names, name) {
                emit(&mut st.enc, out, &Command::RemoveXattr { path: &f.path, name })?;
            }
        }
        Ok(())
    }

    /// The NUL-separated xattr names of an inode.
    fn xattr_names(&mut self, sv: SubvolId, ino: u64) -> Result<TryVec<u8>> {
        let n = self.list_xattr(sv, ino, &mut [])?;
        let mut names = TryVec::new();
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
