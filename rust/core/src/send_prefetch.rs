// SPDX-License-Identifier: GPL-2.0
//! Send's read-ahead of file data: the data of a directory batch's small
//! files, read in as few device reads as their placement allows; and the
//! next piece of a large file, read by the device while the current piece
//! is encoded and written out.
//!
//! A snapshot of many small files would otherwise cost one synchronous
//! device read per file. Files written one after another usually sit one
//! after another on disk, so when the walk reads a batch of directory
//! entries, the small regular files among them whose data is a single
//! extent (one run of disk blocks from file block 0 covering the size) are
//! sorted by disk block, and blocks close together are read as one run of
//! at most `PREFETCH_BYTES`. Sending such a file then needs neither a
//! device read nor a hole search: its data is one run, in memory. Anything
//! else (holes, several extents, larger files, a full buffer) is read as
//! before. The snapshot is read-only, so what was read stays true until
//! the batch is done.
//!
//! An incremental send reads ahead the same way, for the files of the
//! next entries of its content pass whose data changed.
//!
//! A large file is read a piece (`READ_AHEAD` bytes) at a time; without
//! more, each piece's device read waits under the core lock and only then
//! is the piece encoded, so reading and encoding never overlap. So once a
//! piece is read, the device is asked to read the next one of the same
//! extent (`BlockDevice::read_ahead`), or, after a file's last piece, the
//! first piece of the next entry of a full send's batch, and the next
//! piece's read collects it. The blocks belong to the read-only snapshot being sent, which
//! cannot change or go until the session ends, and `send_end` drops a
//! read ahead still outstanding: no read ahead outlives the snapshot whose
//! blocks it holds. A read ahead that turns out not to be the next piece
//! (a hole, a clone, another file) is dropped and the piece read as usual.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::file_read::BlockRun;
use crate::format::FileType;
use crate::fs::{Filesystem, InodeAttr};
use crate::mem::TryVec;
use crate::store::{div_ceil, divisor};
use crate::subvol::SubvolId;

/// Most bytes of file data one batch reads ahead.
pub(crate) const PREFETCH_BYTES: usize = 1 << 20;
/// Largest file whose data is read ahead.
const SMALL_FILE: u64 = 128 * 1024;
/// Blocks between two files' data that one read still spans (read and
/// dropped) rather than splitting into two reads.
const GAP_BLOCKS: u64 = 8;

/// Bytes of a large file's data read at once and cut into WRITEs (rounded
/// down to a whole number of WRITEs, so that one piece's last WRITE ends
/// where the next piece starts).
pub(crate) const READ_AHEAD: usize = 1 << 20;

/// The next piece of a large file being sent, which the device is reading
/// ahead: its file position and where it lies on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataAhead {
    ino: u64,
    pos: u64,
    disk: u64,
    blocks: u64,
}

/// The data read ahead for the current batch.
#[derive(Default)]
pub(crate) struct Prefetch {
    /// The runs read, one after another.
    buf: TryVec<u8>,
    /// `(ino, size, offset in buf of its first byte)`, by inode.
    files: TryVec<(u64, u64, usize)>,
}

impl Prefetch {
    /// File `ino`'s size, when its whole data is here.
    pub(crate) fn size_of(&self, ino: u64) -> Option<u64> {
        self.find(ino).map(|(_, size, _)| size)
    }

    fn find(&self, ino: u64) -> Option<(u64, u64, usize)> {
        self.files.binary_search_by_key(&ino, |f| f.0).ok().map(|i| self.files[i])
    }

    /// Fills `out` with the file's bytes from `pos` (zeros past its size);
    /// false when the file is not here.
    pub(crate) fn copy(&self, ino: u64, pos: u64, out: &mut [u8]) -> bool {
        let Some((_, size, at)) = self.find(ino) else { return false };
        let have = size.saturating_sub(pos).min(out.len() as u64) as usize;
        let from = at + pos.min(size) as usize;
        match self.buf.get(from..from + have) {
            Some(src) => out[..have].copy_from_slice(src),
            None => return false,
        }
        out[have..].fill(0);
        true
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Reads ahead the data of the small single-extent regular files among
    /// `files` (their attributes, which the caller looked up) in snapshot
    /// `sv` into `pf`, replacing what it held.
    pub(crate) fn prefetch_files<'a>(&mut self, sv: SubvolId, files: impl Iterator<Item = &'a InodeAttr>, pf: &mut Prefetch) -> Result<()> {
        pf.files.clear();
        let bs = self.s.bs as u64;
        // (disk block, blocks, ino, size) of each candidate.
        let mut found: TryVec<(u64, u64, u64, u64)> = TryVec::new();
        self.enter(sv)?;
        for a in files {
            if a.file_type() != FileType::Regular || a.size == 0 || a.size > SMALL_FILE {
                continue;
            }
            let ino = a.ino;
            let need = div_ceil(a.size, bs);
            if let Some((0, e)) = self.data_extent_at(ino, 0)? {
                if e.nblocks >= need {
                    found.try_push((e.disk_block, need, ino, a.size))?;
                }
            }
        }
        found.sort_unstable();
        if pf.buf.len() < PREFETCH_BYTES {
            pf.buf.try_resize(PREFETCH_BYTES, 0)?;
        }
        let max_blocks = PREFETCH_BYTES as u64 / divisor(bs);
        let mut used = 0u64; // blocks of buf taken
        let mut i = 0;
        while i < found.len() {
            // One run: files whose blocks lie close after the first's.
            let start = found[i].0;
            let mut end = start + found[i].1;
            let mut j = i + 1;
            while j < found.len() && found[j].0 <= end + GAP_BLOCKS && found[j].0 + found[j].1 - start <= max_blocks - used {
                end = end.max(found[j].0 + found[j].1);
                j += 1;
            }
            if end - start > max_blocks - used {
                break;
            }
            let at = (used * bs) as usize;
            let dst = pf.buf.get_mut(at..at + ((end - start) * bs) as usize).ok_or(Error::Bug("prefetch buffer"))?;
            self.s.read_blocks(start, dst)?;
            for &(disk, _, ino, size) in found[i..j].iter() {
                pf.files.try_push((ino, size, at + ((disk - start) * bs) as usize))?;
            }
            used += end - start;
            i = j;
        }
        pf.files.sort_unstable_by_key(|f| f.0);
        Ok(())
    }

    /// Incremental send: reads ahead, as `prefetch_files`, the data of the
    /// small files among `files` (each with whether the parent has the same
    /// inode) that the stream will write: new files, and changed ones whose
    /// first extent is not the parent's (a file whose data both snapshots
    /// share sends none).
    pub(crate) fn prefetch_changed<'a>(
        &mut self,
        source: SubvolId,
        parent: SubvolId,
        files: impl Iterator<Item = (&'a InodeAttr, bool)>,
        pf: &mut Prefetch,
    ) -> Result<()> {
        let mut want: TryVec<InodeAttr> = TryVec::new();
        for (a, same) in files {
            if a.file_type() != FileType::Regular || a.size == 0 || a.size > SMALL_FILE {
                continue;
            }
            if same {
                self.enter(source)?;
                let new = self.data_extent_at(a.ino, 0)?.map(|(at, e)| (at, e.disk_block));
                self.enter(parent)?;
                let old = self.data_extent_at(a.ino, 0)?.map(|(at, e)| (at, e.disk_block));
                if new == old {
                    continue;
                }
            }
            want.try_push(*a)?;
        }
        self.prefetch_files(source, want.iter(), pf)
    }

    /// Fills `buf` with file `ino`'s bytes from `pos` (a multiple of the
    /// block size; zeros past its end) for a send, taking what the device
    /// read ahead there (`ahead`, which is then empty).
    pub(crate) fn send_read(&mut self, sv: SubvolId, ino: u64, pos: u64, buf: &mut [u8], ahead: &mut Option<DataAhead>) -> Result<()> {
        let bs = self.s.bs as u64;
        let mut done = 0usize;
        match ahead.take() {
            Some(a) if a.ino == ino && a.pos == pos => {
                let have = a.blocks.saturating_mul(bs).min(buf.len() as u64) as usize;
                done = self.s.take_read_ahead(a.disk, &mut buf[..have])?;
            }
            Some(_) => self.s.cancel_read_ahead(),
            None => {}
        }
        if done < buf.len() {
            // `done` is 0 or whole blocks: the rest starts block aligned.
            let n = self.read(sv, ino, pos + done as u64, &mut buf[done..])?;
            buf[done + n..].fill(0);
        }
        Ok(())
    }

    /// Has the device read file `ino`'s piece of `len` bytes from `pos` (a
    /// multiple of the block size) ahead, as far as it is one extent's
    /// data, and notes it in `ahead`; nothing for a hole there.
    pub(crate) fn send_read_ahead(&mut self, sv: SubvolId, ino: u64, pos: u64, len: u64, ahead: &mut Option<DataAhead>) -> Result<()> {
        let bs = self.s.bs as u64;
        if pos % divisor(bs) != 0 || len < bs {
            return Ok(());
        }
        let mut runs: TryVec<BlockRun> = TryVec::new();
        self.map_blocks(sv, ino, pos / divisor(bs), len / divisor(bs), &mut runs)?;
        if let Some(&BlockRun { blocks, disk: Some(disk) }) = runs.first() {
            self.s.read_ahead_blocks(disk, blocks)?;
            *ahead = Some(DataAhead { ino, pos, disk, blocks });
        }
        Ok(())
    }
}
