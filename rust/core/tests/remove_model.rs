// SPDX-License-Identifier: GPL-2.0
//! Removing many names against a model: unlink and rmdir in random order
//! over large directories (hard links, empty subdirectories, files with
//! data, inodes kept "open" past their last name), interleaved with
//! lookups, commits, remounts and one crash. The attributes `remove`
//! reports must be what `getattr` then says, every lookup what the model
//! says, every image fsck-clean, and a crash must give the last commit.

mod common;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::format::S_IFMT;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::subvol::SubvolId;
use std::collections::{BTreeMap, BTreeSet};

const SV: SubvolId = SubvolId::DEFAULT;

/// A name in the model: its directory and the inode it names.
struct Model {
    /// `(dir, name) -> ino`.
    names: BTreeMap<(u64, Vec<u8>), u64>,
    /// Link counts of regular files, and directories' `nlink` (2 when empty).
    nlink: BTreeMap<u64, u32>,
    dirs: BTreeSet<u64>,
}

fn remount(fs: Filesystem<SimDev>) -> Filesystem<SimDev> {
    mount(fs.unmount().expect("unmount"))
}

#[test]
fn many_removes_match_a_model_across_remounts_and_a_crash() {
    let files: u64 = if full() { 20_000 } else { 3_000 };
    let mut fs = mount(fresh(512 << 20));
    let root = fs.root_ino();
    let mut rng = Rng(seed_or(0x7e_70_7e));
    let d1 = fs.mkdir(SV, root, b"d1", 0o755, 0, 0, ts(1)).unwrap().ino;
    let d2 = fs.mkdir(SV, root, b"d2", 0o755, 0, 0, ts(1)).unwrap().ino;
    let mut m = Model { names: BTreeMap::new(), nlink: BTreeMap::new(), dirs: BTreeSet::new() };
    for i in 0..files {
        let name = format!("f{i:06}").into_bytes();
        let ino = fs.create(SV, d1, &name, 0o644, 0, 0, 0, ts(2)).unwrap().ino;
        if i % 7 == 0 {
            // Data to free at evict.
            fs.write(SV, ino, 0, &rng.bytes(100 + (i as usize % 3000)), ts(2)).unwrap();
        }
        m.names.insert((d1, name), ino);
        m.nlink.insert(ino, 1);
        if i % 13 == 0 {
            let link = format!("l{i:06}").into_bytes();
            fs.link(SV, ino, d2, &link, ts(2)).unwrap();
            m.names.insert((d2, link), ino);
            *m.nlink.get_mut(&ino).unwrap() += 1;
        }
        if i % 29 == 0 {
            let sub = format!("s{i:06}").into_bytes();
            let dino = fs.mkdir(SV, d2, &sub, 0o755, 0, 0, ts(2)).unwrap().ino;
            m.names.insert((d2, sub), dino);
            m.dirs.insert(dino);
        }
    }
    fs.commit().unwrap();
    let mut order: Vec<(u64, Vec<u8>)> = m.names.keys().cloned().collect();
    rng.shuffle(&mut order);
    let mut gone: Vec<(u64, Vec<u8>)> = Vec::new();
    // Inodes whose last name went but that are still "open": no evict.
    let mut held: Vec<u64> = Vec::new();
    let mut freed: Vec<u64> = Vec::new();
    let mut committed = visible(&mut fs);
    let crash_at = order.len() / 2 + 17;
    for (step, (dir, name)) in order.iter().enumerate() {
        let ino = m.names[&(*dir, name.clone())];
        let is_dir = m.dirs.contains(&ino);
        // The wrong kind of removal is refused and changes nothing.
        let wrong = fs.remove(SV, *dir, name, !is_dir, ts(3));
        assert_eq!(wrong.map(|_| ()), Err(if is_dir { Error::IsDir } else { Error::NotDir }), "step {step}");
        let r = fs.remove(SV, *dir, name, is_dir, ts(4 + step as i64)).unwrap_or_else(|e| panic!("step {step}: {e:?}"));
        m.names.remove(&(*dir, name.clone()));
        gone.push((*dir, name.clone()));
        assert_eq!(r.dir, fs.getattr(SV, *dir).unwrap(), "step {step}: directory attributes");
        let v = r.victim.expect("an inode of this subvolume");
        assert_eq!(v, fs.getattr(SV, ino).unwrap(), "step {step}: victim attributes");
        let left = if is_dir {
            0
        } else {
            let n = m.nlink.get_mut(&ino).unwrap();
            *n -= 1;
            *n
        };
        assert_eq!(v.nlink, left, "step {step}: link count");
        assert_eq!(v.mode & S_IFMT == ferrofs_core::format::S_IFDIR, is_dir);
        if left == 0 {
            if step % 97 == 0 {
                held.push(ino);
            } else {
                fs.evict(SV, ino).unwrap();
                freed.push(ino);
                assert_eq!(fs.getattr(SV, ino), Err(Error::NotFound), "step {step}: evicted");
            }
        }
        // A lookup of a name still there and of one gone.
        if let Some(((ldir, lname), &lino)) = m.names.range((*dir, name.clone())..).next() {
            assert_eq!(fs.lookup(SV, *ldir, lname), Ok(lino), "step {step}: lookup of a name still there");
        }
        let (gdir, gname) = &gone[rng.below(gone.len() as u64) as usize];
        assert_eq!(fs.lookup(SV, *gdir, gname), Err(Error::NotFound), "step {step}: lookup of a name gone");
        if step == crash_at {
            // Unflushed writes lost: the image is the last commit's.
            let mut c = mount(fs.device().crash_drop_all());
            assert_eq!(visible(&mut c), committed, "after a crash at step {step}");
            assert_check_clean(&mut c, "crash image");
        }
        if step % 701 == 700 {
            fs.commit().unwrap();
            committed = visible(&mut fs);
        }
        if step % 2503 == 2502 {
            // The held inodes are orphans: the mount frees them.
            fs = remount(fs);
            assert_check_clean(&mut fs, "after a remount");
            for ino in held.drain(..) {
                assert_eq!(fs.getattr(SV, ino), Err(Error::NotFound), "held inode {ino} freed at mount");
                freed.push(ino);
            }
            committed = visible(&mut fs);
        }
    }
    for ino in held.drain(..) {
        fs.evict(SV, ino).unwrap();
        freed.push(ino);
    }
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "at the end");
    let mut fs = remount(fs);
    assert_check_clean(&mut fs, "after the last remount");
    for d in [d1, d2] {
        let a = fs.getattr(SV, d).unwrap();
        assert_eq!((a.size, a.nlink), (0, 2), "every name of directory {d} is gone");
        let mut any = false;
        fs.readdir(SV, d, 0, &mut |_, _, _, _| {
            any = true;
            false
        })
        .unwrap();
        assert!(!any, "directory {d} lists nothing");
    }
    for ino in freed {
        assert_eq!(fs.getattr(SV, ino), Err(Error::NotFound), "inode {ino} stays freed");
    }
    assert_eq!(fs.getattr(SV, root).unwrap().nlink, 4);
}
