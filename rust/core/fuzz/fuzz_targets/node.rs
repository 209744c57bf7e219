// SPDX-License-Identifier: GPL-2.0
//! Fuzzes node validation (`node::validate`, `validate_structure`), the node
//! accessors on any buffer, and on a node that validates: every item decoded
//! by its key type, searches, and inserts/deletes that must keep it valid.
#![no_main]

use ferrofs_core::format::Key;
use ferrofs_core::node::{self, Expect, HEADER_SIZE, ITEM_SIZE, PTR_SIZE};
use ferrofs_core_fuzz::decode_item;
use libfuzzer_sys::fuzz_target;

/// Child pointers must stay below this; large enough for the seeds' blocks.
const TOTAL_BLOCKS: u64 = 1 << 20;

/// The accessors promise to clamp rather than panic even on unvalidated
/// bytes; the loop bound keeps a garbage item count from taking forever.
fn read_anything(b: &[u8]) {
    let n = node::nritems(b).min((b.len() - HEADER_SIZE) / ITEM_SIZE.min(PTR_SIZE) + 2);
    let _ = (node::blocknr(b), node::generation(b), node::owner(b), node::stored_csum(b), node::level(b));
    let _ = (node::leaf_free(b), node::leaf_used(b), node::first_key(b));
    let _ = (node::leaf_search(b, &Key::new(256, 1, 0)), node::child_slot(b, &Key::MAX));
    for i in 0..n {
        let _ = (node::item_key(b, i), node::item_data(b, i), node::item_size(b, i));
        let _ = (node::ptr_key(b, i), node::ptr_block(b, i), node::ptr_gen(b, i));
    }
}

fn exercise_leaf(b: &[u8]) {
    let n = node::nritems(b);
    for i in 0..n {
        let k = node::item_key(b, i);
        assert_eq!(node::leaf_search(b, &k), Ok(i));
        decode_item(&k, node::item_data(b, i));
    }
    assert!(node::leaf_used(b) + node::leaf_free(b) <= b.len() - HEADER_SIZE);
    if n > 0 {
        let mut c = b.to_vec();
        let slot = node::generation(b) as usize % n;
        node::leaf_delete(&mut c, slot).expect("delete from a valid leaf");
        assert_eq!(node::validate_structure(&c, TOTAL_BLOCKS), Ok(()), "leaf invalid after deleting slot {slot}");
    }
    let free = node::leaf_free(b);
    for key in [Key::default(), Key::MAX, node::first_key(b).succ().unwrap_or_default()] {
        let Err(slot) = node::leaf_search(b, &key) else { continue };
        if free < ITEM_SIZE {
            break;
        }
        let data = vec![0xa5u8; (free - ITEM_SIZE).min(40)];
        let mut c = b.to_vec();
        node::leaf_insert(&mut c, slot, &key, &data).expect("insert into a valid leaf with room");
        assert_eq!(node::validate_structure(&c, TOTAL_BLOCKS), Ok(()), "leaf invalid after inserting at slot {slot}");
        assert_eq!(node::leaf_search(&c, &key), Ok(slot));
        assert_eq!(node::item_data(&c, slot), &data[..]);
    }
}

fn exercise_interior(b: &[u8]) {
    let n = node::nritems(b);
    for i in 0..n {
        assert_eq!(node::child_slot(b, &node::ptr_key(b, i)), i);
    }
    if n > 1 {
        let mut c = b.to_vec();
        node::ptr_delete(&mut c, n - 1).expect("delete from a valid interior node");
        assert_eq!(node::validate_structure(&c, TOTAL_BLOCKS), Ok(()));
    }
    let key = Key::MAX;
    if n < node::ptr_capacity(b.len()) && node::ptr_key(b, n - 1) < key {
        let mut c = b.to_vec();
        node::ptr_insert(&mut c, n, &key, node::ptr_block(b, 0), node::ptr_gen(b, 0)).expect("append to a valid interior node");
        assert_eq!(node::validate_structure(&c, TOTAL_BLOCKS), Ok(()));
        assert_eq!(node::child_slot(&c, &key), n);
    }
}

fuzz_target!(|data: &[u8]| {
    // Inputs longer than a 4 KiB block are taken as 8 KiB blocks, so the
    // block size is not baked into the layout code.
    let bs = if data.len() > 4096 { 8192 } else { 4096 };
    let mut b = vec![0u8; bs];
    let n = data.len().min(bs);
    b[..n].copy_from_slice(&data[..n]);
    read_anything(&b);
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[24..40]);
    // Identity as the block claims it, so only the checksum and the
    // structure decide; resealed, so the checksum passes as well.
    let e = Expect {
        blocknr: node::blocknr(&b),
        generation: node::generation(&b),
        level: node::level(&b),
        uuid: &uuid,
        total_blocks: TOTAL_BLOCKS,
    };
    let _ = node::validate(&data[..data.len().min(4095)], &e);
    let _ = node::validate(&b, &e);
    node::seal(&mut b);
    if node::validate(&b, &e).is_err() {
        return;
    }
    if node::level(&b) == 0 {
        exercise_leaf(&b);
    } else {
        exercise_interior(&b);
    }
});
