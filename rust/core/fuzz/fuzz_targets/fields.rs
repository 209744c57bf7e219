// SPDX-License-Identifier: GPL-2.0
//! Structure-aware fuzzing of images: the input picks fields from the
//! sample image's list of editable fields (`ferrofs_core::edit::targets`:
//! superblock, node headers, interior pointers, item headers, every item
//! type's fields) and values for them, applies them through
//! `edit::set`, which re-seals the checksums, so every case reaches the
//! decoders, then mounts and drives the image: every read, then changes,
//! `check`, unmount. Random bytes almost never get past the checksums; this
//! target never stops at them.
//!
//! Input: edits of 3 or 11 bytes: a field index (u16 LE, modulo the list),
//! then a mode byte: below 0x80, it picks one of the field's boundary values;
//! otherwise 8 more bytes give the value (LE, cut to the field's width).
#![no_main]

use ferrofs_core::edit::{self, Place, Target};
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::superblock;
use ferrofs_core_fuzz::{change_things, read_everything, sample_image, MemDev, IMAGE_SIZE};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Image {
    bytes: Vec<u8>,
    targets: Vec<Target>,
    total_blocks: u64,
    block_size: u32,
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let bytes = sample_image();
        let mut dev = MemDev::new(&bytes, IMAGE_SIZE);
        let sb = superblock::read_superblock(&mut dev).expect("sample superblock");
        let targets = edit::targets(&mut dev).expect("sample image fields").iter().copied().collect();
        let (total_blocks, block_size) = (sb.total_blocks, sb.block_size);
        Image { bytes: bytes.clone(), targets, total_blocks, block_size }
    })
}

fuzz_target!(|data: &[u8]| {
    let img = image();
    let mut dev = MemDev::new(&img.bytes, IMAGE_SIZE);
    let mut edits: Vec<(Target, u64)> = Vec::new();
    let mut rest = data;
    while let Some((&[i0, i1, mode], tail)) = rest.split_first_chunk::<3>() {
        let t = img.targets[u16::from_le_bytes([i0, i1]) as usize % img.targets.len()];
        let value = if mode < 0x80 {
            let vs = t.boundary_values(img.total_blocks, img.block_size);
            if vs.is_empty() {
                rest = tail;
                continue;
            }
            rest = tail;
            vs[mode as usize % vs.len()]
        } else {
            let Some((raw, tail)) = tail.split_first_chunk::<8>() else { break };
            rest = tail;
            u64::from_le_bytes(*raw) & t.field.max()
        };
        edits.push((t, value));
        if edits.len() >= 8 {
            break;
        }
    }
    // Node edits first: they read the block size from the superblock.
    edits.sort_by_key(|(t, _)| t.place == Place::Superblock);
    for (t, v) in &edits {
        edit::set(&mut dev, t.place, &t.field, *v).expect("edit of the sample image");
    }
    let Ok(mut fs) = Filesystem::mount_with(dev, MountOptions::default()) else { return };
    read_everything(&mut fs);
    let _ = fs.statfs();
    change_things(&mut fs);
    let _ = fs.check(false);
    let _ = fs.unmount();
});
