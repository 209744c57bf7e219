// SPDX-License-Identifier: GPL-2.0
//! The received-subvolume map: which directory under the receive
//! destination holds the subvolume a sender knows as (UUID, ctransid), so an
//! incremental stream finds its parent and a CLONE its source on any
//! filesystem (btrfs keeps this in the subvolume's root item instead).
//!
//! It is the text file `DIR/.ferrofs-received`, one line per subvolume
//! received completely, appended when its END is applied:
//!
//! ```text
//! # ferrofs receive: subvolumes received into this directory
//! 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 42 snap-1
//! ```
//!
//! UUID (8-4-4-4-12 hex), ctransid (decimal), then the directory's name,
//! which runs to the end of the line, with `\` written `\\` and a newline
//! `\n`. Lines starting with `#` are comments. The file is rewritten whole
//! through a temporary file and a rename, so a crash leaves the old or the
//! new map. A line whose directory no longer exists is skipped at lookup.

use crate::{format_uuid, parse_uuid};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the map file inside the destination directory.
pub const MAP_FILE: &str = ".ferrofs-received";

/// One received subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The subvolume's UUID on the sending side.
    pub uuid: [u8; 16],
    /// Its ctransid on the sending side.
    pub ctransid: u64,
    /// Its directory's name under the destination.
    pub name: Vec<u8>,
}

/// The map of one destination directory.
#[derive(Debug, Default)]
pub struct ReceivedMap {
    entries: Vec<Entry>,
}

fn escape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out
}

fn unescape(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            match it.next()? {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                _ => return None,
            }
        } else {
            out.push(b);
        }
    }
    Some(out)
}

impl ReceivedMap {
    /// Reads `dir`'s map; a missing file is an empty map, a malformed line
    /// an error naming it.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join(MAP_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReceivedMap::default()),
            Err(e) => return Err(format!("{}: {}", path.display(), crate::strerror(&e))),
        };
        Self::parse(&bytes).map_err(|line| format!("{}: line {line} is not `UUID CTRANSID NAME`", path.display()))
    }

    /// Parses a map file's contents; the error is the bad line's number.
    pub fn parse(bytes: &[u8]) -> Result<Self, usize> {
        let mut entries = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let mut parts = line.splitn(3, |&b| b == b' ');
            let (Some(uuid), Some(ctransid), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(i + 1);
            };
            let uuid = std::str::from_utf8(uuid).ok().and_then(parse_uuid).ok_or(i + 1)?;
            let ctransid = std::str::from_utf8(ctransid).ok().and_then(|s| s.parse().ok()).ok_or(i + 1)?;
            let name = unescape(name).filter(|n| !n.is_empty()).ok_or(i + 1)?;
            entries.push(Entry { uuid, ctransid, name });
        }
        Ok(ReceivedMap { entries })
    }

    /// The file's contents.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = b"# ferrofs receive: subvolumes received into this directory\n".to_vec();
        for e in &self.entries {
            out.extend_from_slice(format!("{} {} ", format_uuid(&e.uuid), e.ctransid).as_bytes());
            out.extend_from_slice(&escape(&e.name));
            out.push(b'\n');
        }
        out
    }

    /// Writes the map into `dir` (temporary file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(MAP_FILE);
        let tmp = dir.join(format!("{MAP_FILE}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.to_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| format!("{}: {}", path.display(), crate::strerror(&e)))
    }

    /// Records a subvolume received completely; a previous entry for the
    /// same name is replaced.
    pub fn add(&mut self, entry: Entry) {
        self.entries.retain(|e| e.name != entry.name);
        self.entries.push(entry);
    }

    /// The directory under `dir` of the subvolume received as (`uuid`,
    /// `ctransid`), the latest one that still exists.
    pub fn find(&self, dir: &Path, uuid: &[u8; 16], ctransid: u64) -> Option<PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        self.entries
            .iter()
            .rev()
            .filter(|e| e.uuid == *uuid && e.ctransid == ctransid)
            .map(|e| dir.join(std::ffi::OsStr::from_bytes(&e.name)))
            .find(|p| p.symlink_metadata().is_ok_and(|m| m.is_dir()))
    }

    /// Whether some entry has `uuid` (with any ctransid): for a message
    /// that says the parent is there but at another transaction.
    pub fn has_uuid(&self, uuid: &[u8; 16]) -> bool {
        self.entries.iter().any(|e| e.uuid == *uuid)
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_awkward_names() {
        let mut m = ReceivedMap::default();
        m.add(Entry { uuid: [1; 16], ctransid: 7, name: b"plain".to_vec() });
        m.add(Entry { uuid: [2; 16], ctransid: u64::MAX, name: b"with space\nnewline\\slash".to_vec() });
        let bytes = m.to_bytes();
        let back = ReceivedMap::parse(&bytes).expect("parse");
        assert_eq!(back.entries(), m.entries());
        assert!(String::from_utf8_lossy(&bytes).contains("01010101-0101-0101-0101-010101010101 7 plain\n"));
    }

    #[test]
    fn malformed_lines_are_named() {
        assert_eq!(ReceivedMap::parse(b"# c\nnot a uuid line\n").map(|_| ()), Err(2));
        assert_eq!(ReceivedMap::parse(b"01010101-0101-0101-0101-010101010101 x name\n").map(|_| ()), Err(1));
        assert_eq!(ReceivedMap::parse(b"01010101-0101-0101-0101-010101010101 1 bad\\q\n").map(|_| ()), Err(1));
        assert_eq!(ReceivedMap::parse(b"01010101-0101-0101-0101-010101010101 1\n").map(|_| ()), Err(1));
    }

    #[test]
    fn a_later_entry_for_a_name_replaces_the_earlier() {
        let mut m = ReceivedMap::default();
        m.add(Entry { uuid: [1; 16], ctransid: 1, name: b"a".to_vec() });
        m.add(Entry { uuid: [2; 16], ctransid: 2, name: b"a".to_vec() });
        assert_eq!(m.entries().len(), 1);
        assert!(!m.has_uuid(&[1; 16]));
    }
}
