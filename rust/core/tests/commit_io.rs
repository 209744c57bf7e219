// SPDX-License-Identifier: GPL-2.0
//! The I/O a commit issues: adjacent dirty nodes go out as one device
//! write (in block order), so a commit of many nodes costs a few large
//! writes, and what it wrote reads back intact after a remount.

mod common;
use common::*;
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
