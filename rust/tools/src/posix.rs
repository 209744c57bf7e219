// SPDX-License-Identifier: GPL-2.0
//! Safe wrappers over the POSIX and Linux calls `ferrofs receive` makes that
//! std lacks: the `*at` family relative to a directory fd (so a path is
//! resolved one component at a time, never through a symlink), device and
//! FIFO nodes, times and owners of symlinks, extended attributes,
//! fallocate, FICLONERANGE, the inode flags ioctl, and local time as
//! strftime prints it; and for `ferrofs send`, a pipe's size and splice.
//!
//! Each wrapper passes the kernel only NUL-terminated names (`CStr`), open
//! fds it borrows, and buffers it owns for the call; that is all the
//! `SAFETY` comments below need to say.

#![expect(unsafe_code, reason = "the receive tool's system calls that std does not wrap")]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Turns a -1 return into the errno it stands for.
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `openat(dir, name, flags | O_CLOEXEC | O_NOFOLLOW, mode)`: never follows
/// a symlink in the last component.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and lives for the call; the dir fd
    // is open (borrowed). openat does not keep either.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `name` in `dir` for reading, refusing a symlink.
pub fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Opens the file `name` in `dir` with `flags`, refusing a symlink.
pub fn open_file(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<File> {
    openat(dir, name, flags, 0).map(File::from)
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a NUL-terminated name and an open fd, both for the call only.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

/// `mknodat(dir, name, mode, dev)`: regular files, FIFOs, sockets, devices.
pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: a NUL-terminated name and an open fd, both for the call only.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) })
}

/// `symlinkat(target, dir, name)`.
pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated strings and an open fd, all for the call only.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// `renameat(from_dir, from, to_dir, to)`.
pub fn renameat(from_dir: BorrowedFd<'_>, from: &CStr, to_dir: BorrowedFd<'_>, to: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated names and open fds, all for the call only.
    check(unsafe { libc::renameat(from_dir.as_raw_fd(), from.as_ptr(), to_dir.as_raw_fd(), to.as_ptr()) })
}

/// `linkat(old_dir, old, new_dir, new, 0)`: a new name for `old` itself
/// (a symlink is linked, not followed).
pub fn linkat(old_dir: BorrowedFd<'_>, old: &CStr, new_dir: BorrowedFd<'_>, new: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated names and open fds, all for the call only.
    check(unsafe { libc::linkat(old_dir.as_raw_fd(), old.as_ptr(), new_dir.as_raw_fd(), new.as_ptr(), 0) })
}

/// `unlinkat(dir, name, 0)`, or with `AT_REMOVEDIR` when `is_dir`.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: a NUL-terminated name and an open fd, both for the call only.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; an empty name is `dir` itself.
pub fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: fstatat writes one `struct stat` into room for one; the name
    // is NUL-terminated and the fd open, both for the call only.
    check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: fstatat succeeded, so it filled in the whole structure.
    Ok(unsafe { st.assume_init() })
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)` (lchown); an empty
/// name is `dir` itself.
pub fn lchownat(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: a NUL-terminated name and an open fd, both for the call only.
    check(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, flags) })
}

/// `fchmodat(dir, name, mode, 0)`: callers check first that `name` is not
/// a symlink, since Linux cannot change a symlink's mode and would follow it.
pub fn fchmodat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a NUL-terminated name and an open fd, both for the call only.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) })
}

/// `fchmod(fd, mode)`, for a directory opened by `open_dir`.
pub fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: an open fd, for the call only.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
}

/// `utimensat(dir, name, [atime, mtime], AT_SYMLINK_NOFOLLOW)`; an empty
/// name is `dir` itself (then it must not be an `O_PATH` fd).
pub fn lutimensat(dir: BorrowedFd<'_>, name: &CStr, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
    let ts = [libc::timespec { tv_sec: atime.0, tv_nsec: atime.1 }, libc::timespec { tv_sec: mtime.0, tv_nsec: mtime.1 }];
    if name.is_empty() {
        // SAFETY: futimens reads two timespecs from an array of two; the fd
        // is open for the call.
        return check(unsafe { libc::futimens(dir.as_raw_fd(), ts.as_ptr()) });
    }
    // SAFETY: utimensat reads two timespecs from an array of two; the name
    // is NUL-terminated and the fd open, all for the call only.
    check(unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// The path that names `name` in the directory `dir` without following
/// `name` if it is a symlink (for the xattr calls, which take paths only):
/// `/proc/self/fd/<dir>/<name>`, or for an empty name `/proc/self/fd/<dir>`,
/// a magic link the xattr calls must then follow (their non-`l` forms) to
/// reach the directory rather than the link.
fn proc_path(dir: BorrowedFd<'_>, name: &CStr) -> CString {
    let mut p = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        p.push(b'/');
        p.extend_from_slice(name.to_bytes());
    }
    CString::new(p).expect("no NUL: digits and a CStr's bytes")
}

/// `lsetxattr` of `name` in `dir` (not following a symlink there).
pub fn lsetxattr(dir: BorrowedFd<'_>, name: &CStr, attr: &CStr, value: &[u8]) -> io::Result<()> {
    let path = proc_path(dir, name);
    // SAFETY: NUL-terminated path and attribute name; (l)setxattr reads
    // `value.len()` bytes from `value`. All live for the call only.
    check(unsafe {
        if name.is_empty() {
            libc::setxattr(path.as_ptr(), attr.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        } else {
            libc::lsetxattr(path.as_ptr(), attr.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        }
    })
}

/// `lremovexattr` of `name` in `dir`.
pub fn lremovexattr(dir: BorrowedFd<'_>, name: &CStr, attr: &CStr) -> io::Result<()> {
    let path = proc_path(dir, name);
    // SAFETY: NUL-terminated strings, for the call only, in either form.
    check(unsafe {
        if name.is_empty() {
            libc::removexattr(path.as_ptr(), attr.as_ptr())
        } else {
            libc::lremovexattr(path.as_ptr(), attr.as_ptr())
        }
    })
}

/// The names of the extended attributes of `name` in `dir` (not following
/// a symlink), each without its NUL.
pub fn llistxattr(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<Vec<u8>>> {
    let path = proc_path(dir, name);
    loop {
        // SAFETY: with a null buffer and size 0 (l)listxattr only returns
        // the size it needs.
        let need = unsafe {
            if name.is_empty() {
                libc::listxattr(path.as_ptr(), std::ptr::null_mut(), 0)
            } else {
                libc::llistxattr(path.as_ptr(), std::ptr::null_mut(), 0)
            }
        };
        if need < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; need as usize];
        // SAFETY: (l)listxattr writes at most `buf.len()` bytes into `buf`.
        let got = unsafe {
            if name.is_empty() {
                libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            } else {
                libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            }
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue; // the list grew between the calls
            }
            return Err(e);
        }
        buf.truncate(got as usize);
        return Ok(buf.split(|&b| b == 0).filter(|n| !n.is_empty()).map(<[u8]>::to_vec).collect());
    }
}

/// The value of extended attribute `attr` of `name` in `dir`.
pub fn lgetxattr(dir: BorrowedFd<'_>, name: &CStr, attr: &CStr) -> io::Result<Vec<u8>> {
    let path = proc_path(dir, name);
    loop {
        // SAFETY: with a null buffer and size 0 (l)getxattr only returns the
        // size it needs.
        let need = unsafe {
            if name.is_empty() {
                libc::getxattr(path.as_ptr(), attr.as_ptr(), std::ptr::null_mut(), 0)
            } else {
                libc::lgetxattr(path.as_ptr(), attr.as_ptr(), std::ptr::null_mut(), 0)
            }
        };
        if need < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; need as usize];
        // SAFETY: (l)getxattr writes at most `buf.len()` bytes into `buf`.
        let got = unsafe {
            if name.is_empty() {
                libc::getxattr(path.as_ptr(), attr.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            } else {
                libc::lgetxattr(path.as_ptr(), attr.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            }
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue;
            }
            return Err(e);
        }
        buf.truncate(got as usize);
        return Ok(buf);
    }
}

/// `fallocate(fd, mode, offset, len)`; offsets above `i64::MAX` are EFBIG.
pub fn fallocate(file: &File, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    // SAFETY: an open fd (borrowed from `file`) and plain integers.
    check(unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, len) })
}

/// `lseek(fd, offset, SEEK_DATA)`: the start of the first data at or after
/// `offset`, or None when only a hole follows (ENXIO).
pub fn seek_data(file: &File, offset: u64) -> io::Result<Option<u64>> {
    lseek(file, offset, libc::SEEK_DATA)
}

/// `lseek(fd, offset, SEEK_HOLE)`: the start of the first hole at or after
/// `offset` (the end of the file counts as one), None past the end.
pub fn seek_hole(file: &File, offset: u64) -> io::Result<Option<u64>> {
    lseek(file, offset, libc::SEEK_HOLE)
}

fn lseek(file: &File, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let offset = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: an open fd (borrowed from `file`) and plain integers.
    let r = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENXIO) { Ok(None) } else { Err(e) };
    }
    Ok(Some(r as u64))
}

/// `FICLONERANGE`: shares `len` bytes at `src_offset` of `src` into `dst`
/// at `dst_offset` (a length of 0 means to the end of `src`).
pub fn clone_range(dst: &File, src: &File, src_offset: u64, len: u64, dst_offset: u64) -> io::Result<()> {
    let src_fd = i64::from(src.as_raw_fd());
    let args = libc::file_clone_range { src_fd, src_offset, src_length: len, dest_offset: dst_offset };
    // SAFETY: FICLONERANGE reads one `file_clone_range`, which holds no
    // pointer; both fds are open for the call (borrowed).
    check(unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONERANGE, &args as *const libc::file_clone_range) })
}

/// `FS_IOC_GETFLAGS`: the inode flags (`FS_*_FL`) of an open file.
pub fn get_inode_flags(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's interface is an
    // int despite the request's `long` size) into `flags`; the fd is open.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags as *mut libc::c_int) })?;
    Ok(flags as u32)
}

/// `FS_IOC_SETFLAGS`: sets the inode flags (`FS_*_FL`) of an open file.
pub fn set_inode_flags(fd: BorrowedFd<'_>, flags: u32) -> io::Result<()> {
    let flags = flags as libc::c_int;
    // SAFETY: FS_IOC_SETFLAGS reads one int from `flags`; the fd is open.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags as *const libc::c_int) })
}

/// `sec` as local time in strftime's `%FT%T%z` (`2024-01-31T12:00:00+0100`),
/// as `btrfs receive --dump` prints times; None where localtime fails.
pub fn local_time_string(sec: i64) -> Option<String> {
    let t: libc::time_t = sec;
    let mut tm = MaybeUninit::<libc::tm>::uninit();
    // SAFETY: localtime_r reads one time_t and writes one `struct tm`
    // into room for one; it returns null on failure.
    let r = unsafe { libc::localtime_r(&t, tm.as_mut_ptr()) };
    if r.is_null() {
        return None;
    }
    // SAFETY: localtime_r succeeded, so it filled in the whole structure.
    let tm = unsafe { tm.assume_init() };
    let mut buf = [0u8; 64];
    // SAFETY: strftime writes at most `buf.len()` bytes (NUL included)
    // into `buf` from a NUL-terminated format and a valid `struct tm`.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c"%FT%T%z".as_ptr(), &tm) };
    if n == 0 {
        return None;
    }
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Set by `stop_on_signals`' handler: a signal asked the process to stop.
static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The handler: only stores to an atomic, which is async-signal-safe.
extern "C" fn note_stop(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Catches SIGINT, SIGTERM and SIGHUP without SA_RESTART: the signal sets
/// the flag `stop_requested` reads, and a blocked read or write returns
/// EINTR, so a long-running command can stop at a clean point instead of
/// dying with its work half done.
pub fn stop_on_signals() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: an all-zero sigaction is a valid value (empty mask, no
        // flags) that is then filled in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = note_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `action.sa_mask` is a sigset_t we own.
        check(unsafe { libc::sigemptyset(&mut action.sa_mask) })?;
        // SAFETY: installs a handler that only touches an atomic; `action`
        // lives for the call and the old action is not asked for.
        check(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// Lets a closed output pipe end the process quietly, as it ends `cat`:
/// Rust starts with SIGPIPE ignored, so `ferrofs show-super DEV | head -1`
/// would otherwise fail its next print with EPIPE and panic. Only for
/// commands that just print; send relies on seeing EPIPE as an error.
pub fn end_quietly_on_closed_pipe() {
    // SAFETY: restores the default disposition of one signal; no handler
    // is installed and the old disposition is not asked for.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Whether a signal caught by `stop_on_signals` asked the process to stop.
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Asks for `pipe`'s buffer to hold `bytes` (F_SETPIPE_SZ); the kernel
/// rounds up to a power of two pages, and refuses more than
/// /proc/sys/fs/pipe-max-size to an unprivileged process.
pub fn set_pipe_size(pipe: &impl std::os::fd::AsFd, bytes: usize) -> io::Result<()> {
    let bytes = libc::c_int::try_from(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: an open fd we borrow for the call; F_SETPIPE_SZ takes an int.
    check(unsafe { libc::fcntl(pipe.as_fd().as_raw_fd(), libc::F_SETPIPE_SZ, bytes) })
}

/// Moves up to `len` bytes from pipe `from` to pipe `to` without copying
/// them through this process (splice); 0 at the end of `from`'s data.
pub fn splice(from: &impl std::os::fd::AsFd, to: &impl std::os::fd::AsFd, len: usize) -> io::Result<usize> {
    // SAFETY: two open fds we borrow for the call; null offsets (pipes).
    let n = unsafe {
        libc::splice(
            from.as_fd().as_raw_fd(),
            std::ptr::null_mut(),
            to.as_fd().as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
