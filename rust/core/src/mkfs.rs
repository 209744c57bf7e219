// SPDX-License-Identifier: GPL-2.0
//! Making a new, empty filesystem on a device: the one formatter, used by
//! `mkfs.ferrofs` and by the tests.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::superblock::{self, first_usable_block, Superblock};

/// What the user asked mkfs for.
#[derive(Debug, Clone)]
pub struct MkfsOptions<'a> {
    /// Block size in bytes.
    pub block_size: u32,
    /// Filesystem size in bytes; rounded down to whole blocks.
    pub size_bytes: u64,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Label, at most 63 bytes.
    pub label: &'a [u8],
    /// Creation time (seconds, nanoseconds) for the root directory.
    pub now: (i64, u32),
}

/// Smallest filesystem mkfs makes, in blocks past the reserved area: enough
/// for the initial trees and some room to grow.
pub const MIN_FREE_BLOCKS: u64 = 256;

/// Writes an empty filesystem with a root directory, flushes it, then writes
/// the superblock copies. Returns the superblock written.
pub fn format(dev: &mut dyn BlockDevice, opts: &MkfsOptions<'_>) -> Result<Superblock> {
    superblock::check_block_size(opts.block_size)?;
    if opts.size_bytes > dev.size_bytes() {
        return Err(Error::DeviceTooSmall);
    }
    let total_blocks = opts.size_bytes / opts.block_size as u64;
    if total_blocks < first_usable_block(opts.block_size) + MIN_FREE_BLOCKS {
        return Err(Error::Invalid("device too small for a ferrofs filesystem"));
    }
    let mut sb = Superblock::new(opts.block_size, total_blocks, opts.uuid, opts.label)?;
    sb.blocks_used = first_usable_block(opts.block_size);
    dev.flush()?;
    superblock::write_superblock(dev, &sb)?;
    Ok(sb)
}
