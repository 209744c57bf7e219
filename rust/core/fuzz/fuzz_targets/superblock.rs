// SPDX-License-Identifier: GPL-2.0
//! Fuzzes `Superblock::decode` at both copy offsets, on the input as given
//! and with its checksum recomputed, and `read_superblock`'s choice between
//! two copies on a device.
#![no_main]

use ferrofs_core::superblock::{self, first_usable_block, Superblock, SUPERBLOCK_OFFSETS, SUPERBLOCK_SIZE};
use ferrofs_core_fuzz::{reseal_superblock, MemDev, PAGE};
use libfuzzer_sys::fuzz_target;

fn exercise(sb: &Superblock, off: u64) {
    let mut b = vec![0u8; SUPERBLOCK_SIZE];
    sb.encode(off, &mut b);
    assert_eq!(Superblock::decode(&b, off).as_ref(), Ok(sb), "a decoded superblock must survive re-encoding");
    assert!(sb.label().len() < 64);
    assert!(first_usable_block(sb.block_size) < sb.total_blocks);
    let _ = (sb.needs_read_only(), sb.check_device_size(sb.size_bytes() - 1));
    assert_eq!(sb.check_device_size(sb.size_bytes()), Ok(()));
}

fuzz_target!(|data: &[u8]| {
    for off in SUPERBLOCK_OFFSETS {
        if let Ok(sb) = Superblock::decode(data, off) {
            exercise(&sb, off);
        }
    }
    // Past the checksum, so the field checks see every input.
    let mut b = vec![0u8; SUPERBLOCK_SIZE];
    let n = data.len().min(SUPERBLOCK_SIZE);
    b[..n].copy_from_slice(&data[..n]);
    reseal_superblock(&mut b);
    for off in SUPERBLOCK_OFFSETS {
        if let Ok(sb) = Superblock::decode(&b, off) {
            exercise(&sb, off);
        }
    }
    // The primary copy as given, the secondary resealed; the device is too
    // small for most claimed sizes, which read_superblock must notice.
    let size = SUPERBLOCK_OFFSETS[1] + (SUPERBLOCK_SIZE + PAGE) as u64;
    let mut dev = MemDev::new(&[], size);
    dev.page_mut(SUPERBLOCK_OFFSETS[0] / PAGE as u64)[..n].copy_from_slice(&data[..n]);
    dev.page_mut(SUPERBLOCK_OFFSETS[1] / PAGE as u64).copy_from_slice(&b);
    if let Ok(sb) = superblock::read_superblock(&mut dev) {
        assert!(sb.size_bytes() <= size);
    }
});
