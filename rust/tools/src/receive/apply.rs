// SPDX-License-Identifier: GPL-2.0
//! Applies decoded send-stream commands to a directory on any filesystem
//! with plain POSIX calls, as `btrfs receive` does on btrfs, minus the
//! btrfs ioctls:
//!
//! - SUBVOL makes `DIR/<name>` a plain directory; SNAPSHOT makes it a copy
//!   of the parent found through the received-subvolume map (`map.rs`,
//!   `copy.rs`). The commands that follow act inside it.
//! - CLONE uses FICLONERANGE, or copies the bytes where the filesystem
//!   cannot share them; its source is the subvolume being received or one
//!   found through the map.
//! - FALLOCATE falls back, where the filesystem lacks the mode, to what the
//!   mode means for the contents: zeros written over a punched or zeroed
//!   range, the size extended by a plain allocation, nothing for a
//!   keep-size allocation.
//! - FILEATTR (btrfs inode flags) is translated to `FS_*_FL` flags and set
//!   with FS_IOC_SETFLAGS when the subvolume ends, so immutable or
//!   append-only files do not refuse the stream's later writes; where the
//!   filesystem has no such flags it is a warning.
//! - ENCODED_WRITE without compression is a write; a compressed one is an
//!   error (send without `--compressed-data`).
//! - UPDATE_EXTENT (streams sent without file data) does nothing.
//! - Owners, modes and times are set without following symlinks (chmod is
//!   skipped for a symlink: Linux has no symlink modes); ctime cannot be set.
//!
//! A subvolume counts as received at its END: only then is it added to the
//! map. On any error the partial subvolume is removed, or with
//! `keep_partial` renamed to `<name>.partial` and left.

use super::copy;
use super::map::{Entry, ReceivedMap};
use super::paths::{self, cname, resolve, At};
use super::resume;
use crate::ioctl::{FerrofsFile, Kind};
use crate::resume_token::ResumeToken;
use crate::{format_uuid, posix, strerror};
use ferrofs_core::format::ROOT_DIR_INO;
use ferrofs_core::send::RESUME_XATTR;
use ferrofs_core::send_stream::{Command, StreamTime};
use ferrofs_core::uapi;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The subvolume being received.
struct Current {
    /// Its directory's name under the destination.
    name: Vec<u8>,
    /// Its directory.
    root: OwnedFd,
    uuid: [u8; 16],
    ctransid: u64,
    /// The parent of a SNAPSHOT (UUID, ctransid).
    parent: Option<([u8; 16], u64)>,
    /// Commands after SUBVOL or SNAPSHOT applied, and the CRC of the last:
    /// the position a resume token records.
    applied: u64,
    last_crc: u32,
    /// FILEATTR commands, applied at the end: (path, btrfs inode flags).
    fileattrs: Vec<(Vec<u8>, u64)>,
    /// Commands that failed and were passed over (`receive -E`): the
    /// subvolume then differs from the one sent and is not recorded as
    /// received.
    failed: u64,
}

/// Applies commands into one destination directory.
pub struct Applier {
    dest: PathBuf,
    dest_fd: OwnedFd,
    /// The destination as a ferrofs directory, when it is one: subvolumes
    /// are then real ones (see `start`, `begin`, `finish`).
    native: Option<FerrofsFile>,
    map: ReceivedMap,
    keep_partial: bool,
    cur: Option<Current>,
    /// The file the last write-like command opened, by path: consecutive
    /// writes to one file reuse it.
    open_file: Option<(Vec<u8>, File)>,
    /// The version of the stream being read.
    version: u32,
    /// A SUBVOL or SNAPSHOT that may resume a kept partial subvolume.
    pending: Option<resume::Pending>,
    /// Subvolumes received completely, by name.
    pub received: Vec<String>,
    /// Warnings to print (attributes the destination cannot hold).
    pub warnings: Vec<String>,
}

fn io_msg(what: &str, path: &[u8], e: &io::Error) -> String {
    format!("{what} '{}': {}", String::from_utf8_lossy(path), strerror(e))
}

fn time(t: StreamTime) -> Result<(i64, i64), String> {
    let sec = i64::try_from(t.sec).map_err(|_| format!("time {} seconds is out of range", t.sec))?;
    Ok((sec, i64::from(t.nsec)))
}

/// btrfs inode flags (`BTRFS_INODE_*`) to `FS_*_FL` flags, for those that
/// have one: (btrfs bit, FS flag).
const FLAG_MAP: [(u64, u32); 8] = [
    (1 << 1, 0x0080_0000),  // NODATACOW -> FS_NOCOW_FL
    (1 << 3, 0x0000_0400),  // NOCOMPRESS -> FS_NOCOMP_FL
    (1 << 5, 0x0000_0008),  // SYNC -> FS_SYNC_FL
    (1 << 6, 0x0000_0010),  // IMMUTABLE -> FS_IMMUTABLE_FL
    (1 << 7, 0x0000_0020),  // APPEND -> FS_APPEND_FL
    (1 << 8, 0x0000_0040),  // NODUMP -> FS_NODUMP_FL
    (1 << 9, 0x0000_0080),  // NOATIME -> FS_NOATIME_FL
    (1 << 10, 0x0001_0000), // DIRSYNC -> FS_DIRSYNC_FL
];

/// The FS flags for btrfs inode flags, and the mask of FS flags the
/// translation owns.
pub fn fs_flags(btrfs: u64) -> (u32, u32) {
    let mut set = 0;
    let mut mask = 0;
    for (b, f) in FLAG_MAP {
        mask |= f;
        if btrfs & b != 0 {
            set |= f;
        }
    }
    (set, mask)
}

/// fallocate(2) mode bits the fallback understands.
const FALLOC_KEEP_SIZE: u32 = 0x01;
const FALLOC_PUNCH_HOLE: u32 = 0x02;
const FALLOC_ZERO_RANGE: u32 = 0x10;

/// Writes zeros over [start, end) of `f`.
fn write_zeros(f: &File, start: u64, end: u64) -> io::Result<()> {
    let zeros = vec![0u8; 1 << 16];
    let mut at = start;
    while at < end {
        let n = (end - at).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Copies `len` bytes at `src_off` of `src` to `dst_off` of `dst` with
/// reads and writes; `same` when both are one file, where an overlapping
/// range moving up is copied from its end.
fn copy_range(src: &File, src_off: u64, dst: &File, dst_off: u64, len: u64, same: bool) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let backwards = same && dst_off > src_off && dst_off < src_off.saturating_add(len);
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK);
        let rel = if backwards { len - done - n } else { done };
        let b = &mut buf[..n as usize];
        let mut got = 0usize;
        while got < b.len() {
            let r = src.read_at(&mut b[got..], src_off + rel + got as u64)?;
            if r == 0 {
                break;
            }
            got += r;
        }
        // A source that shrank under us: copy what it has.
        dst.write_all_at(&b[..got], dst_off + rel)?;
        if got < b.len() && !backwards {
            break;
        }
        done += n;
    }
    Ok(())
}

impl Applier {
    /// An applier for `dest`, which must be an existing directory.
    pub fn new(dest: &Path, keep_partial: bool) -> Result<Self, String> {
        let dest_fd = File::open(dest)
            .and_then(|f| if f.metadata()?.is_dir() { Ok(OwnedFd::from(f)) } else { Err(io::Error::from_raw_os_error(libc::ENOTDIR)) })
            .map_err(|e| format!("{}: {}", dest.display(), strerror(&e)))?;
        let map = ReceivedMap::load(dest)?;
        let native = FerrofsFile::open(dest, Kind::Directory).ok();
        Ok(Applier {
            dest: dest.to_path_buf(),
            dest_fd,
            native,
            map,
            keep_partial,
            cur: None,
            open_file: None,
            version: 1,
            pending: None,
            received: Vec::new(),
            warnings: Vec::new(),
        })
    }

    fn cur(&self) -> Result<&Current, String> {
        self.cur.as_ref().ok_or_else(|| "command before SUBVOL or SNAPSHOT".to_string())
    }

    fn at(&self, path: &[u8]) -> Result<At, String> {
        resolve(&self.cur()?.root, path)
    }

    /// The file at `path` opened for writing, reused across consecutive
    /// write-like commands on the same path.
    fn file(&mut self, path: &[u8]) -> Result<&File, String> {
        if self.open_file.as_ref().is_none_or(|(p, _)| p != path) {
            self.open_file = None;
            let at = self.at(path)?;
            if at.is_root() {
                return Err("write to the subvolume's root directory".to_string());
            }
            let f = posix::open_file(at.dir.as_fd(), &at.name, libc::O_RDWR).map_err(|e| io_msg("open", path, &e))?;
            self.open_file = Some((path.to_vec(), f));
        }
        Ok(&self.open_file.as_ref().expect("just opened").1)
    }

    /// The directory name for a SUBVOL or SNAPSHOT path: one plain name.
    fn subvol_name(path: &[u8]) -> Result<CString, String> {
        let parts = paths::components(path)?;
        if parts.len() != 1 {
            return Err(format!("subvolume path '{}' is not a single name", String::from_utf8_lossy(path)));
        }
        cname(parts[0])
    }

    /// Creates the subvolume's directory and makes it current.
    fn start(&mut self, path: &[u8], uuid: [u8; 16], ctransid: u64, parent: Option<([u8; 16], u64)>) -> Result<(), String> {
        self.finish()?;
        let name = Self::subvol_name(path)?;
        let made = match &self.native {
            Some(dest) => dest.create_subvolume(name.as_bytes()).map(|_| ()),
            None => posix::mkdirat(self.dest_fd.as_fd(), &name, 0o700),
        };
        made.map_err(|e| {
            if e.raw_os_error() == Some(libc::EEXIST) {
                format!("subvolume '{}' already exists in {}", paths::show(&name), self.dest.display())
            } else {
                io_msg("mkdir", path, &e)
            }
        })?;
        let root = posix::open_dir(self.dest_fd.as_fd(), &name).map_err(|e| io_msg("open", path, &e))?;
        self.cur =
            Some(Current { name: path.to_vec(), root, uuid, ctransid, parent, applied: 0, last_crc: 0, fileattrs: Vec::new(), failed: 0 });
        Ok(())
    }

    /// Starts a subvolume afresh: its directory, and for a SNAPSHOT the copy
    /// of its parent.
    fn begin(&mut self, path: &[u8], uuid: [u8; 16], ctransid: u64, parent: Option<([u8; 16], u64)>) -> Result<(), String> {
        self.finish()?;
        let Some((clone_uuid, clone_ctransid)) = parent else {
            return self.start(path, uuid, ctransid, None);
        };
        let source = self.subvolume_dir(&clone_uuid, clone_ctransid, "parent")?;
        if let Some(snap) = self.native_snapshot(path, &clone_uuid, clone_ctransid)? {
            let root = posix::open_dir(self.dest_fd.as_fd(), &snap).map_err(|e| io_msg("open", path, &e))?;
            self.cur = Some(Current {
                name: path.to_vec(),
                root,
                uuid,
                ctransid,
                parent,
                applied: 0,
                last_crc: 0,
                fileattrs: Vec::new(),
                failed: 0,
            });
            return Ok(());
        }
        self.start(path, uuid, ctransid, parent)?;
        copy::copy_tree(&source, &self.cur()?.root)
    }

    /// On a ferrofs destination, a SNAPSHOT's start as a writable snapshot
    /// of the parent subvolume (found through the map) instead of a copy;
    /// `None` where that cannot be (not ferrofs, or the parent is not a
    /// subvolume of this filesystem).
    fn native_snapshot(&self, path: &[u8], uuid: &[u8; 16], ctransid: u64) -> Result<Option<CString>, String> {
        let Some(dest) = &self.native else { return Ok(None) };
        let Some(parent) = self.map.find(&self.dest, uuid, ctransid) else { return Ok(None) };
        let Ok(source) = FerrofsFile::open(&parent, Kind::Directory) else { return Ok(None) };
        let is_root = source.file().metadata().is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == ROOT_DIR_INO);
        if !is_root || crate::ioctl::fsid(source.file()).ok() != crate::ioctl::fsid(dest.file()).ok() {
            return Ok(None);
        }
        let name = Self::subvol_name(path)?;
        dest.create_snapshot(&source, name.as_bytes(), 0).map_err(|e| {
            if e.raw_os_error() == Some(libc::EEXIST) {
                format!("subvolume '{}' already exists in {}", paths::show(&name), self.dest.display())
            } else {
                io_msg("snapshot", path, &e)
            }
        })?;
        Ok(Some(name))
    }

    /// A SUBVOL or SNAPSHOT: resumable if a kept partial of the same
    /// transfer is there (decided by the next command), else begun.
    fn subvolume_command(&mut self, path: &[u8], uuid: [u8; 16], ctransid: u64, parent: Option<([u8; 16], u64)>) -> Result<(), String> {
        self.finish()?;
        let name = Self::subvol_name(path)?;
        if let Some(token) = resume::stored_token(self.dest_fd.as_fd(), name.as_bytes()) {
            if token.uuid == uuid && token.ctransid == ctransid && token.parent == parent && token.version == self.version {
                self.pending = Some(resume::Pending { path: path.to_vec(), uuid, ctransid, parent, token });
                return Ok(());
            }
        }
        self.begin(path, uuid, ctransid, parent)
    }

    /// The command after a resumable SUBVOL or SNAPSHOT: the resume marker
    /// continues the kept partial; anything else begins the subvolume afresh.
    fn settle_pending(&mut self, c: &Command<'_>) -> Result<bool, String> {
        let Some(p) = self.pending.take() else { return Ok(false) };
        let Command::SetXattr { path: b"", name, data } = *c else {
            self.begin(&p.path, p.uuid, p.ctransid, p.parent)?;
            return Ok(false);
        };
        if name != RESUME_XATTR {
            self.begin(&p.path, p.uuid, p.ctransid, p.parent)?;
            return Ok(false);
        }
        let show = String::from_utf8_lossy(&p.path).into_owned();
        if resume::marker_count(data) != Some(p.token.commands) {
            return Err(format!(
                "the stream resumes '{show}' after {} commands, its kept partial after {}",
                String::from_utf8_lossy(data),
                p.token.commands
            ));
        }
        let (name, kept) = (cname(&p.path)?, cname(&resume::partial_name(&p.path))?);
        posix::renameat(self.dest_fd.as_fd(), &kept, self.dest_fd.as_fd(), &name)
            .map_err(|e| format!("resuming '{show}': renaming {show}.partial back: {}", strerror(&e)))?;
        let root = posix::open_dir(self.dest_fd.as_fd(), &name).map_err(|e| io_msg("open", &p.path, &e))?;
        resume::clear_token(root.as_fd()).map_err(|e| io_msg("resuming", &p.path, &e))?;
        eprintln!("Resuming {show} after {} commands", p.token.commands);
        self.cur = Some(Current {
            name: p.path,
            root,
            uuid: p.uuid,
            ctransid: p.ctransid,
            parent: p.parent,
            applied: p.token.commands,
            last_crc: p.token.crc,
            fileattrs: Vec::new(),
            failed: 0,
        });
        Ok(true)
    }

    /// Sets the version of the stream whose commands follow.
    pub fn set_version(&mut self, version: u32) {
        self.version = version;
    }

    /// Applies one command whose header carried `crc`, counting it for a
    /// resume token.
    pub fn apply_counted(&mut self, c: &Command<'_>, crc: u32) -> Result<(), String> {
        if self.settle_pending(c)? {
            return Ok(());
        }
        if let Command::SetXattr { path: b"", name, .. } = *c {
            if name == RESUME_XATTR {
                return Err("a resumed stream, but no partial subvolume kept by the same transfer is here".to_string());
            }
        }
        let result = self.apply(c);
        // A command passed over after an error (`receive -E`) still counts:
        // the count is the position in the stream a resume goes on from.
        if !matches!(c, Command::Subvol { .. } | Command::Snapshot { .. } | Command::End) {
            if let Some(cur) = self.cur.as_mut() {
                cur.applied += 1;
                cur.last_crc = crc;
            }
        }
        result
    }

    /// Whether the stream can go on after command `c` failed (`receive
    /// -E`): not when it was SUBVOL, SNAPSHOT or END, or outside a
    /// subvolume, since nothing after it would have a place to go. When it
    /// can, the failure is counted against the subvolume.
    pub fn pass_over_failed(&mut self, c: &Command<'_>) -> bool {
        if matches!(c, Command::Subvol { .. } | Command::Snapshot { .. } | Command::End) || self.pending.is_some() {
            return false;
        }
        match self.cur.as_mut() {
            Some(cur) => {
                cur.failed += 1;
                true
            }
            None => false,
        }
    }

    /// The directory of the subvolume received as (`uuid`, `ctransid`):
    /// the current one, or one found through the map.
    fn subvolume_dir(&self, uuid: &[u8; 16], ctransid: u64, what: &str) -> Result<OwnedFd, String> {
        if let Some(c) = &self.cur {
            if c.uuid == *uuid {
                return c.root.try_clone().map_err(|e| strerror(&e));
            }
        }
        let Some(dir) = self.map.find(&self.dest, uuid, ctransid) else {
            let hint = if self.map.has_uuid(uuid) { " (received, but at another transid)" } else { "" };
            return Err(format!(
                "cannot find {what} subvolume {} transid {ctransid} in {}{hint}",
                format_uuid(uuid),
                self.dest.join(super::map::MAP_FILE).display()
            ));
        };
        let name = dir.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
        posix::open_dir(self.dest_fd.as_fd(), &cname(&name)?).map_err(|e| format!("{}: {}", dir.display(), strerror(&e)))
    }

    /// Applies one command.
    pub fn apply(&mut self, c: &Command<'_>) -> Result<(), String> {
        if !matches!(c, Command::Write { .. } | Command::Clone { .. } | Command::Fallocate { .. } | Command::EncodedWrite { .. }) {
            self.open_file = None;
        }
        match *c {
            Command::Subvol { path, uuid, ctransid } => {
                eprintln!("At subvol {}", String::from_utf8_lossy(path));
                self.subvolume_command(path, uuid, ctransid, None)
            }
            Command::Snapshot { path, uuid, ctransid, clone_uuid, clone_ctransid } => {
                eprintln!("At snapshot {}", String::from_utf8_lossy(path));
                self.subvolume_command(path, uuid, ctransid, Some((clone_uuid, clone_ctransid)))
            }
            Command::Mkfile { path, .. } => {
                let at = self.at(path)?;
                posix::openat(at.dir.as_fd(), &at.name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
                    .map(drop)
                    .map_err(|e| io_msg("mkfile", path, &e))
            }
            Command::Mkdir { path, .. } => {
                let at = self.at(path)?;
                posix::mkdirat(at.dir.as_fd(), &at.name, 0o700).map_err(|e| io_msg("mkdir", path, &e))
            }
            Command::Mknod { path, mode, rdev, .. } => {
                let at = self.at(path)?;
                let kind = (mode as libc::mode_t) & libc::S_IFMT;
                if (kind != libc::S_IFCHR && kind != libc::S_IFBLK) || mode > u64::from(u32::MAX) {
                    return Err(format!("mknod '{}': mode {mode:o} is not a device", String::from_utf8_lossy(path)));
                }
                // The stream's rdev is the kernel's new_encode_dev form,
                // which for 32 bits is also glibc's dev_t encoding.
                let dev =
                    u32::try_from(rdev).map_err(|_| format!("mknod '{}': device {rdev:#x} out of range", String::from_utf8_lossy(path)))?;
                posix::mknodat(at.dir.as_fd(), &at.name, kind | 0o600, libc::dev_t::from(dev)).map_err(|e| io_msg("mknod", path, &e))
            }
            Command::Mkfifo { path, .. } => {
                let at = self.at(path)?;
                posix::mknodat(at.dir.as_fd(), &at.name, libc::S_IFIFO | 0o600, 0).map_err(|e| io_msg("mkfifo", path, &e))
            }
            Command::Mksock { path, .. } => {
                let at = self.at(path)?;
                posix::mknodat(at.dir.as_fd(), &at.name, libc::S_IFSOCK | 0o600, 0).map_err(|e| io_msg("mksock", path, &e))
            }
            Command::Symlink { path, target, .. } => {
                let at = self.at(path)?;
                posix::symlinkat(&cname(target)?, at.dir.as_fd(), &at.name).map_err(|e| io_msg("symlink", path, &e))
            }
            Command::Rename { from, to } => {
                let (a, b) = (self.at(from)?, self.at(to)?);
                if a.is_root() || b.is_root() {
                    return Err("rename of the subvolume's root".to_string());
                }
                posix::renameat(a.dir.as_fd(), &a.name, b.dir.as_fd(), &b.name).map_err(|e| io_msg("rename", from, &e))
            }
            Command::Link { path, target } => {
                let (new, old) = (self.at(path)?, self.at(target)?);
                if new.is_root() || old.is_root() {
                    return Err("link to or from the subvolume's root".to_string());
                }
                posix::linkat(old.dir.as_fd(), &old.name, new.dir.as_fd(), &new.name).map_err(|e| io_msg("link", path, &e))
            }
            Command::Unlink { path } | Command::Rmdir { path } => {
                let at = self.at(path)?;
                if at.is_root() {
                    return Err("removal of the subvolume's root".to_string());
                }
                let dir = matches!(c, Command::Rmdir { .. });
                posix::unlinkat(at.dir.as_fd(), &at.name, dir).map_err(|e| io_msg(if dir { "rmdir" } else { "unlink" }, path, &e))
            }
            Command::SetXattr { path, name, data } => {
                let at = self.at(path)?;
                posix::lsetxattr(at.dir.as_fd(), &at.name, &cname(name)?, data)
                    .map_err(|e| io_msg(&format!("set_xattr {}", String::from_utf8_lossy(name)), path, &e))
            }
            Command::RemoveXattr { path, name } => {
                let at = self.at(path)?;
                posix::lremovexattr(at.dir.as_fd(), &at.name, &cname(name)?)
                    .map_err(|e| io_msg(&format!("remove_xattr {}", String::from_utf8_lossy(name)), path, &e))
            }
            Command::Write { path, offset, data } => {
                offset.checked_add(data.len() as u64).filter(|&e| e <= i64::MAX as u64).ok_or("write beyond the largest file offset")?;
                self.file(path)?.write_all_at(data, offset).map_err(|e| io_msg("write", path, &e))
            }
            Command::Clone { path, offset, len, clone_uuid, clone_ctransid, clone_path, clone_offset } => {
                self.clone_range(path, offset, len, &clone_uuid, clone_ctransid, clone_path, clone_offset)
            }
            Command::Truncate { path, size } => {
                let at = self.at(path)?;
                let f = posix::open_file(at.dir.as_fd(), &at.name, libc::O_WRONLY).map_err(|e| io_msg("truncate", path, &e))?;
                f.set_len(size).map_err(|e| io_msg("truncate", path, &e))
            }
            Command::Chmod { path, mode } => {
                let at = self.at(path)?;
                let st = posix::lstatat(at.dir.as_fd(), &at.name).map_err(|e| io_msg("chmod", path, &e))?;
                let mode = (mode & 0o7777) as libc::mode_t;
                if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    Ok(())
                } else if at.is_root() {
                    posix::fchmod(at.dir.as_fd(), mode).map_err(|e| io_msg("chmod", path, &e))
                } else {
                    posix::fchmodat(at.dir.as_fd(), &at.name, mode).map_err(|e| io_msg("chmod", path, &e))
                }
            }
            Command::Chown { path, uid, gid } => {
                let at = self.at(path)?;
                let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
                    return Err(format!("chown '{}': uid {uid} or gid {gid} out of range", String::from_utf8_lossy(path)));
                };
                posix::lchownat(at.dir.as_fd(), &at.name, uid, gid).map_err(|e| io_msg("chown", path, &e))
            }
            Command::Utimes { path, atime, mtime, .. } => {
                let at = self.at(path)?;
                posix::lutimensat(at.dir.as_fd(), &at.name, time(atime)?, time(mtime)?).map_err(|e| io_msg("utimes", path, &e))
            }
            Command::End => self.finish(),
            Command::UpdateExtent { .. } => Ok(()),
            Command::Fallocate { path, mode, offset, len } => self.fallocate(path, mode, offset, len),
            Command::Fileattr { path, attr } => {
                let cur = self.cur.as_mut().ok_or("command before SUBVOL or SNAPSHOT")?;
                cur.fileattrs.push((path.to_vec(), attr));
                Ok(())
            }
            Command::EncodedWrite { path, offset, unencoded_file_len, unencoded_len, unencoded_offset, compression, encryption, data } => {
                if encryption != 0 {
                    return Err(format!("encoded_write '{}': encryption {encryption} is not supported", String::from_utf8_lossy(path)));
                }
                if compression != 0 {
                    return Err(format!(
                        "encoded_write '{}': compressed data (compression {compression}) is not supported; send without --compressed-data",
                        String::from_utf8_lossy(path)
                    ));
                }
                let start = usize::try_from(unencoded_offset).ok();
                let end = start.zip(usize::try_from(unencoded_file_len).ok()).and_then(|(s, l)| s.checked_add(l));
                let bytes = match (start, end) {
                    (Some(s), Some(e)) if e <= data.len() && unencoded_len == data.len() as u64 => &data[s..e],
                    _ => return Err(format!("encoded_write '{}': lengths do not match its data", String::from_utf8_lossy(path))),
                };
                self.apply(&Command::Write { path, offset, data: bytes })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn clone_range(
        &mut self,
        path: &[u8],
        offset: u64,
        len: u64,
        clone_uuid: &[u8; 16],
        clone_ctransid: u64,
        clone_path: &[u8],
        clone_offset: u64,
    ) -> Result<(), String> {
        let fits = |o: u64| o.checked_add(len).is_some_and(|e| e <= i64::MAX as u64);
        if !fits(offset) || !fits(clone_offset) {
            return Err(format!("clone '{}': range beyond the largest file offset", String::from_utf8_lossy(path)));
        }
        let src_root = self.subvolume_dir(clone_uuid, clone_ctransid, "clone source")?;
        let at = resolve(&src_root, clone_path)?;
        let src = copy::open_read(at.dir.as_fd(), &at.name).map_err(|e| io_msg("clone: open source", clone_path, &e))?;
        let dst = self.file(path)?;
        match posix::clone_range(dst, &src, clone_offset, len, offset) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY | libc::EBADF)) => {
                let same = {
                    let (a, b) = (src.metadata(), dst.metadata());
                    use std::os::unix::fs::MetadataExt;
                    matches!((a, b), (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino())
                };
                // A clone reaches the source's end at most.
                let src_len = src.metadata().map_err(|e| io_msg("clone", clone_path, &e))?.len();
                let len = len.min(src_len.saturating_sub(clone_offset));
                copy_range(&src, clone_offset, dst, offset, len, same).map_err(|e| io_msg("clone", path, &e))
            }
            Err(e) => Err(io_msg("clone", path, &e)),
        }
    }

    fn fallocate(&mut self, path: &[u8], mode: u32, offset: u64, len: u64) -> Result<(), String> {
        let end = offset.checked_add(len).filter(|&e| e <= i64::MAX as u64).ok_or("fallocate beyond the largest file offset")?;
        let f = self.file(path)?;
        let err = match posix::fallocate(f, mode as i32, offset, len) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => e,
            Err(e) => return Err(io_msg("fallocate", path, &e)),
        };
        // The fallback: what the mode means for the file's contents.
        let size = f.metadata().map_err(|e| io_msg("fallocate", path, &e))?.len();
        let keep = mode & FALLOC_KEEP_SIZE != 0;
        let r = match mode & !FALLOC_KEEP_SIZE {
            0 if keep => Ok(()),
            0 if end > size => f.set_len(end),
            0 => Ok(()),
            FALLOC_PUNCH_HOLE | FALLOC_ZERO_RANGE => {
                let stop = if keep { end.min(size) } else { end };
                if offset < stop {
                    write_zeros(f, offset, stop)
                } else {
                    Ok(())
                }
            }
            _ => Err(err),
        };
        r.map_err(|e| io_msg(&format!("fallocate mode {mode:#x}"), path, &e))
    }

    /// Ends the current subvolume: sets the deferred inode flags and
    /// records it in the map.
    fn finish(&mut self) -> Result<(), String> {
        self.open_file = None;
        let Some(cur) = self.cur.take() else { return Ok(()) };
        for (path, attr) in &cur.fileattrs {
            if let Err(w) = set_fileattr(&cur.root, path, *attr) {
                self.warnings.push(w);
            }
        }
        if cur.failed > 0 {
            // Not the subvolume that was sent: kept as it is, writable, and
            // out of the map, so no incremental stream takes it as a parent.
            self.warnings.push(format!(
                "subvolume '{}' is kept with {} failed command(s) passed over; it is not recorded as received",
                String::from_utf8_lossy(&cur.name),
                cur.failed
            ));
            return Ok(());
        }
        if self.native.is_some() {
            // A real subvolume: marked as received, then read-only, as
            // btrfs receive leaves it, so the next incremental stream can
            // snapshot it.
            let dir = self.dest.join(OsStr::from_bytes(&cur.name));
            if let Ok(sub) = FerrofsFile::open(&dir, Kind::Directory) {
                let is_root = sub.file().metadata().is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == ROOT_DIR_INO);
                if is_root {
                    let marked =
                        sub.set_received_subvolume(cur.uuid, cur.ctransid).and_then(|()| sub.set_subvolume_flags(uapi::SUBVOL_RDONLY));
                    if let Err(e) = marked {
                        let msg = io_msg("marking received", &cur.name, &e);
                        self.cur = Some(cur);
                        return Err(msg);
                    }
                }
            }
        }
        self.map.add(Entry { uuid: cur.uuid, ctransid: cur.ctransid, name: cur.name.clone() });
        if let Err(e) = self.map.save(&self.dest) {
            self.cur = Some(cur);
            return Err(e);
        }
        self.received.push(String::from_utf8_lossy(&cur.name).into_owned());
        Ok(())
    }

    /// Ends the input: a subvolume still open (no END yet) is an error.
    pub fn end_of_input(&mut self) -> Result<(), String> {
        self.open_file = None;
        if let Some(p) = &self.pending {
            return Err(format!("subvolume '{}' ends without an END command", String::from_utf8_lossy(&p.path)));
        }
        match &self.cur {
            Some(c) => Err(format!("subvolume '{}' ends without an END command", String::from_utf8_lossy(&c.name))),
            None => Ok(()),
        }
    }

    /// After an error: removes the partial subvolume, or renames it to
    /// `<name>.partial` with `keep_partial`; when the stream broke off
    /// (`resumable`) a kept partial also gets its resume token. Says what it
    /// did.
    pub fn abort(&mut self, resumable: bool) -> Option<String> {
        self.open_file = None;
        self.pending = None;
        let cur = self.cur.take()?;
        let dir = self.dest.join(OsStr::from_bytes(&cur.name));
        if self.keep_partial {
            let kept = self.dest.join(OsStr::from_bytes(&resume::partial_name(&cur.name)));
            if kept.symlink_metadata().is_ok() || std::fs::rename(&dir, &kept).is_err() {
                return Some(format!("partial subvolume kept as {}", dir.display()));
            }
            let mut msg = format!("partial subvolume kept as {}", kept.display());
            if resumable {
                let token = ResumeToken {
                    uuid: cur.uuid,
                    ctransid: cur.ctransid,
                    parent: cur.parent,
                    version: self.version,
                    commands: cur.applied,
                    crc: cur.last_crc,
                };
                match resume::store_token(cur.root.as_fd(), &token) {
                    Ok(()) => msg.push_str(&format!("\nresume token: {token}")),
                    Err(e) => msg.push_str(&format!(" (it cannot be resumed: storing its token: {})", strerror(&e))),
                }
            }
            return Some(msg);
        }
        drop(cur.root);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Some(format!("partial subvolume {} removed", dir.display())),
            Err(e) => Some(format!("could not remove partial subvolume {}: {}", dir.display(), strerror(&e))),
        }
    }
}

/// Sets the FS flags for btrfs inode flags `attr` on `path` under `root`,
/// keeping flags the translation does not own.
fn set_fileattr(root: &OwnedFd, path: &[u8], attr: u64) -> Result<(), String> {
    let warn = |e: &io::Error| format!("warning: fileattr '{}': {} (flags not set)", String::from_utf8_lossy(path), strerror(e));
    let at = resolve(root, path)?;
    let st = posix::lstatat(at.dir.as_fd(), &at.name).map_err(|e| warn(&e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Ok(());
    }
    let fd = if at.is_root() {
        at.dir
    } else {
        posix::openat(at.dir.as_fd(), &at.name, libc::O_RDONLY | libc::O_NONBLOCK, 0).map_err(|e| warn(&e))?
    };
    let (set, mask) = fs_flags(attr);
    let old = posix::get_inode_flags(fd.as_fd()).map_err(|e| warn(&e))?;
    let new = (old & !mask) | set;
    if new != old {
        posix::set_inode_flags(fd.as_fd(), new).map_err(|e| warn(&e))?;
    }
    Ok(())
}
