// SPDX-License-Identifier: GPL-2.0
//! The core's error type and its one-to-one mapping to Linux errnos.
//!
//! Variants that describe a bad image carry a short static reason, so the
//! kernel can print one clear line and the tools can name the problem;
//! `Corrupt` also carries where the damage is (block, inode) when known.

/// Result of every fallible core operation.
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No ferrofs magic where the superblock should be.
    NotFerrofs,
    /// On-disk data failed a checksum or a structural check.
    Corrupt(Corruption),
    /// An internal invariant of the core failed: a bug, not bad input.
    /// The filesystem stops writing, as for corruption.
    Bug(&'static str),
    /// A valid image that needs a feature or version this code lacks.
    Unsupported(&'static str),
    /// The device is smaller than the filesystem it holds.
    DeviceTooSmall,
    /// An argument the caller should not have passed.
    Invalid(&'static str),
    /// An allocation failed.
    NoMemory,
    /// The block device reported an error.
    Io,
    /// No free space left.
    NoSpace,
    /// No such name or object.
    NotFound,
    /// The name already exists.
    Exists,
    /// A directory was needed.
    NotDir,
    /// A non-directory was needed.
    IsDir,
    /// The directory is not empty.
    NotEmpty,
    /// A name is longer than 255 bytes.
    NameTooLong,
    /// Too many links to one inode.
    TooManyLinks,
    /// A file offset or size beyond what the format holds.
    FileTooBig,
    /// No such extended attribute.
    NoData,
    /// The caller's buffer is too small for the value.
    Range,
    /// The filesystem is read-only (after an error, or by mount option).
    ReadOnly,
    /// The operation is not supported on this object.
    NotSupported,
    /// Cross-device link or rename.
    CrossDevice,
    /// Permission denied by object flags (immutable, append-only), or a
    /// hard link to a directory.
    NotPermitted,
    /// An argument (such as an xattr value) larger than the format allows.
    ArgTooBig,
    /// A call run with node reads deferred needs a node the cache lacks
    /// (`crate::node_io`); `Filesystem::without_node_io` turns it into "read
    /// these nodes", so it never leaves the core.
    WouldBlock,
}

/// What was wrong with the image, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corruption {
    /// What was wrong.
    pub what: &'static str,
    /// The metadata block it was found in; 0 when not known.
    pub block: u64,
    /// The inode it belongs to; 0 when not known.
    pub ino: u64,
}

impl Error {
    /// Corruption with no place known yet (see `CorruptAt`).
    pub const fn corrupt(what: &'static str) -> Error {
        Error::Corrupt(Corruption { what, block: 0, ino: 0 })
    }
}

/// Adds where corruption was found to an error on its way up; the first
/// place recorded (the innermost) wins.
pub trait CorruptAt {
    /// Records the metadata block.
    fn at_block(self, block: u64) -> Self;
    /// Records the inode.
    fn at_ino(self, ino: u64) -> Self;
}

impl CorruptAt for Error {
    fn at_block(self, block: u64) -> Self {
        match self {
            Error::Corrupt(c) if c.block == 0 => Error::Corrupt(Corruption { block, ..c }),
            e => e,
        }
    }
    fn at_ino(self, ino: u64) -> Self {
        match self {
            Error::Corrupt(c) if c.ino == 0 => Error::Corrupt(Corruption { ino, ..c }),
            e => e,
        }
    }
}

impl<T> CorruptAt for Result<T> {
    fn at_block(self, block: u64) -> Self {
        self.map_err(|e| e.at_block(block))
    }
    fn at_ino(self, ino: u64) -> Self {
        self.map_err(|e| e.at_ino(ino))
    }
}

/// Linux errno values; the same numbers on every architecture ferrofs builds for.
pub mod errno {
    #![allow(missing_docs)]
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const E2BIG: i32 = 7;
    pub const EIO: i32 = 5;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EEXIST: i32 = 17;
    pub const EXDEV: i32 = 18;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const EMLINK: i32 = 31;
    pub const ERANGE: i32 = 34;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOTEMPTY: i32 = 39;
    pub const ENODATA: i32 = 61;
    pub const EOPNOTSUPP: i32 = 95;
    /// EFSCORRUPTED in the kernel.
    pub const EUCLEAN: i32 = 117;
}

impl Error {
    /// The positive errno this error stands for.
    pub fn errno(self) -> i32 {
        use errno::*;
        match self {
            Error::NotFerrofs | Error::Unsupported(_) | Error::DeviceTooSmall | Error::Invalid(_) => EINVAL,
            Error::Corrupt(_) => EUCLEAN,
            Error::Bug(_) => EIO,
            Error::NoMemory => ENOMEM,
            Error::Io => EIO,
            Error::NoSpace => ENOSPC,
            Error::NotFound => ENOENT,
            Error::Exists => EEXIST,
            Error::NotDir => ENOTDIR,
            Error::IsDir => EISDIR,
            Error::NotEmpty => ENOTEMPTY,
            Error::NameTooLong => ENAMETOOLONG,
            Error::TooManyLinks => EMLINK,
            Error::FileTooBig => EFBIG,
            Error::NoData => ENODATA,
            Error::Range => ERANGE,
            Error::ReadOnly => EROFS,
            Error::NotSupported => EOPNOTSUPP,
            Error::CrossDevice => EXDEV,
            Error::NotPermitted => EPERM,
            Error::ArgTooBig => E2BIG,
            Error::WouldBlock => EAGAIN,
        }
    }

    /// A short human-readable description, with the reason where there is one.
    pub fn reason(self) -> &'static str {
        match self {
            Error::NotFerrofs => "not a ferrofs filesystem",
            Error::Corrupt(c) => c.what,
            Error::Bug(r) | Error::Unsupported(r) | Error::Invalid(r) => r,
            Error::DeviceTooSmall => "device is smaller than the filesystem",
            Error::NoMemory => "out of memory",
            Error::Io => "I/O error",
            Error::NoSpace => "no space left on device",
            Error::NotFound => "not found",
            Error::Exists => "already exists",
            Error::NotDir => "not a directory",
            Error::IsDir => "is a directory",
            Error::NotEmpty => "directory not empty",
            Error::NameTooLong => "name too long",
            Error::TooManyLinks => "too many links",
            Error::FileTooBig => "file too big",
            Error::NoData => "no such attribute",
            Error::Range => "buffer too small",
            Error::ReadOnly => "read-only filesystem",
            Error::NotSupported => "operation not supported",
            Error::CrossDevice => "cross-device link",
            Error::NotPermitted => "operation not permitted",
            Error::ArgTooBig => "argument list too long",
            Error::WouldBlock => "node read deferred",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Corrupt(c) => {
                write!(f, "corrupt filesystem: {}", c.what)?;
                match (c.block, c.ino) {
                    (0, 0) => Ok(()),
                    (b, 0) => write!(f, " (block {b})"),
                    (0, i) => write!(f, " (inode {i})"),
                    (b, i) => write!(f, " (block {b}, inode {i})"),
                }
            }
            Error::Bug(r) => write!(f, "internal error: {r}"),
            Error::Unsupported(r) => write!(f, "unsupported: {r}"),
            other => f.write_str(other.reason()),
        }
    }
}
