// SPDX-License-Identifier: GPL-2.0
//! Subvolumes and snapshots: a snapshot keeps its contents while the source
//! changes (through remounts and the source's deletion), read-only
//! snapshots refuse changes, deletion gives the space back in bounded
//! steps, snapshot cost does not grow with the tree, back-references name
//! every link, and fsck stays clean throughout.

mod common;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::format::*;
use ferrofs_core::fs::{Filesystem, RENAME_EXCHANGE};
use ferrofs_core::subvol::{SubvolId, DROP_STEP_NODES};
use std::collections::BTreeMap;

const SV: SubvolId = SubvolId::DEFAULT;

/// Files with hard links, holes, xattrs, a symlink and a subdirectory.
fn populate(fs: &mut Filesystem<SimDev>, sv: SubvolId, rng: &mut Rng) -> Vec<u64> {
    let root = fs.root_ino();
    let d = fs.mkdir(sv, root, b"dir", 0o755, 1, 2, ts(1)).unwrap().ino;
    let mut files = Vec::new();
    for i in 0..12u64 {
        let parent = if i % 3 == 0 { d } else { root };
        let f = fs.create(sv, parent, format!("file{i}").as_bytes(), 0o644, 0, 0, 0, ts(2)).unwrap().ino;
        // A hole before each file's data.
        fs.write(sv, f, i * 5000 + 8192, &rng.bytes(3000 + 7000 * (i as usize % 4)), ts(2)).unwrap();
        fs.set_xattr(sv, f, b"user.tag", &rng.bytes(100 + 900 * (i as usize % 3)), 0, ts(2)).unwrap();
        files.push(f);
    }
    fs.link(sv, files[1], d, b"hardlink", ts(3)).unwrap();
    fs.symlink(sv, d, b"sym", b"../file1", 0, 0, ts(3)).unwrap();
    files
}

/// Changes every kind of thing `populate` made.
fn churn(fs: &mut Filesystem<SimDev>, sv: SubvolId, files: &[u64], rng: &mut Rng) {
    let root = fs.root_ino();
    let d = fs.lookup(sv, root, b"dir").unwrap();
    fs.write(sv, files[1], 0, &rng.bytes(20_000), ts(10)).unwrap();
    fs.truncate(sv, files[2], 100, ts(10)).unwrap();
    fs.set_xattr(sv, files[4], b"user.tag", b"changed", 0, ts(10)).unwrap();
    fs.unlink(sv, root, b"file5", ts(10)).unwrap();
    fs.evict(sv, files[5]).unwrap();
    fs.unlink(sv, d, b"hardlink", ts(10)).unwrap();
    fs.rename(sv, root, b"file7", d, b"moved", 0, ts(10)).unwrap();
    fs.punch_hole(sv, files[8], 8192, 4096, ts(10)).unwrap();
    for i in 0..40 {
        fs.create(sv, d, format!("new-{i}").as_bytes(), 0o600, 0, 0, 0, ts(11)).unwrap();
    }
}

/// `visible_in` without the nested subvolumes named `nested` (their own
/// tests look at them).
fn own(fs: &mut Filesystem<SimDev>, sv: SubvolId, nested: &[&str]) -> BTreeMap<String, String> {
    let mut m = visible_in(fs, sv);
    m.retain(|k, _| !nested.iter().any(|n| k.starts_with(&format!("/{n}/"))));
    m
}

fn free_blocks(fs: &mut Filesystem<SimDev>) -> u64 {
    fs.commit().unwrap();
    fs.statfs().free_blocks
}

fn drop_all(fs: &mut Filesystem<SimDev>) -> usize {
    let mut steps = 0;
    while fs.drop_step().unwrap() {
        steps += 1;
        assert!(steps < 100_000, "drop does not finish");
    }
    steps + 1
}

#[test]
fn snapshot_is_frozen_while_the_source_changes() {
    let mut rng = Rng(seed_or(11));
    let mut fs = mount(fresh(64 << 20));
    let files = populate(&mut fs, SV, &mut rng);
    let root = fs.root_ino();
    let before = visible_in(&mut fs, SV);
    let snap = fs.snapshot(SV, SV, root, b"snap", false, [1; 16], ts(5)).unwrap();
    let ro = fs.snapshot(SV, SV, root, b"ro-snap", true, [2; 16], ts(5)).unwrap();
    assert_ne!(snap, ro);
    // The snapshots show the source as it was. The second was taken after
    // the first was named in the source: it shows that name as an empty
    // directory, since nested subvolumes are not part of a snapshot.
    assert_eq!(visible_in(&mut fs, snap), before);
    let ro_before = visible_in(&mut fs, ro);
    let mut expect = before.clone();
    expect.insert("/snap/".into(), "ino 2 mode 40755 uid 0 gid 0 nlink 2 size 0 blocks 0 rdev 0".into());
    for (k, v) in &ro_before {
        if k != "/" {
            assert_eq!(Some(v), expect.get(k), "{k}");
        }
    }
    assert_eq!(ro_before.len(), expect.len());
    let before_snap = before.clone();
    let before = ro_before;
    assert_check_clean(&mut fs, "after snapshots");
    churn(&mut fs, SV, &files, &mut rng);
    let source_after = own(&mut fs, SV, &["snap", "ro-snap"]);
    assert_ne!(source_after, before);
    assert_eq!(visible_in(&mut fs, snap), before_snap, "snapshot changed with its source");
    assert_eq!(visible_in(&mut fs, ro), before);
    assert_check_clean(&mut fs, "after churn");
    // The writable snapshot changes independently of the source.
    churn(&mut fs, snap, &files, &mut rng);
    assert_eq!(own(&mut fs, SV, &["snap", "ro-snap"]), source_after);
    assert_eq!(visible_in(&mut fs, ro), before);
    let snap_after = visible_in(&mut fs, snap);
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(visible_in(&mut fs, ro), before, "after remount");
    assert_eq!(visible_in(&mut fs, snap), snap_after);
    assert_check_clean(&mut fs, "after remount");
    // The source's subtree that held the snapshots' names goes; the
    // snapshots live on, and deleting them frees everything they alone use.
    let gone = fs.delete_subvolume(SV, root, b"snap", ts(20)).unwrap();
    assert_eq!(gone, snap);
    assert_eq!(fs.getattr(snap, 256), Err(Error::NotFound));
    drop_all(&mut fs);
    assert_eq!(visible_in(&mut fs, ro), before);
    assert_check_clean(&mut fs, "after dropping a snapshot");
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(visible_in(&mut fs, ro), before);
    assert_check_clean(&mut fs, "remount after drop");
}

#[test]
fn snapshot_outlives_its_source() {
    let mut rng = Rng(seed_or(12));
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let src = fs.create_subvolume(SV, root, b"src", [3; 16], 0, 0, ts(1)).unwrap();
    let files = populate(&mut fs, src, &mut rng);
    let want = visible_in(&mut fs, src);
    let snap = fs.snapshot(src, SV, root, b"snap", true, [4; 16], ts(2)).unwrap();
    churn(&mut fs, src, &files, &mut rng);
    fs.delete_subvolume(SV, root, b"src", ts(3)).unwrap();
    drop_all(&mut fs);
    assert_check_clean(&mut fs, "source dropped");
    assert_eq!(visible_in(&mut fs, snap), want);
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(visible_in(&mut fs, snap), want);
    let info = fs.subvolume_info(snap).unwrap();
    assert_eq!(info.item.parent_uuid, [3; 16]);
    assert_eq!(info.item.uuid, [4; 16]);
    assert!(info.item.is_read_only());
    assert_eq!((info.parent, info.dir, info.name()), (FS_TREE_ID, root, &b"snap"[..]));
}

#[test]
fn read_only_subvolume_refuses_changes() {
    let mut rng = Rng(seed_or(13));
    let mut fs = mount(fresh(32 << 20));
    let files = populate(&mut fs, SV, &mut rng);
    let root = fs.root_ino();
    let ro = fs.snapshot(SV, SV, root, b"ro", true, [5; 16], ts(5)).unwrap();
    let before = visible_in(&mut fs, ro);
    let f = files[1];
    let refused: Vec<(&str, Result<(), Error>)> = vec![
        ("write", fs.write(ro, f, 0, b"x", ts(6)).map(drop)),
        ("create", fs.create(ro, root, b"new", 0o644, 0, 0, 0, ts(6)).map(drop)),
        ("mkdir", fs.mkdir(ro, root, b"newdir", 0o755, 0, 0, ts(6)).map(drop)),
        ("unlink", fs.unlink(ro, root, b"file1", ts(6))),
        ("rename", fs.rename(ro, root, b"file1", root, b"x", 0, ts(6))),
        ("truncate", fs.truncate(ro, f, 0, ts(6))),
        ("setxattr", fs.set_xattr(ro, f, b"user.tag", b"v", 0, ts(6))),
        ("removexattr", fs.remove_xattr(ro, f, b"user.tag", ts(6))),
        ("fallocate", fs.fallocate(ro, f, 0, 8192, false, ts(6))),
        ("link", fs.link(ro, f, root, b"l2", ts(6)).map(drop)),
        ("snapshot into it", fs.snapshot(SV, ro, root, b"s", false, [6; 16], ts(6)).map(drop)),
        ("subvolume in it", fs.create_subvolume(ro, root, b"s", [6; 16], 0, 0, ts(6)).map(drop)),
    ];
    for (what, r) in refused {
        assert_eq!(r, Err(Error::ReadOnly), "{what}");
    }
    assert!(fs.is_writable());
    assert_eq!(visible_in(&mut fs, ro), before);
    assert!(fs.subvolume_read_only(ro).unwrap());
    fs.set_subvolume_read_only(ro, false).unwrap();
    let mut fs = mount(fs.unmount().unwrap());
    assert!(!fs.subvolume_read_only(ro).unwrap(), "the flag change was committed");
    fs.write(ro, f, 0, b"now writable", ts(7)).unwrap();
    fs.set_subvolume_read_only(ro, true).unwrap();
    assert_eq!(fs.write(ro, f, 0, b"x", ts(8)), Err(Error::ReadOnly));
    assert_check_clean(&mut fs, "after flag changes");
}

#[test]
fn deletion_returns_the_space_in_bounded_steps() {
    let mut rng = Rng(seed_or(14));
    let mut fs = mount(fresh(96 << 20));
    let root = fs.root_ino();
    let empty = free_blocks(&mut fs);
    let sv = fs.create_subvolume(SV, root, b"big", [7; 16], 0, 0, ts(1)).unwrap();
    for i in 0..3000u64 {
        let f = fs.create(sv, 256, format!("file-with-a-long-name-{i:05}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        if i % 10 == 0 {
            fs.write(sv, f, 0, &rng.bytes(40_000), ts(1)).unwrap();
        }
    }
    let full = free_blocks(&mut fs);
    assert!(empty - full > 3000, "the subvolume uses {} blocks", empty - full);
    // A snapshot shares everything, then the source is deleted: nothing
    // comes back until the snapshot goes too.
    let snap = fs.snapshot(sv, SV, root, b"snap", true, [8; 16], ts(2)).unwrap();
    fs.delete_subvolume(SV, root, b"big", ts(3)).unwrap();
    drop_all(&mut fs);
    let after_source = free_blocks(&mut fs);
    assert!(full - after_source < 16, "deleting a fully shared source freed or used {} blocks", full as i64 - after_source as i64);
    assert_check_clean(&mut fs, "source of a snapshot dropped");
    fs.delete_subvolume(SV, root, b"snap", ts(4)).unwrap();
    assert_eq!(fs.getattr(snap, 256), Err(Error::NotFound));
    assert!(fs.pending_drop().unwrap().is_some());
    // Interrupted by a remount after a few steps: it goes on from there.
    for _ in 0..2 {
        assert!(fs.drop_step().unwrap());
    }
    let mut fs = mount(fs.unmount().unwrap());
    assert_check_clean(&mut fs, "half dropped");
    let steps = 2 + drop_all(&mut fs);
    assert!(steps >= 3, "{steps} steps for a tree of hundreds of nodes (at most {DROP_STEP_NODES} each)");
    let back = free_blocks(&mut fs);
    assert!(empty.abs_diff(back) < 16, "free blocks: empty {empty}, after deleting everything {back}");
    assert_eq!(fs.pending_drop().unwrap(), None);
    assert_check_clean(&mut fs, "all dropped");
    assert_eq!(fs.list_subvolumes().unwrap().len(), 1);
}

#[test]
fn snapshot_cost_does_not_grow_with_the_tree() {
    let mut written = Vec::new();
    for n in [1000u64, 10_000] {
        let mut fs = mount(fresh(128 << 20));
        let root = fs.root_ino();
        for i in 0..n {
            fs.create(SV, root, format!("f{i:06}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap();
        }
        fs.commit().unwrap();
        let before = fs.stats().meta_writes;
        fs.snapshot(SV, SV, root, b"snap", true, [9; 16], ts(2)).unwrap();
        fs.commit().unwrap();
        written.push(fs.stats().meta_writes - before);
        // The first change after the snapshot copies one path, not the tree.
        let before = fs.stats().meta_writes;
        fs.create(SV, root, b"after", 0o644, 0, 0, 0, ts(3)).unwrap();
        fs.commit().unwrap();
        let after = fs.stats().meta_writes - before;
        assert!(after < 24, "first change after a snapshot of {n} files wrote {after} blocks");
        assert_check_clean(&mut fs, "big snapshot");
    }
    // The snapshot's own items, its name in the parent directory (one
    // path, so the tree's depth) and the references a shared node's copy
    // takes on its children (its fan-out): bounded, whatever the size.
    println!("snapshot commit writes: {written:?} blocks for 1000 and 10000 files");
    assert!(written.iter().all(|&w| w < 48), "snapshot cost: {written:?}");
}

#[test]
fn back_references_name_every_link() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let d = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(1)).unwrap().ino;
    let f = fs.create(SV, root, b"a", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.link(SV, f, d, b"b", ts(1)).unwrap();
    fs.link(SV, f, d, b"c", ts(1)).unwrap();
    fs.rename(SV, d, b"c", root, b"e", 0, ts(2)).unwrap();
    let names = |fs: &mut Filesystem<SimDev>| {
        let mut v: Vec<(u64, Vec<u8>)> = fs.names_of(SV, f).unwrap().iter().map(|(d, n)| (*d, n.to_vec())).collect();
        v.sort();
        v
    };
    assert_eq!(names(&mut fs), vec![(root, b"a".to_vec()), (root, b"e".to_vec()), (d, b"b".to_vec())]);
    fs.unlink(SV, root, b"a", ts(3)).unwrap();
    let g = fs.create(SV, root, b"g", 0o644, 0, 0, 0, ts(3)).unwrap().ino;
    fs.rename(SV, root, b"g", d, b"b", RENAME_EXCHANGE, ts(3)).unwrap();
    assert_eq!(names(&mut fs), vec![(root, b"e".to_vec()), (root, b"g".to_vec())]);
    assert_eq!(fs.names_of(SV, g).unwrap().len(), 1);
    assert_check_clean(&mut fs, "back-references");
    // fsck notices a missing back-reference.
    let k = {
        let (s, t) = fs.raw_fs_tree();
        let mut c = ferrofs_core::btree::Cursor::new(Key::new(f, INODE_REF_KEY, 0), ferrofs_core::btree::Dir::Forward);
        let (k, _) = c.next(s, t).unwrap().unwrap();
        assert_eq!((k.objectid, k.ty), (f, INODE_REF_KEY));
        k
    };
    {
        let (s, t) = fs.raw_fs_tree();
        ferrofs_core::btree::delete(s, t, &k).unwrap();
    }
    let r = fs.check(false).unwrap();
    assert!(
        r.problems.iter().any(|p| p.what == "directory entry has no back-reference"),
        "{:?}",
        r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
    );
    let want = names(&mut fs);
    assert_eq!(want.len(), 1, "one name left after removing a back-reference");
    // fsck -y writes it again from the entry.
    let r = fs.check(true).unwrap();
    assert!(r.repaired >= 1);
    assert_check_clean(&mut fs, "back-reference repaired");
    assert_eq!(names(&mut fs), vec![(root, b"e".to_vec()), (root, b"g".to_vec())]);
    // A back-reference with no entry goes.
    let v = NameRef { dir: d, seq: 999, name: b"ghost" }.encode().unwrap();
    {
        let (s, t) = fs.raw_fs_tree();
        ferrofs_core::btree::insert(s, t, &Key::new(f, INODE_REF_KEY, NameRef::hash(d, b"ghost")), &v).unwrap();
    }
    let r = fs.check(false).unwrap();
    assert!(r.problems.iter().any(|p| p.what == "back-reference has no directory entry"));
    fs.check(true).unwrap();
    assert_check_clean(&mut fs, "stray back-reference removed");
}

#[test]
fn fsck_repairs_the_deletion_list() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let a = fs.create_subvolume(SV, root, b"a", [1; 16], 0, 0, ts(1)).unwrap();
    fs.create(a, 256, b"f", 0o644, 0, 0, 0, ts(1)).unwrap();
    fs.delete_subvolume(SV, root, b"a", ts(2)).unwrap();
    fs.commit().unwrap();
    // Lose the deletion list entry: the dead tree would never be dropped.
    let key = Key::new(DEAD_ROOTS_OBJECTID, ORPHAN_KEY, a.0);
    {
        let s = fs.store();
        let mut rt = s.root_tree;
        ferrofs_core::btree::delete(s, &mut rt, &key).unwrap();
        s.root_tree = rt;
    }
    let r = fs.check(false).unwrap();
    assert!(r.problems.iter().any(|p| p.what == "deleted flag and deletion list disagree"));
    fs.check(true).unwrap();
    assert_check_clean(&mut fs, "deletion list repaired");
    drop_all(&mut fs);
    assert_check_clean(&mut fs, "dropped after the repair");
    assert_eq!(fs.list_subvolumes().unwrap().len(), 1);
}

#[test]
fn subvolume_names_and_errors() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let a = fs.create_subvolume(SV, root, b"a", [1; 16], 0, 0, ts(1)).unwrap();
    assert_eq!(fs.create_subvolume(SV, root, b"a", [1; 16], 0, 0, ts(1)), Err(Error::Exists));
    assert_eq!(fs.create_subvolume(SV, root, b"", [1; 16], 0, 0, ts(1)), Err(Error::Invalid("invalid file name")));
    assert_eq!(fs.create_subvolume(SV, root, &[b'x'; 256], [1; 16], 0, 0, ts(1)), Err(Error::NameTooLong));
    assert_eq!(fs.snapshot(SubvolId(999), SV, root, b"s", false, [1; 16], ts(1)), Err(Error::NotFound));
    assert_eq!(fs.delete_subvolume(SV, root, b"missing", ts(1)), Err(Error::NotFound));
    fs.mkdir(SV, root, b"plain", 0o755, 0, 0, ts(1)).unwrap();
    assert_eq!(fs.delete_subvolume(SV, root, b"plain", ts(1)), Err(Error::Invalid("not a subvolume")));
    assert_eq!(fs.lookup_at(SV, root, b"a").unwrap(), (a, 256));
    // A nested subvolume keeps its parent from being deleted.
    let b = fs.create_subvolume(a, 256, b"b", [2; 16], 0, 0, ts(1)).unwrap();
    assert_eq!(fs.delete_subvolume(SV, root, b"a", ts(2)), Err(Error::NotEmpty));
    // rmdir deletes an empty subvolume, not a full one.
    fs.create(b, 256, b"f", 0o644, 0, 0, 0, ts(2)).unwrap();
    assert_eq!(fs.rmdir(a, 256, b"b", ts(2)), Err(Error::NotEmpty));
    fs.unlink(b, 256, b"f", ts(2)).unwrap();
    fs.rmdir(a, 256, b"b", ts(2)).unwrap();
    assert_eq!(fs.unlink(SV, root, b"a", ts(2)), Err(Error::IsDir));
    // A subvolume name moves within its parent, but nothing replaces it.
    fs.rename(SV, root, b"a", root, b"a2", 0, ts(3)).unwrap();
    fs.mkdir(SV, root, b"empty", 0o755, 0, 0, ts(3)).unwrap();
    assert_eq!(fs.rename(SV, root, b"empty", root, b"a2", 0, ts(3)), Err(Error::CrossDevice));
    assert_eq!(fs.subvolume_info(a).unwrap().name(), b"a2");
    // A snapshot of the parent shows the nested subvolume as an empty directory.
    let s = fs.snapshot(SV, SV, root, b"snap", false, [3; 16], ts(4)).unwrap();
    let (esv, eino) = fs.lookup_at(s, root, b"a2").unwrap();
    assert_eq!((esv, eino), (s, EMPTY_SUBVOL_DIR_INO));
    assert_eq!(fs.getattr(s, eino).unwrap().file_type(), FileType::Dir);
    assert_eq!(fs.delete_subvolume(s, root, b"a2", ts(5)), Err(Error::Invalid("not a subvolume")));
    fs.rmdir(s, root, b"a2", ts(5)).unwrap();
    assert_check_clean(&mut fs, "names and errors");
    let ids: Vec<u64> = fs.list_subvolumes().unwrap().iter().map(|i| i.id.0).collect();
    assert_eq!(ids, vec![5, a.0, s.0]);
    let mut fs = mount(fs.unmount().unwrap());
    assert_check_clean(&mut fs, "remounted");
    let names: BTreeMap<u64, Vec<u8>> = fs.list_subvolumes().unwrap().iter().map(|i| (i.id.0, i.name().to_vec())).collect();
    assert_eq!(names[&a.0], b"a2");
    assert_eq!(names[&s.0], b"snap");
}

#[test]
fn extents_say_when_they_are_shared() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let sv = fs.create_subvolume(SV, root, b"sv", [1; 16], 0, 0, ts(1)).unwrap();
    let f = fs.create(sv, 256, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(sv, f, 0, &[1u8; 64 << 10], ts(1)).unwrap();
    let shared = |fs: &mut Filesystem<SimDev>, id: SubvolId| {
        let mut v = Vec::new();
        fs.extents(id, f, 0, &mut |_, _, _, s| {
            v.push(s.shared);
            true
        })
        .unwrap();
        v
    };
    assert!(shared(&mut fs, sv).iter().all(|s| !s), "nothing shared before a snapshot");
    let snap = fs.snapshot(sv, SV, root, b"snap", true, [2; 16], ts(2)).unwrap();
    assert!(shared(&mut fs, sv).iter().all(|&s| s));
    assert!(shared(&mut fs, snap).iter().all(|&s| s));
    // The source rewrites the file: new blocks, its own leaf; the snapshot
    // keeps the old ones, now its alone.
    fs.write(sv, f, 0, &[2u8; 64 << 10], ts(3)).unwrap();
    fs.commit().unwrap();
    assert!(shared(&mut fs, sv).iter().all(|s| !s), "{:?}", shared(&mut fs, sv));
    assert!(shared(&mut fs, snap).iter().all(|s| !s), "{:?}", shared(&mut fs, snap));
    let mut buf = vec![0u8; 64 << 10];
    fs.read(snap, f, 0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 1));
}

#[test]
fn orphans_of_every_subvolume_are_reclaimed_at_mount() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let sv = fs.create_subvolume(SV, root, b"sv", [1; 16], 0, 0, ts(1)).unwrap();
    let f = fs.create(sv, 256, b"open", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(sv, f, 0, &[7u8; 400 << 10], ts(1)).unwrap();
    // Unlinked while open, then a snapshot holds it too: both copies are
    // orphans, the read-only snapshot's frozen with it.
    fs.unlink(sv, 256, b"open", ts(2)).unwrap();
    let ro = fs.snapshot(sv, SV, root, b"ro", true, [2; 16], ts(2)).unwrap();
    fs.commit().unwrap();
    let with_orphan = fs.statfs().free_blocks;
    // evict in a read-only subvolume frees nothing and is no error.
    assert_eq!(fs.evict(ro, f), Ok(()));
    assert!(fs.getattr(ro, f).is_ok());
    // The "crash": remount without the eviction in the writable subvolume.
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(fs.getattr(sv, f), Err(Error::NotFound), "the writable subvolume's orphan is freed at mount");
    assert!(fs.getattr(ro, f).is_ok(), "the read-only snapshot keeps its copy");
    assert_check_clean(&mut fs, "orphans reclaimed");
    // Deleting the snapshot gives the data back.
    fs.delete_subvolume(SV, root, b"ro", ts(3)).unwrap();
    drop_all(&mut fs);
    assert!(free_blocks(&mut fs) >= with_orphan + 100);
    assert_eq!(fs.evict(ro, f), Ok(()), "evict in a deleted subvolume");
}

/// statfs counts the inodes of every live subvolume, also of those not
/// opened since mount, and stops counting a deleted one.
#[test]
fn statfs_counts_inodes_of_every_subvolume() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let used = |fs: &Filesystem<SimDev>| fs.statfs().files - fs.statfs().free_files;
    let base = used(&fs);
    let a = fs.create_subvolume(SV, root, b"a", [1; 16], 0, 0, ts(1)).unwrap();
    let b = fs.create_subvolume(SV, root, b"b", [2; 16], 0, 0, ts(1)).unwrap();
    for (sv, n) in [(a, 5), (b, 3)] {
        for i in 0..n {
            fs.create(sv, ROOT_DIR_INO, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(2)).unwrap();
        }
    }
    // Two root directories and eight files.
    assert_eq!(used(&fs), base + 10);
    let _snap = fs.snapshot(a, SV, root, b"snap-a", true, [3; 16], ts(3)).unwrap();
    assert_eq!(used(&fs), base + 16, "a snapshot's inodes count too");
    // After a remount only the default subvolume is open.
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(used(&fs), base + 16);
    fs.create(b, ROOT_DIR_INO, b"more", 0o644, 0, 0, 0, ts(4)).unwrap();
    assert_eq!(used(&fs), base + 17, "an opened subvolume is counted once");
    fs.delete_subvolume(SV, root, b"a", ts(5)).unwrap();
    assert_eq!(used(&fs), base + 11);
    let fs = mount(fs.unmount().unwrap());
    assert_eq!(used(&fs), base + 11);
}

/// A drop step whose commit the caller runs (the kernel's, with its lock
/// downgraded for the I/O): nothing reaches the device until that commit,
/// after which the step's frees hold across a crash.
#[test]
fn a_drop_step_left_to_the_caller_to_commit_is_durable_once_committed() {
    let mut rng = Rng(seed_or(21));
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let sv = fs.create_subvolume(SV, root, b"big", [7; 16], 0, 0, ts(1)).unwrap();
    for i in 0..2000u64 {
        let f = fs.create(sv, 256, format!("file-with-a-long-name-{i:05}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        if i % 10 == 0 {
            fs.write(sv, f, 0, &rng.bytes(40_000), ts(1)).unwrap();
        }
    }
    fs.delete_subvolume(SV, root, b"big", ts(3)).unwrap();
    fs.commit().unwrap();
    let deleted = free_blocks(&mut fs);
    let (commits, writes) = (fs.stats().commits, fs.device().writes);
    assert_eq!(fs.drop_step_uncommitted(DROP_STEP_NODES).unwrap(), Some(true), "more than one step to drop");
    assert_eq!((fs.stats().commits, fs.device().writes), (commits, writes), "no commit yet");
    let mut crashed = mount(fs.device().crash_drop_all());
    assert_eq!(free_blocks(&mut crashed), deleted, "a crash before the commit keeps the whole tree");
    fs.commit().unwrap();
    let mut crashed = mount(fs.device().crash_drop_all());
    let stepped = free_blocks(&mut crashed);
    assert!(stepped > deleted, "the committed step freed blocks: {deleted} -> {stepped}");
    assert_check_clean(&mut crashed, "one committed drop step");
    // Once all is dropped, a step finds nothing, changes nothing and
    // leaves nothing to commit.
    while fs.drop_step().unwrap() {}
    let (commits, writes) = (fs.stats().commits, fs.device().writes);
    assert_eq!(fs.drop_step_uncommitted(DROP_STEP_NODES).unwrap(), None);
    assert!(fs.commit_seal().unwrap().is_none(), "nothing to commit after an empty step");
    assert_eq!((fs.stats().commits, fs.device().writes), (commits, writes));
}
