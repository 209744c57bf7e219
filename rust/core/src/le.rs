// SPDX-License-Identifier: GPL-2.0
//! Little-endian integers in on-disk bytes: the one set of readers and
//! writers every codec uses (`format`, `node`, `superblock`), and named
//! fields of on-disk structures: the tables each codec module publishes (`format::item_fields`, `node::HEADER_FIELDS`,
//! `superblock::FIELDS`, ...) so that `ferrofs debug set` and the
//! hostile-image tests edit images by field name through the same layout the
//! codecs use, never through offsets of their own.

use crate::error::{Error, Result};

/// The little-endian integer of `N` bytes at `off`, or None past the end.
/// A fixed-size array, not `copy_from_slice`: the module is built for
/// size, which leaves that as a call to a generic copy per field read.
#[inline]
fn read<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..)?.first_chunk::<N>().copied()
}

/// The u16 at `off`, or None past the end.
#[inline]
pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    read(b, off).map(u16::from_le_bytes)
}

/// The u32 at `off`, or None past the end.
#[inline]
pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    read(b, off).map(u32::from_le_bytes)
}

/// The u64 at `off`, or None past the end.
#[inline]
pub fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    read(b, off).map(u64::from_le_bytes)
}

/// Writes the `N` bytes `v` at `off`; None (nothing written) past the
/// end. The fixed-size form of `put_at`, a plain store (see `read`).
#[inline]
pub fn put_array<const N: usize>(b: &mut [u8], off: usize, v: [u8; N]) -> Option<()> {
    *b.get_mut(off..)?.first_chunk_mut::<N>()? = v;
    Some(())
}

/// Writes `v` at `off`; None (nothing written) past the end.
#[inline]
pub fn put_at(b: &mut [u8], off: usize, v: &[u8]) -> Option<()> {
    b.get_mut(off..off.checked_add(v.len())?)?.copy_from_slice(v);
    Some(())
}

/// What bounds a field's valid values, so hostile-image tests can write the
/// values on both sides of each limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Only the width bounds it.
    None,
    /// Valid values are below or at this number.
    Value(u64),
    /// A block number or count: bounded by the filesystem's size.
    TotalBlocks,
    /// A byte offset or length inside one block.
    BlockSize,
}

/// One little-endian integer field at a fixed offset of a structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Name, as `ferrofs debug set` takes it.
    pub name: &'static str,
    /// Byte offset in the structure.
    pub offset: usize,
    /// Width in bytes: 1, 2, 4 or 8.
    pub width: usize,
    /// What bounds its value.
    pub limit: Limit,
}

impl Field {
    /// A field with no limit beyond its width.
    pub const fn new(name: &'static str, offset: usize, width: usize) -> Field {
        Field { name, offset, width, limit: Limit::None }
    }

    /// A field with a limit.
    pub const fn limited(name: &'static str, offset: usize, width: usize, limit: Limit) -> Field {
        Field { name, offset, width, limit }
    }

    /// Largest value the field's width holds.
    pub fn max(&self) -> u64 {
        match self.width {
            8 => u64::MAX,
            w => (1u64 << (8 * w as u32)) - 1,
        }
    }

    /// Reads the field from `b` (the structure's bytes).
    pub fn get(&self, b: &[u8]) -> Result<u64> {
        let s = b.get(self.offset..self.offset.saturating_add(self.width)).ok_or(Error::corrupt("field outside its structure"))?;
        Ok(s.iter().rev().fold(0u64, |acc, &byte| (acc << 8) | byte as u64))
    }

    /// Writes `v` into the field; `Invalid` if it does not fit its width or
    /// the structure is too short.
    pub fn set(&self, b: &mut [u8], v: u64) -> Result<()> {
        if v > self.max() {
            return Err(Error::Invalid("value does not fit the field"));
        }
        let s = b.get_mut(self.offset..self.offset.saturating_add(self.width)).ok_or(Error::Invalid("field outside its structure"))?;
        for (i, byte) in s.iter_mut().enumerate() {
            *byte = (v >> (8 * i)) as u8;
        }
        Ok(())
    }
}

/// The field called `name` in `table`.
pub fn find<'a>(table: &'a [Field], name: &str) -> Option<&'a Field> {
    table.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_set_round_trip_and_refuse() {
        let mut b = [0u8; 12];
        let f = Field::new("x", 2, 4);
        f.set(&mut b, 0xdead_beef).unwrap();
        assert_eq!(&b[2..6], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(f.get(&b), Ok(0xdead_beef));
        assert_eq!(f.set(&mut b, 1 << 32), Err(Error::Invalid("value does not fit the field")));
        assert!(Field::new("y", 10, 4).get(&b).is_err());
        assert_eq!(Field::new("z", 0, 8).max(), u64::MAX);
        assert_eq!(Field::new("z", 0, 1).max(), 255);
    }
}
