// SPDX-License-Identifier: GPL-2.0
//! B-tree node blocks: the header every metadata block carries, the leaf
//! layout and the interior layout, and validation of everything read from disk.
//!
//! Header (64 bytes, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | crc32c of bytes 4..block size |
//! | 4 | 4 | magic `"FNOD"` |
//! | 8 | 8 | this block's number |
//! | 16 | 8 | generation (transaction) that wrote it |
//! | 24 | 16 | filesystem UUID |
//! | 40 | 8 | owner tree id |
//! | 48 | 4 | number of items / pointers |
//! | 52 | 1 | level (0: leaf) |
//! | 53 | 11 | zero, reserved |
//!
//! A leaf holds item headers `(key 17, data offset u32, data length u32)`
//! growing up from byte 64, and item data packed down from the end of the
//! block in item order (item 0's data ends at the block end, item i's data
//! ends where item i-1's begins). An interior node holds pointers
//! `(key 17, child block u64, child generation u64)` from byte 64; each key
//! is a lower bound of the keys below that child.
//!
//! Nodes are validated once when read from disk; the accessors below then
//! work on a buffer whose structure is known good, and never index out of
//! bounds even if it is not (they clamp instead of panicking).

use crate::error::{Error, Result};
use crate::format::Key;
use crate::le::{self, Field, Limit};

/// Size of the node header.
pub const HEADER_SIZE: usize = 64;
/// Size of an encoded key.
pub const KEY_SIZE: usize = 17;
/// Size of a leaf item header.
pub const ITEM_SIZE: usize = KEY_SIZE + 8;
/// Size of an interior pointer.
pub const PTR_SIZE: usize = KEY_SIZE + 16;
/// Most levels a tree may have (so paths fit in fixed arrays).
pub const MAX_LEVEL: usize = 8;
/// Node magic.
pub const NODE_MAGIC: u32 = u32::from_le_bytes(*b"FNOD");

const OFF_MAGIC: usize = 4;
const OFF_BLOCKNR: usize = 8;
const OFF_GEN: usize = 16;
const OFF_UUID: usize = 24;
const OFF_OWNER: usize = 40;
const OFF_NRITEMS: usize = 48;
const OFF_LEVEL: usize = 52;
const OFF_RESERVED: usize = 53;

/// Largest item data a leaf accepts. Keeping every item (with its header)
/// at most a quarter of the leaf guarantees that splitting a full leaf in
/// two by bytes leaves room for any new item on either side.
pub fn max_item_data(bs: usize) -> usize {
    (bs - HEADER_SIZE) / 4 - ITEM_SIZE
}

/// Pointers an interior node holds.
pub fn ptr_capacity(bs: usize) -> usize {
    (bs - HEADER_SIZE) / PTR_SIZE
}

/// The node header's fields by name (see `crate::le`); the checksum is
/// left out: editing tools re-seal it.
pub const HEADER_FIELDS: &[Field] = &[
    Field::new("magic", OFF_MAGIC, 4),
    Field::limited("blocknr", OFF_BLOCKNR, 8, Limit::TotalBlocks),
    Field::new("generation", OFF_GEN, 8),
    Field::new("uuid", OFF_UUID, 8),
    Field::new("owner", OFF_OWNER, 8),
    Field::limited("nritems", OFF_NRITEMS, 4, Limit::BlockSize),
    Field::limited("level", OFF_LEVEL, 1, Limit::Value(MAX_LEVEL as u64 - 1)),
    Field::new("reserved", OFF_RESERVED, 1),
];

/// A leaf item header's fields, relative to `item_header_offset(i)`.
pub const ITEM_HEADER_FIELDS: &[Field] = &[
    Field::new("key_objectid", 0, 8),
    Field::new("key_type", 8, 1),
    Field::new("key_offset", 9, 8),
    Field::limited("data_offset", KEY_SIZE, 4, Limit::BlockSize),
    Field::limited("data_len", KEY_SIZE + 4, 4, Limit::BlockSize),
];

/// An interior pointer's fields, relative to `ptr_offset(i)`.
pub const PTR_FIELDS: &[Field] = &[
    Field::new("key_objectid", 0, 8),
    Field::new("key_type", 8, 1),
    Field::new("key_offset", 9, 8),
    Field::limited("block", KEY_SIZE, 8, Limit::TotalBlocks),
    Field::new("generation", KEY_SIZE + 8, 8),
];

/// Byte offset of leaf item `i`'s header.
pub fn item_header_offset(i: usize) -> usize {
    item_hdr(i)
}

/// Byte offset of interior pointer `i`.
pub fn ptr_offset(i: usize) -> usize {
    ptr_off(i)
}

/// Byte range of leaf item `i`'s data, as its header says (unchecked:
/// for editing tools; `item_data` is the checked reader).
pub fn item_data_range(b: &[u8], i: usize) -> core::ops::Range<usize> {
    let off = item_off(b, i);
    off..off.saturating_add(item_len(b, i))
}

// Accessors on a validated node clamp instead of failing (see above):
// past the end reads as zero and writes nothing.
#[inline]
fn rd32(b: &[u8], off: usize) -> u32 {
    le::u32_at(b, off).unwrap_or(0)
}

#[inline]
fn rd64(b: &[u8], off: usize) -> u64 {
    le::u64_at(b, off).unwrap_or(0)
}

#[inline]
fn wr32(b: &mut [u8], off: usize, v: u32) {
    let _ = le::put_array(b, off, v.to_le_bytes());
}

#[inline]
fn wr64(b: &mut [u8], off: usize, v: u64) {
    let _ = le::put_array(b, off, v.to_le_bytes());
}

#[inline]
fn rd_key(b: &[u8], off: usize) -> Key {
    Key { objectid: rd64(b, off), ty: b.get(off + 8).copied().unwrap_or(0), offset: rd64(b, off + 9) }
}

#[inline]
fn wr_key(b: &mut [u8], off: usize, k: &Key) {
    wr64(b, off, k.objectid);
    if let Some(t) = b.get_mut(off + 8) {
        *t = k.ty;
    }
    wr64(b, off + 9, k.offset);
}

fn corrupt(_: core::ops::Range<usize>) -> Error {
    Error::corrupt("node layout out of bounds")
}

/// Moves `range` of `b` to start at `dest`, reporting instead of panicking
/// when either side falls outside the block.
#[inline]
fn move_bytes(b: &mut [u8], range: core::ops::Range<usize>, dest: usize) -> Result<()> {
    if range.start > range.end || range.end > b.len() || dest + (range.end - range.start) > b.len() {
        return Err(corrupt(range));
    }
    // An item without data (an orphan, an empty xattr) moves nothing, and
    // a copy onto itself would still cost a pass over the leaf.
    if dest != range.start && range.start != range.end {
        b.copy_within(range, dest);
    }
    Ok(())
}

/// Adds `by` (modulo 2^32: a wrapped negative moves data up) to the data
/// offset of each leaf item in `items`. One pass over the headers as
/// fixed-size records: deletes and inserts at a leaf's front, the common
/// case when a directory is filled or emptied in order, rewrite every
/// header.
fn shift_offsets(b: &mut [u8], items: core::ops::Range<usize>, by: usize) {
    let Some(hdrs) = b.get_mut(item_hdr(items.start)..item_hdr(items.end)) else { return };
    for h in hdrs.chunks_exact_mut(ITEM_SIZE) {
        if let Ok(f) = <&mut [u8; 4]>::try_from(&mut h[KEY_SIZE..KEY_SIZE + 4]) {
            *f = u32::from_le_bytes(*f).wrapping_add(by as u32).to_le_bytes();
        }
    }
}

/// Writes a fresh, empty node header into `b` (the whole block is zeroed).
pub fn init(b: &mut [u8], blocknr: u64, generation: u64, uuid: &[u8; 16], owner: u64, level: u8) {
    b.fill(0);
    wr32(b, OFF_MAGIC, NODE_MAGIC);
    set_identity(b, blocknr, generation, owner);
    if let Some(u) = b.get_mut(OFF_UUID..OFF_UUID + 16) {
        u.copy_from_slice(uuid);
    }
    if let Some(l) = b.get_mut(OFF_LEVEL) {
        *l = level;
    }
}

/// Gives a copied node its new place and generation (copy-on-write).
pub fn set_identity(b: &mut [u8], blocknr: u64, generation: u64, owner: u64) {
    wr64(b, OFF_BLOCKNR, blocknr);
    wr64(b, OFF_GEN, generation);
    wr64(b, OFF_OWNER, owner);
}

/// Stores the checksum; done just before the block is written.
pub fn seal(b: &mut [u8]) {
    let c = crate::crc32c::checksum(b.get(4..).unwrap_or(&[]));
    wr32(b, 0, c);
}

/// Block number recorded in the header.
pub fn blocknr(b: &[u8]) -> u64 {
    rd64(b, OFF_BLOCKNR)
}

/// Generation recorded in the header.
#[inline]
pub fn generation(b: &[u8]) -> u64 {
    rd64(b, OFF_GEN)
}

/// Owner tree recorded in the header.
pub fn owner(b: &[u8]) -> u64 {
    rd64(b, OFF_OWNER)
}

/// Stored checksum.
pub fn stored_csum(b: &[u8]) -> u32 {
    rd32(b, 0)
}

/// Number of items (leaf) or pointers (interior).
#[inline]
pub fn nritems(b: &[u8]) -> usize {
    rd32(b, OFF_NRITEMS) as usize
}

/// Sets the item count; used to cut a node after its tail moved away.
#[inline]
pub fn set_nritems(b: &mut [u8], n: usize) {
    wr32(b, OFF_NRITEMS, n as u32);
}

/// Level of the node.
#[inline]
pub fn level(b: &[u8]) -> u8 {
    b.get(OFF_LEVEL).copied().unwrap_or(0)
}

#[inline]
fn item_hdr(i: usize) -> usize {
    HEADER_SIZE + i * ITEM_SIZE
}

#[inline]
fn ptr_off(i: usize) -> usize {
    HEADER_SIZE + i * PTR_SIZE
}

/// Key of leaf item `i`.
#[inline]
pub fn item_key(b: &[u8], i: usize) -> Key {
    rd_key(b, item_hdr(i))
}

#[inline]
fn item_off(b: &[u8], i: usize) -> usize {
    rd32(b, item_hdr(i) + KEY_SIZE) as usize
}

#[inline]
fn item_len(b: &[u8], i: usize) -> usize {
    rd32(b, item_hdr(i) + KEY_SIZE + 4) as usize
}

/// Data of leaf item `i`.
#[inline]
pub fn item_data(b: &[u8], i: usize) -> &[u8] {
    let off = item_off(b, i);
    b.get(off..off + item_len(b, i)).unwrap_or(&[])
}

/// Mutable data of leaf item `i` (same length; for in-place updates).
#[inline]
pub fn item_data_mut(b: &mut [u8], i: usize) -> &mut [u8] {
    let off = item_off(b, i);
    let len = item_len(b, i);
    b.get_mut(off..off + len).unwrap_or(&mut [])
}

/// Size of item `i` including its header.
#[inline]
pub fn item_size(b: &[u8], i: usize) -> usize {
    ITEM_SIZE + item_len(b, i)
}

#[inline]
fn data_start(b: &[u8]) -> usize {
    match nritems(b) {
        0 => b.len(),
        n => item_off(b, n - 1),
    }
}

/// Free bytes in a leaf.
#[inline]
pub fn leaf_free(b: &[u8]) -> usize {
    data_start(b).saturating_sub(item_hdr(nritems(b)))
}

/// Bytes used by items in a leaf (headers and data).
#[inline]
pub fn leaf_used(b: &[u8]) -> usize {
    (b.len() - HEADER_SIZE).saturating_sub(leaf_free(b))
}

/// Binary search of a leaf: `Ok(slot)` if found, `Err(slot)` where it would go.
pub fn leaf_search(b: &[u8], key: &Key) -> core::result::Result<usize, usize> {
    let (mut lo, mut hi) = (0, nritems(b));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match cmp_key_at(b, item_hdr(mid), key) {
            core::cmp::Ordering::Less => lo = mid + 1,
            core::cmp::Ordering::Greater => hi = mid,
            core::cmp::Ordering::Equal => return Ok(mid),
        }
    }
    Err(lo)
}

/// The key encoded at `off` compared with `key`, field by field, decoding
/// only what decides it (searches compare most keys on their object id
/// alone). A key past the block's end reads as zeros, as `rd_key` has it.
#[inline]
fn cmp_key_at(b: &[u8], off: usize, key: &Key) -> core::cmp::Ordering {
    let Some(k) = b.get(off..).and_then(|t| t.first_chunk::<KEY_SIZE>()) else {
        return Key::default().cmp(key);
    };
    let field = |at: usize| k.get(at..).and_then(|t| t.first_chunk::<8>()).map_or(0, |f| u64::from_le_bytes(*f));
    field(0).cmp(&key.objectid).then_with(|| k[8].cmp(&key.ty)).then_with(|| field(9).cmp(&key.offset))
}

/// Inserts an item at `slot`; the caller made sure it fits.
pub fn leaf_insert(b: &mut [u8], slot: usize, key: &Key, data: &[u8]) -> Result<()> {
    let n = nritems(b);
    let len = data.len();
    if slot > n || leaf_free(b) < ITEM_SIZE + len {
        return Err(Error::corrupt("leaf insert without room"));
    }
    let dstart = data_start(b);
    let end = if slot == 0 { b.len() } else { item_off(b, slot - 1) };
    move_bytes(b, dstart..end, dstart - len)?;
    shift_offsets(b, slot..n, len.wrapping_neg());
    move_bytes(b, item_hdr(slot)..item_hdr(n), item_hdr(slot + 1))?;
    let h = item_hdr(slot);
    wr_key(b, h, key);
    wr32(b, h + KEY_SIZE, (end - len) as u32);
    wr32(b, h + KEY_SIZE + 4, len as u32);
    b.get_mut(end - len..end).ok_or(Error::corrupt("leaf data out of bounds"))?.copy_from_slice(data);
    set_nritems(b, n + 1);
    Ok(())
}

/// Removes the item at `slot`.
pub fn leaf_delete(b: &mut [u8], slot: usize) -> Result<()> {
    let n = nritems(b);
    if slot >= n {
        return Err(Error::corrupt("leaf delete past the end"));
    }
    let off = item_off(b, slot);
    let len = item_len(b, slot);
    let dstart = data_start(b);
    move_bytes(b, dstart..off, dstart + len)?;
    shift_offsets(b, slot + 1..n, len);
    move_bytes(b, item_hdr(slot + 1)..item_hdr(n), item_hdr(slot))?;
    set_nritems(b, n - 1);
    Ok(())
}

/// Key of interior pointer `i`.
#[inline]
pub fn ptr_key(b: &[u8], i: usize) -> Key {
    rd_key(b, ptr_off(i))
}

/// Child block of interior pointer `i`.
#[inline]
pub fn ptr_block(b: &[u8], i: usize) -> u64 {
    rd64(b, ptr_off(i) + KEY_SIZE)
}

/// Child generation of interior pointer `i`.
#[inline]
pub fn ptr_gen(b: &[u8], i: usize) -> u64 {
    rd64(b, ptr_off(i) + KEY_SIZE + 8)
}

/// Overwrites interior pointer `i`.
#[inline]
pub fn set_ptr(b: &mut [u8], i: usize, key: &Key, block: u64, generation: u64) {
    let o = ptr_off(i);
    wr_key(b, o, key);
    wr64(b, o + KEY_SIZE, block);
    wr64(b, o + KEY_SIZE + 8, generation);
}

/// Inserts an interior pointer at `slot`; the caller made sure it fits.
pub fn ptr_insert(b: &mut [u8], slot: usize, key: &Key, block: u64, generation: u64) -> Result<()> {
    let n = nritems(b);
    if slot > n || n >= ptr_capacity(b.len()) {
        return Err(Error::corrupt("interior insert without room"));
    }
    move_bytes(b, ptr_off(slot)..ptr_off(n), ptr_off(slot + 1))?;
    set_ptr(b, slot, key, block, generation);
    set_nritems(b, n + 1);
    Ok(())
}

/// Removes interior pointer `slot`.
pub fn ptr_delete(b: &mut [u8], slot: usize) -> Result<()> {
    let n = nritems(b);
    if slot >= n {
        return Err(Error::corrupt("interior delete past the end"));
    }
    move_bytes(b, ptr_off(slot + 1)..ptr_off(n), ptr_off(slot))?;
    set_nritems(b, n - 1);
    Ok(())
}

/// The child to descend into for `key`: the last pointer whose key is at most
/// `key`, or the first when `key` is below them all.
pub fn child_slot(b: &[u8], key: &Key) -> usize {
    let (mut lo, mut hi) = (0, nritems(b));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if cmp_key_at(b, ptr_off(mid), key).is_le() {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.saturating_sub(1)
}

/// First key in a node of either kind (the default key when empty).
#[inline]
pub fn first_key(b: &[u8]) -> Key {
    if nritems(b) == 0 {
        return Key::default();
    }
    if level(b) == 0 {
        item_key(b, 0)
    } else {
        ptr_key(b, 0)
    }
}

/// Last key in a node of either kind (the default key when empty).
#[inline]
pub fn last_key(b: &[u8]) -> Key {
    match nritems(b) {
        0 => Key::default(),
        n if level(b) == 0 => item_key(b, n - 1),
        n => ptr_key(b, n - 1),
    }
}

/// Whether every key of a node lies in `[lo, hi)` (no upper bound when
/// `hi` is `None`), the range its parent gives it. Keys inside a validated
/// node increase, so the first and the last key decide.
#[inline]
pub fn keys_within(b: &[u8], lo: &Key, hi: Option<&Key>) -> bool {
    nritems(b) == 0 || (first_key(b) >= *lo && hi.map_or(true, |h| last_key(b) < *h))
}

/// What a node must look like, as known from the pointer that led to it.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Block the node was read from.
    pub blocknr: u64,
    /// Generation the parent pointer records.
    pub generation: u64,
    /// Level the parent implies.
    pub level: u8,
    /// Filesystem UUID.
    pub uuid: &'a [u8; 16],
    /// Blocks in the filesystem (child pointers must be below).
    pub total_blocks: u64,
}

/// Validates a node read from disk: checksum, identity, then structure.
pub fn validate(b: &[u8], e: &Expect<'_>) -> Result<()> {
    if b.len() < 4096 {
        return Err(Error::corrupt("node buffer too short"));
    }
    if rd32(b, OFF_MAGIC) != NODE_MAGIC {
        return Err(Error::corrupt("node has no magic"));
    }
    if stored_csum(b) != crate::crc32c::checksum(b.get(4..).unwrap_or(&[])) {
        return Err(Error::corrupt("node checksum mismatch"));
    }
    if blocknr(b) != e.blocknr {
        return Err(Error::corrupt("node is not at the block it records"));
    }
    if b.get(OFF_UUID..OFF_UUID + 16) != Some(&e.uuid[..]) {
        return Err(Error::corrupt("node belongs to another filesystem"));
    }
    if generation(b) != e.generation {
        return Err(Error::corrupt("node generation differs from its parent pointer"));
    }
    if level(b) != e.level {
        return Err(Error::corrupt("node level differs from its parent"));
    }
    validate_structure(b, e.total_blocks)
}

/// Structure checks that need no context: counts, bounds, packing, key order.
pub fn validate_structure(b: &[u8], total_blocks: u64) -> Result<()> {
    if b.get(OFF_RESERVED..HEADER_SIZE).map_or(true, |r| r.iter().any(|&x| x != 0)) {
        return Err(Error::corrupt("node reserved bytes are not zero"));
    }
    if level(b) as usize >= MAX_LEVEL {
        return Err(Error::corrupt("node level too high"));
    }
    let n = nritems(b);
    let bs = b.len();
    if level(b) == 0 {
        if n > (bs - HEADER_SIZE) / ITEM_SIZE {
            return Err(Error::corrupt("leaf item count too high"));
        }
        let floor = item_hdr(n);
        let mut end = bs;
        for i in 0..n {
            let off = item_off(b, i);
            let len = item_len(b, i);
            if off < floor || off.checked_add(len) != Some(end) {
                return Err(Error::corrupt("leaf item data misplaced"));
            }
            end = off;
            if i > 0 && item_key(b, i - 1) >= item_key(b, i) {
                return Err(Error::corrupt("leaf keys out of order"));
            }
        }
    } else {
        if n == 0 || n > ptr_capacity(bs) {
            return Err(Error::corrupt("interior pointer count out of range"));
        }
        let gen = generation(b);
        for i in 0..n {
            let blk = ptr_block(b, i);
            if blk == 0 || blk >= total_blocks {
                return Err(Error::corrupt("child pointer outside the filesystem"));
            }
            if ptr_gen(b, i) > gen {
                return Err(Error::corrupt("child newer than its parent"));
            }
            if i > 0 && ptr_key(b, i - 1) >= ptr_key(b, i) {
                return Err(Error::corrupt("interior keys out of order"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 4096;
    const UUID: [u8; 16] = [3; 16];

    fn leaf() -> [u8; BS] {
        let mut b = [0u8; BS];
        init(&mut b, 40, 2, &UUID, 5, 0);
        b
    }

    fn expect() -> Expect<'static> {
        Expect { blocknr: 40, generation: 2, level: 0, uuid: &UUID, total_blocks: 1000 }
    }

    #[test]
    fn leaf_insert_delete_keep_packing() {
        let mut b = leaf();
        for (i, k) in [5u64, 1, 3, 9, 7].iter().enumerate() {
            let key = Key::new(*k, 1, 0);
            let slot = leaf_search(&b, &key).unwrap_err();
            leaf_insert(&mut b, slot, &key, &[i as u8; 10][..(*k as usize)]).unwrap();
        }
        seal(&mut b);
        validate(&b, &expect()).unwrap();
        assert_eq!(nritems(&b), 5);
        assert_eq!(item_data(&b, leaf_search(&b, &Key::new(9, 1, 0)).unwrap()), &[3u8; 9]);
        leaf_delete(&mut b, 2).unwrap();
        seal(&mut b);
        validate(&b, &expect()).unwrap();
        assert_eq!(leaf_search(&b, &Key::new(5, 1, 0)), Err(2));
        assert_eq!(item_data(&b, 3), &[3u8; 9]);
        assert_eq!(leaf_used(&b), 4 * ITEM_SIZE + 1 + 3 + 7 + 9);
    }

    #[test]
    fn leaf_refuses_overflow() {
        let mut b = leaf();
        let big = [0u8; 1000];
        let mut i = 0;
        while leaf_free(&b) >= ITEM_SIZE + big.len() {
            leaf_insert(&mut b, i, &Key::new(i as u64, 1, 0), &big).unwrap();
            i += 1;
        }
        assert!(leaf_insert(&mut b, i, &Key::new(i as u64, 1, 0), &big).is_err());
    }

    #[test]
    fn interior_ops() {
        let mut b = [0u8; BS];
        init(&mut b, 41, 2, &UUID, 5, 1);
        ptr_insert(&mut b, 0, &Key::new(10, 0, 0), 100, 1).unwrap();
        ptr_insert(&mut b, 1, &Key::new(20, 0, 0), 101, 2).unwrap();
        ptr_insert(&mut b, 1, &Key::new(15, 0, 0), 102, 2).unwrap();
        assert_eq!(child_slot(&b, &Key::new(5, 0, 0)), 0);
        assert_eq!(child_slot(&b, &Key::new(15, 0, 0)), 1);
        assert_eq!(child_slot(&b, &Key::new(99, 0, 0)), 2);
        ptr_delete(&mut b, 0).unwrap();
        assert_eq!(ptr_block(&b, 0), 102);
        seal(&mut b);
        validate(&b, &Expect { blocknr: 41, level: 1, ..expect() }).unwrap();
    }

    #[test]
    fn validate_rejects_damage() {
        let mut b = leaf();
        leaf_insert(&mut b, 0, &Key::new(1, 1, 0), b"abc").unwrap();
        leaf_insert(&mut b, 1, &Key::new(2, 1, 0), b"defg").unwrap();
        seal(&mut b);
        validate(&b, &expect()).unwrap();
        // Every single flipped byte in the used area is caught by the checksum.
        for off in [0usize, 5, 9, 17, 30, 48, 52, 64, 70, 4095] {
            let mut c = b;
            c[off] ^= 0x40;
            assert!(validate(&c, &expect()).is_err(), "byte {off}");
        }
        // With a valid checksum, structural damage is still caught.
        let mut c = b;
        wr32(&mut c, item_hdr(0) + KEY_SIZE, 5000);
        seal(&mut c);
        assert!(matches!(validate(&c, &expect()), Err(Error::Corrupt(_))));
        let mut c = b;
        wr_key(&mut c, item_hdr(1), &Key::new(0, 0, 0));
        seal(&mut c);
        assert!(validate(&c, &expect()).is_err());
        let mut c = b;
        set_nritems(&mut c, 100_000);
        seal(&mut c);
        assert!(validate(&c, &expect()).is_err());
        assert!(validate(&b, &Expect { generation: 3, ..expect() }).is_err());
        assert!(validate(&b, &Expect { blocknr: 41, ..expect() }).is_err());
        assert!(validate(&b, &Expect { level: 1, ..expect() }).is_err());
        // Accessors on garbage never panic.
        let junk = [0xffu8; BS];
        let _ = (item_data(&junk, 7), item_key(&junk, 10_000), leaf_free(&junk), child_slot(&junk, &Key::MAX));
    }
}
