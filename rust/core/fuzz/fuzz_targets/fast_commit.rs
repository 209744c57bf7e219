// SPDX-License-Identifier: GPL-2.0
//! Fuzzes fast-commit records: `Record::decode` on the input as given and
//! with its length and CRC made consistent (so the field checks see every
//! input), and replay at mount of the sample image (which has one record
//! pending) with the input written over its fast-commit area, the first
//! record's epoch, sequence and CRC set right half of the time.
#![no_main]

use ferrofs_core::fast_commit::{Record, RECORD_BASE, RECORD_MAGIC, RUN_SIZE};
use ferrofs_core::format::Bounds;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::superblock::{read_superblock, Superblock};
use ferrofs_core_fuzz::{read_everything, reseal_record, sample_image, MemDev, IMAGE_SIZE, PAGE};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn image() -> &'static (Vec<u8>, Superblock) {
    static IMAGE: OnceLock<(Vec<u8>, Superblock)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let bytes = sample_image();
        let sb = read_superblock(&mut MemDev::new(&bytes, IMAGE_SIZE)).expect("sample superblock");
        assert!(sb.fast_commit_blocks > 0, "the sample image has a fast-commit area");
        (bytes, sb)
    })
}

/// Makes `b` a record as far as length and CRC go.
fn reseal(b: &mut [u8]) {
    reseal_record(b, RECORD_MAGIC);
}

fn decode_and_reencode(b: &[u8], bounds: &Bounds) {
    if let Ok(r) = Record::decode(b, bounds) {
        let mut out = ferrofs_core::mem::TryVec::new();
        r.encode(PAGE, &mut out).expect("encode");
        // Equal as decoded: the inode item's reserved bytes are not kept.
        assert_eq!(Record::decode(&out[..r.len()], bounds).as_ref(), Ok(&r), "a decoded record must survive re-encoding");
        assert!(r.runs.iter().all(|x| x.blocks > 0 && bounds.blocks_inside(x.disk_block, x.blocks)));
    }
}

fuzz_target!(|data: &[u8]| {
    let (base, sb) = image();
    let bounds = Bounds { total_blocks: sb.total_blocks, block_size: sb.block_size, unwritten: true };
    if let Some(len) = Record::announced_len(data) {
        if len <= data.len() {
            decode_and_reencode(&data[..len], &bounds);
        }
    }
    if data.len() >= RECORD_BASE {
        let n = (data.len() - RECORD_BASE) / RUN_SIZE;
        let mut b = data[..RECORD_BASE + n * RUN_SIZE].to_vec();
        b[28..32].copy_from_slice(&(n as u32).to_le_bytes());
        reseal(&mut b);
        decode_and_reencode(&b, &bounds);
    }
    // Replay of hostile area contents.
    let mut dev = MemDev::new(base, IMAGE_SIZE);
    let area = (sb.fast_commit_blocks as usize * PAGE).min(data.len().saturating_sub(1));
    if area > 0 {
        let mut bytes = data[1..=area].to_vec();
        if data[0] & 1 != 0 && bytes.len() >= RECORD_BASE {
            bytes[8..16].copy_from_slice(&sb.generation.to_le_bytes());
            bytes[16..24].fill(0);
            let len = (u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]) as usize).clamp(RECORD_BASE, bytes.len());
            reseal(&mut bytes[..len]);
        }
        for (i, chunk) in bytes.chunks(PAGE).enumerate() {
            dev.page_mut(sb.fast_commit_start + i as u64)[..chunk.len()].copy_from_slice(chunk);
        }
    }
    if let Ok(mut fs) = Filesystem::mount(dev) {
        read_everything(&mut fs);
        let _ = fs.check(false);
        let _ = fs.unmount();
    }
});
