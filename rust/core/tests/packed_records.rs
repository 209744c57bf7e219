// SPDX-License-Identifier: GPL-2.0
//! Packed records (`INCOMPAT_PACKED_RECORDS`, `crate::record_batch`): the
//! records of fsyncs staged together share the area's blocks, the next
//! batch starts on a block boundary, and any crash (any subset of the
//! unflushed pages kept, in any order) replays a prefix of the records.
//! An image without the feature bit keeps one record per block.

mod common;
use common::*;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::fast_commit::FsyncTier;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::subvol::SubvolId;
use ferrofs_core::superblock::{read_superblock, write_superblock, INCOMPAT_PACKED_RECORDS};
use std::collections::BTreeSet;

const SV: SubvolId = SubvolId::DEFAULT;
const FILES: usize = 10;

/// A filesystem with `FILES` empty files committed, their inodes.
fn with_files(dev: SimDev) -> (Filesystem<SimDev>, Vec<u64>) {
    let mut fs = mount(dev);
    let root = fs.root_ino();
    let files = (0..FILES).map(|k| fs.create(SV, root, format!("f{k}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino).collect();
    fs.commit().unwrap();
    (fs, files)
}

/// Each file gets a block of its own byte and a fast-commit record, then
/// the first is renamed and gets a tree-log record: `FILES + 1` records staged,
/// none written.
fn stage_all(fs: &mut Filesystem<SimDev>, files: &[u64]) {
    for (k, &f) in files.iter().enumerate() {
        fs.write(SV, f, 0, &[k as u8 + 1; 4096], ts(2)).unwrap();
        assert_eq!(fs.fsync_unflushed(SV, f).unwrap().tier, FsyncTier::FastCommit);
    }
    let root = fs.root_ino();
    fs.rename(SV, root, b"f0", root, b"r0", 0, ts(3)).unwrap();
    assert_eq!(fs.fsync_unflushed(SV, files[0]).unwrap().tier, FsyncTier::TreeLog);
}

/// How many of `stage_all`'s records the mounted `fs` shows, checking
/// that they are a prefix: files before it have their block, files from it
/// on are empty, and the rename is there exactly when every record is.
fn replayed_prefix(fs: &mut Filesystem<SimDev>, files: &[u64]) -> usize {
    let n = fs.fast_commit_stats().replayed as usize;
    for (k, &f) in files.iter().enumerate() {
        let want = if k < n { vec![k as u8 + 1; 4096] } else { Vec::new() };
        assert_eq!(read_all(fs, f), want, "file {k} with {n} records replayed");
    }
    let root = fs.root_ino();
    let renamed = fs.lookup(SV, root, b"r0").is_ok();
    assert_eq!(renamed, n == FILES + 1, "the rename with {n} records replayed");
    assert_check_clean(fs, "after replay");
    n
}

#[test]
fn records_staged_together_share_blocks_and_any_crash_replays_a_prefix() {
    let (mut fs, files) = with_files(fresh(64 << 20));
    stage_all(&mut fs, &files);
    let first = fs.take_record_batch().unwrap().batch.expect("records staged");
    // Ten 504-byte records and a tree-log record: two blocks, not eleven;
    // the ninth record spans them.
    assert_eq!(first.buf.len(), 2 * 4096, "packed into two blocks");
    fs.device().write(first.at, &first.buf, false).unwrap();
    // Any subset of the unflushed pages (the ten data blocks, the two
    // record blocks) kept in any order: a prefix of the records, never a
    // later one without an earlier one.
    let mut rng = Rng(seed_or(7));
    let mut seen = BTreeSet::new();
    for _ in 0..64 {
        let mut m = mount(fs.device().crash_random(&mut rng));
        seen.insert(replayed_prefix(&mut m, &files));
    }
    assert!(seen.len() > 2 && seen.contains(&0), "crashes kept different prefixes: {seen:?}");
    // The next batch starts on the block after the first one's padding.
    fs.write(SV, files[1], 4096, &[9; 100], ts(4)).unwrap();
    assert_eq!(fs.fsync_unflushed(SV, files[1]).unwrap().tier, FsyncTier::FastCommit);
    let second = fs.take_record_batch().unwrap().batch.unwrap();
    assert_eq!((second.at, second.buf.len()), (first.at + 2 * 4096, 4096));
    fs.device().write(second.at, &second.buf, false).unwrap();
    // Only the second batch's pages on the disk: its record's sequence
    // number does not follow anything replayed, so nothing is.
    let second_only: Vec<usize> = (0..fs.device().pending.len()).filter(|&i| fs.device().pending[i].page >= second.at / 4096).collect();
    let mut m = mount(fs.device().crash_image(&second_only));
    assert_eq!(replayed_prefix(&mut m, &files), 0);
    fs.device().flush().unwrap();
    let mut m = mount(fs.device().crash_drop_all());
    assert_eq!(m.fast_commit_stats().replayed, FILES as u64 + 2);
    assert_eq!(read_all(&mut m, files[1]).len(), 4196);
    assert_check_clean(&mut m, "every record replayed");
}

#[test]
fn an_image_without_the_feature_keeps_one_record_per_block() {
    let mut dev = fresh(64 << 20);
    let mut sb = read_superblock(&mut dev).unwrap();
    assert_ne!(sb.incompat & INCOMPAT_PACKED_RECORDS, 0, "mkfs sets the feature with the area");
    sb.incompat &= !INCOMPAT_PACKED_RECORDS;
    write_superblock(&mut dev, &sb).unwrap();
    dev.flush().unwrap();
    let (mut fs, files) = with_files(dev);
    stage_all(&mut fs, &files);
    let batch = fs.take_record_batch().unwrap().batch.unwrap();
    assert_eq!(batch.buf.len(), (FILES + 1) * 4096, "one block per record");
    fs.device().write(batch.at, &batch.buf, false).unwrap();
    fs.device().flush().unwrap();
    let mut m = mount(fs.device().crash_drop_all());
    assert_eq!(replayed_prefix(&mut m, &files), FILES + 1);
}
