// SPDX-License-Identifier: GPL-2.0
//! An fsync record takes the CRCs of its data runs from what was written
//! (`ferrofs_core::written_crc`), not by reading the data back: an append
//! and its fsync issue no device read, through the kernel's three-step
//! write and through `write` alike. A write whose CRCs were not noted is
//! read back (as is a streaming write larger than `NOTE_CRC_MAX_BLOCKS`),
//! and blocks freed and handed out again never carry an old
//! CRC. Every record replays after a crash to the data written.

mod common;
use common::*;
use ferrofs_core::data_write::NOTE_CRC_MAX_BLOCKS;
use ferrofs_core::fast_commit::FsyncTier;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::space::Space;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;
const BS: u64 = 4096;

/// A filesystem with an area and one committed empty file.
fn with_file() -> (Filesystem<SimDev>, u64) {
    let mut fs = mount(fresh_with_area(32 << 20, 256));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    (fs, f)
}

/// Writes `data` at `offset` as the kernel's writeback does: blocks picked,
/// data written to them by the caller, its CRCs noted if `note`, finished.
fn three_step(fs: &mut Filesystem<SimDev>, f: u64, offset: u64, data: &[u8], note: bool) {
    let mut w = fs.begin_data_write(SV, f, offset, data.len() as u64).unwrap();
    write_runs(fs, &w, offset, data).unwrap();
    if note {
        let mut whole = data.to_vec();
        whole.resize((data.len() as u64).div_ceil(BS) as usize * BS as usize, 0);
        w.note_written(&whole);
    }
    assert_eq!(fs.finish_data_write(SV, w).unwrap(), data.len() as u64);
}

/// fsync of `f`, which must be a fast commit; returns the device reads it issued.
fn fsync_reads(fs: &mut Filesystem<SimDev>, f: u64) -> u64 {
    let r0 = fs.device().reads;
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    fs.device().reads - r0
}

/// Replays a crash image of `fs` and checks that every record came back
/// with the file's data.
fn replays_to(fs: &mut Filesystem<SimDev>, f: u64, records: u64, want: &[u8]) {
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(fs.fast_commit_stats().replayed, records);
    let mut got = vec![0u8; want.len() + 1];
    assert_eq!(fs.read(SV, f, 0, &mut got).unwrap(), want.len());
    assert!(&got[..want.len()] == want, "data after replay");
    assert_check_clean(&mut fs, "after replay");
}

#[test]
fn append_fsync_reads_nothing_back() {
    let (mut fs, f) = with_file();
    let mut want = Vec::new();
    for k in 0..20u64 {
        // 4 KiB appends, then an 8 KiB one that is not block aligned at
        // its end, as a database log's rows are.
        let len = if k % 5 == 4 { 8192 + 24 } else { 4096 };
        let data: Vec<u8> = (0..len).map(|i| (i as u64 * 3 + k) as u8).collect();
        let at = want.len() as u64;
        three_step(&mut fs, f, at.div_ceil(BS) * BS, &data, true);
        want.resize((at.div_ceil(BS) * BS) as usize, 0);
        want.extend_from_slice(&data);
        assert_eq!(fsync_reads(&mut fs, f), 0, "append {k} (three-step write)");
    }
    // Through the core's own write too.
    for k in 0..5u64 {
        let data = vec![k as u8 + 1; 4096];
        fs.write(SV, f, want.len() as u64, &data, ts(2)).unwrap();
        want.extend_from_slice(&data);
        assert_eq!(fsync_reads(&mut fs, f), 0, "append {k} (write)");
    }
    replays_to(&mut fs, f, 25, &want);
}

#[test]
fn writes_not_noted_are_read_back() {
    let (mut fs, f) = with_file();
    let data = vec![9u8; 3 * 4096];
    three_step(&mut fs, f, 0, &data, false);
    assert!(fsync_reads(&mut fs, f) > 0, "a write whose CRCs were not noted is read back");
    // Two writes side by side, one noted, one not, in one record.
    three_step(&mut fs, f, 3 * BS, &[1; 4096], true);
    three_step(&mut fs, f, 4 * BS, &[2; 4096], false);
    assert!(fsync_reads(&mut fs, f) > 0);
    let mut want = data;
    want.extend_from_slice(&[1; 4096]);
    want.extend_from_slice(&[2; 4096]);
    // A streaming write: its CRCs are not taken even when noted.
    let big = NOTE_CRC_MAX_BLOCKS as usize + 1;
    three_step(&mut fs, f, 5 * BS, &vec![3; big * 4096], true);
    assert!(fsync_reads(&mut fs, f) > 0, "a write of {big} blocks is read back");
    want.extend_from_slice(&vec![3; big * 4096]);
    replays_to(&mut fs, f, 3, &want);
}

#[test]
fn rewritten_and_truncated_data_gets_its_own_crc() {
    let (mut fs, f) = with_file();
    // Overwrites of data no record holds yet, in place (`write`) and on new
    // blocks (three-step), a shrinking truncate freeing a block of this
    // transaction, and an append that may reuse it, noted or not.
    fs.write(SV, f, 0, &[1; 3 * 4096], ts(2)).unwrap();
    fs.write(SV, f, 4096, &[2; 100], ts(2)).unwrap();
    three_step(&mut fs, f, 2 * BS, &[3; 4096], true);
    fs.truncate(SV, f, 2 * BS, ts(3)).unwrap();
    three_step(&mut fs, f, 2 * BS, &[4; 4096], false);
    let mut want = vec![1u8; 3 * 4096];
    want[4096..4196].fill(2);
    want[8192..].fill(4);
    fs.fsync(SV, f).unwrap();
    replays_to(&mut fs, f, 1, &want);
}

#[test]
fn freed_blocks_lose_their_crcs() {
    let mut sp = Space::new();
    sp.free.insert(100, 50).unwrap();
    let (s, l) = sp.allocate(4).unwrap();
    sp.written.remember(s, l, Some(0x1234));
    assert_eq!(sp.written.crc_of(s, l, 4096), Some(0x1234));
    // Freed in the same transaction: free at once, and forgotten.
    sp.release(s + 1, 1).unwrap();
    assert_eq!(sp.written.crc_of(s, l, 4096), None);
    assert!(sp.written.is_empty());
    sp.written.remember(s, 1, Some(1));
    sp.committed().unwrap();
    assert!(sp.written.is_empty(), "a commit forgets every CRC");
}
