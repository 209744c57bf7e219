// SPDX-License-Identifier: GPL-2.0
//! `ferrofs send`: asks the kernel for the send stream of a read-only
//! snapshot (`FERROFS_IOC_SEND`) and writes it to a file or to standard
//! output, with a progress line on a terminal.
//!
//! The ioctl blocks until the stream is complete, writing to the
//! descriptor it is given: the output itself when that is a regular file
//! and there is no progress to show (`-q`, or standard error not a
//! terminal); else a pipe of this process's own, enlarged to
//! `PIPE_BYTES`, which this process drains while a second thread waits in
//! the ioctl: spliced into an output pipe, copied in large writes to any
//! other output, counting the bytes for the progress line. A consumer's pipe is
//! never handed to the kernel: at its default 64 KiB the writer and the
//! reader take turns for every 64 KiB, and a large send ran about nine
//! times slower that way (btrfs send also writes through a pipe of its
//! own), and `kernel_write` refuses /dev/null outright. Standard output
//! is refused when it is a terminal.

use crate::ioctl::{FerrofsFile, Kind, OpenError};
use crate::resume_token::ResumeToken;
use crate::strerror;
use ferrofs_core::format::ROOT_DIR_INO;
use ferrofs_core::uapi;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `ferrofs send` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// The read-only snapshot to send.
    pub snapshot: PathBuf,
    /// The read-only snapshot the receiver has (incremental send).
    pub parent: Option<PathBuf>,
    /// Further read-only snapshots the receiver has.
    pub clone_sources: Vec<PathBuf>,
    /// Stream version; the kernel's default (1) when `None`.
    pub proto: Option<u32>,
    /// Write here instead of standard output.
    pub file: Option<PathBuf>,
    /// Leave file data out (UPDATE_EXTENT instead of WRITE).
    pub no_data: bool,
    /// No progress line.
    pub quiet: bool,
    /// Go on with an interrupted transfer (`ferrofs receive --token`).
    pub resume: Option<ResumeToken>,
}

/// Why a send failed, as `ferrofs send: ...` prints it.
#[derive(Debug)]
pub struct SendError(pub String);

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A snapshot as streams name it: UUID and transid.
type StreamIdentity = ([u8; 16], u64);

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// A snapshot's root directory opened, with its subvolume id and its
/// identity in streams (UUID and transid: the received ones for a snapshot
/// that was itself received), checked to be read-only and on the
/// filesystem of `same_fs` when given.
fn open_snapshot(path: &Path, same_fs: Option<&FerrofsFile>) -> Result<(FerrofsFile, u64, StreamIdentity), SendError> {
    let f = FerrofsFile::open(path, Kind::Directory).map_err(|e| match e {
        OpenError::NotFerrofs => SendError(format!("{} is not on a ferrofs filesystem", quoted(path))),
        e => SendError(format!("cannot open {}: {e}", quoted(path))),
    })?;
    let meta = f.file().metadata().map_err(|e| SendError(format!("{}: {}", quoted(path), strerror(&e))))?;
    if meta.ino() != ROOT_DIR_INO {
        return Err(SendError(format!("{} is not a subvolume's root directory", quoted(path))));
    }
    if let Some(other) = same_fs {
        let dev_of = |f: &FerrofsFile| crate::ioctl::fsid(f.file());
        if dev_of(&f).ok() != dev_of(other).ok() {
            return Err(SendError(format!("{} is on another filesystem than the snapshot", quoted(path))));
        }
    }
    let info = f.subvolume_info().map_err(|e| SendError(format!("{}: {}", quoted(path), strerror(&e))))?;
    if info.flags & uapi::SUBVOL_RDONLY == 0 {
        return Err(SendError(format!("{} is not read-only (ferrofs subvolume set-readonly, or snapshot -r)", quoted(path))));
    }
    let identity = if info.received_uuid != [0; 16] { (info.received_uuid, info.stransid) } else { (info.uuid, info.ctransid) };
    Ok((f, info.subvolid, identity))
}

/// Checks that a resume token was left by a transfer of this snapshot
/// (and parent, and version).
fn check_token(t: &ResumeToken, snap: StreamIdentity, parent: Option<StreamIdentity>, version: u32) -> Result<(), SendError> {
    let mismatch = |what: &str| Err(SendError(format!("the resume token is for another {what}")));
    if (t.uuid, t.ctransid) != snap {
        return mismatch("snapshot");
    }
    if t.parent != parent {
        return mismatch("parent (give the -p of the interrupted send)");
    }
    if t.version != version {
        return mismatch("stream version (give the --proto of the interrupted send)");
    }
    Ok(())
}

/// Runs `ferrofs send`.
pub fn send(opts: &SendOptions) -> Result<(), SendError> {
    let (snap, _, snap_id) = open_snapshot(&opts.snapshot, None)?;
    let (parent, parent_id) = match &opts.parent {
        Some(p) => {
            let (_, id, identity) = open_snapshot(p, Some(&snap))?;
            (id, Some(identity))
        }
        None => (0, None),
    };
    let mut clones = Vec::new();
    for c in &opts.clone_sources {
        clones.push(open_snapshot(c, Some(&snap))?.1);
    }
    let mut flags = 0;
    let mut version = 0;
    let proto = opts.proto.or(opts.resume.map(|t| t.version));
    if let Some(v) = proto {
        flags |= uapi::SEND_FLAG_VERSION;
        version = v;
    }
    if opts.no_data {
        flags |= uapi::SEND_FLAG_NO_FILE_DATA;
    }
    let (mut resume, mut resume_crc) = (0, 0);
    if let Some(t) = &opts.resume {
        check_token(t, snap_id, parent_id, proto.unwrap_or(1))?;
        flags |= uapi::SEND_FLAG_RESUME;
        (resume, resume_crc) = (t.commands, t.crc);
    }
    let out = match &opts.file {
        Some(p) => Output::File(File::create(p).map_err(|e| SendError(format!("cannot create {}: {}", quoted(p), strerror(&e))))?),
        None => {
            if io::stdout().is_terminal() {
                return Err(SendError("not writing a binary stream to a terminal: give -f FILE or a pipe".into()));
            }
            Output::Stdout(io::stdout())
        }
    };
    let failed = |e: io::Error| SendError(format!("send of {} failed: {}", quoted(&opts.snapshot), strerror(&e)));
    let show_progress = !opts.quiet && io::stderr().is_terminal();
    if !show_progress && out.is_regular_file() {
        // Nothing to count: the kernel writes straight to the file.
        let r = match &out {
            Output::File(f) => snap.send(f, parent, &clones, flags, version, resume, resume_crc),
            Output::Stdout(o) => snap.send(o, parent, &clones, flags, version, resume, resume_crc),
        };
        return r.map_err(failed);
    }
    let estimate = if show_progress && opts.parent.is_none() && opts.resume.is_none() { Some(tree_bytes(&opts.snapshot)) } else { None };
    let mut progress = Progress::new(show_progress, estimate);
    let (mut reader, writer) = io::pipe().map_err(|e| SendError(format!("pipe: {}", strerror(&e))))?;
    // Best effort: a smaller pipe (a lowered pipe-max-size, the user's
    // pipe quota) only costs speed.
    let _ = crate::posix::set_pipe_size(&writer, PIPE_BYTES);
    let kernel = std::thread::spawn(move || {
        let r = snap.send(&writer, parent, &clones, flags, version, resume, resume_crc);
        drop(writer);
        r
    });
    let copied = if out.is_pipe() { splice_out(&reader, &out, &mut progress) } else { copy_out(&mut reader, &out, &mut progress) };
    // A failed write stops the reading: the kernel then gets EPIPE.
    drop(reader);
    let sent = kernel.join().map_err(|_| SendError("the send thread panicked".into()))?;
    progress.finish();
    sent.map_err(failed)?;
    copied?;
    Ok(())
}

/// Moves the stream from the kernel's pipe into the output pipe without
/// copying it (splice), as btrfs send does: a copy through this process
/// cost a large send a quarter of its speed.
fn splice_out(reader: &io::PipeReader, out: &Output, progress: &mut Progress) -> Result<(), SendError> {
    loop {
        match crate::posix::splice(reader, &out.fd(), PIPE_BYTES) {
            Ok(0) => return Ok(()),
            Ok(n) => progress.add(n as u64),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SendError(format!("writing the stream: {}", strerror(&e)))),
        }
    }
}

/// Copies the stream from the kernel's pipe to an output that is not a
/// pipe, in large writes.
fn copy_out(reader: &mut io::PipeReader, out: &Output, progress: &mut Progress) -> Result<(), SendError> {
    let mut out: Box<dyn Write + '_> = match out {
        Output::File(f) => Box::new(f),
        Output::Stdout(o) => Box::new(o.lock()),
    };
    let mut buf = vec![0u8; PIPE_BYTES];
    let copied = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = out.write_all(&buf[..n]) {
                    break Err(SendError(format!("writing the stream: {}", strerror(&e))));
                }
                progress.add(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(SendError(format!("reading the stream: {}", strerror(&e)))),
        }
    };
    copied?;
    out.flush().map_err(|e| SendError(format!("writing the stream: {}", strerror(&e))))
}

/// Size asked for the pipe the kernel writes into: the default maximum an
/// unprivileged process may set (/proc/sys/fs/pipe-max-size).
const PIPE_BYTES: usize = 1 << 20;

/// Where the stream goes.
enum Output {
    File(File),
    Stdout(io::Stdout),
}

impl Output {
    /// The descriptor written to.
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Output::File(f) => f.as_fd(),
            Output::Stdout(o) => o.as_fd(),
        }
    }

    /// Its file type, if fstat can say.
    fn file_type(&self) -> Option<std::fs::FileType> {
        let f = self.fd().try_clone_to_owned().ok().map(File::from)?;
        f.metadata().ok().map(|m| m.file_type())
    }

    /// Whether it is a regular file, which the kernel may write directly.
    fn is_regular_file(&self) -> bool {
        self.file_type().is_some_and(|t| t.is_file())
    }

    /// Whether it is a pipe, which the stream can be spliced into.
    fn is_pipe(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.file_type().is_some_and(|t| t.is_fifo())
    }
}

/// Bytes of the regular files under `root`, not crossing into nested
/// subvolumes: what a full send's data roughly comes to.
fn tree_bytes(root: &Path) -> u64 {
    let mut total = 0u64;
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() && m.ino() != ROOT_DIR_INO {
                todo.push(e.path());
            } else if m.is_file() {
                total = total.saturating_add(m.len());
            }
        }
    }
    total
}

/// The progress line: bytes, rate and, when the total is known, an
/// estimate of the time left.
struct Progress {
    shown: bool,
    start: Instant,
    last: Instant,
    bytes: u64,
    estimate: Option<u64>,
}

impl Progress {
    fn new(shown: bool, estimate: Option<u64>) -> Self {
        let now = Instant::now();
        Progress { shown, start: now, last: now, bytes: 0, estimate }
    }

    fn add(&mut self, n: u64) {
        self.bytes += n;
        if self.shown && self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            self.draw();
        }
    }

    fn draw(&self) {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = self.bytes as f64 / secs;
        let mut line = format!("\r{} sent, {}/s", human(self.bytes as f64), human(rate));
        if let Some(total) = self.estimate.filter(|&t| t > self.bytes && rate > 0.0) {
            let left = (total - self.bytes) as f64 / rate;
            line.push_str(&format!(", about {:.0} s left", left.ceil()));
        }
        line.push_str("   ");
        let _ = io::stderr().write_all(line.as_bytes());
    }

    fn finish(&self) {
        if self.shown {
            self.draw();
            let _ = io::stderr().write_all(b"\n");
        }
    }
}

fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(0.0), "0 B");
        assert_eq!(human(1023.0), "1023 B");
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
