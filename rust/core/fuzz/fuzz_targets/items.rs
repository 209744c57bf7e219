// SPDX-License-Identifier: GPL-2.0
//! Fuzzes every item value codec in `format` (inode, directory entry,
//! extent, root item, back-references and root refs) and the allocation
//! tree's refcount record; the first
//! byte picks the item type, the rest is the value.
#![no_main]

use ferrofs_core::format::*;
use ferrofs_core_fuzz::decode_item;
use libfuzzer_sys::fuzz_target;

/// Item types with a value decoder; the seed corpus names files by index.
const TYPES: [u8; 9] =
    [INODE_KEY, DIR_HASH_KEY, DIR_SEQ_KEY, EXTENT_KEY, ROOT_ITEM_KEY, REFCOUNT_KEY, INODE_REF_KEY, ROOT_REF_KEY, ROOT_BACKREF_KEY];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, value)) = data.split_first() else { return };
    let ty = TYPES[sel as usize % TYPES.len()];
    // A refcount record's start block is its key's objectid, so those
    // inputs carry it first; a key offset other than 0 must be refused.
    let (key, value) = match (ty, value.split_first_chunk::<8>()) {
        (REFCOUNT_KEY, Some((start, rest))) => (Key::new(u64::from_le_bytes(*start), ty, (sel >= 128) as u64), rest),
        _ => (Key::new(256, ty, 0), value),
    };
    decode_item(&key, value);
    let _ = (FileType::from_mode(sel as u32 * 0o10000), FileType::from_dt(sel), name_hash(value));
});
