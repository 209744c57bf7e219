// SPDX-License-Identifier: GPL-2.0
//! Scale: a large raw B-tree, a large directory, a sparse 4 GiB file, and
//! the bytes one small commit writes. Small by default; `FERROFS_FULL=1`
//! runs the full sizes (1,000,000 items, 100,000 entries, 4096 scattered
//! writes). Everything runs on the in-memory simulated device.

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::btree::{self, Cursor, Dir, TreeRoot};
use ferrofs_core::error::Error;
use ferrofs_core::format::Key;
use std::time::Instant;

fn rate(n: u64, t: std::time::Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

#[test]
fn big_btree() {
    let n: u64 = if full() { 1_000_000 } else { 100_000 };
    let mut fs = mount(fresh(if full() { 1 << 30 } else { 256 << 20 }));
    let s = fs.store();
    let blk = s.new_node(1000, 0).unwrap();
    let mut root = TreeRoot { id: 1000, block: blk, generation: s.gen, level: 0, last_snapshot: 0 };
    // Insert in a scrambled order so splits happen everywhere.
    let t = Instant::now();
    let keys: Vec<u64> = (0..n).map(|i| i * 3 + 7).collect();
    let mut order = keys.clone();
    Rng(3).shuffle(&mut order);
    for &k in &order {
        btree::insert(s, &mut root, &Key::new(k, 1, 0), &k.to_le_bytes()).unwrap();
    }
    s.apply_refs().unwrap();
    let ti = t.elapsed();
    let t = Instant::now();
    for &k in order.iter().step_by(3) {
        let v = btree::get(s, &root, &Key::new(k, 1, 0)).unwrap().unwrap();
        assert_eq!(&v[..], &k.to_le_bytes());
    }
    assert!(btree::get(s, &root, &Key::new(n * 4 + 1, 1, 0)).unwrap().is_none());
    let tl = t.elapsed();
    let t = Instant::now();
    let mut c = Cursor::new(Key::default(), Dir::Forward);
    let mut seen = 0usize;
    while let Some((k, _)) = c.next(s, &root).unwrap() {
        assert_eq!(k.objectid, keys[seen]);
        seen += 1;
    }
    assert_eq!(seen, keys.len());
    let mut c = Cursor::new(Key::MAX, Dir::Backward);
    while let Some((k, _)) = c.next(s, &root).unwrap() {
        seen -= 1;
        assert_eq!(k.objectid, keys[seen]);
    }
    let tr = t.elapsed();
    let level = root.level;
    let t = Instant::now();
    // Delete all but every 50th: merges and root collapses.
    for (i, &k) in order.iter().enumerate() {
        if i % 50 != 0 {
            btree::delete(s, &mut root, &Key::new(k, 1, 0)).unwrap();
        }
    }
    s.apply_refs().unwrap();
    let td = t.elapsed();
    assert_eq!(btree::delete(s, &mut root, &Key::new(u64::MAX - 1, 1, 0)), Err(Error::NotFound));
    let mut c = Cursor::new(Key::default(), Dir::Forward);
    let mut left = 0;
    while c.next(s, &root).unwrap().is_some() {
        left += 1;
    }
    assert_eq!(left, order.len().div_ceil(50));
    println!(
        "btree: {} items, height {}: insert {:.0}/s, lookup {:.0}/s, full scan both ways {:.2?}, delete {:.0}/s (height after {})",
        keys.len(),
        level + 1,
        rate(keys.len() as u64, ti),
        rate(keys.len() as u64 / 3, tl),
        tr,
        rate(keys.len() as u64 - left as u64, td),
        root.level + 1
    );
}

#[test]
fn big_directory() {
    let n: u64 = if full() { 100_000 } else { 10_000 };
    let mut fs = mount(fresh(if full() { 2 << 30 } else { 256 << 20 }));
    let root = fs.root_ino();
    let d = fs.mkdir(SV, root, b"big", 0o755, 0, 0, ts(1)).unwrap().ino;
    let t = Instant::now();
    let mut inos = Vec::with_capacity(n as usize);
    for i in 0..n {
        inos.push(fs.create(SV, d, format!("file-{i:08}").as_bytes(), 0o644, 0, 0, 0, ts(2)).unwrap().ino);
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    fs.commit().unwrap();
    let tc = t.elapsed();
    let t = Instant::now();
    for i in (0..n).rev() {
        assert_eq!(fs.lookup(SV, d, format!("file-{i:08}").as_bytes()).unwrap(), inos[i as usize]);
    }
    let tl = t.elapsed();
    let t = Instant::now();
    let mut count = 0u64;
    fs.readdir(SV, d, 0, &mut |_, _, _, _| {
        count += 1;
        true
    })
    .unwrap();
    assert_eq!(count, n);
    let trd = t.elapsed();
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    let t = Instant::now();
    assert_check_clean(&mut fs, "big directory");
    let tck = t.elapsed();
    let t = Instant::now();
    for i in 0..n {
        fs.unlink(SV, d, format!("file-{i:08}").as_bytes(), ts(3)).unwrap();
        fs.evict(SV, inos[i as usize]).unwrap();
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    fs.commit().unwrap();
    let tu = t.elapsed();
    assert_check_clean(&mut fs, "emptied directory");
    println!(
        "directory: {n} entries: create {:.0}/s, lookup {:.0}/s, readdir {:.0} entries/s, check {:.2?}, unlink+evict {:.0}/s (commit every 1000)",
        rate(n, tc),
        rate(n, tl),
        rate(n, trd),
        tck,
        rate(n, tu)
    );
}

#[test]
fn sparse_4gib_file() {
    let writes: u64 = if full() { 4096 } else { 512 };
    let mut fs = mount(fresh(8 << 30));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"sparse", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let size = 4u64 << 30;
    let mut rng = Rng(11);
    let mut spots = Vec::new();
    let t = Instant::now();
    for i in 0..writes {
        let off = rng.below(size - 8192);
        let data = format!("block {i} at {off}").into_bytes();
        fs.write(SV, f, off, &data, ts(2)).unwrap();
        spots.push((off, data));
    }
    fs.write(SV, f, size - 5, b"tail!", ts(2)).unwrap();
    fs.commit().unwrap();
    let tw = t.elapsed();
    assert_eq!(fs.getattr(SV, f).unwrap().size, size);
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    let t = Instant::now();
    // Later writes may overlap earlier ones: check in reverse, skipping
    // bytes a later write covered.
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for (off, data) in spots.iter().rev() {
        let mut buf = vec![0u8; data.len()];
        assert_eq!(fs.read(SV, f, *off, &mut buf).unwrap(), data.len());
        for (k, (&a, &b)) in buf.iter().zip(data.iter()).enumerate() {
            let at = off + k as u64;
            if !covered.iter().any(|&(s, l)| at >= s && at < s + l) {
                assert_eq!(a, b, "byte at {at}");
            }
        }
        covered.push((*off, data.len() as u64));
    }
    let mut buf = vec![0u8; 5];
    fs.read(SV, f, size - 5, &mut buf).unwrap();
    assert_eq!(&buf, b"tail!");
    let tr = t.elapsed();
    let a = fs.getattr(SV, f).unwrap();
    assert!(a.blocks <= (writes + 1) * 2 * 8, "{} blocks allocated", a.blocks);
    assert_check_clean(&mut fs, "sparse file");
    fs.truncate(SV, f, 1 << 30, ts(3)).unwrap();
    fs.truncate(SV, f, 0, ts(3)).unwrap();
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "sparse file truncated");
    println!(
        "sparse: 4 GiB file, {writes} scattered writes + commit {:.2?}, verified reads {:.2?}, {} KiB allocated",
        tw,
        tr,
        a.blocks / 2
    );
}

#[test]
fn bytes_per_small_commit() {
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let mut last = 0;
    for i in 0..2000 {
        last = fs.create(SV, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    }
    fs.commit().unwrap();
    let before = fs.device().bytes_written;
    let writes = fs.device().writes;
    let flushes = fs.device().flushes;
    let a = ferrofs_core::fs::SetAttr { mode: Some(0o600), ..Default::default() };
    fs.setattr(SV, last, &a, ts(2)).unwrap();
    fs.commit().unwrap();
    let bytes = fs.device().bytes_written - before;
    let w = fs.device().writes - writes;
    let fl = fs.device().flushes - flushes;
    println!("commit of a one-inode change (2000-inode fs tree): {bytes} bytes in {w} writes, {fl} flush");
    assert!(bytes <= 16 * 4096, "{bytes} bytes");
}

#[test]
fn offsets_up_to_the_maximum() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"far", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let tib16 = 16u64 << 40;
    fs.write(SV, f, tib16 - 3, b"abcdef", ts(2)).unwrap();
    let max = ferrofs_core::format::MAX_FILE_SIZE;
    fs.write(SV, f, max - 2, b"xyz", ts(2)).unwrap();
    assert_eq!(fs.getattr(SV, f).unwrap().size, max);
    assert_eq!(fs.write(SV, f, max, b"x", ts(2)), Err(Error::FileTooBig));
    assert_eq!(fs.truncate(SV, f, max + 1, ts(2)), Err(Error::FileTooBig));
    let mut b = [0u8; 6];
    fs.read(SV, f, tib16 - 3, &mut b).unwrap();
    assert_eq!(&b, b"abcdef");
    fs.read(SV, f, max - 4, &mut b).unwrap();
    assert_eq!(&b[..4], b"\0\0xy");
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "far offsets");
}
