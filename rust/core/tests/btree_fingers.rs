// SPDX-License-Identifier: GPL-2.0
//! The B-tree's fingers (leaves remembered between operations) against a
//! model: random inserts, updates, deletes, lookups and cursor scans on
//! two trees at once, with commits and cache drops in between, must see
//! exactly what a map sees, and most operations must go by a finger.

mod common;
use common::*;
use ferrofs_core::btree::{self, Cursor, Dir, TreeRoot};
use ferrofs_core::error::Error;
use ferrofs_core::format::Key;
use ferrofs_core::store::Store;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

type Model = BTreeMap<Key, Vec<u8>>;

/// A value of `len` bytes that names its key, so a wrong item shows.
fn value(k: &Key, len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (k.objectid as u8).wrapping_add(k.offset as u8).wrapping_add(i as u8).wrapping_add(salt)).collect()
}

/// Up to `max` items from `from` in direction `dir`, by a cursor.
fn scan(s: &mut Store<SimDev>, root: &TreeRoot, from: Key, dir: Dir, max: usize) -> Vec<(Key, Vec<u8>)> {
    let mut c = Cursor::new(from, dir);
    let mut out = Vec::new();
    while out.len() < max {
        match c.next(s, root).unwrap() {
            Some((k, d)) => out.push((k, d.to_vec())),
            None => break,
        }
    }
    out
}

/// The same from the model.
fn model_scan(m: &Model, from: Key, dir: Dir, max: usize) -> Vec<(Key, Vec<u8>)> {
    let it: Box<dyn Iterator<Item = (&Key, &Vec<u8>)>> = match dir {
        Dir::Forward => Box::new(m.range(from..)),
        Dir::Backward => Box::new(m.range(..=from).rev()),
    };
    it.take(max).map(|(k, v)| (*k, v.clone())).collect()
}

fn random_key(rng: &mut Rng) -> Key {
    // Few objectids and types, many offsets: items of one object pack
    // leaves, as a directory's entries do.
    Key::new(256 + rng.next() % 6, [1u8, 12, 32, 33][(rng.next() % 4) as usize], rng.next() % 3000)
}

#[test]
fn fingers_agree_with_a_model() {
    let mut fs = mount(fresh(256 << 20));
    let s = fs.store();
    let mut roots = Vec::new();
    let mut models = vec![Model::new(), Model::new()];
    for id in [1000, 1001] {
        let blk = s.new_node(id, 0).unwrap();
        roots.push(TreeRoot { id, block: blk, generation: s.gen, level: 0, last_snapshot: 0 });
    }
    let mut rng = Rng(seed_or(0xf1_96e5));
    let hits0 = s.stats.finger_hits;
    let steps: u64 = 60_000;
    let mut max_level = 0;
    for step in 0..steps {
        // Runs on one tree, so its fingers get used, then the other.
        let t = ((step / 97) % 2) as usize;
        let (root, m) = (&mut roots[t], &mut models[t]);
        let k = random_key(&mut rng);
        // Growing, then shrinking: splits first, merges and collapses later.
        let op = match rng.next() % 10 {
            0..=3 if step >= steps / 2 => 5,
            op => op,
        };
        match op {
            0..=3 => {
                let v = value(&k, 8 + (rng.next() % 120) as usize, 1);
                let r = btree::insert(s, root, &k, &v);
                match m.entry(k) {
                    Entry::Occupied(_) => assert_eq!(r, Err(Error::Exists), "step {step}: insert over {k:?}"),
                    Entry::Vacant(e) => {
                        r.unwrap();
                        e.insert(v);
                    }
                }
            }
            4 => {
                // Same length (in place) or a new one (moves the item).
                let len = match m.get(&k) {
                    Some(old) if rng.next() & 1 == 0 => old.len(),
                    _ => 8 + (rng.next() % 200) as usize,
                };
                let v = value(&k, len, 2);
                let r = btree::update(s, root, &k, &v);
                if let Entry::Occupied(mut e) = m.entry(k) {
                    r.unwrap();
                    e.insert(v);
                } else {
                    assert_eq!(r, Err(Error::NotFound), "step {step}: update of absent {k:?}");
                }
            }
            5..=6 => {
                // Deletes mostly of present keys, so leaves empty and merge.
                let k = match m.range(k..).next() {
                    Some((p, _)) if rng.next() & 3 != 0 => *p,
                    _ => k,
                };
                let r = btree::delete(s, root, &k);
                if m.remove(&k).is_some() {
                    r.unwrap();
                } else {
                    assert_eq!(r, Err(Error::NotFound), "step {step}: delete of absent {k:?}");
                }
            }
            7..=8 => {
                let got = btree::get(s, root, &k).unwrap().map(|v| v.to_vec());
                assert_eq!(got.as_ref(), m.get(&k), "step {step}: get {k:?}");
            }
            _ => {
                let dir = if rng.next() & 1 == 0 { Dir::Forward } else { Dir::Backward };
                let max = 1 + (rng.next() % 40) as usize;
                assert_eq!(scan(s, root, k, dir, max), model_scan(m, k, dir, max), "step {step}: scan {dir:?} from {k:?}");
            }
        }
        max_level = max_level.max(roots[t].level);
        if step % 5_000 == 4_999 {
            s.apply_refs().unwrap();
            s.commit().unwrap();
            if step % 10_000 == 9_999 {
                // Clean nodes read again from the device, fingers and all.
                s.shrink(usize::MAX);
            }
        }
    }
    for (root, m) in roots.iter().zip(&models) {
        assert_eq!(scan(s, root, Key::default(), Dir::Forward, usize::MAX), model_scan(m, Key::default(), Dir::Forward, usize::MAX));
        assert_eq!(scan(s, root, Key::MAX, Dir::Backward, usize::MAX), model_scan(m, Key::MAX, Dir::Backward, usize::MAX));
    }
    assert!(max_level >= 2, "the trees grew to interior nodes above interior nodes");
    let hits = s.stats.finger_hits - hits0;
    assert!(hits > steps / 3, "{hits} of {steps} operations went by a finger");
}

/// A committed leaf that a lookup reached (so a finger names it) and a
/// change then copied: the next lookups and cursor scans in its range must
/// read the copy, and changes elsewhere in the tree must not end the
/// fingers of the other leaves (they stay true: the copied block cannot be
/// reused before the commit).
#[test]
fn a_copied_leaf_is_never_read_by_its_old_finger() {
    let mut fs = mount(fresh(64 << 20));
    let s = fs.store();
    let blk = s.new_node(1000, 0).unwrap();
    let mut root = TreeRoot { id: 1000, block: blk, generation: s.gen, level: 0, last_snapshot: 0 };
    let key = |i: u64| Key::new(256 + i / 100, 1, i % 100);
    // Enough keys for a few levels of leaves of 60 items each.
    for i in 0..3000 {
        btree::insert(s, &mut root, &key(i), &value(&key(i), 40, 0)).unwrap();
    }
    s.apply_refs().unwrap();
    s.commit().unwrap();
    for round in 0..3u8 {
        for i in (0..3000).step_by(50) {
            // A lookup reaches the leaf (committed, the first time after a
            // commit) and leaves a finger on it; the update copies it; the
            // lookup right after must see the new value.
            assert!(btree::get(s, &root, &key(i)).unwrap().is_some());
            let v = value(&key(i + 1), 40, round + 1);
            btree::update(s, &mut root, &key(i + 1), &v).unwrap();
            assert_eq!(btree::get(s, &root, &key(i + 1)).unwrap().map(|v| v.to_vec()), Some(v.clone()), "round {round}: key {i}");
            let got = scan(s, &root, key(i), Dir::Forward, 2);
            assert_eq!(got[1], (key(i + 1), v), "round {round}: scan from {i}");
        }
        s.apply_refs().unwrap();
        s.commit().unwrap();
    }
    let hits0 = s.stats.finger_hits;
    let descents0 = s.stats.write_descents;
    // After a commit: one leaf copied per change, and the changes that
    // follow in leaves already copied go by their fingers although other
    // leaves were copied in between.
    for i in 0..200 {
        let k = key((i % 4) * 700 + i / 4);
        btree::update(s, &mut root, &k, &value(&k, 40, 9)).unwrap();
    }
    let descents = s.stats.write_descents - descents0;
    assert!(descents <= 12, "{descents} descents for 200 updates in four ranges");
    assert!(s.stats.finger_hits - hits0 >= 188);
}
