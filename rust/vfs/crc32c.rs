// SPDX-License-Identifier: GPL-2.0
//! CRC-32C for the core in the kernel: the kernel's `crc32c()`, which uses
//! the CPU's CRC instruction where there is one, behind the API of
//! `rust/core/src/crc32c.rs` (the portable table-driven version the tools
//! and tests use). The module mounts this file as `crate::crc32c`, so every
//! node checksum, fast-commit record and send stream command in the kernel
//! goes through it; the KUnit suite `ferrofs_crc` checks it against the
//! portable version, mounted as `crate::crc32c_soft`.

use crate::vfs::bindings as b;

/// Continues a CRC-32C over `data` from the raw (un-inverted) state `crc`.
pub(crate) fn update(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for `data.len()` bytes; crc32c only reads them.
    unsafe { b::ferrofs_crc32c(crc, data.as_ptr().cast(), data.len()) }
}

/// The standard CRC-32C of `data` (initial value and final XOR all ones).
pub(crate) fn checksum(data: &[u8]) -> u32 {
    !update(!0, data)
}
