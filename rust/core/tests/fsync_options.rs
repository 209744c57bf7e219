// SPDX-License-Identifier: GPL-2.0
//! The fsync switches of `MountOptions`: `fast_commit` off makes every
//! fsync with something to write a full commit counted as `Disabled`;
//! `no_replay` (the kernel's `norecovery`) mounts read-only at the last
//! full commit, writes nothing and leaves the records for the next mount;
//! `clock` times replay. Also the statistics text a mount reports.

mod common;
use common::*;
use ferrofs_core::fast_commit::{FsyncTier, Ineligible};
use ferrofs_core::fs::{Filesystem, MountOptions, SetAttr};
use ferrofs_core::fsync_stats::FsyncReport;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;

/// A mounted filesystem with a committed file `f` of 10 bytes.
fn with_file() -> (Filesystem<SimDev>, u64) {
    let mut fs = mount(fresh(32 << 20));
    let f = fs.create(SV, fs.root_ino(), b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, b"committed!", ts(1)).unwrap();
    fs.commit().unwrap();
    (fs, f)
}

#[test]
fn fast_commit_off_makes_full_commits_counted_as_disabled() {
    let (mut fs, f) = with_file();
    fs.set_fast_commit(false);
    assert!(!fs.mount_options().fast_commit);
    let commits = fs.stats().commits;
    for k in 0..3u64 {
        fs.write(SV, f, 10 + k, b"x", ts(2)).unwrap();
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FullCommit(Ineligible::Disabled));
    }
    // Nothing to write is still clean, whatever the switch.
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::Clean);
    let st = fs.fast_commit_stats();
    assert_eq!(st.full_commits[Ineligible::Disabled.index()], 3);
    assert_eq!((st.fast_commits, st.clean, st.record_bytes), (0, 1, 0));
    assert_eq!(fs.stats().commits - commits, 3);
    // Back on: the next append is a record again.
    fs.set_fast_commit(true);
    fs.write(SV, f, 20, b"y", ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    assert_eq!(fs.fast_commit_stats().fast_commits, 1);
}

#[test]
fn handing_the_same_times_over_again_keeps_an_fsync_clean() {
    let (mut fs, f) = with_file();
    let a = fs.getattr(SV, f).unwrap();
    // What the kernel does at every fsync: its times, unchanged here.
    let same = SetAttr { atime: Some(a.atime), mtime: Some(a.mtime), ctime: Some(a.ctime), ..SetAttr::default() };
    let writes = fs.device().writes;
    fs.setattr(SV, f, &same, ts(9)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::Clean);
    assert_eq!(fs.device().writes, writes, "nothing written");
    // A time that differs is a change, made durable by a record.
    fs.setattr(SV, f, &SetAttr { mtime: Some(ts(7)), ..same }, ts(9)).unwrap();
    assert_eq!(fs.getattr(SV, f).unwrap().mtime, ts(7));
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
}

#[test]
fn fast_commit_off_at_mount() {
    let (fs, f) = with_file();
    let d = fs.unmount().unwrap();
    let mut fs = Filesystem::mount_with(d, MountOptions { fast_commit: false, ..MountOptions::default() }).unwrap();
    fs.write(SV, f, 0, b"z", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FullCommit(Ineligible::Disabled));
}

/// A crash image with one fsynced-but-uncommitted append of `f` in the
/// fast-commit area, and `f`'s contents before and after it.
fn crash_with_a_record() -> (SimDev, u64, Vec<u8>, Vec<u8>) {
    let (mut fs, f) = with_file();
    let before = contents(&mut fs, f);
    fs.write(SV, f, 10, b" and logged", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    let after = contents(&mut fs, f);
    assert_ne!(before, after);
    (fs.device().crash_drop_all(), f, before, after)
}

fn contents(fs: &mut Filesystem<SimDev>, f: u64) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = fs.read(SV, f, 0, &mut b).unwrap();
    b.truncate(n);
    b
}

#[test]
fn no_replay_shows_the_last_commit_and_leaves_the_records() {
    let (image, f, before, after) = crash_with_a_record();
    let opts = MountOptions { read_only: true, no_replay: true, ..MountOptions::default() };
    let mut ro = Filesystem::mount_with(image.clone(), opts).unwrap();
    assert_eq!(contents(&mut ro, f), before, "the record is not applied");
    assert_eq!(ro.fast_commit_stats().replayed, 0);
    assert!(matches!(ro.set_read_only(false), Err(ferrofs_core::error::Error::Invalid(_))), "never read-write");
    assert_eq!(contents(&mut ro, f), before);
    let d = ro.unmount().unwrap();
    assert_eq!(d.writes, image.writes, "nothing written");
    // Plain read-only replays in memory; read-write replays for good.
    let mut ro = Filesystem::mount_with(d, MountOptions { read_only: true, ..MountOptions::default() }).unwrap();
    assert_eq!(contents(&mut ro, f), after);
    let d = ro.unmount().unwrap();
    let mut fs = mount(d);
    assert_eq!(fs.fast_commit_stats().replayed, 1);
    assert_eq!(contents(&mut fs, f), after);
    assert_check_clean(&mut fs, "replayed after a norecovery mount");
}

#[test]
fn no_replay_needs_read_only() {
    let (image, ..) = crash_with_a_record();
    let opts = MountOptions { no_replay: true, ..MountOptions::default() };
    assert!(matches!(Filesystem::mount_with(image, opts), Err(ferrofs_core::error::Error::Invalid(_))));
}

static TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

/// A clock that moves 250 ns at each reading.
fn ticking() -> u64 {
    TICKS.fetch_add(250, std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn replay_is_timed_by_the_given_clock() {
    let (image, ..) = crash_with_a_record();
    let fs = Filesystem::mount_with(image.clone(), MountOptions { clock: Some(ticking), ..MountOptions::default() }).unwrap();
    assert_eq!(fs.fast_commit_stats().replayed, 1);
    assert_eq!(fs.fast_commit_stats().replay_ns, 250, "two readings of the clock");
    // No records, no replay time; no clock, no time.
    let d = fs.unmount().unwrap();
    let fs = Filesystem::mount_with(d, MountOptions { clock: Some(ticking), ..MountOptions::default() }).unwrap();
    assert_eq!(fs.fast_commit_stats().replay_ns, 0);
    assert_eq!(mount(image).fast_commit_stats().replay_ns, 0);
}

#[test]
fn the_report_carries_a_mounts_counters_through_its_text() {
    let (mut fs, f) = with_file();
    fs.write(SV, f, 10, b"a", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    fs.set_fast_commit(false);
    fs.write(SV, f, 11, b"b", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FullCommit(Ineligible::Disabled));
    let opts = *fs.mount_options();
    let r = FsyncReport::new(fs.fast_commit_stats(), &fs.stats(), opts.fast_commit, opts.no_replay, 5);
    let mut text = String::new();
    r.format(&mut text).unwrap();
    // One record of one run: 500 bytes, padded to 8.
    for line in ["fsync_fast_commit 1", "fsync_full_commit 1", "full_commit_disabled 1", "fast_commit_bytes 504", "option_fast_commit off"]
    {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let flushes = format!("flushes {}", fs.stats().flushes);
    assert!(text.lines().any(|l| l == flushes), "{flushes} in\n{text}");
    assert_eq!(FsyncReport::parse(&text).unwrap(), r);
}

/// `fsync_staged` decides the tier under the caller's hold of the core
/// but leaves a full commit to the caller (the kernel runs it with its
/// lock downgraded): nothing is written until then, and what the commit
/// writes holds the fsynced data after a crash.
#[test]
fn a_staged_full_commit_fsync_writes_nothing_until_the_caller_commits() {
    let (mut fs, f) = with_file();
    fs.set_fast_commit(false);
    fs.write(SV, f, 10, b" and more", ts(2)).unwrap();
    let (commits, writes) = (fs.stats().commits, fs.device().writes);
    let staged = fs.fsync_staged(SV, f).unwrap();
    assert_eq!((staged.tier, staged.ticket), (FsyncTier::FullCommit(Ineligible::Disabled), None));
    assert_eq!((fs.stats().commits, fs.device().writes), (commits, writes), "no commit yet");
    assert_eq!(fs.fast_commit_stats().full_commits[Ineligible::Disabled.index()], 1);
    // A crash now loses the append: the fsync has not returned.
    let mut before = mount(fs.device().crash_drop_all());
    assert_eq!(read_all(&mut before, f), b"committed!");
    fs.commit().unwrap();
    let mut after = mount(fs.device().crash_drop_all());
    assert_eq!(read_all(&mut after, f), b"committed! and more");
}
