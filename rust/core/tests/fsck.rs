// SPDX-License-Identifier: GPL-2.0
//! `check` finds planted damage and names it; `check(true)` repairs the
//! kinds that are safe to repair. Also: directory and xattr names whose
//! hashes collide.

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::btree;
use ferrofs_core::check::Kind;
use ferrofs_core::format::*;
use std::collections::HashMap;

fn kinds(fs: &mut ferrofs_core::fs::Filesystem<SimDev>) -> Vec<(Kind, u64, u64)> {
    fs.check(false).unwrap().problems.iter().map(|p| (p.kind, p.ino, p.block)).collect()
}

#[test]
fn leaked_blocks_are_found_and_repaired() {
    let mut fs = mount(fresh(16 << 20));
    let (start, n) = fs.store().alloc_data(3).unwrap();
    fs.store().apply_refs().unwrap();
    fs.commit().unwrap();
    let k = kinds(&mut fs);
    assert_eq!(k, vec![(Kind::Leaked, 0, start)], "{n} blocks");
    let free = fs.statfs().free_blocks;
    let r = fs.check(true).unwrap();
    assert_eq!(r.repaired, 1);
    assert_check_clean(&mut fs, "after repair");
    assert_eq!(fs.statfs().free_blocks, free + 3);
    let dev = fs.unmount().unwrap();
    assert_check_clean(&mut mount(dev), "after repair and remount");
}

#[test]
fn wrong_link_count_is_found_and_repaired() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    {
        let (s, t) = fs.raw_fs_tree();
        let key = Key::new(f, INODE_KEY, 0);
        let mut it = InodeItem::decode(&btree::get(s, t, &key).unwrap().unwrap()).unwrap();
        it.nlink = 5;
        btree::update(s, t, &key, &it.encode()).unwrap();
    }
    fs.commit().unwrap();
    assert_eq!(kinds(&mut fs), vec![(Kind::Nlink, f, 0)]);
    fs.check(true).unwrap();
    assert_check_clean(&mut fs, "after repair");
    assert_eq!(fs.getattr(SV, f).unwrap().nlink, 1);
}

#[test]
fn broken_directory_index_and_double_use_are_named() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let a = fs.create(SV, root, b"a", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let b = fs.create(SV, root, b"b", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, a, 0, &[1u8; 8192], ts(1)).unwrap();
    fs.commit().unwrap();
    {
        let (s, t) = fs.raw_fs_tree();
        // Drop the readdir entry of "b" only.
        let mut c = btree::Cursor::new(Key::new(root, DIR_SEQ_KEY, 0), btree::Dir::Forward);
        let mut victim = None;
        while let Some((k, d)) = c.next(s, t).unwrap() {
            if k.ty == DIR_SEQ_KEY && DirEntry::decode(d).unwrap().name == b"b" {
                victim = Some(k);
            }
        }
        btree::delete(s, t, &victim.unwrap()).unwrap();
        // Point b at a's data blocks.
        let e = ExtentItem::decode(&btree::get(s, t, &Key::new(a, EXTENT_KEY, 0)).unwrap().unwrap()).unwrap();
        btree::insert(s, t, &Key::new(b, EXTENT_KEY, 0), &e.encode()).unwrap();
    }
    fs.commit().unwrap();
    let k = kinds(&mut fs);
    assert!(k.iter().any(|&(kind, ino, _)| kind == Kind::DirIndex && ino == root), "{k:?}");
    assert!(k.iter().any(|&(kind, ..)| kind == Kind::DoubleUse), "{k:?}");
    assert!(k.iter().any(|&(kind, ino, _)| kind == Kind::Extent && ino == b), "{k:?}");
    for p in fs.check(false).unwrap().problems.iter() {
        println!("fsck reports: {p}");
    }
}

/// Two different names to which `hash` gives the same value (random
/// names from `seed`, starting with `prefix`).
fn colliding(prefix: &str, seed: u64, hash: impl Fn(&[u8]) -> u64) -> (Vec<u8>, Vec<u8>) {
    let mut seen: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut rng = Rng(seed);
    loop {
        let n = format!("{prefix}{:016x}", rng.next()).into_bytes();
        let h = hash(&n);
        if let Some(o) = seen.get(&h) {
            if *o != n {
                return (o.clone(), n);
            }
        }
        seen.insert(h, n);
    }
}

/// Two different names with the same CRC-32C.
fn colliding_names() -> (Vec<u8>, Vec<u8>) {
    colliding("c", 5, |n| name_hash(n) as u64)
}

#[test]
fn hash_collisions_in_directories_and_xattrs() {
    let (x, y) = colliding_names();
    assert_eq!(name_hash(&x), name_hash(&y));
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let fx = fs.create(SV, root, &x, 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let fy = fs.create(SV, root, &y, 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    assert_eq!(fs.lookup(SV, root, &x).unwrap(), fx);
    assert_eq!(fs.lookup(SV, root, &y).unwrap(), fy);
    fs.set_xattr(SV, fx, &x, b"one", 0, ts(2)).unwrap();
    fs.set_xattr(SV, fx, &y, b"two", 0, ts(2)).unwrap();
    let mut b = [0u8; 3];
    fs.get_xattr(SV, fx, &y, &mut b).unwrap();
    assert_eq!(&b, b"two");
    assert_check_clean(&mut fs, "collisions");
    fs.unlink(SV, root, &x, ts(3)).unwrap();
    fs.evict(SV, fx).unwrap();
    assert_eq!(fs.lookup(SV, root, &y).unwrap(), fy);
    // The free collision slot is reused.
    let fz = fs.create(SV, root, &x, 0o644, 0, 0, 0, ts(4)).unwrap().ino;
    assert_eq!(fs.lookup(SV, root, &x).unwrap(), fz);
    assert_check_clean(&mut fs, "collisions after reuse");
}

/// Two names in directory `dir` whose back-references share a hash
/// (`NameRef::hash`), so the second goes in the first's collision slot.
fn colliding_ref_names(dir: u64) -> (Vec<u8>, Vec<u8>) {
    colliding("r", 7, |n| NameRef::hash(dir, n))
}

#[test]
fn unlink_removes_its_own_back_reference_among_colliding_ones() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let (x, y) = colliding_ref_names(root);
    let names = |fs: &mut ferrofs_core::fs::Filesystem<_>, ino| -> Vec<Vec<u8>> {
        fs.names_of(SV, ino).unwrap().iter().map(|(_, n)| n.to_vec()).collect()
    };
    let ino = fs.create(SV, root, &x, 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.link(SV, ino, root, &y, ts(1)).unwrap();
    assert_eq!(names(&mut fs, ino).len(), 2);
    // After a commit the leaf is clean: the unlink takes the long way.
    fs.commit().unwrap();
    fs.unlink(SV, root, &y, ts(2)).unwrap();
    assert_eq!(names(&mut fs, ino), vec![x.clone()], "unlink of the second name, leaf committed");
    assert_check_clean(&mut fs, "back-reference collision, committed leaf");
    // In the transaction that changed the leaf: found and deleted in place.
    fs.link(SV, ino, root, &y, ts(3)).unwrap();
    fs.unlink(SV, root, &y, ts(4)).unwrap();
    assert_eq!(names(&mut fs, ino), vec![x.clone()], "unlink of the second name, leaf of the transaction");
    fs.link(SV, ino, root, &y, ts(5)).unwrap();
    fs.unlink(SV, root, &x, ts(6)).unwrap();
    assert_eq!(names(&mut fs, ino), vec![y.clone()], "unlink of the first name");
    assert_check_clean(&mut fs, "back-reference collision");
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "back-reference collision, committed");
}
