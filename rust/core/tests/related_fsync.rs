// SPDX-License-Identifier: GPL-2.0
//! fsync of one inode after related name changes of others, in the shapes
//! of fstests' log tests: a record of the fsynced inode alone would come
//! back after a crash beside a tree no moment before the crash had (a
//! moved file back at its old place, a new link of another file lost, a
//! renamed file's new neighbour missing). Each is fsynced, the power cut
//! with every unflushed write dropped, and the replayed tree compared with
//! the one the test expects; fsck is clean.

mod common;
use common::*;
use ferrofs_core::fast_commit::{FsyncTier, Ineligible};
use ferrofs_core::fs::Filesystem;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;
type Fs = Filesystem<SimDev>;

fn file(fs: &mut Fs, dir: u64, name: &[u8]) -> u64 {
    let ino = fs.create(SV, dir, name, 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, ino, 0, name, ts(1)).unwrap();
    ino
}

fn dir(fs: &mut Fs, parent: u64, name: &[u8]) -> u64 {
    fs.mkdir(SV, parent, name, 0o755, 0, 0, ts(1)).unwrap().ino
}

/// The tree after a crash that lost every unflushed write, checked clean.
fn after_crash(fs: &mut Fs, what: &str) -> Vec<String> {
    let mut fs = mount(fs.device().crash_drop_all());
    assert_check_clean(&mut fs, what);
    visible(&mut fs).into_keys().collect()
}

/// fsyncs `ino` short of its flush and cuts the power at every point of
/// the unflushed writes (each prefix, and random subsets in random order;
/// the directories logged along go first): each crash mounts with a clean
/// check, and a second mount shows the same tree. Returns the tier and
/// the tree once every write is kept (what the flush makes durable).
fn fsync_crashing_everywhere(fs: &mut Fs, ino: u64, what: &str) -> (FsyncTier, Vec<String>) {
    let tier = fs.fsync_unflushed(SV, ino).unwrap().tier;
    fs.write_staged_records().unwrap();
    let dev = fs.device().clone();
    let n = dev.pending.len();
    let mut rng = Rng(n as u64 + 1);
    let mut images: Vec<SimDev> = (0..=n).map(|k| dev.crash_image(&(0..k).collect::<Vec<_>>())).collect();
    images.extend((0..16).map(|_| dev.crash_random(&mut rng)));
    for (i, image) in images.into_iter().enumerate() {
        let what = format!("{what}, crash {i} ({n} unflushed writes)");
        let mut m = mount(image);
        assert_check_clean(&mut m, &what);
        let t = visible(&mut m);
        let mut again = mount(m.device().crash_drop_all());
        assert_eq!(visible(&mut again), t, "{what}: a second mount differs");
    }
    let mut m = mount(dev.crash_keep_all());
    assert_check_clean(&mut m, what);
    (tier, visible(&mut m).into_keys().collect())
}

fn has(paths: &[String], path: &str) -> bool {
    paths.iter().any(|p| p == path)
}

/// Links added to two files, one fsynced: the other's new link survives
/// too (generic/104).
#[test]
fn links_of_two_files_one_fsynced() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let foo = file(&mut fs, root, b"foo");
    let bar = file(&mut fs, root, b"bar");
    fs.commit().unwrap();
    fs.link(SV, foo, root, b"foo_link", ts(2)).unwrap();
    fs.link(SV, bar, root, b"bar_link", ts(2)).unwrap();
    let (tier, t) = fsync_crashing_everywhere(&mut fs, foo, "links of two files");
    assert_eq!(tier, FsyncTier::TreeLog);
    assert!(has(&t, "/foo_link/") && has(&t, "/bar_link/"), "{t:?}");
}

/// A file moved between directories, then a new file in the old parent's
/// parent, which is fsynced: the move survives with it (generic/335).
#[test]
fn move_then_parent_of_old_directory_fsynced() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let a = dir(&mut fs, root, b"a");
    let b = dir(&mut fs, a, b"b");
    let c = dir(&mut fs, root, b"c");
    file(&mut fs, b, b"foo");
    fs.commit().unwrap();
    fs.rename(SV, b, b"foo", c, b"foo", 0, ts(2)).unwrap();
    file(&mut fs, a, b"bar");
    let (tier, t) = fsync_crashing_everywhere(&mut fs, a, "move then fsync of the old parent's parent");
    assert_eq!(tier, FsyncTier::FullCommit(Ineligible::Related));
    assert!(has(&t, "/c/foo/") && !has(&t, "/a/b/foo/") && has(&t, "/a/bar/"), "{t:?}");
}

/// A link removed in B and another file moved from B to C, the first file
/// fsynced: the moved file is not back in B (generic/336).
#[test]
fn unlink_and_move_out_of_one_directory() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let a = dir(&mut fs, root, b"A");
    let b = dir(&mut fs, root, b"B");
    let c = dir(&mut fs, root, b"C");
    let foo = file(&mut fs, a, b"foo");
    fs.link(SV, foo, b, b"foo_link", ts(1)).unwrap();
    file(&mut fs, b, b"bar");
    fs.commit().unwrap();
    fs.unlink(SV, b, b"foo_link", ts(2)).unwrap();
    fs.rename(SV, b, b"bar", c, b"bar", 0, ts(2)).unwrap();
    let (tier, t) = fsync_crashing_everywhere(&mut fs, foo, "unlink and move out of one directory");
    assert_eq!(tier, FsyncTier::TreeLog);
    assert!(has(&t, "/C/bar/") && !has(&t, "/B/bar/") && !has(&t, "/B/foo_link/"), "{t:?}");
}

/// A hard link into A beside a file moved into A, the linked file fsynced:
/// the moved file is in A (generic/343).
#[test]
fn link_beside_a_move_into_the_same_directory() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let a = dir(&mut fs, root, b"A");
    let foo = file(&mut fs, root, b"foo");
    file(&mut fs, root, b"bar");
    fs.commit().unwrap();
    fs.link(SV, foo, a, b"foo_link", ts(2)).unwrap();
    fs.rename(SV, root, b"bar", a, b"bar", 0, ts(2)).unwrap();
    let (tier, t) = fsync_crashing_everywhere(&mut fs, foo, "link beside a move");
    assert_eq!(tier, FsyncTier::TreeLog);
    assert!(has(&t, "/A/bar/") && !has(&t, "/bar/") && has(&t, "/A/foo_link/"), "{t:?}");
}

/// rename foo to bar, a new foo, bar fsynced: the new foo survives with
/// the rename (generic/376).
#[test]
fn renamed_file_fsynced_after_its_old_name_was_reused() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let foo = file(&mut fs, root, b"foo");
    fs.commit().unwrap();
    fs.rename(SV, root, b"foo", root, b"bar", 0, ts(2)).unwrap();
    let new_foo = file(&mut fs, root, b"foo");
    let (tier, _) = fsync_crashing_everywhere(&mut fs, foo, "old name reused");
    assert_eq!(tier, FsyncTier::TreeLog);
    let mut fs = mount(fs.device().crash_keep_all());
    assert_check_clean(&mut fs, "old name reused");
    assert_eq!((fs.lookup(SV, root, b"bar").unwrap(), fs.lookup(SV, root, b"foo").unwrap()), (foo, new_foo));
}

/// A file moved from B to A, then A renamed over the emptied B, the file
/// fsynced: it is found under its new path (generic/510).
#[test]
fn file_fsynced_after_its_directory_was_renamed_over_another() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    dir(&mut fs, root, b"A");
    let b = dir(&mut fs, root, b"B");
    let f = file(&mut fs, b, b"f");
    fs.commit().unwrap();
    let a = fs.lookup(SV, root, b"A").unwrap();
    fs.rename(SV, b, b"f", a, b"f", 0, ts(2)).unwrap();
    fs.rename(SV, root, b"A", root, b"B", 0, ts(2)).unwrap();
    let (tier, t) = fsync_crashing_everywhere(&mut fs, f, "directory renamed over another");
    assert_eq!(tier, FsyncTier::FullCommit(Ineligible::Related));
    assert!(has(&t, "/B/f/") && !has(&t, "/A/"), "{t:?}");
}

/// A removed xattr and a link of one file, then a new file fsynced: both
/// changes of the other file survive with it (generic/066).
#[test]
fn new_file_fsynced_after_another_files_link_and_xattr_removal() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let foo = file(&mut fs, root, b"foo");
    fs.set_xattr(SV, foo, b"user.a", b"1", 0, ts(1)).unwrap();
    fs.commit().unwrap();
    fs.remove_xattr(SV, foo, b"user.a", ts(2)).unwrap();
    fs.link(SV, foo, root, b"foo_link", ts(2)).unwrap();
    let bar = file(&mut fs, root, b"bar");
    let (tier, _) = fsync_crashing_everywhere(&mut fs, bar, "xattr removal and link");
    assert_eq!(tier, FsyncTier::TreeLog);
    let mut fs = mount(fs.device().crash_keep_all());
    assert_check_clean(&mut fs, "xattr removal and link");
    assert_eq!(fs.lookup(SV, root, b"foo_link").unwrap(), foo);
    assert!(fs.get_xattr(SV, foo, b"user.a", &mut [0u8; 8]).is_err(), "the removed xattr is back");
}

/// What the rule leaves cheap: files each fsynced after they were made
/// (their records settle their changes), a rename over a file, a file
/// moved in and its new directory fsynced, and an unrelated directory.
#[test]
fn settled_and_unrelated_changes_keep_the_cheap_tiers() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let d = dir(&mut fs, root, b"d");
    let other = dir(&mut fs, root, b"other");
    let old = file(&mut fs, d, b"target");
    let moved = file(&mut fs, root, b"moved");
    fs.commit().unwrap();
    for n in 0..20u8 {
        let f = file(&mut fs, d, &[b'f', b'0' + n / 10, b'0' + n % 10]);
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit, "file {n}");
    }
    // Changes in another directory do not concern a file here.
    file(&mut fs, other, b"elsewhere");
    let tmp = file(&mut fs, d, b"tmp");
    assert_eq!(fs.fsync(SV, tmp).unwrap(), FsyncTier::FastCommit);
    // Atomic replace: the victim's removal is the record's own.
    fs.rename(SV, d, b"tmp", d, b"target", 0, ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, tmp).unwrap(), FsyncTier::TreeLog);
    fs.evict(SV, old).unwrap();
    // A file moved into `d`: its record holds both of its entries.
    fs.rename(SV, root, b"moved", d, b"moved", 0, ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, d).unwrap(), FsyncTier::TreeLog);
    let t = after_crash(&mut fs, "settled changes");
    assert!(has(&t, "/d/f19/") && has(&t, "/d/target/") && !has(&t, "/d/tmp/") && has(&t, "/d/moved/") && !has(&t, "/moved/"), "{t:?}");
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(fs.lookup(SV, d, b"target").unwrap(), tmp);
    assert_eq!(fs.lookup(SV, d, b"moved").unwrap(), moved);
}
