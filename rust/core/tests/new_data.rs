// SPDX-License-Identifier: GPL-2.0
//! The records of a file look for its new data only where it gained new
//! blocks since its last record (`crate::new_data`): writes anywhere in a
//! file with many older extents, before and after a record, and more
//! files than the index keeps, must all be carried by the fsync's record
//! and come back after a crash.

mod common;
use common::*;
use ferrofs_core::fast_commit::FsyncTier;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;
const B: u64 = 4096;

#[test]
fn writes_before_and_after_a_record_anywhere_in_a_file_are_replayed() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    // Many older extents (every other block), committed.
    for k in 0..64u64 {
        fs.write(SV, f, 2 * k * B, &[1; B as usize], ts(1)).unwrap();
    }
    fs.commit().unwrap();
    let mut want = read_all(&mut fs, f);
    let put = |fs: &mut ferrofs_core::fs::Filesystem<SimDev>, want: &mut Vec<u8>, at: u64, byte: u8, len: usize| {
        fs.write(SV, f, at, &vec![byte; len], ts(2)).unwrap();
        let end = at as usize + len;
        if want.len() < end {
            want.resize(end, 0);
        }
        want[at as usize..end].fill(byte);
    };
    // Past the end, then before what the first record took, then into a
    // hole in the middle, then over a block a record took (copied to a
    // new block), each fsynced; and a last pair, unaligned, fsynced once.
    for (at, byte, len) in [(200 * B, 2, 4096), (3 * B, 3, 4096), (61 * B, 4, 8192), (200 * B + 100, 5, 10)] {
        put(&mut fs, &mut want, at, byte, len);
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    }
    put(&mut fs, &mut want, 7 * B + 5, 6, 5000);
    put(&mut fs, &mut want, 90 * B, 7, 4096);
    // A punch inside the new range splits a new extent: the rest still
    // goes in the record.
    put(&mut fs, &mut want, 140 * B, 8, 3 * 4096);
    fs.punch_hole(SV, f, 141 * B, B, ts(3)).unwrap();
    want[141 * B as usize..142 * B as usize].fill(0);
    fs.fsync(SV, f).unwrap();
    let mut after = mount(fs.device().crash_drop_all());
    assert!(after.fast_commit_stats().replayed >= 5);
    assert_eq!(read_all(&mut after, f), want);
    assert_check_clean(&mut after, "after replay");
}

#[test]
fn more_files_than_the_index_keeps_are_still_carried_whole() {
    const FILES: u64 = 4100;
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let files: Vec<u64> = (0..FILES).map(|i| fs.create(SV, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino).collect();
    fs.commit().unwrap();
    for (i, &f) in files.iter().enumerate() {
        fs.write(SV, f, 0, &(i as u32).to_le_bytes(), ts(2)).unwrap();
    }
    // The first of them has a range kept; the last ones do not.
    for &f in [files[0], files[FILES as usize - 1]].iter() {
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    }
    let mut after = mount(fs.device().crash_drop_all());
    assert_eq!(read_all(&mut after, files[0]), 0u32.to_le_bytes());
    assert_eq!(read_all(&mut after, files[FILES as usize - 1]), ((FILES - 1) as u32).to_le_bytes());
    assert_check_clean(&mut after, "after replay");
}
