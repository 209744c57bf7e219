// SPDX-License-Identifier: GPL-2.0
//! Mount options: what `mount -o` may say to ferrofs, parsed from the
//! fs_context's key/value pairs, and shown back in /proc/mounts.

/// Seconds between background commits unless `commit=N` says otherwise
/// (ext4's default, and what `commit=0` means).
pub(crate) const DEFAULT_COMMIT_SECS: u32 = 5;

/// The longest commit interval accepted (a day): beyond it, unsynced work
/// at risk is no longer a meaningful bound.
pub(crate) const MAX_COMMIT_SECS: u32 = 24 * 60 * 60;

/// Options given to one mount or remount; `None` = not given.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct MountParams {
    pub(crate) commit_secs: Option<u32>,
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
        _ => Err(ParamError::Unknown),
    }
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
