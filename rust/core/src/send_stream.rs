// SPDX-License-Identifier: GPL-2.0
//! The btrfs send stream, byte for byte: the one encoder (for the kernel's
//! send generator) and the one decoder (for `ferrofs receive` and its dump),
//! so that `btrfs receive` reads what ferrofs sends and ferrofs reads what
//! btrfs sends.
//!
//! Framing (all integers little-endian):
//!
//! ```text
//! stream  = header command*            (several streams may follow each other)
//! header  = "btrfs-stream\0" (13 B) + le32 version
//! command = le32 len (payload only) + le16 cmd + le32 crc + payload
//! payload = tlv*
//! tlv     = le16 type + le16 len + value
//! ```
//!
//! The CRC is CRC-32C over the command header (crc field zeroed) and the
//! payload, started from 0 and not inverted at the end: the kernel's raw
//! `crc32c(0, ...)`, which btrfs's send.c calls. It differs from the standard
//! CRC-32C (seed and final XOR all ones) that ferrofs's blocks use.
//!
//! Version 2 adds FALLOCATE, FILEATTR and ENCODED_WRITE, and changes one
//! thing in the framing: the DATA attribute has only its type, no length,
//! and runs to the end of the command, so it is always the last one.
//!
//! Decoding treats every byte as hostile. A command is refused (`Corrupt`)
//! for: a length beyond the version's buffer or beyond the input, a CRC
//! mismatch, a command number the version does not define, an attribute
//! type of 0 or above 35, a truncated attribute, an attribute given twice,
//! a missing attribute, an integer, UUID or timespec of the wrong size, a
//! timespec with 1e9 nanoseconds or more, or a NUL byte inside a path or
//! name. btrfs-progs keeps the last of duplicate attributes and runs
//! nothing for unknown commands; both are refused here since no sender
//! writes them. Like btrfs-progs, a known attribute that the command does
//! not use is skipped: the kernel sends MODE and RDEV with MKFIFO and
//! MKSOCK, and OTIME with UTIMES from version 2 on; none of them change
//! what the command does on the receiving side.

use crate::crc32c;
use crate::error::{Error, Result};
use crate::le;
use crate::mem::TryVec;

/// First bytes of every stream.
pub const STREAM_MAGIC: &[u8; 13] = b"btrfs-stream\0";
/// Stream header: magic + le32 version.
pub const HEADER_LEN: usize = 17;
/// Command header: le32 payload length, le16 command, le32 CRC.
pub const CMD_HEADER_LEN: usize = 10;
/// Attribute header: le16 type, le16 length.
const TLV_HEADER_LEN: usize = 4;
/// Oldest stream version this codec reads and writes.
pub const MIN_VERSION: u32 = 1;
/// Newest stream version this codec reads and writes (btrfs's v3, verity,
/// is experimental and not supported).
pub const MAX_VERSION: u32 = 2;

/// Command numbers (btrfs `enum btrfs_send_cmd`); frozen by the format.
pub mod cmd {
    #![allow(missing_docs)]
    pub const SUBVOL: u16 = 1;
    pub const SNAPSHOT: u16 = 2;
    pub const MKFILE: u16 = 3;
    pub const MKDIR: u16 = 4;
    pub const MKNOD: u16 = 5;
    pub const MKFIFO: u16 = 6;
    pub const MKSOCK: u16 = 7;
    pub const SYMLINK: u16 = 8;
    pub const RENAME: u16 = 9;
    pub const LINK: u16 = 10;
    pub const UNLINK: u16 = 11;
    pub const RMDIR: u16 = 12;
    pub const SET_XATTR: u16 = 13;
    pub const REMOVE_XATTR: u16 = 14;
    pub const WRITE: u16 = 15;
    pub const CLONE: u16 = 16;
    pub const TRUNCATE: u16 = 17;
    pub const CHMOD: u16 = 18;
    pub const CHOWN: u16 = 19;
    pub const UTIMES: u16 = 20;
    pub const END: u16 = 21;
    pub const UPDATE_EXTENT: u16 = 22;
    /// Last command of version 1.
    pub const MAX_V1: u16 = 22;
    pub const FALLOCATE: u16 = 23;
    pub const FILEATTR: u16 = 24;
    pub const ENCODED_WRITE: u16 = 25;
    /// Last command of version 2.
    pub const MAX_V2: u16 = 25;
}

/// Attribute (TLV) types (btrfs `BTRFS_SEND_A_*`); frozen by the format.
pub mod attr {
    #![allow(missing_docs)]
    pub const UUID: u16 = 1;
    pub const CTRANSID: u16 = 2;
    pub const INO: u16 = 3;
    pub const SIZE: u16 = 4;
    pub const MODE: u16 = 5;
    pub const UID: u16 = 6;
    pub const GID: u16 = 7;
    pub const RDEV: u16 = 8;
    pub const CTIME: u16 = 9;
    pub const MTIME: u16 = 10;
    pub const ATIME: u16 = 11;
    pub const OTIME: u16 = 12;
    pub const XATTR_NAME: u16 = 13;
    pub const XATTR_DATA: u16 = 14;
    pub const PATH: u16 = 15;
    pub const PATH_TO: u16 = 16;
    pub const PATH_LINK: u16 = 17;
    pub const FILE_OFFSET: u16 = 18;
    /// From version 2: no length field, runs to the end of the command.
    pub const DATA: u16 = 19;
    pub const CLONE_UUID: u16 = 20;
    pub const CLONE_CTRANSID: u16 = 21;
    pub const CLONE_PATH: u16 = 22;
    pub const CLONE_OFFSET: u16 = 23;
    pub const CLONE_LEN: u16 = 24;
    pub const FALLOCATE_MODE: u16 = 25;
    pub const FILEATTR: u16 = 26;
    pub const UNENCODED_FILE_LEN: u16 = 27;
    pub const UNENCODED_LEN: u16 = 28;
    pub const UNENCODED_OFFSET: u16 = 29;
    pub const COMPRESSION: u16 = 30;
    pub const ENCRYPTION: u16 = 31;
    /// Highest attribute btrfs defines (v3's verity attributes are 32-35);
    /// types up to here are skipped when a command does not use them.
    pub const MAX: u16 = 35;
}

/// The stream header for `version`.
pub fn stream_header(version: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..13].copy_from_slice(STREAM_MAGIC);
    h[13..].copy_from_slice(&version.to_le_bytes());
    h
}

/// The version of the stream header at the start of `b`: `Invalid` for a
/// short header or bad magic, `Unsupported` for a version other than 1 or 2.
pub fn decode_stream_header(b: &[u8]) -> Result<u32> {
    if b.get(..13) != Some(&STREAM_MAGIC[..]) {
        return Err(Error::Invalid("not a btrfs send stream (bad magic)"));
    }
    let version = le::u32_at(b, 13).ok_or(Error::Invalid("send stream header is truncated"))?;
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(Error::Unsupported("send stream version (only 1 and 2 are supported)"));
    }
    Ok(version)
}

/// Largest data payload of one WRITE (or ENCODED_WRITE) for a version:
/// btrfs's send buffer minus 16 KiB, 48 KiB in v1 and 128 KiB in v2.
pub fn max_write(version: u32) -> usize {
    if version >= 2 {
        128 << 10
    } else {
        48 << 10
    }
}

/// Largest whole command (header + payload) the decoder accepts: btrfs's
/// send buffer, 64 KiB in v1; in v2 it is 16 KiB + 128 KiB rounded up to the
/// page size, taken here for the largest page size (64 KiB), 192 KiB.
pub fn max_command_len(version: u32) -> usize {
    if version >= 2 {
        192 << 10
    } else {
        64 << 10
    }
}

/// The send stream's command CRC of `header` (its crc field zeroed by the
/// caller or not: the field is skipped) and `payload`.
pub fn command_crc(header: &[u8; CMD_HEADER_LEN], payload: &[u8]) -> u32 {
    let crc = crc32c::update(0, &header[..6]);
    let crc = crc32c::update(crc, &[0u8; 4]);
    crc32c::update(crc, payload)
}

/// The name of a command number as `btrfs receive --dump` prints it
/// ("write", "set_xattr"), or "unknown".
pub fn command_name(number: u16) -> &'static str {
    match number {
        cmd::SUBVOL => "subvol",
        cmd::SNAPSHOT => "snapshot",
        cmd::MKFILE => "mkfile",
        cmd::MKDIR => "mkdir",
        cmd::MKNOD => "mknod",
        cmd::MKFIFO => "mkfifo",
        cmd::MKSOCK => "mksock",
        cmd::SYMLINK => "symlink",
        cmd::RENAME => "rename",
        cmd::LINK => "link",
        cmd::UNLINK => "unlink",
        cmd::RMDIR => "rmdir",
        cmd::SET_XATTR => "set_xattr",
        cmd::REMOVE_XATTR => "remove_xattr",
        cmd::WRITE => "write",
        cmd::CLONE => "clone",
        cmd::TRUNCATE => "truncate",
        cmd::CHMOD => "chmod",
        cmd::CHOWN => "chown",
        cmd::UTIMES => "utimes",
        cmd::END => "end",
        cmd::UPDATE_EXTENT => "update_extent",
        cmd::FALLOCATE => "fallocate",
        cmd::FILEATTR => "fileattr",
        cmd::ENCODED_WRITE => "encoded_write",
        _ => "unknown",
    }
}

/// Highest command number of a version.
fn max_command(version: u32) -> u16 {
    if version >= 2 {
        cmd::MAX_V2
    } else {
        cmd::MAX_V1
    }
}

/// A btrfs timespec: le64 seconds + le32 nanoseconds (below 1e9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamTime {
    /// Seconds since the epoch.
    pub sec: u64,
    /// Nanoseconds, below 1e9.
    pub nsec: u32,
}

/// Encoded size of a timespec.
const TIMESPEC_LEN: usize = 12;
/// Encoded size of a UUID.
const UUID_LEN: usize = 16;

/// One command of a stream. Paths are relative to the subvolume being
/// received, without a leading slash; the empty path is its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// Starts a full stream: create subvolume `path`.
    Subvol { path: &'a [u8], uuid: [u8; 16], ctransid: u64 },
    /// Starts an incremental stream: `path` is a snapshot of the subvolume
    /// received earlier as (`clone_uuid`, `clone_ctransid`).
    Snapshot { path: &'a [u8], uuid: [u8; 16], ctransid: u64, clone_uuid: [u8; 16], clone_ctransid: u64 },
    /// Creates an empty regular file.
    Mkfile { path: &'a [u8], ino: u64 },
    /// Creates a directory.
    Mkdir { path: &'a [u8], ino: u64 },
    /// Creates a device node; `mode` carries the file type bits, `rdev` is
    /// the kernel's `new_encode_dev` form.
    Mknod { path: &'a [u8], ino: u64, mode: u64, rdev: u64 },
    /// Creates a FIFO.
    Mkfifo { path: &'a [u8], ino: u64 },
    /// Creates a UNIX socket node.
    Mksock { path: &'a [u8], ino: u64 },
    /// Creates a symlink at `path` pointing at `target`.
    Symlink { path: &'a [u8], ino: u64, target: &'a [u8] },
    /// Renames `from` to `to`.
    Rename { from: &'a [u8], to: &'a [u8] },
    /// Creates `path` as a new name of the existing `target`.
    Link { path: &'a [u8], target: &'a [u8] },
    /// Removes a non-directory name.
    Unlink { path: &'a [u8] },
    /// Removes an empty directory.
    Rmdir { path: &'a [u8] },
    /// Sets an extended attribute.
    SetXattr { path: &'a [u8], name: &'a [u8], data: &'a [u8] },
    /// Removes an extended attribute.
    RemoveXattr { path: &'a [u8], name: &'a [u8] },
    /// Writes `data` at `offset`.
    Write { path: &'a [u8], offset: u64, data: &'a [u8] },
    /// Copies (reflinks) `len` bytes at `clone_offset` of `clone_path` in
    /// the subvolume received as (`clone_uuid`, `clone_ctransid`) to `offset`.
    Clone { path: &'a [u8], offset: u64, len: u64, clone_uuid: [u8; 16], clone_ctransid: u64, clone_path: &'a [u8], clone_offset: u64 },
    /// Sets the file size.
    Truncate { path: &'a [u8], size: u64 },
    /// Sets the permission bits.
    Chmod { path: &'a [u8], mode: u64 },
    /// Sets the owner, without following a symlink.
    Chown { path: &'a [u8], uid: u64, gid: u64 },
    /// Sets the times, without following a symlink (ctime cannot be set).
    Utimes { path: &'a [u8], atime: StreamTime, mtime: StreamTime, ctime: StreamTime },
    /// Ends one subvolume's stream.
    End,
    /// (With the "no file data" flag) the range changed; no data follows.
    UpdateExtent { path: &'a [u8], offset: u64, len: u64 },
    /// v2: `fallocate(2)` with `mode`.
    Fallocate { path: &'a [u8], mode: u32, offset: u64, len: u64 },
    /// v2: btrfs inode flags (`BTRFS_INODE_*`).
    Fileattr { path: &'a [u8], attr: u64 },
    /// v2: an extent as stored, possibly compressed.
    EncodedWrite {
        path: &'a [u8],
        offset: u64,
        unencoded_file_len: u64,
        unencoded_len: u64,
        unencoded_offset: u64,
        compression: u32,
        encryption: u32,
        data: &'a [u8],
    },
}

impl Command<'_> {
    /// The command number.
    pub fn number(&self) -> u16 {
        match self {
            Command::Subvol { .. } => cmd::SUBVOL,
            Command::Snapshot { .. } => cmd::SNAPSHOT,
            Command::Mkfile { .. } => cmd::MKFILE,
            Command::Mkdir { .. } => cmd::MKDIR,
            Command::Mknod { .. } => cmd::MKNOD,
            Command::Mkfifo { .. } => cmd::MKFIFO,
            Command::Mksock { .. } => cmd::MKSOCK,
            Command::Symlink { .. } => cmd::SYMLINK,
            Command::Rename { .. } => cmd::RENAME,
            Command::Link { .. } => cmd::LINK,
            Command::Unlink { .. } => cmd::UNLINK,
            Command::Rmdir { .. } => cmd::RMDIR,
            Command::SetXattr { .. } => cmd::SET_XATTR,
            Command::RemoveXattr { .. } => cmd::REMOVE_XATTR,
            Command::Write { .. } => cmd::WRITE,
            Command::Clone { .. } => cmd::CLONE,
            Command::Truncate { .. } => cmd::TRUNCATE,
            Command::Chmod { .. } => cmd::CHMOD,
            Command::Chown { .. } => cmd::CHOWN,
            Command::Utimes { .. } => cmd::UTIMES,
            Command::End => cmd::END,
            Command::UpdateExtent { .. } => cmd::UPDATE_EXTENT,
            Command::Fallocate { .. } => cmd::FALLOCATE,
            Command::Fileattr { .. } => cmd::FILEATTR,
            Command::EncodedWrite { .. } => cmd::ENCODED_WRITE,
        }
    }

    /// The command's name as `btrfs receive --dump` prints it.
    pub fn name(&self) -> &'static str {
        command_name(self.number())
    }
}

/// The fixed part of a command, read before its payload is: what a reader
/// needs to know how many more bytes to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandHeader {
    /// Payload length (after the 10-byte header), within the version's bound.
    pub payload_len: usize,
    /// Command number, not yet checked against the version.
    pub cmd: u16,
    /// The CRC the command carries.
    pub crc: u32,
}

impl CommandHeader {
    /// Header plus payload.
    pub fn total_len(&self) -> usize {
        CMD_HEADER_LEN + self.payload_len
    }
}

/// Reads the command header at the start of `b` and bounds its length by
/// the version's buffer (`max_command_len`).
pub fn decode_command_header(b: &[u8], version: u32) -> Result<CommandHeader> {
    check_version(version)?;
    let (Some(len), Some(cmd), Some(crc)) = (le::u32_at(b, 0), le::u16_at(b, 4), le::u32_at(b, 6)) else {
        return Err(Error::corrupt("truncated command header"));
    };
    let payload_len = usize::try_from(len).map_err(|_| Error::corrupt("command length too large"))?;
    if payload_len > max_command_len(version) - CMD_HEADER_LEN {
        return Err(Error::corrupt("command length beyond the version's limit"));
    }
    Ok(CommandHeader { payload_len, cmd, crc })
}

fn check_version(version: u32) -> Result<()> {
    if (MIN_VERSION..=MAX_VERSION).contains(&version) {
        Ok(())
    } else {
        Err(Error::Unsupported("send stream version (only 1 and 2 are supported)"))
    }
}

/// The attributes of one command, by type.
struct Attrs<'a> {
    slots: [Option<&'a [u8]>; attr::MAX as usize + 1],
}

impl<'a> Attrs<'a> {
    /// Splits a payload into attributes (see the module comment for what
    /// is refused).
    fn parse(mut p: &'a [u8], version: u32) -> Result<Self> {
        let mut a = Attrs { slots: [None; attr::MAX as usize + 1] };
        while !p.is_empty() {
            let ty = le::u16_at(p, 0).ok_or(Error::corrupt("truncated attribute header"))?;
            if ty == 0 || ty > attr::MAX {
                return Err(Error::corrupt("unknown attribute type"));
            }
            let value;
            if version >= 2 && ty == attr::DATA {
                value = &p[2..];
                p = &[];
            } else {
                let len = le::u16_at(p, 2).ok_or(Error::corrupt("truncated attribute header"))? as usize;
                value = p.get(TLV_HEADER_LEN..TLV_HEADER_LEN + len).ok_or(Error::corrupt("attribute runs past the command"))?;
                p = &p[TLV_HEADER_LEN + len..];
            }
            let slot = &mut a.slots[ty as usize];
            if slot.is_some() {
                return Err(Error::corrupt("duplicate attribute"));
            }
            *slot = Some(value);
        }
        Ok(a)
    }

    fn raw(&self, ty: u16) -> Result<&'a [u8]> {
        self.slots[ty as usize].ok_or(Error::corrupt("missing attribute"))
    }

    /// A path or name: no NUL bytes, since receivers pass it to C.
    fn string(&self, ty: u16) -> Result<&'a [u8]> {
        let s = self.raw(ty)?;
        if s.contains(&0) {
            return Err(Error::corrupt("NUL byte in a path or name"));
        }
        Ok(s)
    }

    fn u64(&self, ty: u16) -> Result<u64> {
        let v = self.raw(ty)?;
        if v.len() != 8 {
            return Err(Error::corrupt("integer attribute is not 8 bytes"));
        }
        le::u64_at(v, 0).ok_or(Error::corrupt("integer attribute is not 8 bytes"))
    }

    fn u32(&self, ty: u16) -> Result<u32> {
        let v = self.raw(ty)?;
        if v.len() != 4 {
            return Err(Error::corrupt("integer attribute is not 4 bytes"));
        }
        le::u32_at(v, 0).ok_or(Error::corrupt("integer attribute is not 4 bytes"))
    }

    /// An optional u32 that defaults to 0 (ENCODED_WRITE's compression and
    /// encryption, as btrfs documents).
    fn u32_or_zero(&self, ty: u16) -> Result<u32> {
        if self.slots[ty as usize].is_none() {
            Ok(0)
        } else {
            self.u32(ty)
        }
    }

    fn uuid(&self, ty: u16) -> Result<[u8; 16]> {
        let v = self.raw(ty)?;
        let mut u = [0u8; UUID_LEN];
        if v.len() != UUID_LEN {
            return Err(Error::corrupt("UUID attribute is not 16 bytes"));
        }
        u.copy_from_slice(v);
        Ok(u)
    }

    fn time(&self, ty: u16) -> Result<StreamTime> {
        let v = self.raw(ty)?;
        let (true, Some(sec), Some(nsec)) = (v.len() == TIMESPEC_LEN, le::u64_at(v, 0), le::u32_at(v, 8)) else {
            return Err(Error::corrupt("timespec attribute is not 12 bytes"));
        };
        if nsec >= 1_000_000_000 {
            return Err(Error::corrupt("timespec nanoseconds out of range"));
        }
        Ok(StreamTime { sec, nsec })
    }
}

/// Decodes the command at the start of `b` (header and payload, CRC
/// checked) for a stream of `version`; returns it and the bytes it used.
/// Never panics; every refusal is `Corrupt` with a short reason (or
/// `Unsupported` for the version itself).
pub fn decode_command(b: &[u8], version: u32) -> Result<(Command<'_>, usize)> {
    let h = decode_command_header(b, version)?;
    let total = h.total_len();
    let whole = b.get(..total).ok_or(Error::corrupt("command runs past the end of the stream"))?;
    let mut hdr = [0u8; CMD_HEADER_LEN];
    hdr.copy_from_slice(&whole[..CMD_HEADER_LEN]);
    let payload = &whole[CMD_HEADER_LEN..];
    if command_crc(&hdr, payload) != h.crc {
        return Err(Error::corrupt("bad CRC"));
    }
    if h.cmd == 0 || h.cmd > max_command(version) {
        return Err(Error::corrupt("unknown command"));
    }
    let a = Attrs::parse(payload, version)?;
    use attr::*;
    let c = match h.cmd {
        cmd::SUBVOL => Command::Subvol { path: a.string(PATH)?, uuid: a.uuid(UUID)?, ctransid: a.u64(CTRANSID)? },
        cmd::SNAPSHOT => Command::Snapshot {
            path: a.string(PATH)?,
            uuid: a.uuid(UUID)?,
            ctransid: a.u64(CTRANSID)?,
            clone_uuid: a.uuid(CLONE_UUID)?,
            clone_ctransid: a.u64(CLONE_CTRANSID)?,
        },
        cmd::MKFILE => Command::Mkfile { path: a.string(PATH)?, ino: a.u64(INO)? },
        cmd::MKDIR => Command::Mkdir { path: a.string(PATH)?, ino: a.u64(INO)? },
        cmd::MKNOD => Command::Mknod { path: a.string(PATH)?, ino: a.u64(INO)?, mode: a.u64(MODE)?, rdev: a.u64(RDEV)? },
        cmd::MKFIFO => Command::Mkfifo { path: a.string(PATH)?, ino: a.u64(INO)? },
        cmd::MKSOCK => Command::Mksock { path: a.string(PATH)?, ino: a.u64(INO)? },
        cmd::SYMLINK => Command::Symlink { path: a.string(PATH)?, ino: a.u64(INO)?, target: a.string(PATH_LINK)? },
        cmd::RENAME => Command::Rename { from: a.string(PATH)?, to: a.string(PATH_TO)? },
        cmd::LINK => Command::Link { path: a.string(PATH)?, target: a.string(PATH_LINK)? },
        cmd::UNLINK => Command::Unlink { path: a.string(PATH)? },
        cmd::RMDIR => Command::Rmdir { path: a.string(PATH)? },
        cmd::SET_XATTR => Command::SetXattr { path: a.string(PATH)?, name: a.string(XATTR_NAME)?, data: a.raw(XATTR_DATA)? },
        cmd::REMOVE_XATTR => Command::RemoveXattr { path: a.string(PATH)?, name: a.string(XATTR_NAME)? },
        cmd::WRITE => Command::Write { path: a.string(PATH)?, offset: a.u64(FILE_OFFSET)?, data: a.raw(DATA)? },
        cmd::CLONE => Command::Clone {
            path: a.string(PATH)?,
            offset: a.u64(FILE_OFFSET)?,
            len: a.u64(CLONE_LEN)?,
            clone_uuid: a.uuid(CLONE_UUID)?,
            clone_ctransid: a.u64(CLONE_CTRANSID)?,
            clone_path: a.string(CLONE_PATH)?,
            clone_offset: a.u64(CLONE_OFFSET)?,
        },
        cmd::TRUNCATE => Command::Truncate { path: a.string(PATH)?, size: a.u64(SIZE)? },
        cmd::CHMOD => Command::Chmod { path: a.string(PATH)?, mode: a.u64(MODE)? },
        cmd::CHOWN => Command::Chown { path: a.string(PATH)?, uid: a.u64(UID)?, gid: a.u64(GID)? },
        cmd::UTIMES => Command::Utimes { path: a.string(PATH)?, atime: a.time(ATIME)?, mtime: a.time(MTIME)?, ctime: a.time(CTIME)? },
        cmd::END => Command::End,
        cmd::UPDATE_EXTENT => Command::UpdateExtent { path: a.string(PATH)?, offset: a.u64(FILE_OFFSET)?, len: a.u64(SIZE)? },
        cmd::FALLOCATE => {
            Command::Fallocate { path: a.string(PATH)?, mode: a.u32(FALLOCATE_MODE)?, offset: a.u64(FILE_OFFSET)?, len: a.u64(SIZE)? }
        }
        cmd::FILEATTR => Command::Fileattr { path: a.string(PATH)?, attr: a.u64(FILEATTR)? },
        cmd::ENCODED_WRITE => Command::EncodedWrite {
            path: a.string(PATH)?,
            offset: a.u64(FILE_OFFSET)?,
            unencoded_file_len: a.u64(UNENCODED_FILE_LEN)?,
            unencoded_len: a.u64(UNENCODED_LEN)?,
            unencoded_offset: a.u64(UNENCODED_OFFSET)?,
            compression: a.u32_or_zero(COMPRESSION)?,
            encryption: a.u32_or_zero(ENCRYPTION)?,
            data: a.raw(DATA)?,
        },
        _ => return Err(Error::corrupt("unknown command")),
    };
    Ok((c, total))
}

/// Encodes commands of one stream version into an internal reusable buffer.
pub struct StreamEncoder {
    buf: TryVec<u8>,
    version: u32,
}

impl StreamEncoder {
    /// An encoder for `version` (1 or 2); `Invalid` for any other.
    pub fn new(version: u32) -> Result<Self> {
        if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
            return Err(Error::Invalid("send stream version must be 1 or 2"));
        }
        Ok(StreamEncoder { buf: TryVec::new(), version })
    }

    /// The stream version this encoder writes.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Encodes one whole command (header with CRC, then attributes in the
    /// order btrfs's send.c writes them) and returns its bytes, valid until
    /// the next call. `Invalid` for what the version cannot carry: a v2
    /// command in v1, data above `max_write`, an attribute above 65535
    /// bytes, a NUL byte in a path or name, a timespec with 1e9 nanoseconds
    /// or more, or a command above `max_command_len`.
    pub fn encode(&mut self, c: &Command<'_>) -> Result<&[u8]> {
        self.buf.clear();
        self.encode_from(0, c)?;
        Ok(&self.buf)
    }

    /// `encode`, appending the command to `out` instead (one copy of a
    /// WRITE's data less); on an error `out` is as it was.
    pub fn encode_append(&mut self, c: &Command<'_>, out: &mut TryVec<u8>) -> Result<()> {
        core::mem::swap(&mut self.buf, out);
        let base = self.buf.len();
        let r = self.encode_from(base, c);
        if r.is_err() {
            self.buf.truncate(base);
        }
        core::mem::swap(&mut self.buf, out);
        r
    }

    /// Encodes `c` at the end of `buf`, which holds `base` bytes.
    fn encode_from(&mut self, base: usize, c: &Command<'_>) -> Result<()> {
        let number = c.number();
        if number > max_command(self.version) {
            return Err(Error::Invalid("command needs send stream version 2"));
        }
        self.buf.try_extend_from_slice(&[0u8; CMD_HEADER_LEN])?;
        self.put_attrs(c)?;
        let total = self.buf.len() - base;
        let payload_len = total - CMD_HEADER_LEN;
        if total > max_command_len(self.version) {
            return Err(Error::Invalid("command larger than the stream version allows"));
        }
        let len = u32::try_from(payload_len).map_err(|_| Error::Invalid("command larger than the stream version allows"))?;
        self.buf[base..base + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[base + 4..base + 6].copy_from_slice(&number.to_le_bytes());
        let mut hdr = [0u8; CMD_HEADER_LEN];
        hdr.copy_from_slice(&self.buf[base..base + CMD_HEADER_LEN]);
        let crc = command_crc(&hdr, &self.buf[base + CMD_HEADER_LEN..]);
        self.buf[base + 6..base + 10].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    fn put_attrs(&mut self, c: &Command<'_>) -> Result<()> {
        use attr::*;
        match *c {
            Command::Subvol { path, uuid, ctransid } => {
                self.put_str(PATH, path)?;
                self.put(UUID, &uuid)?;
                self.put_u64(CTRANSID, ctransid)
            }
            Command::Snapshot { path, uuid, ctransid, clone_uuid, clone_ctransid } => {
                self.put_str(PATH, path)?;
                self.put(UUID, &uuid)?;
                self.put_u64(CTRANSID, ctransid)?;
                self.put(CLONE_UUID, &clone_uuid)?;
                self.put_u64(CLONE_CTRANSID, clone_ctransid)
            }
            Command::Mkfile { path, ino }
            | Command::Mkdir { path, ino }
            | Command::Mkfifo { path, ino }
            | Command::Mksock { path, ino } => {
                self.put_str(PATH, path)?;
                self.put_u64(INO, ino)
            }
            Command::Mknod { path, ino, mode, rdev } => {
                self.put_str(PATH, path)?;
                self.put_u64(INO, ino)?;
                self.put_u64(RDEV, rdev)?;
                self.put_u64(MODE, mode)
            }
            Command::Symlink { path, ino, target } => {
                self.put_str(PATH, path)?;
                self.put_u64(INO, ino)?;
                self.put_str(PATH_LINK, target)
            }
            Command::Rename { from, to } => {
                self.put_str(PATH, from)?;
                self.put_str(PATH_TO, to)
            }
            Command::Link { path, target } => {
                self.put_str(PATH, path)?;
                self.put_str(PATH_LINK, target)
            }
            Command::Unlink { path } | Command::Rmdir { path } => self.put_str(PATH, path),
            Command::SetXattr { path, name, data } => {
                self.put_str(PATH, path)?;
                self.put_str(XATTR_NAME, name)?;
                self.put(XATTR_DATA, data)
            }
            Command::RemoveXattr { path, name } => {
                self.put_str(PATH, path)?;
                self.put_str(XATTR_NAME, name)
            }
            Command::Write { path, offset, data } => {
                self.put_str(PATH, path)?;
                self.put_u64(FILE_OFFSET, offset)?;
                self.put_data(data)
            }
            Command::Clone { path, offset, len, clone_uuid, clone_ctransid, clone_path, clone_offset } => {
                self.put_u64(FILE_OFFSET, offset)?;
                self.put_u64(CLONE_LEN, len)?;
                self.put_str(PATH, path)?;
                self.put(CLONE_UUID, &clone_uuid)?;
                self.put_u64(CLONE_CTRANSID, clone_ctransid)?;
                self.put_str(CLONE_PATH, clone_path)?;
                self.put_u64(CLONE_OFFSET, clone_offset)
            }
            Command::Truncate { path, size } => {
                self.put_str(PATH, path)?;
                self.put_u64(SIZE, size)
            }
            Command::Chmod { path, mode } => {
                self.put_str(PATH, path)?;
                self.put_u64(MODE, mode)
            }
            Command::Chown { path, uid, gid } => {
                self.put_str(PATH, path)?;
                self.put_u64(UID, uid)?;
                self.put_u64(GID, gid)
            }
            Command::Utimes { path, atime, mtime, ctime } => {
                self.put_str(PATH, path)?;
                self.put_time(ATIME, atime)?;
                self.put_time(MTIME, mtime)?;
                self.put_time(CTIME, ctime)
            }
            Command::End => Ok(()),
            Command::UpdateExtent { path, offset, len } => {
                self.put_str(PATH, path)?;
                self.put_u64(FILE_OFFSET, offset)?;
                self.put_u64(SIZE, len)
            }
            Command::Fallocate { path, mode, offset, len } => {
                self.put_str(PATH, path)?;
                self.put(FALLOCATE_MODE, &mode.to_le_bytes())?;
                self.put_u64(FILE_OFFSET, offset)?;
                self.put_u64(SIZE, len)
            }
            Command::Fileattr { path, attr } => {
                self.put_str(PATH, path)?;
                self.put_u64(FILEATTR, attr)
            }
            Command::EncodedWrite { path, offset, unencoded_file_len, unencoded_len, unencoded_offset, compression, encryption, data } => {
                self.put_str(PATH, path)?;
                self.put_u64(FILE_OFFSET, offset)?;
                self.put_u64(UNENCODED_FILE_LEN, unencoded_file_len)?;
                self.put_u64(UNENCODED_LEN, unencoded_len)?;
                self.put_u64(UNENCODED_OFFSET, unencoded_offset)?;
                self.put(COMPRESSION, &compression.to_le_bytes())?;
                self.put(ENCRYPTION, &encryption.to_le_bytes())?;
                self.put_data(data)
            }
        }
    }

    /// One attribute with its le16 length.
    fn put(&mut self, ty: u16, value: &[u8]) -> Result<()> {
        let len = u16::try_from(value.len()).map_err(|_| Error::Invalid("send stream attribute longer than 65535 bytes"))?;
        self.buf.try_reserve(TLV_HEADER_LEN + value.len())?;
        self.buf.try_extend_from_slice(&ty.to_le_bytes())?;
        self.buf.try_extend_from_slice(&len.to_le_bytes())?;
        self.buf.try_extend_from_slice(value)
    }

    fn put_str(&mut self, ty: u16, s: &[u8]) -> Result<()> {
        if s.contains(&0) {
            return Err(Error::Invalid("NUL byte in a send stream path or name"));
        }
        self.put(ty, s)
    }

    fn put_u64(&mut self, ty: u16, v: u64) -> Result<()> {
        self.put(ty, &v.to_le_bytes())
    }

    fn put_time(&mut self, ty: u16, t: StreamTime) -> Result<()> {
        if t.nsec >= 1_000_000_000 {
            return Err(Error::Invalid("timespec nanoseconds out of range"));
        }
        let mut v = [0u8; TIMESPEC_LEN];
        v[..8].copy_from_slice(&t.sec.to_le_bytes());
        v[8..].copy_from_slice(&t.nsec.to_le_bytes());
        self.put(ty, &v)
    }

    /// The DATA attribute: last, and from v2 without a length field.
    fn put_data(&mut self, data: &[u8]) -> Result<()> {
        if data.len() > max_write(self.version) {
            return Err(Error::Invalid("send stream data larger than one write of the version"));
        }
        if self.version >= 2 {
            self.buf.try_reserve(2 + data.len())?;
            self.buf.try_extend_from_slice(&attr::DATA.to_le_bytes())?;
            self.buf.try_extend_from_slice(data)
        } else {
            self.put(attr::DATA, data)
        }
    }
}
