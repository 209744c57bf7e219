// SPDX-License-Identifier: GPL-2.0
//! The CRC32C of file data as it was written in the running transaction,
//! remembered per written run until the next commit, so that an fsync
//! record (`crate::fast_commit`, `crate::tree_log`) gets the CRCs of its
//! runs without reading the data back from the device.
//!
//! An entry says what its blocks hold only while they keep the data it was
//! taken from, so every change of that drops it: a write to any of its
//! blocks replaces it (`remember`), blocks that become free lose it
//! (`Space::make_free`, so blocks handed out again never carry an old
//! CRC), and a commit drops all (the next records only name blocks
//! allocated after it). Memory is bounded: past `WRITTEN_CRC_RUNS` runs, or
//! when an allocation fails, a write is not remembered, and the record
//! builder reads that run back as before.

use crate::mem::TryVec;

/// Most written runs remembered at once (24 bytes each): a record takes
/// its runs' entries away, so only data written and not yet in a record
/// or a commit counts.
pub const WRITTEN_CRC_RUNS: usize = 4096;

/// Written runs of the running transaction with the CRC32C of their data.
pub struct WrittenCrcs {
    /// (first block, blocks, CRC32C), by first block, disjoint, none empty.
    runs: TryVec<(u64, u64, u32)>,
}

impl Default for WrittenCrcs {
    fn default() -> Self {
        Self::new()
    }
}

impl WrittenCrcs {
    /// Nothing remembered.
    pub const fn new() -> Self {
        WrittenCrcs { runs: TryVec::new() }
    }

    /// Runs remembered now.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Forgets everything (a commit: no record will name these blocks).
    pub fn clear(&mut self) {
        self.runs.clear();
    }

    /// Forgets every run that shares a block with `start..start + len`:
    /// those blocks are written again or no longer the file's. Never
    /// allocates, so it cannot fail.
    pub fn forget(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        // Runs are disjoint and sorted, so their ends are sorted too.
        let first = self.runs.partition_point(|r| r.0.saturating_add(r.1) <= start);
        let gone = self.runs[first..].iter().take_while(|r| r.0 < end).count();
        if gone > 0 {
            self.runs[first..].rotate_left(gone);
            let keep = self.runs.len() - gone;
            self.runs.truncate(keep);
        }
    }

    /// Blocks `start..start + len` were just written with data whose CRC32C
    /// is `crc` (`None`: not known). Whatever was remembered for any of
    /// them is forgotten; the new CRC is kept if there is room.
    pub fn remember(&mut self, start: u64, len: u64, crc: Option<u32>) {
        self.forget(start, len);
        let Some(crc) = crc else { return };
        if len == 0 || self.runs.len() >= WRITTEN_CRC_RUNS {
            return;
        }
        let at = self.runs.partition_point(|r| r.0 < start);
        // Short of memory: not remembered, read back when needed.
        let _ = self.runs.try_insert(at, (start, len, crc));
    }

    /// The CRC32C of the data of blocks `start..start + len` (blocks of
    /// `bs` bytes), if they are exactly a sequence of remembered runs that
    /// follow one another; `None` otherwise.
    pub fn crc_of(&self, start: u64, len: u64, bs: usize) -> Option<u32> {
        let mut i = self.runs.binary_search_by_key(&start, |r| r.0).ok()?;
        let (_, first, mut crc) = self.runs[i];
        let mut covered = first;
        while covered < len {
            i += 1;
            let &(s, l, c) = self.runs.get(i)?;
            if s != start.checked_add(covered)? {
                return None;
            }
            crc = crc32c_combine(crc, c, l.checked_mul(bs as u64)?);
            covered = covered.checked_add(l)?;
        }
        (covered == len).then_some(crc)
    }

    /// The remembered runs, for tests: (first block, blocks, CRC32C).
    pub fn runs(&self) -> &[(u64, u64, u32)] {
        &self.runs
    }
}

/// CRC32C's polynomial, bit-reversed (the order the CRC is computed in).
const POLY: u32 = 0x82f6_3b78;

/// `a * b` modulo the polynomial, both as bit-reversed polynomials (the
/// top bit is x^0).
fn mul_mod(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    for bit in (0..32).rev() {
        if a & (1 << bit) != 0 {
            product ^= b;
        }
        // b times x.
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    product
}

/// The CRC32C of `A` followed by `B`, from the CRC32C of each and the
/// length of `B` in bytes: the register after `A` runs on through `B`'s
/// bits, which multiplies it by x^(8 * len_b); the rest is `B`'s own CRC
/// (the CRC's initial and final inversions cancel out in between).
pub fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    // x^(8 * len_b) by squaring, over the bits of the byte count times 8.
    let mut shift = 1u32 << 31; // x^0
    let mut power = 1u32 << 23; // x^8: one byte
    let mut n = len_b;
    while n != 0 {
        if n & 1 != 0 {
            shift = mul_mod(power, shift);
        }
        power = mul_mod(power, power);
        n >>= 1;
    }
    mul_mod(shift, crc_a) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(b: &[u8]) -> u32 {
        !crate::crc32c::update(!0, b)
    }

    #[test]
    fn combine_matches_the_crc_of_the_concatenation() {
        let data: [u8; 9000] = core::array::from_fn(|i| (i * 31 + i / 7) as u8);
        for split in [0, 1, 7, 4096, 8999, 9000] {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c_combine(crc(a), crc(b), b.len() as u64), crc(&data), "split at {split}");
        }
    }

    #[test]
    fn lookups_tile_exactly_and_writes_replace() {
        let bs = 16;
        let block = |k: u8| [k; 16];
        let mut w = WrittenCrcs::new();
        for k in 0..4u8 {
            w.remember(100 + k as u64, 1, Some(crc(&block(k))));
        }
        let mut four = [0u8; 64];
        for k in 0..4 {
            four[k * 16..k * 16 + 16].copy_from_slice(&block(k as u8));
        }
        assert_eq!(w.crc_of(100, 4, bs), Some(crc(&four)));
        assert_eq!(w.crc_of(101, 2, bs), Some(crc(&four[16..48])));
        // Not a whole sequence of runs: unknown.
        assert_eq!(w.crc_of(100, 5, bs), None);
        assert_eq!(w.crc_of(99, 2, bs), None);
        // A write over two of them (unknown data) forgets both.
        w.remember(101, 2, None);
        assert_eq!((w.runs()[0].0, w.runs()[1].0, w.len()), (100, 103, 2));
        assert_eq!(w.crc_of(100, 4, bs), None);
        w.remember(100, 4, Some(7));
        assert_eq!((w.len(), w.crc_of(100, 4, bs)), (1, Some(7)));
        w.forget(103, 10);
        assert!(w.is_empty());
    }

    #[test]
    fn bounded() {
        let mut w = WrittenCrcs::new();
        for k in 0..WRITTEN_CRC_RUNS as u64 + 10 {
            w.remember(2 * k, 1, Some(k as u32));
        }
        assert_eq!(w.len(), WRITTEN_CRC_RUNS);
        assert_eq!(w.crc_of(2 * (WRITTEN_CRC_RUNS as u64 + 5), 1, 4096), None);
    }
}
