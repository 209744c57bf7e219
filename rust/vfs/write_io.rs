// SPDX-License-Identifier: GPL-2.0
//! Writeback's data path with the I/O outside the core lock: new blocks
//! are picked (and the tree changes that will map them reserved) under the
//! lock, the data is written to them without it, and the blocks are mapped
//! into the file under the lock again (`crate::data_write`, whose header
//! says why a commit in between is safe). Meanwhile the folios stay under
//! writeback, so a truncate, hole punch or fsync of the range waits.

use super::inode::INode;
use crate::data_write::DataWrite;
use crate::error::{Error, Result};
use crate::fs::InodeAttr;
use crate::mem::TryVec;

/// Stores `data` (the bytes of a run of written-back folios, up to the end
/// of file) at file offset `pos`, a multiple of the block size; returns
/// the file's attributes after it. `data` is padded with zeros to whole
/// blocks (bytes past the end of file are zero in the page cache too);
/// it lives in sector-aligned memory. `NoSpace` when not all of it fitted.
pub(crate) fn write_file_data(inode: &INode, pos: u64, data: &mut TryVec<u8>) -> Result<InodeAttr> {
    let info = inode.info();
    let (ino, len) = (inode.ino(), data.len() as u64);
    let mut w = inode.with_core(|fs, sv| fs.begin_data_write(sv, ino, pos, len))?;
    let sv = inode.subvol().id();
    if let Err(e) = write_runs(inode, &w, pos, data) {
        info.with_core(|fs| fs.abandon_data_write(w))?;
        return Err(e);
    }
    // The runs' CRCs, taken here outside the lock: an fsync record then
    // need not read the data back.
    w.note_written(data);
    // Not `with_sv`: the finish must run (to map or give back the blocks)
    // even if the subvolume was deleted meanwhile; it checks that itself.
    info.with_core(|fs| {
        let stored = fs.finish_data_write(sv, w)?;
        if stored < len {
            return Err(Error::NoSpace);
        }
        fs.getattr(sv, ino)
    })
}

/// Writes the data of `w`'s runs to the device, without the core lock.
fn write_runs(inode: &INode, w: &DataWrite, pos: u64, data: &mut TryVec<u8>) -> Result<()> {
    let info = inode.info();
    let bs = u64::from(info.block_size());
    let whole = crate::store::div_ceil(data.len() as u64, bs).saturating_mul(bs);
    data.try_resize(usize::try_from(whole).map_err(|_| Error::Bug("write batch"))?, 0)?;
    for r in w.runs.iter() {
        // The runs cover the batch from `pos` on, in whole blocks.
        let from = r.file_block.saturating_mul(bs).checked_sub(pos).ok_or(Error::Bug("write run before the batch"))?;
        let from = usize::try_from(from).map_err(|_| Error::Bug("write run"))?;
        let n = usize::try_from(r.blocks.saturating_mul(bs)).map_err(|_| Error::Bug("write run"))?;
        let src = data.get(from..from.saturating_add(n)).ok_or(Error::Bug("write run past the batch"))?;
        // Blocks inside the filesystem (picked by the core), so this fits.
        info.data_device().write_shared(r.disk * bs, src)?;
    }
    Ok(())
}
