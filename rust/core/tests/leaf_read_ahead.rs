// SPDX-License-Identifier: GPL-2.0
//! Leaf read-ahead: a walk down that must read a leaf from the device reads
//! the next leaves under the same parent in the same batch. `du` of a cold
//! directory (readdir, then a lookup and the attributes of every entry)
//! must see the same answers as without it, in far fewer device reads and
//! without reading much more.

mod common;
use common::*;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;

/// A committed directory of `n` files (every fifth with data), with the
/// node cache emptied as drop_caches does; the directory and the names.
fn cold_dir(batch_reads: bool, n: u64) -> (Filesystem<SimDev>, u64, Vec<Vec<u8>>) {
    let mut d = fresh(256 << 20);
    d.batch_reads = batch_reads;
    let mut fs = mount(d);
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"src", 0o755, 0, 0, ts(1)).unwrap().ino;
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("file-{i:05}.c").into_bytes();
        let ino = fs.create(SV, dir, &name, 0o644, 0, 0, 0, ts(2)).unwrap().ino;
        if i % 5 == 0 {
            fs.write(SV, ino, 0, &vec![i as u8; 100 + i as usize % 5000], ts(2)).unwrap();
        }
        names.push(name);
    }
    fs.commit().unwrap();
    fs.shrink_cache(usize::MAX);
    (fs, dir, names)
}

/// What `du` sees: every entry's attributes, in readdir order.
fn du(fs: &mut Filesystem<SimDev>, dir: u64) -> Vec<String> {
    let mut ents = Vec::new();
    fs.readdir(SV, dir, 0, &mut |n, _, _, _| {
        ents.push(n.to_vec());
        true
    })
    .unwrap();
    ents.iter()
        .map(|n| {
            let (_, ino, attr) = fs.lookup_attr(SV, dir, n).unwrap();
            let a = attr.expect("same subvolume");
            assert_eq!(fs.getattr(SV, ino).unwrap(), a);
            format!("{} {ino} {} {}", String::from_utf8_lossy(n), a.size, a.blocks)
        })
        .collect()
}

#[test]
fn a_cold_du_reads_leaves_in_batches() {
    let n = if full() { 20_000 } else { 4_000 };
    let (mut one, d1, names) = cold_dir(false, n);
    let (mut batched, d2, _) = cold_dir(true, n);
    let r1 = one.device().reads;
    let seen1 = du(&mut one, d1);
    let single_reads = one.device().reads - r1;
    let (r2, b2, p2) = (batched.device().reads, batched.device().batches, batched.device().batch_pieces);
    let seen2 = du(&mut batched, d2);
    assert_eq!(seen1, seen2, "the same answers with read-ahead");
    assert_eq!(seen1.len(), names.len());
    let dev = batched.device();
    let (calls, nodes) = (dev.reads - r2 + dev.batches - b2, dev.reads - r2 + dev.batch_pieces - p2);
    eprintln!("without read-ahead: {single_reads} reads; with: {calls} device calls for {nodes} nodes");
    assert!(calls * 3 <= single_reads, "read-ahead: {calls} device calls, {single_reads} without");
    assert!(nodes <= single_reads + single_reads / 2, "read-ahead read {nodes} nodes, {single_reads} without");
    assert_check_clean(&mut batched, "after the walk");
}
