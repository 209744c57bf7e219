// SPDX-License-Identifier: GPL-2.0
//! Full send: the data of a directory batch's small files, read ahead in as
//! few device reads as their placement allows.
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

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::FileType;
use crate::fs::Filesystem;
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
    /// `inos` in snapshot `sv` into `pf`, replacing what it held.
    pub(crate) fn prefetch_files(&mut self, sv: SubvolId, inos: &[u64], pf: &mut Prefetch) -> Result<()> {
        pf.files.clear();
        let bs = self.s.bs as u64;
        // (disk block, blocks, ino, size) of each candidate.
        let mut found: TryVec<(u64, u64, u64, u64)> = TryVec::new();
        for &ino in inos {
            let a = self.getattr(sv, ino)?;
            if a.file_type() != FileType::Regular || a.size == 0 || a.size > SMALL_FILE {
                continue;
            }
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
}
