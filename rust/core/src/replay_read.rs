// SPDX-License-Identifier: GPL-2.0
//! Replay's reads at mount: the fast-commit area in large pieces, and the
//! data CRCs of the runs its records name in one pass over the runs in
//! block order, adjacent runs read together. Each device read is a
//! synchronous round trip, so reading the area block by block and each
//! record's data on its own would make mount cost two reads per record.

use crate::crc32c;
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::mem::TryVec;
use crate::store::{divisor, Store};

/// The largest read replay issues: big enough that a chain of one-block
/// records costs a read per 64 of them (at 4 KiB blocks), small enough to
/// be allocated at mount without strain.
pub(crate) const REPLAY_READ_BYTES: u64 = 256 * 1024;

/// Blocks of `bs` bytes in one replay read (at least one).
fn read_blocks_per_io(bs: usize) -> u64 {
    (REPLAY_READ_BYTES / divisor(bs as u64)).max(1)
}

/// A window over the fast-commit area, refilled by reads of up to
/// `REPLAY_READ_BYTES` from the block asked for on.
pub(crate) struct AreaReader {
    /// First block of the area, and its length in blocks.
    start: u64,
    blocks: u64,
    /// Area blocks `at..at + held` are in `buf`.
    at: u64,
    held: u64,
    buf: TryVec<u8>,
}

impl AreaReader {
    pub(crate) fn new(start: u64, blocks: u64) -> Self {
        AreaReader { start, blocks, at: 0, held: 0, buf: TryVec::new() }
    }

    /// The `n` blocks of the area from its block `pos`: from the window,
    /// or read with the blocks after them (to the end of the area or of
    /// one read's worth, whichever comes first).
    pub(crate) fn get<D: BlockDevice>(&mut self, s: &mut Store<D>, pos: u64, n: u64) -> Result<&[u8]> {
        let end = pos.checked_add(n).filter(|&e| e <= self.blocks).ok_or(Error::corrupt("read past the fast-commit area"))?;
        let bs = s.bs as u64;
        if pos < self.at || end > self.at + self.held {
            let take = n.max(read_blocks_per_io(s.bs)).min(self.blocks - pos);
            let bytes = usize::try_from(take.checked_mul(bs).ok_or(Error::Io)?).map_err(|_| Error::Io)?;
            self.buf.try_resize(bytes, 0)?;
            s.read_blocks(self.start + pos, &mut self.buf)?;
            self.at = pos;
            self.held = take;
        }
        let from = ((pos - self.at) * bs) as usize;
        self.buf.get(from..from + (n * bs) as usize).ok_or(Error::Bug("fast-commit area window"))
    }

    /// Bytes `from..from + len` of the area (records may start anywhere
    /// and span blocks, `crate::record_batch`): the blocks that hold them,
    /// through `get`.
    pub(crate) fn bytes<D: BlockDevice>(&mut self, s: &mut Store<D>, from: u64, len: u64) -> Result<&[u8]> {
        let bs = divisor(s.bs as u64);
        let end = from.checked_add(len).ok_or(Error::corrupt("read past the fast-commit area"))?;
        let (first, last) = (from / bs, crate::store::div_ceil(end, bs.get()));
        let skip = (from % bs) as usize;
        let blocks = self.get(s, first, last - first)?;
        blocks.get(skip..skip + len as usize).ok_or(Error::Bug("fast-commit area window"))
    }
}

/// The data CRCs of disjoint runs of blocks, computed by
/// `RunCrcs::compute`: what replay checks each record's runs against.
pub(crate) struct RunCrcs {
    /// (first block, blocks, CRC32C of the data), by first block.
    runs: TryVec<(u64, u64, u32)>,
}

impl RunCrcs {
    /// Reads `runs` (disjoint runs of blocks inside the filesystem, in any
    /// order, none empty) in block order, runs that follow one another on
    /// disk in the same reads of up to `REPLAY_READ_BYTES`, and keeps
    /// each one's CRC32C (the value `crate::fast_commit::data_crc` gives).
    pub(crate) fn compute<D: BlockDevice>(s: &mut Store<D>, mut runs: TryVec<(u64, u64)>) -> Result<Self> {
        runs.sort_unstable();
        if runs.windows(2).any(|w| w[0].0.saturating_add(w[0].1) > w[1].0) || runs.iter().any(|r| r.1 == 0) {
            return Err(Error::Bug("replay's runs to check overlap"));
        }
        let bs = s.bs;
        let per = read_blocks_per_io(bs);
        let mut out = TryVec::try_with_capacity(runs.len())?;
        let mut buf: TryVec<u8> = TryVec::new();
        let mut i = 0;
        while i < runs.len() {
            // The stretch of runs from `i` that follow one another on disk.
            let first = runs[i].0;
            let mut end = first.saturating_add(runs[i].1);
            let mut j = i + 1;
            while j < runs.len() && runs[j].0 == end {
                end = end.saturating_add(runs[j].1);
                j += 1;
            }
            // Read it in pieces, feeding each run's CRC with its part.
            let mut crc = !0u32;
            let mut b = first;
            while b < end {
                let n = (end - b).min(per);
                buf.try_resize(n as usize * bs, 0)?;
                s.read_blocks(b, &mut buf)?;
                let mut at = b;
                while at < b + n {
                    let (rs, rl) = runs[i];
                    let run_end = rs + rl;
                    let take = run_end.min(b + n) - at;
                    let from = (at - b) as usize * bs;
                    crc = crc32c::update(crc, &buf[from..from + take as usize * bs]);
                    at += take;
                    if at == run_end {
                        out.try_push((rs, rl, !crc))?;
                        crc = !0;
                        i += 1;
                    }
                }
                b += n;
            }
            debug_assert_eq!(i, j);
            i = j;
        }
        Ok(RunCrcs { runs: out })
    }

    /// The CRC of run `disk..disk + blocks` if `compute` was given exactly
    /// that run.
    pub(crate) fn get(&self, disk: u64, blocks: u64) -> Option<u32> {
        let i = self.runs.binary_search_by_key(&disk, |r| r.0).ok()?;
        let (_, l, crc) = self.runs[i];
        (l == blocks).then_some(crc)
    }
}
