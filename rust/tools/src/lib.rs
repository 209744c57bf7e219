// SPDX-License-Identifier: GPL-2.0
//! Shared pieces of the ferrofs tools: a block device over a file or block
//! special file, small argument helpers, the subvolume and send commands
//! with the ioctl calls they make (the interface itself is
//! `ferrofs_core::uapi`), `receive` for btrfs send streams with the system
//! calls it makes, and `stats`, which reads a mount's statistics from sysfs.

// Unsafe code is allowed in `ioctl` and `posix` alone.
#![deny(unsafe_code)]

pub mod ioctl;
pub mod posix;
pub mod receive;
pub mod resume_token;
pub mod send;
pub mod stats;
pub mod subvolume;

use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

/// A regular file or a block device, as the core's `BlockDevice`.
pub struct FileDevice {
    file: File,
    size: u64,
}

fn io_err(_: io::Error) -> Error {
    Error::Io
}

impl FileDevice {
    /// Opens `path` for reading (and writing when `write`).
    pub fn open(path: &Path, write: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(write).open(path)?;
        let size = device_size(&file)?;
        Ok(FileDevice { file, size })
    }

    /// Gives the device a size: regular files are extended (sparse) to it.
    pub fn set_size(&mut self, size: u64) -> io::Result<()> {
        let meta = self.file.metadata()?;
        if meta.file_type().is_file() {
            if meta.len() < size {
                self.file.set_len(size)?;
            }
            self.size = size;
        } else if size < self.size {
            self.size = size;
        }
        Ok(())
    }
}

/// Size of a regular file, or of a block device (seek to its end).
fn device_size(file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if meta.file_type().is_block_device() {
        use std::io::Seek;
        let mut f = file;
        return f.seek(io::SeekFrom::End(0));
    }
    Ok(meta.len())
}

impl BlockDevice for FileDevice {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.size) {
            return Err(Error::Io);
        }
        self.file.read_exact_at(buf, offset).map_err(io_err)
    }

    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.size) {
            return Err(Error::Io);
        }
        self.file.write_all_at(buf, offset).map_err(io_err)?;
        if fua {
            self.file.sync_data().map_err(io_err)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.file.sync_data().map_err(io_err)
    }
}

/// Parses a size such as `512M`, `20G`, `4096` or `1T`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        (i, 't' | 'T') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Parses a UUID in its usual 8-4-4-4-12 hex form.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|&c| c != b'-').collect();
    if hex.len() != 32 || s.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Formats a UUID as 8-4-4-4-12 lowercase hex.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", h[..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..].concat())
}

/// A random version-4 UUID from the kernel's random source.
pub fn random_uuid() -> io::Result<[u8; 16]> {
    use std::io::Read;
    let mut u = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut u)?;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

/// An error's message without the " (os error N)" that `io::Error` adds:
/// what strerror(3) says, as the tools print it.
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text.strip_suffix(&format!(" (os error {code})")).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// Whether `path` (a block device or image) is mounted, per /proc/mounts.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else { return false };
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else { return false };
    mounts.lines().filter_map(|l| l.split_whitespace().next()).any(|dev| std::fs::canonicalize(dev).is_ok_and(|d| d == target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("20g"), Some(20 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn uuids() {
        let u = parse_uuid("0123abcd-0000-4000-8000-00000000ffff").unwrap();
        assert_eq!(format_uuid(&u), "0123abcd-0000-4000-8000-00000000ffff");
        assert_eq!(parse_uuid("0123abcd00004000800000000000ffff"), None);
    }

    #[test]
    fn strerror_is_the_bare_message() {
        assert_eq!(strerror(&io::Error::from_raw_os_error(libc::ENOTTY)), "Inappropriate ioctl for device");
        assert_eq!(strerror(&io::Error::other("no room")), "no room");
    }
}
