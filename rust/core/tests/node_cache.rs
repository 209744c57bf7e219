// SPDX-License-Identifier: GPL-2.0
//! The metadata node cache seen from outside the store: a cache large
//! enough for the working set reads nothing after a warm-up, the limit and
//! memory reclaim (`shrink_cache`) drop only clean nodes, least recently
//! used first, and what a transaction changed survives any amount of
//! shrinking.

mod common;
use common::*;
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;

fn mount_cache(d: SimDev, cache_blocks: usize) -> Filesystem<SimDev> {
    Filesystem::mount_with(d, MountOptions { cache_blocks, ..MountOptions::default() }).expect("mount")
}

fn name(i: u32) -> Vec<u8> {
    format!("file-{i:08}").into_bytes()
}

/// Creates `n` files in `dir`, committing every 1000 (as the kernel's
/// background commit would).
fn create_all(fs: &mut Filesystem<SimDev>, dir: u64, n: u32, base: u32) {
    for i in 0..n {
        fs.create(SV, dir, &name(base + i), 0o100644, 0, 0, 0, ts(2000)).unwrap();
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    fs.commit().unwrap();
}

/// Unlinks (and frees) what `create_all` made.
fn unlink_all(fs: &mut Filesystem<SimDev>, dir: u64, n: u32, base: u32) {
    for i in 0..n {
        let ino = fs.lookup(SV, dir, &name(base + i)).unwrap();
        fs.unlink(SV, dir, &name(base + i), ts(2001)).unwrap();
        fs.evict(SV, ino).unwrap();
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    fs.commit().unwrap();
}

#[test]
fn warm_cache_creates_and_unlinks_without_reads() {
    let n = if full() { 50_000 } else { 10_000 };
    let mut fs = mount_cache(fresh(512 << 20), 1 << 20);
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(2000)).unwrap().ino;
    // Warm-up: everything the workload touches is read or written once.
    create_all(&mut fs, dir, n, 0);
    unlink_all(&mut fs, dir, n, 0);
    let before = fs.stats().meta_reads;
    create_all(&mut fs, dir, n, n);
    assert!(fs.cached_clean_nodes() > 64, "the tree is cached: {} nodes", fs.cached_clean_nodes());
    for i in 0..n {
        fs.lookup(SV, dir, &name(n + i)).unwrap();
    }
    unlink_all(&mut fs, dir, n, n);
    assert_eq!(fs.stats().meta_reads, before, "a warm cache reads no metadata");
    fs.unmount().unwrap();
}

#[test]
fn small_cache_rereads_and_limit_holds() {
    // The same workload with the smallest cache must read: the test above
    // would fail if nothing were ever evicted.
    let n = 10_000;
    let mut fs = mount_cache(fresh(512 << 20), 64);
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(2000)).unwrap().ino;
    create_all(&mut fs, dir, n, 0);
    let before = fs.stats().meta_reads;
    for i in 0..n {
        fs.lookup(SV, dir, &name(i)).unwrap();
    }
    assert!(fs.stats().meta_reads > before, "a 64-node cache cannot hold the directory");
    assert!(fs.cached_clean_nodes() <= 65, "{} clean nodes over a limit of 64", fs.cached_clean_nodes());
}

#[test]
fn shrink_drops_at_most_n_oldest_first() {
    let mut fs = mount_cache(fresh(256 << 20), 1 << 20);
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(2000)).unwrap().ino;
    create_all(&mut fs, dir, 5000, 0);
    let cached = fs.cached_clean_nodes();
    assert!(cached > 20, "{cached} nodes");
    assert_eq!(fs.shrink_cache(0), 0);
    assert_eq!(fs.shrink_cache(7), 7);
    assert_eq!(fs.cached_clean_nodes(), cached - 7);

    // Use the path to the last file, then drop all but a few nodes: the
    // most recently used ones stay, so the same lookup reads nothing.
    fs.lookup(SV, dir, &name(4999)).unwrap();
    let keep = 8;
    let dropped = fs.shrink_cache(fs.cached_clean_nodes() - keep);
    assert_eq!(fs.cached_clean_nodes(), keep, "dropped {dropped}");
    let before = fs.stats().meta_reads;
    fs.lookup(SV, dir, &name(4999)).unwrap();
    assert_eq!(fs.stats().meta_reads, before, "the most recently used nodes were kept");
    // A file elsewhere in the directory needs nodes that went.
    fs.lookup(SV, dir, &name(0)).unwrap();
    assert!(fs.stats().meta_reads > before);

    // Asking for more than there is drops what there is.
    let left = fs.cached_clean_nodes();
    assert_eq!(fs.shrink_cache(usize::MAX), left);
    assert_eq!(fs.cached_clean_nodes(), 0);
    // Everything reads back from the device.
    for i in (0..5000).step_by(97) {
        fs.lookup(SV, dir, &name(i)).unwrap();
    }
    fs.unmount().unwrap();
}

#[test]
fn shrinking_never_drops_a_transactions_changes() {
    let d = fresh(256 << 20);
    let mut fs = mount_cache(d, 64);
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(2000)).unwrap().ino;
    fs.commit().unwrap();
    // Far more dirty nodes than the cache limit, and reclaim in between.
    for i in 0..3000 {
        fs.create(SV, dir, &name(i), 0o100644, 0, 0, 0, ts(2000)).unwrap();
        if i % 100 == 0 {
            let dirty = fs.store().dirty_nodes();
            fs.shrink_cache(usize::MAX);
            assert_eq!(fs.cached_clean_nodes(), 0);
            assert_eq!(fs.store().dirty_nodes(), dirty, "reclaim dropped dirty nodes");
        }
    }
    assert!(fs.store().dirty_nodes() > 64, "{} dirty nodes", fs.store().dirty_nodes());
    fs.commit().unwrap();
    let dev = fs.unmount().unwrap();
    let mut fs = mount_cache(dev, 64);
    for i in 0..3000 {
        fs.lookup(SV, dir, &name(i)).unwrap();
    }
    assert_check_clean(&mut fs, "after shrinking a dirty transaction");
}
