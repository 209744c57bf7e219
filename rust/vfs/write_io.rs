// SPDX-License-Identifier: GPL-2.0
//! Writeback's data path with the I/O outside the core lock: new blocks
//! are picked (and the tree changes that will map them reserved) under the
//! lock, the data is written to them without it, and the blocks are mapped
//! into the file under the lock again (`crate::data_write`).
//!
//! Writeback does not wait for its data I/O (`DataBytes::InFlight`): the
//! blocks are mapped while the bios run, and the folios leave writeback
//! once mapped, so an fsync's record goes to the device beside its data
//! and one flush makes both durable. That is safe because every flush and
//! every device read waits first for the data writes in flight
//! (`KernelDevice::settle`): a commit or an fsync never makes a mapping
//! durable before its data, a page-cache miss never reads a block still
//! being written, and blocks freed meanwhile are not reused (the core
//! holds them while `FsInfo::with_core` sees writes in flight). A record
//! that reached the disk while its data did not fails its data CRC at
//! replay and is dropped; its fsync had not returned.

use super::device::DataPiece;
use super::inode::INode;
use crate::data_write::DataWrite;
use crate::error::{Error, Result};
use crate::fs::InodeAttr;
use crate::mem::TryVec;

/// The bytes of a data write, and whether the caller waits for their I/O.
pub(crate) enum DataBytes<'a> {
    /// Written and waited for; the buffer stays the caller's (direct I/O).
    Waited(&'a mut TryVec<u8>),
    /// Left in flight; the write owns the buffer until its I/O is over.
    InFlight(TryVec<u8>),
}

impl DataBytes<'_> {
    fn bytes(&mut self) -> &mut TryVec<u8> {
        match self {
            DataBytes::Waited(b) => b,
            DataBytes::InFlight(b) => b,
        }
    }
}

/// Stores `data` (the bytes of a run of written-back folios, up to the end
/// of file) at file offset `pos`, a multiple of the block size; returns
/// the file's attributes after it. `data` is padded with zeros to whole
/// blocks (bytes past the end of file are zero in the page cache too);
/// it lives in sector-aligned memory. `NoSpace` when not all of it fitted.
pub(crate) fn write_file_data(inode: &INode, pos: u64, mut data: DataBytes<'_>) -> Result<InodeAttr> {
    let info = inode.info();
    let dev = info.data_device();
    let (ino, len) = (inode.ino(), data.bytes().len() as u64);
    if matches!(data, DataBytes::InFlight(_)) {
        dev.throttle();
    }
    let mut w = match inode.with_core(|fs, sv| fs.begin_data_write(sv, ino, pos, len)) {
        // Blocks freed while data writes were in flight are held from
        // reuse until none is: once they are over, those blocks are free.
        Err(Error::NoSpace) if dev.writes_in_flight() => {
            dev.drain()?;
            inode.with_core(|fs, sv| fs.begin_data_write(sv, ino, pos, len))?
        }
        r => r?,
    };
    let sv = inode.subvol().id();
    if let Err(e) = write_runs(inode, &mut w, pos, data) {
        // Nothing of it is in flight.
        info.with_core(|fs| fs.abandon_data_write(w))?;
        return Err(e);
    }
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

/// Writes the data of `w`'s runs to the device, without the core lock,
/// and takes their CRCs, so that an fsync record need not read the data
/// back. On an error nothing is in flight.
fn write_runs(inode: &INode, w: &mut DataWrite, pos: u64, mut data: DataBytes<'_>) -> Result<()> {
    let info = inode.info();
    let bs = u64::from(info.block_size());
    let bytes = data.bytes();
    let whole = crate::store::div_ceil(bytes.len() as u64, bs).saturating_mul(bs);
    bytes.try_resize(usize::try_from(whole).map_err(|_| Error::Bug("write batch"))?, 0)?;
    let mut pieces: TryVec<DataPiece> = TryVec::try_with_capacity(w.runs.len())?;
    for r in w.runs.iter() {
        // The runs cover the batch from `pos` on, in whole blocks.
        let from = r.file_block.saturating_mul(bs).checked_sub(pos).ok_or(Error::Bug("write run before the batch"))?;
        let from = usize::try_from(from).map_err(|_| Error::Bug("write run"))?;
        let len = usize::try_from(r.blocks.saturating_mul(bs)).map_err(|_| Error::Bug("write run"))?;
        if from.checked_add(len).map_or(true, |end| end > bytes.len()) {
            return Err(Error::Bug("write run past the batch"));
        }
        // Blocks inside the filesystem (picked by the core), so this fits.
        pieces.try_push(DataPiece { disk: r.disk * bs, from, len })?;
    }
    w.note_written(bytes);
    let dev = info.data_device();
    match data {
        DataBytes::Waited(bytes) => {
            for p in pieces.iter() {
                dev.write_shared(p.disk, bytes.get(p.from..p.from + p.len).ok_or(Error::Bug("write run"))?)?;
            }
            Ok(())
        }
        DataBytes::InFlight(bytes) => dev.write_in_flight(bytes, &pieces),
    }
}
