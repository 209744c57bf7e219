// SPDX-License-Identifier: GPL-2.0
//! Mount options: what `mount -o` may say to ferrofs, parsed from the
//! fs_context's key/value pairs, and shown back in /proc/mounts.

use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;

/// Seconds between background commits unless `commit=N` says otherwise
/// (ext4's default, and what `commit=0` means).
pub(crate) const DEFAULT_COMMIT_SECS: u32 = 5;

/// The longest commit interval accepted (a day): beyond it, unsynced work
/// at risk is no longer a meaningful bound.
pub(crate) const MAX_COMMIT_SECS: u32 = 24 * 60 * 60;

/// The longest `subvol=` path accepted (PATH_MAX less its NUL).
pub(crate) const MAX_SUBVOL_PATH: usize = 4095;

/// Options given to one mount or remount; `None` = not given.
#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) struct MountParams {
    pub(crate) commit_secs: Option<u32>,
    /// `subvol=PATH`: names from the default subvolume's root down to the
    /// subvolume to show as the mount's root.
    pub(crate) subvol_path: Option<KVec<u8>>,
    /// `subvolid=N`: the subvolume to show as the mount's root (0 means
    /// the default one).
    pub(crate) subvol_id: Option<u64>,
    /// `fast_commit=on|off` (a bare `fast_commit` is on, as on ext4):
    /// whether fsyncs may use fast-commit records.
    pub(crate) fast_commit: Option<bool>,
    /// `norecovery` or its alias `noload`: a read-only mount that leaves the
    /// fast-commit records unreplayed.
    pub(crate) norecovery: bool,
}

/// Why an option was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamError {
    /// Not a ferrofs option (the VFS may still know it, e.g. `source`).
    Unknown,
    /// A ferrofs option with a value it cannot take.
    Bad(&'static str),
}

/// Applies one `key[=value]` to `params`.
pub(crate) fn parse(params: &mut MountParams, key: &[u8], value: Option<&[u8]>) -> Result<(), ParamError> {
    match key {
        b"commit" => {
            let secs = value.and_then(decimal).ok_or(ParamError::Bad("commit: expects seconds, as commit=N"))?;
            if secs > MAX_COMMIT_SECS {
                return Err(ParamError::Bad("commit: at most 86400 seconds"));
            }
            params.commit_secs = Some(if secs == 0 { DEFAULT_COMMIT_SECS } else { secs });
            Ok(())
        }
        b"subvol" => {
            let path = value.filter(|v| !v.is_empty()).ok_or(ParamError::Bad("subvol: expects a path, as subvol=PATH"))?;
            if path.len() > MAX_SUBVOL_PATH {
                return Err(ParamError::Bad("subvol: path too long"));
            }
            let mut v = KVec::new();
            v.extend_from_slice(path, GFP_KERNEL).map_err(|_| ParamError::Bad("subvol: out of memory"))?;
            params.subvol_path = Some(v);
            Ok(())
        }
        b"subvolid" => {
            let id = value.and_then(decimal_u64).ok_or(ParamError::Bad("subvolid: expects a number, as subvolid=N"))?;
            params.subvol_id = Some(id);
            Ok(())
        }
        b"fast_commit" => {
            params.fast_commit = Some(match value {
                None | Some(b"on") => true,
                Some(b"off") => false,
                Some(_) => return Err(ParamError::Bad("fast_commit: expects on or off, as fast_commit=off")),
            });
            Ok(())
        }
        b"norecovery" | b"noload" => {
            if value.is_some() {
                return Err(ParamError::Bad("norecovery: takes no value"));
            }
            params.norecovery = true;
            Ok(())
        }
        _ => Err(ParamError::Unknown),
    }
}

/// A plain decimal number that fits in a u64.
fn decimal_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, &c| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))
}

/// The components of a `subvol=` path: its names, with empty ones (from
/// leading, trailing or doubled slashes) left out.
pub(crate) fn path_components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&c| c == b'/').filter(|c| !c.is_empty())
}

/// A plain decimal number that fits in a u32.
fn decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    u32::try_from(n).ok()
}

/// The `,commit=N` text /proc/mounts shows when it differs from the
/// default, as a NUL-terminated string in `buf`.
pub(crate) fn show_commit(secs: u32, buf: &mut [u8; 24]) -> Option<&[u8]> {
    if secs == DEFAULT_COMMIT_SECS {
        return None;
    }
    let prefix = b",commit=";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (secs, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[prefix.len() + i] = digits[len - 1 - i];
    }
    buf[prefix.len() + len] = 0;
    Some(&buf[..prefix.len() + len + 1])
}
