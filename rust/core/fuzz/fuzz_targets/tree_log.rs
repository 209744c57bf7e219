// SPDX-License-Identifier: GPL-2.0
//! Fuzzes tree-log records: `LogRecord::decode` on the input as given and
//! with its length and CRC made consistent (so the field checks see every
//! input), and replay at mount of the sample image (a fast-commit record,
//! then a tree-log record pending) with the input written over the area
//! after the fast-commit record, its epoch, sequence and CRC set right half
//! of the time, so replay's checks against the state see it.
#![no_main]

use ferrofs_core::format::Bounds;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::superblock::{read_superblock, Superblock};
use ferrofs_core::tree_log::{LogRecord, LOG_BASE, LOG_MAGIC};
use ferrofs_core_fuzz::{read_everything, reseal_record, sample_image, MemDev, IMAGE_SIZE, PAGE};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The sample image, its superblock and the area block the tree-log record starts at.
fn image() -> &'static (Vec<u8>, Superblock, u64) {
    static IMAGE: OnceLock<(Vec<u8>, Superblock, u64)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let bytes = sample_image();
        let sb = read_superblock(&mut MemDev::new(&bytes, IMAGE_SIZE)).expect("sample superblock");
        let first = &bytes[sb.fast_commit_start as usize * PAGE..];
        let len = ferrofs_core::fast_commit::Record::announced_len(first).expect("the sample's fast-commit record");
        (bytes, sb, len.div_ceil(PAGE) as u64)
    })
}

/// Makes `b` a record as far as length and CRC go.
fn reseal(b: &mut [u8]) {
    reseal_record(b, LOG_MAGIC);
}

fn decode_and_reencode(b: &[u8], bounds: &Bounds) {
    if let Ok(r) = LogRecord::decode(b, bounds) {
        let mut out = ferrofs_core::mem::TryVec::new();
        r.encode(PAGE, &mut out).expect("encode");
        assert_eq!(LogRecord::decode(&out[..r.len()], bounds).as_ref(), Ok(&r), "a decoded record must survive re-encoding");
        assert!(r.inode.nlink as usize == r.names.len() && !r.inode.is_dir());
    }
}

fuzz_target!(|data: &[u8]| {
    let (base, sb, at) = image();
    let bounds = Bounds { total_blocks: sb.total_blocks, block_size: sb.block_size, unwritten: true };
    if let Some(len) = LogRecord::announced_len(data) {
        if len <= data.len() {
            decode_and_reencode(&data[..len], &bounds);
        }
    }
    if data.len() >= LOG_BASE {
        let mut b = data[..data.len().min(ferrofs_core::tree_log::MAX_LOG_RECORD)].to_vec();
        reseal(&mut b);
        decode_and_reencode(&b, &bounds);
    }
    // Replay of hostile area contents after the fast-commit record.
    let mut dev = MemDev::new(base, IMAGE_SIZE);
    let room = (sb.fast_commit_blocks.saturating_sub(*at) as usize) * PAGE;
    let area = room.min(data.len().saturating_sub(1));
    if area > 0 {
        let mut bytes = data[1..=area].to_vec();
        if data[0] & 1 != 0 && bytes.len() >= LOG_BASE {
            bytes[8..16].copy_from_slice(&sb.generation.to_le_bytes());
            bytes[16..24].copy_from_slice(&1u64.to_le_bytes());
            let len = (u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]) as usize).clamp(LOG_BASE, bytes.len());
            reseal(&mut bytes[..len]);
        }
        for (i, chunk) in bytes.chunks(PAGE).enumerate() {
            dev.page_mut(sb.fast_commit_start + at + i as u64)[..chunk.len()].copy_from_slice(chunk);
        }
    }
    if let Ok(mut fs) = Filesystem::mount(dev) {
        read_everything(&mut fs);
        let _ = fs.check(false);
        let _ = fs.unmount();
    }
});
