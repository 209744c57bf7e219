// SPDX-License-Identifier: GPL-2.0
//! Resuming an interrupted receive, with `ferrofs send --resume`.
//!
//! When a stream breaks off (it ends early, or a command is damaged) and
//! `--keep-partial` is given, the partial subvolume is kept as
//! `NAME.partial` and its resume token (`crate::resume_token`: the
//! subvolume, its parent, the stream version, how many commands after
//! SUBVOL or SNAPSHOT were applied and the CRC of the last) is printed and
//! stored in the partial's top directory as the xattr
//! `user.ferrofs.partial`.
//!
//! The resumed stream starts with the same SUBVOL or SNAPSHOT, then sets
//! `user.ferrofs.resume` (`ferrofs_core::send::RESUME_XATTR`) on the top
//! directory to the number of commands it leaves out, then goes on. The
//! receiver takes that marker as the sign to continue in `NAME.partial`
//! (renamed back to NAME) when the stored token names the same subvolume,
//! parent and count; it neither sets the marker nor copies a snapshot's
//! parent again. Without the marker the stream is an ordinary one.

use crate::posix;
use crate::resume_token::ResumeToken;
use std::ffi::CString;
use std::os::fd::BorrowedFd;

/// The xattr holding a kept partial subvolume's resume token.
const PARTIAL_XATTR: &std::ffi::CStr = c"user.ferrofs.partial";

/// The name a kept partial subvolume gets.
pub fn partial_name(name: &[u8]) -> Vec<u8> {
    let mut n = name.to_vec();
    n.extend_from_slice(b".partial");
    n
}

/// The resume token stored in `dest/NAME.partial`, if there is one.
pub fn stored_token(dest: BorrowedFd<'_>, name: &[u8]) -> Option<ResumeToken> {
    let partial = CString::new(partial_name(name)).ok()?;
    let value = posix::lgetxattr(dest, &partial, PARTIAL_XATTR).ok()?;
    std::str::from_utf8(&value).ok()?.parse().ok()
}

/// The resume token stored on the kept partial subvolume `path` (what
/// `ferrofs receive --token` prints).
pub fn token_at(path: &std::path::Path) -> Result<ResumeToken, String> {
    use std::os::unix::ffi::OsStrExt;
    let shown = path.display();
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("'{shown}' names no directory entry"));
    };
    let parent = if parent.as_os_str().is_empty() { std::path::Path::new(".") } else { parent };
    let dir = std::fs::File::open(parent).map_err(|e| format!("'{}': {}", parent.display(), crate::strerror(&e)))?;
    let name = CString::new(name.as_bytes()).map_err(|_| format!("'{shown}': a NUL byte in the name"))?;
    use std::os::fd::AsFd;
    let value = posix::lgetxattr(dir.as_fd(), &name, PARTIAL_XATTR).map_err(|e| {
        format!("'{shown}' holds no resume token (a partial subvolume kept with --keep-partial has one): {}", crate::strerror(&e))
    })?;
    let text = std::str::from_utf8(&value).map_err(|_| format!("'{shown}': the stored resume token is not text"))?;
    text.parse()
}

/// Stores `token` on the partial subvolume's top directory `root`.
pub fn store_token(root: BorrowedFd<'_>, token: &ResumeToken) -> std::io::Result<()> {
    posix::lsetxattr(root, c"", PARTIAL_XATTR, token.to_string().as_bytes())
}

/// Removes the stored token once the subvolume is being received again.
pub fn clear_token(root: BorrowedFd<'_>) -> std::io::Result<()> {
    posix::lremovexattr(root, c"", PARTIAL_XATTR)
}

/// A SUBVOL or SNAPSHOT whose kept partial may be resumed: decided by the
/// command after it.
pub struct Pending {
    /// The command's path (the subvolume's name).
    pub path: Vec<u8>,
    /// The subvolume's UUID and ctransid.
    pub uuid: [u8; 16],
    pub ctransid: u64,
    /// The parent of a SNAPSHOT (UUID, ctransid).
    pub parent: Option<([u8; 16], u64)>,
    /// The token stored in the partial.
    pub token: ResumeToken,
}

/// The count a resume marker carries (decimal digits), or None.
pub fn marker_count(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.parse().ok()
}
