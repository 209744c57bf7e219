// SPDX-License-Identifier: GPL-2.0
//! Reads of file data for the page cache with the I/O outside the core
//! lock: the block map is taken under the lock (`FsInfo::map_for_read`),
//! then the disk runs are read straight from the device and holes are
//! zeroed, with the lock free for other tasks meanwhile.
//!
//! Why the blocks stay valid: the folios being filled are locked, so a
//! truncate, hole punch or writeback of the same range waits for the read;
//! and the read's pin makes the core keep every block freed meanwhile
//! (by another file, a subvolume drop or a commit) from reuse until the
//! I/O is over.

use super::inode::INode;
use crate::error::{Error, Result};
use crate::file_read::BlockRun;
use crate::mem::TryVec;

/// Fills `buf` with the file's bytes from `pos` and returns how many lie
/// before the end of file; the rest of `buf` is zeroed. `pos` is a
/// multiple of the block size and `buf` a whole number of blocks in
/// sector-aligned memory (a folio, or the readahead buffer).
pub(crate) fn read_blocks_into(inode: &INode, pos: u64, buf: &mut [u8]) -> Result<usize> {
    let info = inode.info();
    let bs = u64::from(info.block_size());
    let divisor = crate::store::divisor(bs);
    if pos % divisor != 0 || buf.len() as u64 % divisor != 0 {
        return Err(Error::Bug("read of a partial block"));
    }
    let mut runs: TryVec<BlockRun> = TryVec::new();
    let fb = pos / divisor;
    let (size, pin) = info.map_for_read(inode.subvol(), inode.ino(), fb, buf.len() as u64 / divisor, &mut runs, false)?;
    let mut at = 0usize;
    for run in runs.iter() {
        // Bounded by the map: at most the blocks asked for, which `buf` holds.
        let len = usize::try_from(run.blocks.saturating_mul(bs)).map_err(|_| Error::Bug("read run"))?;
        let dst = buf.get_mut(at..at.saturating_add(len)).ok_or(Error::Bug("read run past the buffer"))?;
        match run.disk {
            // In the filesystem (checked by the map), so the product fits.
            Some(disk) => info.data_device().read_shared(disk * bs, dst)?,
            None => dst.fill(0),
        }
        at += len;
    }
    drop(pin);
    let valid = usize::try_from(size.saturating_sub(pos)).unwrap_or(usize::MAX).min(buf.len());
    // Past the end of file (also past the last run): zeros.
    if let Some(tail) = buf.get_mut(valid..) {
        tail.fill(0);
    }
    Ok(valid)
}
