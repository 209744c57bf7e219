// SPDX-License-Identifier: GPL-2.0
//! Damaged images: random byte flips in metadata blocks, with and without a
//! recomputed checksum (so structure checks and item decoders are reached).
//! Mount, check and every read path must return errors, never panic or
//! read out of bounds; `check` must name a problem for damage it can see.
//! Also: an interior key moved inside its node's order (checksum
//! recomputed), which only the key ranges checked on descent can see; every
//! file operation over it must return `Corrupt` in bounded time.

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Error;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::node;
use ferrofs_core::walk::Visit;
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

fn populated() -> SimDev {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let d = fs.mkdir(SV, root, b"dir", 0o755, 0, 0, ts(1)).unwrap().ino;
    for i in 0..120 {
        let f = fs.create(SV, if i % 3 == 0 { d } else { root }, format!("file-{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        if i % 10 == 0 {
            fs.write(SV, f, 0, &vec![i as u8; 9000], ts(1)).unwrap();
            fs.set_xattr(SV, f, b"user.k", &vec![1u8; 2500], 0, ts(1)).unwrap();
        }
    }
    fs.symlink(SV, root, b"ln", &[b'z'; 3000], 0, 0, ts(1)).unwrap();
    fs.unmount().unwrap()
}

/// Whether `r` failed, panicking on an error damage must not produce: only
/// `Corrupt`, `NotFound` (an entry naming an inode a flipped key hid) and,
/// where `wrong_type` allows, the answers for asking the wrong type of
/// inode (a flipped mode) pass. `Io` would be a read past the device,
/// `NoMemory` an allocation sized by a damaged field, `Bug` a broken
/// invariant; none of them may come from a bad image.
fn failed<T>(what: &str, r: Result<T, Error>, wrong_type: bool) -> bool {
    match r {
        Ok(_) => false,
        Err(Error::Corrupt(..) | Error::NotFound) => true,
        Err(Error::Invalid(_) | Error::IsDir | Error::NoData) if wrong_type => true,
        Err(e) => panic!("{what}: {e:?} from a damaged image"),
    }
}

/// Exercises every read path; returns whether any of readdir, lookup and
/// getattr failed (the others may fail on a sound image too).
fn poke(fs: &mut Filesystem<SimDev>) -> bool {
    let mut any = false;
    let root = fs.root_ino();
    let mut todo = vec![root];
    let mut seen = 0;
    while let Some(dir) = todo.pop() {
        seen += 1;
        if seen > 1000 {
            break;
        }
        let mut ents = Vec::new();
        let r = fs.readdir(SV, dir, 0, &mut |n, i, t, _| {
            ents.push((n.to_vec(), i, t));
            true
        });
        any |= failed("readdir", r, false);
        for (n, i, t) in ents {
            any |= failed("lookup", fs.lookup(SV, dir, &n), false);
            any |= failed("getattr", fs.getattr(SV, i), false);
            let mut buf = vec![0u8; 20_000];
            failed("read", fs.read(SV, i, 0, &mut buf), true);
            failed("readlink", fs.readlink(SV, i), true);
            failed("list_xattr", fs.list_xattr(SV, i, &mut buf), true);
            failed("get_xattr", fs.get_xattr(SV, i, b"user.k", &mut buf), true);
            if t == ferrofs_core::format::FileType::Dir {
                todo.push(i);
            }
        }
    }
    any
}

#[test]
fn flipped_bytes_never_panic() {
    let base = populated();
    let mut rng = Rng(seed_or(99));
    let rounds = if full() { 3000 } else { 400 };
    let (mut mount_failed, mut check_found, mut reseal) = (0, 0, 0);
    // Metadata pages: the nodes of every tree (stale copies on disk do not count).
    let mut pages = Vec::new();
    {
        let mut fs = mount(base.clone());
        for t in fs.trees().unwrap().iter() {
            let root = t.root;
            fs.store()
                .walk(&root, &mut |_, v| {
                    if let ferrofs_core::walk::Visit::Node { block, .. } = v {
                        pages.push(block);
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
    let mut buf = vec![0u8; 4096];
    assert!(pages.len() > 5);
    for round in 0..rounds {
        let mut dev = base.clone();
        let p = pages[rng.below(pages.len() as u64) as usize];
        dev.read(p * 4096, &mut buf).unwrap();
        let flips = 1 + rng.below(4);
        for _ in 0..flips {
            let at = if rng.below(2) == 0 { 4 + rng.below(300) } else { 4 + rng.below(4092) } as usize;
            buf[at] ^= 1 << rng.below(8);
        }
        let resealed = round % 2 == 0;
        if resealed {
            let c = ferrofs_core::crc32c::checksum(&buf[4..]);
            buf[..4].copy_from_slice(&c.to_le_bytes());
            reseal += 1;
        }
        dev.write(p * 4096, &buf, true).unwrap();
        let ro = ferrofs_core::fs::MountOptions { read_only: true, ..Default::default() };
        let mut fs = match Filesystem::mount_with(dev, ro) {
            Ok(fs) => fs,
            Err(Error::Corrupt(..)) => {
                mount_failed += 1;
                continue;
            }
            Err(e) => panic!("round {round}: damage to block {p}: mount refused with {e:?}, not Corrupt"),
        };
        let read_failed = poke(&mut fs);
        match fs.check(false) {
            Ok(r) if r.is_clean() => {
                // Flips in unused leaf space are invisible once resealed;
                // anything else must be seen.
                assert!(resealed && !read_failed, "round {round}: damage to block {p} went unnoticed");
            }
            Ok(_) | Err(Error::Corrupt(..)) => check_found += 1,
            Err(e) => panic!("round {round}: damage to block {p}: check failed with {e:?}, not Corrupt"),
        }
    }
    println!(
        "corrupt: {rounds} damaged images ({reseal} with recomputed checksums): {mount_failed} refused at mount as corrupt, {check_found} flagged by check, none panicked"
    );
}

#[test]
fn superblock_pointing_nowhere_is_refused() {
    let mut dev = populated();
    let mut sb = ferrofs_core::superblock::read_superblock(&mut dev).unwrap();
    sb.root_tree.block = 40;
    ferrofs_core::superblock::write_superblock(&mut dev, &sb).unwrap();
    // Nothing was ever written at block 40 (the mount says "node has no
    // magic"): a root pointing there is damage, not any other failure.
    match Filesystem::mount(dev) {
        Err(Error::Corrupt(..)) => {}
        Err(e) => panic!("mount refused with {e:?}, not Corrupt"),
        Ok(_) => panic!("mounted with the root tree pointing at block 40"),
    }
}

/// Runs `f` on its own thread and waits for it at most a minute, so that a
/// loop that never ends fails the test instead of hanging it.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no answer within 60 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// An image whose fs tree has a root over many leaves, most of them full
/// of one file's extents (every other block written); returns the image,
/// the file, its size, and every node of the fs tree by block.
fn many_extents() -> (SimDev, u64, u64, HashMap<u64, Vec<u8>>) {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"sparse", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    for i in 0..3000u64 {
        fs.write(SV, f, 2 * i * 4096, &[(i % 251) as u8 + 1; 4096], ts(1)).unwrap();
    }
    let size = fs.getattr(SV, f).unwrap().size;
    let mut dev = fs.unmount().unwrap();
    let mut fs = mount(dev.clone());
    let tree = fs.trees().unwrap().iter().map(|t| t.root).find(|r| r.id == ferrofs_core::format::FS_TREE_ID).unwrap();
    assert!(tree.level >= 1, "fs tree of one level");
    let mut nodes = HashMap::new();
    fs.store()
        .walk(&tree, &mut |_, v| {
            if let Visit::Node { block, buf, .. } = v {
                nodes.insert(block, buf.to_vec());
            }
            Ok(())
        })
        .unwrap();
    dev.flush().unwrap();
    (dev, f, size, nodes)
}

#[test]
fn interior_keys_outside_their_child_are_corrupt_not_a_hang() {
    let (base, f, size, nodes) = many_extents();
    // A level-1 node and a pointer in the middle of the file's extents.
    let (&pblk, pbuf) = nodes.iter().find(|(_, b)| node::level(b) == 1 && node::nritems(b) >= 8).expect("no interior node");
    let n = node::nritems(pbuf);
    let i = (1..n - 1)
        .find(|&i| node::ptr_key(pbuf, i - 1).objectid == f && node::ptr_key(pbuf, i + 1).objectid == f && i > n / 3)
        .expect("no pointer inside the file's extents");
    let left = &nodes[&node::ptr_block(pbuf, i - 1)];
    let right = &nodes[&node::ptr_block(pbuf, i)];
    assert!(node::nritems(left) >= 2 && node::nritems(right) >= 2);
    // Lowered onto the left child's last key, or raised onto the right
    // child's second: both keep the interior node's own order intact.
    let variants = [("lowered", node::item_key(left, node::nritems(left) - 1)), ("raised", node::item_key(right, 1))];
    let mut refused = 0;
    for (how, key) in variants {
        let mut buf = pbuf.clone();
        node::set_ptr(&mut buf, i, &key, node::ptr_block(pbuf, i), node::ptr_gen(pbuf, i));
        node::seal(&mut buf);
        let mut dev = base.clone();
        dev.write(pblk * 4096, &buf, true).unwrap();
        type Op = fn(&mut Filesystem<SimDev>, u64, u64) -> Result<(), Error>;
        let ops: [(&str, Op); 9] = [
            ("read", |fs, f, size| fs.read(SV, f, 0, &mut vec![0u8; size as usize]).map(|_| ())),
            ("write", |fs, f, size| fs.write(SV, f, 0, &vec![1u8; size as usize], ts(2)).map(|_| ())),
            ("truncate", |fs, f, _| fs.truncate(SV, f, 0, ts(2))),
            ("punch_hole", |fs, f, size| fs.punch_hole(SV, f, 0, size, ts(2))),
            ("fallocate", |fs, f, size| fs.fallocate(SV, f, 0, size, false, ts(2))),
            ("extents", |fs, f, _| fs.extents(SV, f, 0, &mut |_, _, _, _| true)),
            ("seek", |fs, f, size| {
                let mut pos = 0;
                while let Some(d) = fs.seek_data(SV, f, pos)? {
                    pos = fs.seek_hole(SV, f, d)?;
                    assert!(pos > d && pos <= size);
                }
                Ok(())
            }),
            ("unlink and evict", |fs, f, _| {
                let root = fs.root_ino();
                fs.unlink(SV, root, b"sparse", ts(2))?;
                fs.evict(SV, f)
            }),
            ("rewrite every block", |fs, f, size| {
                let mut off = 0;
                while off < size {
                    fs.write(SV, f, off, &[3u8; 100], ts(2))?;
                    off += 4096;
                }
                Ok(())
            }),
        ];
        for (what, op) in ops {
            let dev = dev.clone();
            let name = format!("{how} key, {what}");
            let r = bounded(&name, move || {
                let mut fs = mount(dev);
                op(&mut fs, f, size)
            });
            assert!(matches!(r, Err(Error::Corrupt(..))), "{name}: {r:?}");
            refused += 1;
        }
        let r =
            bounded(how, move || mount(dev).check(false).map(|r| r.problems.iter().any(|p| p.kind == ferrofs_core::check::Kind::BadNode)));
        assert_eq!(r, Ok(true), "{how} key: check does not flag the node");
    }
    println!("corrupt: a moved interior key ({} variants): {refused} operations over it all returned Corrupt", variants.len());
}

/// Damage to either snapshot of an incremental send, which its tree diff
/// reads in batches (`Store::prefetch_nodes`): the send ends, in bounded
/// time, with the stream or an error about the image, never a panic; a
/// damaged node the batch read is left out of the cache, and the diff's
/// own read of it reports the damage.
#[test]
fn damaged_snapshots_end_an_incremental_send_with_an_error() {
    use ferrofs_core::mem::TryVec;
    use ferrofs_core::send::SendRequest;
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let mut files = Vec::new();
    for i in 0..1500 {
        let f = fs.create(SV, root, format!("f{i:05}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        fs.write(SV, f, 0, &[i as u8; 700], ts(1)).unwrap();
        files.push(f);
    }
    let s1 = fs.snapshot(SV, SV, root, b"s1", true, [1; 16], ts(2)).unwrap();
    for (i, &f) in files.iter().enumerate().filter(|(i, _)| i % 7 == 0) {
        fs.write(SV, f, 0, &[i as u8 ^ 0xff; 900], ts(3)).unwrap();
    }
    let s2 = fs.snapshot(SV, SV, root, b"s2", true, [2; 16], ts(4)).unwrap();
    let base = fs.unmount().unwrap();
    // The nodes of both snapshots' trees.
    let mut pages = Vec::new();
    {
        let mut fs = mount(base.clone());
        for t in fs.trees().unwrap().iter().filter(|t| t.root.id == s1.0 || t.root.id == s2.0) {
            let root = t.root;
            assert!(root.level >= 1, "snapshot tree of one leaf");
            fs.store()
                .walk(&root, &mut |_, v| {
                    if let Visit::Node { block, .. } = v {
                        pages.push(block);
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
    pages.sort_unstable();
    pages.dedup();
    let mut rng = Rng(seed_or(17));
    let rounds = if full() { 600 } else { 120 };
    let (mut failed_sends, mut batches) = (0, 0);
    let mut buf = vec![0u8; 4096];
    for round in 0..rounds {
        let mut dev = base.clone();
        let p = pages[rng.below(pages.len() as u64) as usize];
        dev.read(p * 4096, &mut buf).unwrap();
        for _ in 0..1 + rng.below(4) {
            let at = if rng.below(2) == 0 { 4 + rng.below(300) } else { 4 + rng.below(4092) } as usize;
            buf[at] ^= 1 << rng.below(8);
        }
        if round % 2 == 0 {
            let c = ferrofs_core::crc32c::checksum(&buf[4..]);
            buf[..4].copy_from_slice(&c.to_le_bytes());
        }
        dev.write(p * 4096, &buf, true).unwrap();
        let (r, n) = bounded("incremental send of a damaged snapshot", move || {
            let ro = ferrofs_core::fs::MountOptions { read_only: true, ..Default::default() };
            let mut fs = match Filesystem::mount_with(dev, ro) {
                Ok(fs) => fs,
                Err(e) => return (Err(e), 0),
            };
            let req = SendRequest { source: s2, parent: Some(s1), flags: 0, version: 1, resume: 0, resume_crc: 0 };
            let r = fs.send_begin(req, &[]).and_then(|mut st| {
                let r = loop {
                    let mut out = TryVec::new();
                    match fs.send_step(&mut st, &mut out, 1 << 20) {
                        Ok(true) => break Ok(()),
                        Ok(false) => {}
                        Err(e) => break Err(e),
                    }
                };
                fs.send_end(st);
                r
            });
            (r, fs.stats().meta_batches)
        });
        batches += n;
        failed_sends += usize::from(failed(&format!("round {round}: send with damage in block {p}"), r, false));
    }
    assert!(batches > 0, "no batch read");
    println!("corrupt: {rounds} incremental sends over a damaged snapshot, {failed_sends} ended in an error, none panicked");
}
