// SPDX-License-Identifier: GPL-2.0
//! A device formatted again: the fsync records the filesystem it held
//! before left in the fast-commit area are never replayed into the new
//! one, even where their epoch, sequence and inode fit it exactly (two
//! mkfs runs with the same options and the same first steps).

mod common;
use common::*;
use ferrofs_core::fast_commit::FsyncTier;
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;

#[test]
fn records_of_the_previous_filesystem_are_not_replayed() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"foobar", 0o600, 0, 0, 0, ts(2)).unwrap().ino;
    fs.write(SV, f, 0, &[0x22; 8192], ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    // Power lost with the record durable; then the device is formatted
    // again with the same options.
    let mut dev = fs.device().crash_keep_all();
    drop(fs);
    let opts =
        MkfsOptions { block_size: 4096, size_bytes: 64 << 20, uuid: [0x5a; 16], label: b"test", now: (1000, 0), fast_commit_blocks: None };
    mkfs::format(&mut dev, &opts).unwrap();
    let mut fs = mount(dev);
    assert_eq!(fs.fast_commit_stats().replayed, 0);
    assert!(fs.lookup(SV, root, b"foobar").is_err(), "a file of the previous filesystem appeared");
    assert_check_clean(&mut fs, "after mkfs over a device with records");
}
