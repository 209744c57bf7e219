// SPDX-License-Identifier: GPL-2.0
//! The I/O a commit issues: adjacent dirty nodes go out as one device
//! write (in block order), so a commit of many nodes costs a few large
//! writes, and what it wrote reads back intact after a remount.

mod common;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::mem::TryVec;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;

#[test]
fn a_commit_writes_adjacent_nodes_as_one_write() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    for i in 0..3000 {
        fs.create(SV, root, format!("file-{i:05}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap();
    }
    let before = (fs.stats(), fs.device().writes);
    fs.commit().unwrap();
    let after = (fs.stats(), fs.device().writes);
    let nodes = after.0.meta_writes - before.0.meta_writes;
    let node_writes = after.0.commit_writes - before.0.commit_writes;
    // The two superblock copies are the only other writes.
    assert_eq!(after.1 - before.1, node_writes + 2, "device writes of the commit");
    assert!(nodes >= 40, "the workload should dirty many nodes: {nodes}");
    // A fresh filesystem hands out new nodes next to each other: at most
    // one write per 64 nodes plus a few breaks between runs.
    eprintln!("commit: {nodes} nodes in {node_writes} device writes");
    assert!(node_writes * 8 <= nodes, "{node_writes} device writes for {nodes} nodes");

    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    assert_check_clean(&mut fs, "after a commit of merged runs");
    let names = visible(&mut fs);
    assert_eq!(names.keys().filter(|k| k.contains("file-")).count(), 3000);
}

#[test]
fn a_commit_of_one_changed_leaf_writes_few_blocks() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    for i in 0..500 {
        fs.create(SV, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap();
    }
    fs.commit().unwrap();
    fs.create(SV, root, b"one-more", 0o644, 0, 0, 0, ts(2)).unwrap();
    let before = fs.stats();
    fs.commit().unwrap();
    let after = fs.stats();
    let nodes = after.meta_writes - before.meta_writes;
    let node_writes = after.commit_writes - before.commit_writes;
    // Every node is written exactly once, never more writes than nodes.
    assert!(node_writes >= 1 && node_writes <= nodes, "{node_writes} writes for {nodes} nodes");
}

#[test]
fn nodes_stay_together_when_data_is_written_between_them() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let data = vec![0x6bu8; 3 * 4096];
    for i in 0..400 {
        let f = fs.create(SV, root, format!("small-{i:04}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        assert_eq!(fs.write(SV, f, 0, &data, ts(1)).unwrap(), data.len());
    }
    let before = fs.stats();
    fs.commit().unwrap();
    let after = fs.stats();
    let nodes = after.meta_writes - before.meta_writes;
    let node_writes = after.commit_writes - before.commit_writes;
    eprintln!("commit after data: {nodes} nodes in {node_writes} device writes");
    // Data blocks allocated between the nodes do not split them into
    // single-node writes.
    assert!(node_writes * 8 <= nodes, "{node_writes} device writes for {nodes} nodes");
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    assert_check_clean(&mut fs, "after interleaved data and nodes");
}

/// A directory of `n` files, the first half committed, the rest not.
fn half_committed(n: usize) -> (Filesystem<SimDev>, u64) {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(1)).unwrap().ino;
    for i in 0..n {
        fs.create(SV, dir, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap();
        if i == n / 2 {
            fs.commit().unwrap();
        }
    }
    (fs, dir)
}

#[test]
fn a_commit_writes_through_another_handle_while_threads_read_the_trees() {
    let (mut fs, dir) = half_committed(600);
    let mut side = fs.device().clone();
    let own_writes = fs.device().writes;
    let commits = fs.stats().commits;
    let sealed = fs.commit_seal().unwrap().expect("uncommitted changes to seal");
    // Readers on `&fs` beside the writes, which only read the store too.
    let written = std::thread::scope(|scope| {
        let fs = &fs;
        let readers: Vec<_> = (0..3)
            .map(|t| {
                scope.spawn(move || {
                    for round in 0..5 {
                        for i in (t..600).step_by(3) {
                            let name = format!("f{i}");
                            let got = fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, name.as_bytes());
                            assert!(got.is_ok(), "round {round}: lookup of {name} during the commit's writes");
                        }
                    }
                })
            })
            .collect();
        let written = fs.commit_write(&sealed, &mut side);
        for r in readers {
            r.join().unwrap();
        }
        written
    });
    assert!(written.as_ref().is_ok_and(|&w| w >= 1), "node writes: {written:?}");
    assert_eq!(fs.device().writes, own_writes, "the commit wrote through the handle it was given");
    fs.commit_done(sealed, written).unwrap();
    assert_eq!(fs.stats().commits, commits + 1);
    assert!(fs.commit_seal().unwrap().is_none(), "nothing is left to commit");
    // The handle's device holds the commit once its flushed writes and
    // FUA superblock survive: all 600 names, consistent.
    let mut after = mount(side.crash_drop_all());
    assert_check_clean(&mut after, "a commit written through another handle");
    assert_eq!(visible(&mut after).keys().filter(|k| k.contains("/f")).count(), 600);
}

#[test]
fn a_store_changed_between_seal_and_end_is_refused_and_stops() {
    let (mut fs, dir) = half_committed(100);
    let mut side = fs.device().clone();
    let sealed = fs.commit_seal().unwrap().unwrap();
    let written = fs.commit_write(&sealed, &mut side);
    assert!(written.is_ok());
    // A change no commit step expects (the adapter's writers' lock keeps
    // them out): the end refuses rather than mark the new node clean.
    fs.create(SV, dir, b"late", 0o644, 0, 0, 0, ts(2)).unwrap();
    assert!(matches!(fs.commit_done(sealed, written), Err(Error::Bug(_))));
    assert!(fs.aborted().is_some());
    assert_eq!(fs.create(SV, dir, b"later", 0o644, 0, 0, 0, ts(2)).err(), Some(Error::ReadOnly));
    // What reached the disk is the sealed commit, whole.
    let mut after = mount(side.crash_drop_all());
    assert_check_clean(&mut after, "the sealed commit of a refused end");
    assert!(!visible(&mut after).keys().any(|k| k.contains("late")));
}

#[test]
fn a_failed_commit_write_stops_the_filesystem_and_the_disk_keeps_the_last_commit() {
    let (mut fs, dir) = half_committed(100);
    let mut side = fs.device().clone();
    side.cut_after = Some(side.writes + 1);
    let sealed = fs.commit_seal().unwrap().unwrap();
    let written = fs.commit_write(&sealed, &mut side);
    assert_eq!(written.err(), Some(Error::Io));
    assert_eq!(fs.commit_done(sealed, written).err(), Some(Error::Io));
    assert_eq!(fs.aborted(), Some(Error::Io));
    assert_eq!(fs.create(SV, dir, b"x", 0o644, 0, 0, 0, ts(2)).err(), Some(Error::ReadOnly));
    side.dead = false;
    side.cut_after = None;
    let mut after = mount(side.crash_drop_all());
    assert_check_clean(&mut after, "the last commit after a failed one");
    // The first half and the directory: the commit before.
    assert_eq!(visible(&mut after).keys().filter(|k| k.contains("/f")).count(), 51);
}
