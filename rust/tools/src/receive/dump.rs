// SPDX-License-Identifier: GPL-2.0
//! `ferrofs receive --dump`: one line per command in the format of
//! `btrfs receive --dump` (btrfs-progs `cmds/receive-dump.c`), so the two
//! can be compared with diff.
//!
//! A line is the command name padded to 16 columns, the full path (the
//! subvolume's path joined to the command's, C-escaped), then, for
//! commands with fields, spaces up to column 32 of the path (at least one)
//! and `key=value` pairs. Times print as local time, `%FT%T%z`. END prints
//! nothing.
//!
//! btrfs-progs 6.10 changed how some values print (escaped clone paths,
//! xattr names and values; encoded_write without commas); `DumpFormat`
//! picks which release to match. Unlike `btrfs receive --dump`, which stops
//! after the first stream, every stream of the input is printed.

use crate::posix::local_time_string;
use ferrofs_core::send_stream::Command;
use std::io::{self, Write};

/// Which btrfs-progs output to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DumpFormat {
    /// btrfs-progs 6.10 and later (the default).
    #[default]
    Current,
    /// btrfs-progs 6.2 to 6.9 (Debian 12's 6.2 among them).
    Progs6_2,
}

/// `PATH_MAX`: btrfs-progs refuses to print a joined path this long.
const PATH_MAX: usize = 4096;

/// Joins two paths as btrfs-progs' `path_cat_out` does: one trailing slash
/// of each dropped, then `a/b`.
fn path_cat(a: &[u8], b: &[u8]) -> Result<Vec<u8>, String> {
    if a.len() + b.len() + 2 >= PATH_MAX {
        return Err("path too long".to_string());
    }
    let a = a.strip_suffix(b"/").unwrap_or(a);
    let b = b.strip_suffix(b"/").unwrap_or(b);
    let mut out = a.to_vec();
    out.push(b'/');
    out.extend_from_slice(b);
    Ok(out)
}

/// C-style escaping of what could break a line, as btrfs-progs prints
/// paths: `\n`, `\t`, `\ ` and the like, other unprintable bytes as
/// three-digit octal. Returns the escaped bytes.
pub fn escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        let named = match c {
            0x07 => Some(b'a'),
            0x08 => Some(b'b'),
            0x1b => Some(b'e'),
            0x0c => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x0b => Some(b'v'),
            b' ' => Some(b' '),
            b'\\' => Some(b'\\'),
            _ => None,
        };
        match named {
            Some(n) => out.extend_from_slice(&[b'\\', n]),
            None if (0x20..0x7f).contains(&c) => out.push(c),
            None => out.extend_from_slice(&[b'\\', b'0' + (c >> 6), b'0' + ((c >> 3) & 7), b'0' + (c & 7)]),
        }
    }
    out
}

/// Prints streams' commands; keeps the subvolume path between lines.
pub struct Dumper<W> {
    out: W,
    format: DumpFormat,
    /// The path commands are joined to: `.` until a subvolume starts.
    subvol: Vec<u8>,
}

/// A value as C's `%s` prints it: up to the first NUL.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

impl<W: Write> Dumper<W> {
    /// A dumper writing to `out`.
    pub fn new(out: W, format: DumpFormat) -> Self {
        Dumper { out, format, subvol: b".".to_vec() }
    }

    /// Gives back the writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes `title`, the escaped `path` and, when `fields` is not None,
    /// the padding and the fields (raw bytes).
    fn line(&mut self, title: &str, path: &[u8], fields: Option<&[u8]>) -> io::Result<()> {
        let mut l = format!("{title:<16}").into_bytes();
        let p = escape(path);
        l.extend_from_slice(&p);
        if let Some(f) = fields {
            let pad = 32usize.saturating_sub(p.len()).max(1);
            l.extend(std::iter::repeat_n(b' ', pad));
            l.extend_from_slice(f);
        }
        l.push(b'\n');
        self.out.write_all(&l)
    }

    /// Prints one command. Errors are the path or time that btrfs-progs
    /// could not print either, or the writer's.
    pub fn command(&mut self, c: &Command<'_>) -> Result<(), String> {
        let io = |e: io::Error| format!("write error: {e}");
        let full = |s: &Self, p: &[u8]| path_cat(&s.subvol, p);
        let fmt = self.format;
        let line = match *c {
            Command::Subvol { path, uuid, ctransid } => {
                self.subvol = path_cat(b".", path)?;
                let f = format!("uuid={} transid={ctransid}", crate::format_uuid(&uuid));
                (self.subvol.clone(), "subvol", Some(f.into_bytes()))
            }
            Command::Snapshot { path, uuid, ctransid, clone_uuid, clone_ctransid } => {
                self.subvol = path_cat(b".", path)?;
                let f = format!(
                    "uuid={} transid={ctransid} parent_uuid={} parent_transid={clone_ctransid}",
                    crate::format_uuid(&uuid),
                    crate::format_uuid(&clone_uuid)
                );
                (self.subvol.clone(), "snapshot", Some(f.into_bytes()))
            }
            Command::Mkfile { path, .. } => (full(self, path)?, "mkfile", None),
            Command::Mkdir { path, .. } => (full(self, path)?, "mkdir", None),
            Command::Mkfifo { path, .. } => (full(self, path)?, "mkfifo", None),
            Command::Mksock { path, .. } => (full(self, path)?, "mksock", None),
            Command::Unlink { path } => (full(self, path)?, "unlink", None),
            Command::Rmdir { path } => (full(self, path)?, "rmdir", None),
            Command::Mknod { path, mode, rdev, .. } => {
                (full(self, path)?, "mknod", Some(format!("mode={mode:o} dev={rdev:#x}").into_bytes()))
            }
            Command::Symlink { path, target, .. } => (full(self, path)?, "symlink", Some([b"dest=".as_slice(), &escape(target)].concat())),
            Command::Rename { from, to } => {
                let to = full(self, to)?;
                (full(self, from)?, "rename", Some([b"dest=".as_slice(), &escape(&to)].concat()))
            }
            Command::Link { path, target } => (full(self, path)?, "link", Some([b"dest=".as_slice(), &escape(target)].concat())),
            Command::Write { path, offset, data } => {
                (full(self, path)?, "write", Some(format!("offset={offset} len={}", data.len()).into_bytes()))
            }
            Command::Clone { path, offset, len, clone_path, clone_offset, .. } => {
                let from = full(self, clone_path)?;
                let from = if fmt == DumpFormat::Progs6_2 { from } else { escape(&from) };
                let f = [format!("offset={offset} len={len} from=").as_bytes(), &from, format!(" clone_offset={clone_offset}").as_bytes()]
                    .concat();
                (full(self, path)?, "clone", Some(f))
            }
            Command::SetXattr { path, name, data } => {
                let f = match fmt {
                    DumpFormat::Progs6_2 => {
                        [b"name=".as_slice(), c_str(name), b" data=", c_str(data), format!(" len={}", data.len()).as_bytes()].concat()
                    }
                    DumpFormat::Current => {
                        [b"name=".as_slice(), &escape(name), b" ", &escape(data), format!(" len={}", data.len()).as_bytes()].concat()
                    }
                };
                (full(self, path)?, "set_xattr", Some(f))
            }
            Command::RemoveXattr { path, name } => {
                let name = if fmt == DumpFormat::Progs6_2 { name.to_vec() } else { escape(name) };
                (full(self, path)?, "remove_xattr", Some([b"name=".as_slice(), &name].concat()))
            }
            Command::Truncate { path, size } => (full(self, path)?, "truncate", Some(format!("size={size}").into_bytes())),
            Command::Chmod { path, mode } => (full(self, path)?, "chmod", Some(format!("mode={mode:o}").into_bytes())),
            Command::Chown { path, uid, gid } => (full(self, path)?, "chown", Some(format!("gid={gid} uid={uid}").into_bytes())),
            Command::Utimes { path, atime, mtime, ctime } => {
                let t = |t: ferrofs_core::send_stream::StreamTime| {
                    i64::try_from(t.sec)
                        .ok()
                        .and_then(local_time_string)
                        .ok_or_else(|| format!("time {}.{} cannot be printed", t.sec, t.nsec))
                };
                let f = format!("atime={} mtime={} ctime={}", t(atime)?, t(mtime)?, t(ctime)?);
                (full(self, path)?, "utimes", Some(f.into_bytes()))
            }
            Command::UpdateExtent { path, offset, len } => {
                (full(self, path)?, "update_extent", Some(format!("offset={offset} len={len}").into_bytes()))
            }
            Command::End => return Ok(()),
            Command::Fallocate { path, mode, offset, len } => {
                (full(self, path)?, "fallocate", Some(format!("mode={} offset={offset} len={len}", mode as i32).into_bytes()))
            }
            // "0x" then decimal: what btrfs-progs prints.
            Command::Fileattr { path, attr } => (full(self, path)?, "fileattr", Some(format!("fileattr=0x{attr}").into_bytes())),
            Command::EncodedWrite { path, offset, unencoded_file_len, unencoded_len, unencoded_offset, compression, encryption, data } => {
                let sep = if fmt == DumpFormat::Progs6_2 { "," } else { "" };
                let f = format!(
                    "offset={offset} len={}{sep} unencoded_file_len={unencoded_file_len}{sep} unencoded_len={unencoded_len}{sep} unencoded_offset={unencoded_offset}{sep} compression={compression}{sep} encryption={encryption}",
                    data.len()
                );
                (full(self, path)?, "encoded_write", Some(f.into_bytes()))
            }
        };
        let (path, title, fields) = line;
        self.line(title, &path, fields.as_deref()).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_cat_drops_one_trailing_slash_each() {
        assert_eq!(path_cat(b".", b"snap").unwrap(), b"./snap");
        assert_eq!(path_cat(b"./snap", b"").unwrap(), b"./snap/");
        assert_eq!(path_cat(b"./snap/", b"a/").unwrap(), b"./snap/a");
        assert!(path_cat(&[b'a'; 4000], &[b'b'; 94]).is_err());
    }

    #[test]
    fn escaping_matches_btrfs_progs() {
        assert_eq!(escape(b"a b\\c\n\t\x07\x1b\x7f\xe9"), b"a\\ b\\\\c\\n\\t\\a\\e\\177\\351");
    }
}
