// SPDX-License-Identifier: GPL-2.0
//! Materialises the parent of an incremental stream: copies a received
//! subvolume's tree into the new subvolume's directory so the stream's
//! changes apply to an exact copy, as a btrfs snapshot would be.
//!
//! Everything a stream can later refer to is kept: file contents (shared
//! with FICLONERANGE where the filesystem can, else copied with their
//! holes left holes), directories,
//! symlinks, device nodes, FIFOs, sockets, hard links (an inode met again
//! is linked, not copied), extended attributes, owners, modes and times.
//! Owners are set before modes and attributes after both, since chown
//! clears set-id bits and file capabilities; directory times are set once
//! their contents are in place. Nothing is followed: names are opened
//! relative to directory fds with `O_NOFOLLOW`.
//!
//! The parent stays as it was, atimes included (btrfs keeps received
//! subvolumes read-only): files are read with `O_NOATIME`, and a
//! directory's or symlink's atime, which listing or readlink may update,
//! is put back after it is read.

use super::paths::cname;
use crate::posix;
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Names in the directory `dir`, `.` and `..` left out.
fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
        let e = e?;
        names.push(CString::new(e.file_name().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?);
    }
    names.sort();
    Ok(names)
}

/// The target of the symlink `name` in `dir`.
fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<CString> {
    let path = format!("/proc/self/fd/{}/", dir.as_raw_fd());
    let mut p = path.into_bytes();
    p.extend_from_slice(name.to_bytes());
    let target = std::fs::read_link(OsStr::from_bytes(&p))?;
    CString::new(target.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens `name` in `dir` for reading without updating its atime where the
/// caller may ask that (`O_NOATIME` needs ownership or CAP_FOWNER).
pub fn open_read(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<File> {
    match posix::open_file(dir, name, libc::O_RDONLY | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => posix::open_file(dir, name, libc::O_RDONLY),
        r => r,
    }
}

/// Puts back the atime of `name` in `dir` (as `st` had it) if reading it
/// changed it.
fn restore_atime(dir: BorrowedFd<'_>, name: &CStr, st: &libc::stat) -> io::Result<()> {
    let now = posix::lstatat(dir, name)?;
    if (now.st_atime, now.st_atime_nsec) == (st.st_atime, st.st_atime_nsec) {
        return Ok(());
    }
    posix::lutimensat(dir, name, (st.st_atime, st.st_atime_nsec), (now.st_mtime, now.st_mtime_nsec))
}

/// Copies the bytes of `src` into the empty `dst`: a clone of the whole
/// file when the filesystem shares extents, else a copy of its data
/// segments (SEEK_DATA / SEEK_HOLE) that leaves its holes holes; a plain
/// copy where the filesystem cannot say where its holes are.
pub fn copy_contents(src: &File, dst: &File) -> io::Result<()> {
    if posix::clone_range(dst, src, 0, 0, 0).is_ok() {
        return Ok(());
    }
    let size = src.metadata()?.len();
    dst.set_len(size)?;
    let mut at = 0;
    while at < size {
        let data = match posix::seek_data(src, at) {
            Ok(Some(d)) => d,
            Ok(None) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return copy_segment(src, dst, at, size),
            Err(e) => return Err(e),
        };
        let hole = posix::seek_hole(src, data)?.unwrap_or(size).min(size);
        copy_segment(src, dst, data, hole)?;
        at = hole;
    }
    Ok(())
}

/// Copies bytes [start, end) of `src` to the same place in `dst`.
fn copy_segment(src: &File, dst: &File, start: u64, end: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; (end - start).min(1 << 20) as usize];
    let mut at = start;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        let got = src.read_at(&mut buf[..n], at)?;
        if got == 0 {
            break; // the file shrank under us: its new end
        }
        dst.write_all_at(&buf[..got], at)?;
        at += got as u64;
    }
    Ok(())
}

/// Copies the owner, mode, extended attributes and times of `src_name` in
/// `src_dir` to `dst_name` in `dst_dir` (empty names: the dirs themselves).
fn copy_attrs(src_dir: BorrowedFd<'_>, src_name: &CStr, dst_dir: BorrowedFd<'_>, dst_name: &CStr, st: &libc::stat) -> io::Result<()> {
    posix::lchownat(dst_dir, dst_name, st.st_uid, st.st_gid)?;
    let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
    if !is_link {
        if dst_name.is_empty() {
            posix::fchmod(dst_dir, st.st_mode & 0o7777)?;
        } else {
            posix::fchmodat(dst_dir, dst_name, st.st_mode & 0o7777)?;
        }
    }
    for attr in posix::llistxattr(src_dir, src_name)? {
        let attr = CString::new(attr).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let value = posix::lgetxattr(src_dir, src_name, &attr)?;
        posix::lsetxattr(dst_dir, dst_name, &attr, &value)?;
    }
    posix::lutimensat(dst_dir, dst_name, (st.st_atime, st.st_atime_nsec), (st.st_mtime, st.st_mtime_nsec))
}

/// Inodes already copied: (device, inode) to their path in the copy.
type Seen = HashMap<(u64, u64), Vec<u8>>;

/// Copies the contents of directory `src` into the empty directory `dst`,
/// `dst_root` being the copy's root (for hard links) and `rel` the path of
/// `dst` under it.
fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, dst_root: BorrowedFd<'_>, rel: &[u8], seen: &mut Seen) -> Result<(), String> {
    let at = |name: &CStr, e: io::Error| {
        let mut p = rel.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name.to_bytes());
        format!("copying '{}': {}", String::from_utf8_lossy(&p), crate::strerror(&e))
    };
    let names = list_dir(src).map_err(|e| at(c"", e))?;
    for name in &names {
        let st = posix::lstatat(src, name).map_err(|e| at(name, e))?;
        let mut path = rel.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name.to_bytes());
        let kind = st.st_mode & libc::S_IFMT;
        let key = (st.st_dev, st.st_ino);
        if kind != libc::S_IFDIR {
            if let Some(first) = seen.get(&key) {
                posix::linkat(dst_root, &cname(first)?, dst, name).map_err(|e| at(name, e))?;
                continue;
            }
            seen.insert(key, path.clone());
        }
        match kind {
            libc::S_IFDIR => {
                posix::mkdirat(dst, name, 0o700).map_err(|e| at(name, e))?;
                let s = posix::open_dir(src, name).map_err(|e| at(name, e))?;
                let d = posix::open_dir(dst, name).map_err(|e| at(name, e))?;
                copy_dir(s.as_fd(), d.as_fd(), dst_root, &path, seen)?;
                restore_atime(src, name, &st).map_err(|e| at(name, e))?;
            }
            libc::S_IFREG => {
                let s = open_read(src, name).map_err(|e| at(name, e))?;
                let d = posix::openat(dst, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600).map_err(|e| at(name, e))?;
                copy_contents(&s, &File::from(d)).map_err(|e| at(name, e))?;
            }
            libc::S_IFLNK => {
                let target = read_link_at(src, name).map_err(|e| at(name, e))?;
                restore_atime(src, name, &st).map_err(|e| at(name, e))?;
                posix::symlinkat(&target, dst, name).map_err(|e| at(name, e))?;
            }
            _ => posix::mknodat(dst, name, kind | 0o600, st.st_rdev).map_err(|e| at(name, e))?,
        }
        copy_attrs(src, name, dst, name, &st).map_err(|e| at(name, e))?;
    }
    Ok(())
}

/// Copies the tree of directory `src` into the empty directory `dst`, the
/// root's own owner, mode, attributes and times included.
pub fn copy_tree(src: &OwnedFd, dst: &OwnedFd) -> Result<(), String> {
    let root = |e: io::Error| format!("copying the root: {}", crate::strerror(&e));
    let st = posix::lstatat(src.as_fd(), c"").map_err(root)?;
    let mut seen = Seen::new();
    copy_dir(src.as_fd(), dst.as_fd(), dst.as_fd(), b"", &mut seen)?;
    restore_atime(src.as_fd(), c"", &st).map_err(root)?;
    copy_attrs(src.as_fd(), c"", dst.as_fd(), c"", &st).map_err(root)
}
