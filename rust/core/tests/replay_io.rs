// SPDX-License-Identifier: GPL-2.0
//! The device reads of mount's replay: the fast-commit area and the data
//! the records point at are read in large pieces, so replaying a long
//! chain of one-block append records costs a few reads per hundred
//! records, not two per record (each read is a synchronous round trip).

mod common;
use common::*;
use ferrofs_core::fast_commit::FsyncTier;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;

/// A crash image holding `n` pending 4 KiB append + fsync records of one
/// file (committed empty), and the file's inode number.
fn appends_pending(n: u64) -> (SimDev, u64) {
    let mut fs = mount(fresh_with_area(64 << 20, n + 64));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"log", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    for k in 0..n {
        fs.write(SV, f, k * 4096, &[(k % 251) as u8 + 1; 4096], ts(2)).unwrap();
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit, "append {k}");
    }
    (fs.device().crash_drop_all(), f)
}

/// Mounts the image; returns the device reads the mount issued.
fn mount_reads(image: SimDev, n: u64, f: u64) -> u64 {
    let mut fs = mount(image);
    assert_eq!(fs.fast_commit_stats().replayed, n);
    let reads = fs.device().reads;
    let mut buf = vec![0u8; 4096];
    for k in [0, n / 2, n - 1] {
        assert_eq!(fs.read(SV, f, k * 4096, &mut buf).unwrap(), 4096);
        assert!(buf.iter().all(|&c| c == (k % 251) as u8 + 1), "block {k} after replay");
    }
    assert_eq!(fs.getattr(SV, f).unwrap().size, n * 4096);
    assert_check_clean(&mut fs, "after replaying the appends");
    reads
}

#[test]
fn replay_reads_do_not_grow_per_record() {
    let (small, fs_small) = appends_pending(100);
    let (large, fs_large) = appends_pending(1600);
    let r_small = mount_reads(small, 100, fs_small);
    let r_large = mount_reads(large, 1600, fs_large);
    eprintln!("mount reads: {r_small} with 100 records, {r_large} with 1600");
    // The mount's own reads (superblock, trees) are the constant.
    assert!(r_large <= 1600 / 8 + 64, "{r_large} reads to replay 1600 records");
    assert!(r_large - r_small.min(r_large) <= 1500 / 8, "{r_small} then {r_large} reads: they grow with the records");
}

#[test]
fn runs_across_read_boundaries_and_tree_log_runs_verify() {
    // Runs of 100 and 150 blocks straddle the 64-block reads of the data
    // pass; a link makes the last fsyncs tree-log records with runs.
    let (d, _) = appends_pending(1);
    let mut fs = mount(d);
    let root = fs.root_ino();
    let g = fs.create(SV, root, b"big", 0o644, 0, 0, 0, ts(3)).unwrap().ino;
    fs.commit().unwrap();
    let mut want = Vec::new();
    for k in 0..6u64 {
        let blocks = if k % 2 == 0 { 100 } else { 150 };
        let data: Vec<u8> = (0..blocks * 4096).map(|i| (i * 7 + k * 13) as u8).collect();
        fs.write(SV, g, want.len() as u64, &data, ts(4)).unwrap();
        want.extend_from_slice(&data);
        if k == 3 {
            fs.link(SV, g, root, b"big2", ts(5)).unwrap();
        }
        let tier = fs.fsync(SV, g).unwrap();
        assert_eq!(tier, if k < 3 { FsyncTier::FastCommit } else { FsyncTier::TreeLog }, "fsync {k}");
    }
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(fs.fast_commit_stats().replayed, 6);
    let mut got = vec![0u8; want.len()];
    assert_eq!(fs.read(SV, g, 0, &mut got).unwrap(), want.len());
    assert!(got == want, "the file's data after replay");
    assert_eq!(fs.lookup_at(SV, root, b"big2").unwrap().1, g);
    assert_check_clean(&mut fs, "after replaying runs across reads");
}
