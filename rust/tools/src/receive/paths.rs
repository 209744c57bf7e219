// SPDX-License-Identifier: GPL-2.0
//! Turning a stream's path into (parent directory fd, last name) inside the
//! subvolume being received, without ever leaving it: every path is
//! relative, its components are plain names (no empty, `.` or `..`
//! component), and each directory on the way is opened with `O_NOFOLLOW`,
//! so a symlink the stream created earlier cannot redirect a later command
//! outside the destination. The empty path is the subvolume's root.

use crate::posix;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A resolved path: the directory holding the last component, and its name
/// (empty for the subvolume's root, which `dir` then is).
pub struct At {
    /// The parent directory (or the root itself).
    pub dir: OwnedFd,
    /// The last component; empty for the root.
    pub name: CString,
}

impl At {
    /// Whether this is the subvolume's root.
    pub fn is_root(&self) -> bool {
        self.name.is_empty()
    }
}

/// Splits a stream path into its components, refusing anything but plain
/// names.
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    for p in &parts {
        if p.is_empty() || *p == b"." || *p == b".." {
            return Err(format!("path '{}' is not a plain relative path", String::from_utf8_lossy(path)));
        }
    }
    Ok(parts)
}

/// A component as a C string (the codec has refused NUL bytes already).
pub fn cname(name: &[u8]) -> Result<CString, String> {
    CString::new(name).map_err(|_| "NUL byte in a path".to_string())
}

/// Resolves `path` under `root` (see the module comment).
pub fn resolve(root: &OwnedFd, path: &[u8]) -> Result<At, String> {
    let parts = components(path)?;
    let show = || String::from_utf8_lossy(path).into_owned();
    let Some((last, dirs)) = parts.split_last() else {
        let dir = root.try_clone().map_err(|e| format!("{}: {}", show(), crate::strerror(&e)))?;
        return Ok(At { dir, name: CString::default() });
    };
    let mut dir = root.try_clone().map_err(|e| format!("{}: {}", show(), crate::strerror(&e)))?;
    for d in dirs {
        let c = cname(d)?;
        dir = match posix::open_dir(dir.as_fd(), &c) {
            Ok(next) => next,
            Err(e) => return Err(format!("{}: {}", show(), describe_walk_error(dir.as_fd(), &c, &e))),
        };
    }
    Ok(At { dir, name: cname(last)? })
}

/// A failed step of the walk, saying so when the component is a symlink
/// (refused by `O_NOFOLLOW` as ELOOP or, with `O_DIRECTORY`, ENOTDIR).
fn describe_walk_error(dir: BorrowedFd<'_>, name: &CStr, e: &io::Error) -> String {
    match posix::lstatat(dir, name) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => format!("'{}' is a symlink (not followed)", show(name)),
        _ => crate::strerror(e),
    }
}

/// `name` as text for messages.
pub fn show(name: &CStr) -> String {
    String::from_utf8_lossy(name.to_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths() {
        assert_eq!(components(b"").unwrap(), Vec::<&[u8]>::new());
        assert_eq!(components(b"a/b c/d").unwrap(), vec![&b"a"[..], b"b c", b"d"]);
        for bad in [&b"/etc"[..], b"a/../b", b"..", b"a/./b", b"a//b", b"a/"] {
            assert!(components(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
